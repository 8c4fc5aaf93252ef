"""Boots one real ComfyUI for the whole session (tests/host.py) and registers the test-only
nodes of tests/probes.py, before any test module imports comfy.*."""
import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import host  # noqa: E402

host.boot()

import torch  # noqa: E402

# The test models are tiny: one thread is faster than fighting over the two cores of a CI machine.
torch.set_num_threads(1)

import probes  # noqa: E402

probes.register()


def load_core():
    """The pure-torch core, imported by file: the pack's `nodes` package name is ComfyUI's too."""
    name = "noise_semantics_core"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, host.ROOT / "nodes" / "core.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="session")
def core():
    return load_core()


@pytest.fixture(scope="session")
def comfy_nodes():
    return host.boot()
