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
import shutil
import subprocess
import sys
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from host import ROOT  # noqa: E402
from live_server import LiveServer  # noqa: E402

OUR_NODES = ("NoiseSemanticErase", "NoiseSemanticInject", "NoiseSemanticTemporalSchedule", "NoiseSemanticPreview")
SCRIPT = "noise_semantics.js"
# Registry / comfy-cli install folder (the project name), and a git clone's default folder.
FOLDERS = {"comfyui-noise-semantics": "link", "ComfyUI-Noise-Semantics": "copy"}


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


def _no_duplicate_keys(pairs):
    keys = Counter(k for k, _ in pairs)
    dup = [k for k, n in keys.items() if n > 1]
    assert not dup, f"duplicate keys in the server's JSON: {dup}"
    return dict(pairs)


class Server(LiveServer):
    """A real server whose custom_nodes/ holds the pack under ``folder``, linked or copied."""

    def __init__(self, tmp: Path, folder: str, how: str):
        self.folder = folder
        super().__init__(tmp, {}, install=lambda custom_nodes: _install(custom_nodes, folder, how),
                         websocket=False)

    def json(self, path: str):
        status, body = self.get(path)
        assert status == 200, path
        return json.loads(body, object_pairs_hook=_no_duplicate_keys)


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
    status, body = server.get(ours[0])
    assert status == 200 and b"registerExtension" in body


def test_help_pages_are_served_where_the_frontend_looks(server):
    # ComfyUI's frontend fetches /extensions/<folder of python_module>/docs/<NodeId>.md
    for node_id in OUR_NODES:
        status, body = server.get(f"/extensions/{urllib.parse.quote(server.folder)}/docs/{node_id}.md")
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
        saved = list(node.get("widgets_values", []))
        # a seed widget with control_after_generate (Noise Semantic Preview's) stores that choice after it
        controls = sum(1 for _, _, opts in widgets if opts.get("control_after_generate"))
        assert len(saved) == len(widgets) + controls, f"{where}: {saved} for widgets {[w[0] for w in widgets]}"
        values = []
        for _, _, opts in widgets:
            values.append(saved.pop(0))
            if opts.get("control_after_generate"):
                assert saved.pop(0) in ("fixed", "increment", "decrement", "randomize"), where
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
