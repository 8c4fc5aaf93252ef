"""Which ComfyUI frontends the browser tests run against, and the shared server / browser / page.

Every test runs once per *target*: a frontend version and a node renderer ("classic", the LiteGraph
canvas, or "vue", the frontend's "Nodes 2.0"), e.g. ``test_x[1.58.1-vue]``, so a failure names both.

The frontends belong to the host the tests run on (``tests/host.py``, ``COMFYUI_PATH``): the one the
host's requirements.txt pins, and every newer one in ``FRONTENDS`` whose server side that host has.
So the floor host (ComfyUI 0.3.75) runs its own 1.32.9, the current host (0.33.0) runs 1.49.6 (its
pin) and 1.58.1 (the newest on the registry): the two hosts together cover all three.
``NSP_FRONTENDS="1.58.1"`` picks others. ``scripts/browser_deps.sh`` installs them into
``.host/frontends/<version>/``; a server is started per frontend with ``--front-end-root``.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "demo"))  # appended: demo/ has generic module names (models)
import nsp_harness as harness  # noqa: E402
import served_base  # noqa: E402
import host  # noqa: E402  (on sys.path through nsp_harness)

FRONTEND_DIR = Path(os.environ.get("NSP_FRONTEND_DIR", ROOT / ".host" / "frontends"))

# frontend version -> the oldest ComfyUI that serves what it needs. 1.49.6 and 1.58.1 list the queue
# and the history from /api/jobs, which ComfyUI 0.3.75 does not serve (404 on every page load), so
# they run on 0.33 only.
FRONTENDS = {
    "1.32.9": "0.3.75",   # ComfyUI 0.3.75's pin
    "1.49.6": "0.33.0",   # ComfyUI 0.33.0's pin
    "1.58.1": "0.33.0",   # the newest on the registry when these tests were written
}
MODES = ("classic", "vue")
# the one target whose screenshots may replace docs/img/*.png (NSP_UPDATE_SCREENSHOTS=1): the newest
# frontend, classic canvas; the others keep theirs in the artifacts folder only
DOC_TARGET = ("1.58.1", "classic")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def host_version(comfy: Path) -> str:
    m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", (comfy / "comfyui_version.py").read_text())
    return m.group(1)


def host_frontend_pin(comfy: Path) -> str | None:
    m = re.search(r"^comfyui-frontend-package==(\S+)", (comfy / "requirements.txt").read_text(), re.M)
    return m.group(1) if m else None


def frontends_for_host() -> list[str]:
    chosen = os.environ.get("NSP_FRONTENDS")
    if chosen:
        return chosen.split()
    comfy = host.comfyui_path()
    try:
        version, pin = host_version(comfy), host_frontend_pin(comfy)
    except OSError:
        return [max(FRONTENDS, key=_version)]  # no host: the test session reports that itself
    return [fe for fe, needs in FRONTENDS.items()
            if _version(needs) <= _version(version) and (pin is None or _version(fe) >= _version(pin))]


def workflow_models() -> set[tuple[str, str]]:
    """(folder, file name) of every model the bundled workflows name (their nodes' properties.models,
    which the frontend also reads to find missing models)."""
    out = set()
    for path in (ROOT / "workflows").glob("*.json"):
        data = json.loads(path.read_text())
        graphs = [data, *((data.get("definitions") or {}).get("subgraphs") or [])]
        for g in graphs:
            for node in g.get("nodes", []):
                for m in (node.get("properties") or {}).get("models") or []:
                    out.add((m["directory"], m["name"]))
    return out


def frontend_root(version: str) -> Path:
    return FRONTEND_DIR / version / "comfyui_frontend_package" / "static"


TARGETS = [(fe, mode) for fe in frontends_for_host() for mode in MODES]


def _require(what: list[str]):
    if not what:
        return
    msg = "browser test needs " + ", ".join(what) + "; run scripts/browser_deps.sh"
    if os.environ.get("NSP_REQUIRE_BROWSER"):
        pytest.fail(msg + " (NSP_REQUIRE_BROWSER is set)")
    pytest.skip(msg)


def _require_browser():
    missing = []
    if not harness.have_chromium():
        missing.append(f"{harness.CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    _require(missing)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def core():
    from noise_semantics import core
    return core


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    out = os.environ.get("NSP_BROWSER_ARTIFACTS")
    path = Path(out) if out else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Stack:
    """One Chromium for the session; one ComfyUI server and one page for the frontend in use.
    Targets come grouped by frontend (see TARGETS), so each frontend's server starts once."""

    def __init__(self, tmp_path_factory):
        from playwright.sync_api import sync_playwright
        self._tmp = tmp_path_factory
        self._pw = sync_playwright().start()
        self.browser = harness.launch_chromium(self._pw)
        self.frontend = self.server = self.ctx = self.page = self.log = None

    def open(self, frontend: str):
        if frontend == self.frontend:
            return
        self.close_frontend()
        root = frontend_root(frontend)
        if not (root / "index.html").exists():
            _require([f"frontend {frontend} in {root.parent.parent}"])
        # laid out as scripts/start.sh serves it: the pack, the demo's node folder and the demo
        # workflows in the user's list (demo/served_base.py)
        base = served_base.prepare(self._tmp.mktemp(f"comfy-base-{frontend}"))
        self.server = harness.ComfyServer(base, front_end_root=root,
                                          model_files=workflow_models()).start()
        self.frontend = frontend
        self.ctx, self.page = harness.new_page(self.browser)
        self.log = harness.ConsoleLog()
        self.log.attach(self.page)
        self.page.add_init_script(harness.INIT_SCRIPT)
        self.page.goto(self.server.url + "/")
        self.page.wait_for_function(
            "() => window.app?.graph && window.app?.canvas && window.app?.extensionManager?.setting"
            " && window.LiteGraph?.registered_node_types?.NoiseSemanticTemporalSchedule", timeout=120_000)
        self.page.evaluate(harness.PAGE_HELPERS)
        got = self.page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ ?? null")
        assert got in (None, frontend), f"server at {root} serves frontend {got}, not {frontend}"

    def close_frontend(self):
        if self.ctx is not None:
            print(f"\nconsole errors ignored as benign on frontend {self.frontend}:")
            for text, url, reason in self.log.ignored:
                print(f"  {text.splitlines()[0][:120]} [{url}] -- {reason}")
            self.ctx.close()
        if self.server is not None:
            self.server.stop()
        self.frontend = self.server = self.ctx = self.page = self.log = None

    def close(self):
        self.close_frontend()
        self.browser.close()
        self._pw.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    _require_browser()
    s = Stack(tmp_path_factory)
    yield s
    s.close()


class Target:
    def __init__(self, frontend, mode, stack):
        self.frontend, self.mode, self.stack = frontend, mode, stack
        self.id = f"{frontend}-{mode}"
        self.docs = (frontend, mode) == DOC_TARGET

    @property
    def page(self):
        return self.stack.page

    @property
    def server(self):
        return self.stack.server

    @property
    def log(self):
        return self.stack.log


@pytest.fixture(scope="session", params=TARGETS, ids=[f"{fe}-{m}" for fe, m in TARGETS])
def target(request, stack):
    frontend, mode = request.param
    stack.open(frontend)
    has_vue = stack.page.evaluate("() => app.extensionManager.setting.get('Comfy.VueNodes.Enabled') != null")
    if mode == "vue" and not has_vue:
        pytest.skip(f"frontend {frontend} has no Vue node renderer")
    # the renderer is a user setting (Settings > Lite Graph > "Modern Node Design (Nodes 2.0)")
    stack.page.evaluate("""async (on) => { const s = app.extensionManager.setting;
        if (s.get('Comfy.VueNodes.Enabled') != null && !!s.get('Comfy.VueNodes.Enabled') !== on)
            await s.set('Comfy.VueNodes.Enabled', on);
        await __nsp.frames(); }""", mode == "vue")
    return Target(frontend, mode, stack)


@pytest.fixture
def page(target, request):
    """The target's page with an empty graph at scale 1, checked for console errors after each test."""
    pg, log = target.page, target.log
    log.take()
    pg.evaluate("() => __nsp.reset()")
    # a dialog left open (by the frontend, or by a test before) would cover the canvas
    open_dialogs = pg.get_by_role("dialog").all_inner_texts()
    assert not open_dialogs, f"a dialog is open before {request.node.name}: {open_dialogs}"
    yield pg
    errors = log.take()
    assert not errors, f"console errors during {request.node.name}:\n" + "\n".join(
        f"{t} [{u}]" for t, u in errors)
