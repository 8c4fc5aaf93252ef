"""Puts tests/ (the shared harness: host.py, tiny_models.py, probes.py, ...) and the repo root (the
pack's pure-torch package, noise_semantics) on sys.path. Nothing else: tests/unit must run without
ComfyUI; tests/integration/conftest.py boots it.

It also says which ComfyUI the session runs on (tests/host.py: COMFYUI_PATH, or the host set up for
this venv) in pytest's header, and stops the session with one line when that ComfyUI is older than the
oldest the pack supports, before any test boots it."""
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for p in (HERE.parent, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def _host_line():
    import host
    comfy = host.comfyui_path()
    if not (comfy / "main.py").exists():
        return True, f"no ComfyUI at {comfy} (tests/unit run without one; run scripts/setup_host.sh or set COMFYUI_PATH)"
    return host.version_note(comfy)


def pytest_configure(config):
    supported, line = _host_line()
    if not supported:
        pytest.exit(line, returncode=4)


def pytest_report_header(config):
    return _host_line()[1]


def pytest_terminal_summary(terminalreporter):
    # the header is hidden under -q (scripts/test.sh): an untested ComfyUI is named at the end too
    supported, line = _host_line()
    if supported and "newer than the newest tested" in line:
        terminalreporter.write_line(line, yellow=True)
