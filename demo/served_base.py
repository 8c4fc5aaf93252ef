"""The base directory ComfyUI is served from (``--base-directory``), laid out for the demo:

    custom_nodes/comfyui-noise-semantics   -> this checkout (the pack, as users install it)
    custom_nodes/comfyui-nsp-demo          -> demo/comfyui_nsp_demo (the demo's nodes; not the pack)
    user/default/workflows/<demo workflow>    copies of demo/workflows/*.json, in the user's list
    user/default/comfy.settings.json       Comfy.TutorialCompleted: true (see SETTINGS)

The first page: ``FIRST_PAGE`` (``python demo/served_base.py --first-page`` prints it; start.sh
prints the link) opens the demo workflow on a first visit, from a fresh browser profile, through
ComfyUI's own ``?template=<name>&source=<custom node folder>`` link: every frontend used here (1.32.9,
1.49.6, 1.58.1) loads that custom-node folder's example workflow (``example_workflows/``, which
ComfyUI serves at /api/workflow_templates/<folder>/) when the page starts. No setting or user file can
do it: at start-up the frontend restores a workflow only from the browser's own storage
(localStorage / sessionStorage: nothing in a fresh profile), and otherwise shows its default graph or,
until ``Comfy.TutorialCompleted`` is set, the template browser.

``scripts/start.sh`` serves ``.host/base`` laid out like this; the browser test serves a temporary
one laid out by the same function, and ``demo/run_demo.py`` boots ComfyUI on one.

    python demo/served_base.py <base dir>

A demo workflow is copied when it is not there yet, or when the copy there is still the one written
last time (a newer demo replaces it); a copy the user has edited and saved under that name is kept.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent
ROOT = DEMO.parent
PACK_LINK = "comfyui-noise-semantics"
DEMO_LINK = "comfyui-nsp-demo"
WORKFLOWS = sorted((DEMO / "workflows").glob("*.json"))
STAMP = "nsp_demo_workflows.json"  # in user/, outside workflows/: sha256 of each copy written
DEMO_WORKFLOW = "noise_semantics_demo_digits"
# demo/comfyui_nsp_demo/example_workflows links demo/workflows: ComfyUI serves it as the demo folder's
# templates; the frontend opens the one named here when the page starts
FIRST_PAGE = f"/?template={DEMO_WORKFLOW}&source={DEMO_LINK}"
# Settings ComfyUI keeps for the served base's user (set only where the user has not set them):
# TutorialCompleted: a first visit otherwise opens the template browser, which frontend 1.32.9 puts
# over the workflow the link opened (1.49.6 and 1.58.1 skip it for a link)
SETTINGS = {"Comfy.TutorialCompleted": True}


def _link(path: Path, target: Path) -> None:
    if path.is_symlink() and path.resolve() == target.resolve():
        return
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        raise FileExistsError(f"{path} exists and is not a link to {target}; move it away")
    path.symlink_to(target, target_is_directory=True)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prepare(base: Path) -> Path:
    base = Path(base)
    for d in ("custom_nodes", "models", "input", "output", "temp", "user/default/workflows",
              "user/default/subgraphs"):
        (base / d).mkdir(parents=True, exist_ok=True)
    _link(base / "custom_nodes" / PACK_LINK, ROOT)
    _link(base / "custom_nodes" / DEMO_LINK, DEMO / "comfyui_nsp_demo")
    stamp_path = base / "user" / STAMP
    stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
    for src in WORKFLOWS:
        dst = base / "user" / "default" / "workflows" / src.name
        new = src.read_bytes()
        if dst.exists() and _sha(dst.read_bytes()) not in (stamp.get(src.name), _sha(new)):
            print(f"kept {dst}: edited since the demo wrote it (delete it to get the current demo)")
            continue
        dst.write_bytes(new)
        stamp[src.name] = _sha(new)
    stamp_path.write_text(json.dumps(stamp, indent=1) + "\n")
    settings_path = base / "user" / "default" / "comfy.settings.json"
    settings = json.loads(settings_path.read_text()) if settings_path.exists() else {}
    if any(k not in settings for k in SETTINGS):
        settings_path.write_text(json.dumps(SETTINGS | settings, indent=4) + "\n")
    return base


def load_demo_nodes(nodes) -> None:
    """Loads the demo's node folder into a ComfyUI already booted on a base without it (a test
    session's), with ComfyUI's own custom-node loader; nothing to do if it is there."""
    if "DigitsDemoModelLoader" in nodes.NODE_CLASS_MAPPINGS:
        return
    import asyncio
    if not asyncio.run(nodes.load_custom_node(str(DEMO / "comfyui_nsp_demo"))):
        raise RuntimeError("ComfyUI could not load demo/comfyui_nsp_demo (see its log above)")


if __name__ == "__main__":
    if sys.argv[1:] == ["--first-page"]:
        print(FIRST_PAGE)
    elif len(sys.argv) == 2:
        print(f"served base directory: {prepare(Path(sys.argv[1]))}")
    else:
        sys.exit("usage: python demo/served_base.py <base dir> | --first-page")
