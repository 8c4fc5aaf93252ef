"""Boots a real ComfyUI in-process, loading this pack the way ComfyUI does: from a
``custom_nodes/`` folder of a base directory (a link to this checkout), through
``nodes.init_extra_nodes``. Shared by the tests, the demo and the benchmarks.

ComfyUI comes from ``COMFYUI_PATH`` or, by default, from what ``scripts/setup_host.sh <host>``
recorded in ``.host/<host>/comfyui_path`` for the host whose venv runs this Python (the venv's
``nsp-host`` file names it; a venv without one is the floor's): 0.3.75 copied to ``.host/ComfyUI``
for ``floor`` (the venv ``.venv``), 0.33.0 used in place for ``current`` (``.venv-current``).
"""
from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACK_DIR_NAME = "comfyui-noise-semantics"
OUR_NODES = {"NoiseSemanticErase": "Noise Semantic Erase",
             "NoiseSemanticInject": "Noise Semantic Inject",
             "NoiseSemanticTemporalSchedule": "Temporal Weight Schedule",
             "NoiseSemanticPreview": "Noise Semantic Preview"}
_booted = None
# The ComfyUI versions this pack is tested on (scripts/setup_host.sh has the same two): the floor is
# the oldest it supports; a newer one than the last is run, with a note that it is untested.
FLOOR_VERSION = "0.3.75"
KNOWN_TO_PASS = ("0.3.75", "0.33.0")


def host_name() -> str:
    """The host (floor / current) whose venv runs this Python, as scripts/setup_host.sh marked it."""
    marker = Path(sys.prefix) / "nsp-host"
    return marker.read_text().strip() if marker.exists() else "floor"


def comfyui_path() -> Path:
    env = os.environ.get("COMFYUI_PATH")
    if env:
        return Path(env).resolve()
    name = host_name()
    recorded = ROOT / ".host" / name / "comfyui_path"
    if recorded.exists():
        return Path(recorded.read_text().strip())
    # Not set up yet: the floor's default place, or none (boot() then says which set-up to run).
    return ROOT / ".host" / "ComfyUI" if name == "floor" else recorded.parent / "ComfyUI"


def _vkey(v: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def comfyui_version(comfy_dir: Path | None = None) -> str | None:
    """The version in ComfyUI's comfyui_version.py, or None (no such file: a very old checkout)."""
    f = Path(comfy_dir or comfyui_path()) / "comfyui_version.py"
    m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", f.read_text()) if f.exists() else None
    return m.group(1) if m else None


def version_note(comfy_dir: Path | None = None) -> tuple[bool, str]:
    """(supported, one line about the ComfyUI at comfy_dir): unsupported when older than the floor or
    of unknown version; a newer one than the newest tested is supported, with a note."""
    comfy_dir = Path(comfy_dir or comfyui_path())
    v = comfyui_version(comfy_dir)
    known = ", ".join(KNOWN_TO_PASS)
    if v is None:
        return False, (f"ComfyUI at {comfy_dir} has no comfyui_version.py (older than {FLOOR_VERSION}, the oldest "
                       f"this pack supports); use ComfyUI {FLOOR_VERSION} or newer (known to pass: {known})")
    if _vkey(v) < _vkey(FLOOR_VERSION):
        return False, (f"ComfyUI {v} at {comfy_dir} is older than {FLOOR_VERSION}, the oldest this pack supports; "
                       f"use ComfyUI {FLOOR_VERSION} or newer (known to pass: {known})")
    if _vkey(v) > _vkey(KNOWN_TO_PASS[-1]):
        return True, (f"ComfyUI {v} at {comfy_dir}: newer than the newest tested ({KNOWN_TO_PASS[-1]}); "
                      "a failure may be a change in ComfyUI")
    return True, f"ComfyUI {v} at {comfy_dir} (known to pass: {known})"


def make_base_dir(base: Path | None = None) -> Path:
    """A ComfyUI --base-directory whose custom_nodes/ holds only this pack."""
    base = Path(base or tempfile.mkdtemp(prefix="nsp-comfy-base-"))
    for d in ("custom_nodes", "models", "input", "output", "temp", "user"):
        (base / d).mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_DIR_NAME
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    return base


def boot(base: Path | None = None):
    """Import ComfyUI as a library on the CPU and load every node, ours from custom_nodes/."""
    global _booted
    if _booted is not None:
        return _booted
    comfy_dir = comfyui_path()
    if not (comfy_dir / "nodes.py").exists():
        raise RuntimeError(f"no ComfyUI at {comfy_dir}: run `bash scripts/setup_host.sh {host_name()}` "
                           "or set COMFYUI_PATH")
    supported, note = version_note(comfy_dir)
    if not supported:
        raise RuntimeError(note)
    base = make_base_dir(base)
    sys.path.insert(0, str(comfy_dir))
    sys.argv = [sys.argv[0], "--cpu", "--base-directory", str(base), "--disable-auto-launch"]
    import comfy.options
    comfy.options.enable_args_parsing()
    import comfy.cli_args  # noqa: F401  (parses sys.argv above)
    import folder_paths  # noqa: F401
    import utils.extra_config  # noqa: F401  (main.py imports it first; later imports shadow 'utils')
    import nodes
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    missing = [k for k in OUR_NODES if k not in nodes.NODE_CLASS_MAPPINGS]
    if missing:
        raise RuntimeError(f"ComfyUI did not load the pack's nodes {missing} from {base / 'custom_nodes'}")
    _booted = nodes
    return nodes


class _StubServer:
    """The few attributes PromptExecutor touches on PromptServer."""
    def __init__(self):
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.messages = []

    def send_sync(self, event, data, sid=None):
        self.messages.append((event, data))

    def queue_updated(self):
        pass


class ExecutionFailed(RuntimeError):
    def __init__(self, message, error):
        super().__init__(message)
        self.error = error


def run_prompt(prompt: dict):
    """Validate an API-format prompt as the server would, then run it in ComfyUI's real executor.
    Returns the executor's history_result; raises ExecutionFailed with ComfyUI's own error."""
    boot()
    import execution
    prompt_id = str(uuid.uuid4())
    valid = asyncio.run(execution.validate_prompt(prompt_id, prompt, None))
    if not valid[0]:
        raise ExecutionFailed(f"invalid prompt: {valid[1]} {valid[3]}", valid[1])
    server = _StubServer()
    # The classic cache (cache_type=False), as main.py --cache-classic. 0.33 reads
    # cache_args["ram_inactive"] on every run (main.py always passes it; the RAM numbers only drive
    # its RAM-pressure cache); 0.3.75 never looks at the extra key.
    ex = execution.PromptExecutor(server, cache_type=False, cache_args={"lru": 0, "ram": 0, "ram_inactive": 0})
    ex.execute(prompt, prompt_id, {}, valid[2])
    if not ex.success:
        err = [d for e, d in ex.status_messages if e == "execution_error"]
        msg = err[0]["exception_message"] if err else "unknown error"
        raise ExecutionFailed(msg, err[0] if err else None)
    return ex.history_result
