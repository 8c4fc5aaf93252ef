"""Boots one real ComfyUI in-process for the whole session (tests/host.py: the pack loaded from a
custom_nodes/ folder) and registers the test-only nodes of tests/probes.py, before any test module
of this folder imports comfy.* or nodes."""
import host

host.boot()

import torch  # noqa: E402

# The test models are tiny: one thread is faster than fighting over the cores of a CI machine.
torch.set_num_threads(1)

import probes  # noqa: E402

probes.register()
