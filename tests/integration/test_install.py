"""The pack installed the ways users install it, served by the real ComfyUI server.

ComfyUI Manager and ``git clone`` name the folder after the repository (``ComfyUI-Noise-Semantics``),
the Registry after the pack (``comfyui-noise-semantics``). Whatever the folder is called, the server
must list each node once and the frontend script once: ComfyUI registers a web folder both from
``WEB_DIRECTORY`` (under the folder's name) and from pyproject.toml ``[tool.comfy] web`` (under the
project's name), so a pack that declares both is loaded twice by the browser from a folder with
another name. Each folder name gets its own ``main.py --cpu`` server (a subprocess, its own temporary
base directory and database), started with the ComfyUI and Python that run this test.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from host import ROOT, comfyui_path  # noqa: E402

OUR_NODES = ("NoiseSemanticErase", "NoiseSemanticInject", "NoiseSemanticTemporalSchedule")
SCRIPT = "noise_semantics.js"
# Registry / comfy-cli install folder (the project name), and a git clone's default folder.
FOLDERS = {"comfyui-noise-semantics": "link", "ComfyUI-Noise-Semantics": "copy"}
BOOT_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _install(custom_nodes: Path, folder: str, how: str) -> Path:
    dest = custom_nodes / folder
    if how == "link":
        dest.symlink_to(ROOT, target_is_directory=True)
        return dest
    # A copy of the checkout's files as git sees them (what a clone holds), without the .git folder.
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _get(url: str, timeout: float = 30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def _no_duplicate_keys(pairs):
    keys = Counter(k for k, _ in pairs)
    dup = [k for k, n in keys.items() if n > 1]
    assert not dup, f"duplicate keys in the server's JSON: {dup}"
    return dict(pairs)


class Server:
    def __init__(self, tmp: Path, folder: str, how: str):
        self.folder = folder
        base = tmp / "base"
        for d in ("custom_nodes", "models", "input", "output", "temp", "user"):
            (base / d).mkdir(parents=True)
        _install(base / "custom_nodes", folder, how)
        comfy = comfyui_path()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "server.log"
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", DO_NOT_TRACK="1")
        # Everything the server writes goes under tmp (the current host's tree is read-only).
        cmd = [sys.executable, str(comfy / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(base), "--database-url", f"sqlite:///{tmp / 'comfyui.db'}",
               "--disable-auto-launch"]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if _get(self.url + "/system_stats", timeout=5)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ComfyUI did not answer within {BOOT_TIMEOUT_S} s:\n{self.tail()}")
            time.sleep(0.5)

    def tail(self, n: int = 4000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def json(self, path: str):
        status, body = _get(self.url + path)
        assert status == 200, path
        return json.loads(body, object_pairs_hook=_no_duplicate_keys)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module", params=list(FOLDERS), ids=lambda f: f)
def server(request, tmp_path_factory):
    folder = request.param
    s = Server(tmp_path_factory.mktemp("install"), folder, FOLDERS[folder])
    try:
        s.object_info = s.json("/object_info")
        s.extensions = s.json("/extensions")
        yield s
    finally:
        s.stop()


def test_each_node_is_registered_once_from_the_install_folder(server):
    info = server.object_info
    for node_id in OUR_NODES:
        assert node_id in info, f"{node_id} missing from /object_info; server log:\n{server.tail()}"
        # the frontend derives the help-page folder from this
        assert info[node_id]["python_module"] == f"custom_nodes.{server.folder}"
    assert [k for k in info if k.startswith("NoiseSemantic")] == list(OUR_NODES)


def test_the_frontend_script_is_listed_once(server):
    ours = [e for e in server.extensions if e.endswith("/" + SCRIPT)]
    assert ours == [f"/extensions/{urllib.parse.quote(server.folder)}/{SCRIPT}"], ours
    status, body = _get(server.url + ours[0])
    assert status == 200 and b"registerExtension" in body


def test_help_pages_are_served_where_the_frontend_looks(server):
    # ComfyUI's frontend fetches /extensions/<folder of python_module>/docs/<NodeId>.md
    for node_id in OUR_NODES:
        status, body = _get(f"{server.url}/extensions/{urllib.parse.quote(server.folder)}/docs/{node_id}.md")
        assert status == 200 and body.startswith(b"# ")


WIDGET_TYPES = {"INT", "FLOAT", "BOOLEAN", "STRING", "COMBO"}


def _spec(info: dict, node_id: str) -> list[tuple[str, str, dict]]:
    """(name, type, options) of each input in the server's order; a combo's type is COMBO."""
    out = []
    for section in ("required", "optional"):
        for name in info[node_id]["input_order"].get(section, []):
            typ, *opts = info[node_id]["input"][section][name]
            opts = opts[0] if opts else {}
            if isinstance(typ, list):
                typ, opts = "COMBO", dict(opts, options=typ)
            out.append((name, typ, opts))
    return out


@pytest.mark.parametrize("workflow", sorted((ROOT / "workflows").glob("*.json")), ids=lambda p: p.name)
def test_saved_workflows_match_what_the_server_reports(server, workflow):
    """What the frontend needs to load a saved workflow: each of our nodes' sockets and outputs
    exist with the same names and types, and its widget values line up with the widget inputs and
    lie within their bounds."""
    info = server.object_info
    graph = json.loads(workflow.read_text())
    ours = [n for n in graph["nodes"] if n["type"] in OUR_NODES]
    assert ours, f"{workflow.name} has none of the pack's nodes"
    for node in ours:
        spec = _spec(info, node["type"])
        by_name = {name: typ for name, typ, _ in spec}
        where = f"{workflow.name} node {node['id']} ({node['type']})"
        for inp in node.get("inputs", []):
            assert by_name.get(inp["name"]) == inp["type"], f"{where}: input {inp['name']}:{inp['type']}"
        widgets = [(name, typ, opts) for name, typ, opts in spec if typ in WIDGET_TYPES]
        values = node.get("widgets_values", [])
        assert len(values) == len(widgets), f"{where}: {values} for widgets {[w[0] for w in widgets]}"
        for (name, typ, opts), v in zip(widgets, values):
            if typ == "COMBO":
                assert v in opts["options"], f"{where}: {name}={v!r}"
            elif typ in ("INT", "FLOAT"):
                assert isinstance(v, (int, float)) and opts["min"] <= v <= opts["max"], f"{where}: {name}={v}"
            elif typ == "BOOLEAN":
                assert isinstance(v, bool), f"{where}: {name}={v!r}"
        outputs = info[node["type"]]
        assert [(o["name"], o["type"]) for o in node["outputs"]] == list(zip(outputs["output_name"],
                                                                           outputs["output"])), where
