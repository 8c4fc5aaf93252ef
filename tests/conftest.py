"""Boots one real ComfyUI for the whole session (tests/host.py) and registers the test-only
nodes of tests/probes.py, before any test module imports comfy.*."""
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # the pack's own package, noise_semantics

import host  # noqa: E402

host.boot()

import torch  # noqa: E402

# The test models are tiny: one thread is faster than fighting over the two cores of a CI machine.
torch.set_num_threads(1)

import probes  # noqa: E402

probes.register()


def load_core():
    """The pure-torch core (the package's __init__ imports no ComfyUI)."""
    from noise_semantics import core
    return core


@pytest.fixture(scope="session")
def core():
    return load_core()


@pytest.fixture(scope="session")
def comfy_nodes():
    return host.boot()
