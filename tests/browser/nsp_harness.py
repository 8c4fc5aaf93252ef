"""A real ComfyUI server and a real headless Chromium for the tests in tests/browser/.

* ``ComfyServer``: ``python <ComfyUI>/main.py --cpu --listen 127.0.0.1 --port P --base-directory B
  --front-end-root F`` in a subprocess, B a temporary folder made by ``host.make_base_dir``
  (custom_nodes/ links this checkout; user/ and the in-memory database are in it too, so a read-only
  ComfyUI checkout works; conftest.py first lays it out as scripts/start.sh serves it, with the demo's
  node folder and workflow, demo/served_base.py), F the frontend under test, plus the user settings of
  a returning user (see ``USER_SETTINGS``); one torch thread.
* ``launch_chromium`` / ``new_page``: Debian's ``/usr/bin/chromium`` driven by Playwright
  (Playwright's own browser download is never used), headless, a fresh context per frontend.
* ``ConsoleLog``: every console ``error`` and uncaught page error, minus the few known benign ones in
  ``BENIGN`` (each with its reason).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import host  # noqa: E402

CHROMIUM = Path(os.environ.get("NSP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

# A returning user's settings (ComfyUI keeps them in <base>/user/default/comfy.settings.json):
# * TutorialCompleted: a first visit opens the template browser over the canvas;
# * ShowVersionUpdates off: the frontend would fetch release notes from api.comfy.org, which a CI
#   box without internet cannot reach;
# * ShowMissingModelsWarning off: a workflow naming a model the base directory lacks would open a
#   dialog over the canvas (the tests give the server empty stand-ins for the bundled workflows' models);
# * Minimap off: it would cover a corner of the screenshots.
USER_SETTINGS = {
    "Comfy.Minimap.Visible": False,
    "Comfy.TutorialCompleted": True,
    "Comfy.Notification.ShowVersionUpdates": False,
    "Comfy.Workflow.ShowMissingModelsWarning": False,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, base: Path | None = None, port: int | None = None, front_end_root: Path | None = None,
                 model_files: Iterable[tuple[str, str]] = ()):
        self.base = host.make_base_dir(base or Path(tempfile.mkdtemp(prefix="nsp-browser-")))
        # Empty stand-ins for the model files a workflow names ((folder, file name)): the server lists
        # them, so the frontend loads the workflow as for a user who has downloaded its models (no
        # loader marked as missing its file); nothing here runs a model.
        for folder, name in model_files:
            path = self.base / "models" / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        user = self.base / "user" / "default"
        for d in ("workflows", "subgraphs"):  # a user's folders; absent, the frontend logs 404s
            (user / d).mkdir(parents=True, exist_ok=True)
        settings = user / "comfy.settings.json"  # the served base's own (demo/served_base.py), if any
        current = json.loads(settings.read_text()) if settings.exists() else {}
        settings.write_text(json.dumps(current | USER_SETTINGS, indent=1))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / "server.log"
        self.proc = None
        self.front_end_root = front_end_root

    def start(self, timeout: float = 180.0) -> "ComfyServer":
        comfy = host.comfyui_path()
        if not (comfy / "main.py").exists():
            raise RuntimeError(f"no ComfyUI at {comfy}: run scripts/setup_host.sh or set COMFYUI_PATH")
        cmd = [sys.executable, str(comfy / "main.py"), "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--base-directory", str(self.base),
               "--database-url", "sqlite:///:memory:", "--disable-auto-launch"]
        if self.front_end_root:
            cmd += ["--front-end-root", str(self.front_end_root)]
        self._log = open(self.log_path, "wb")
        # One torch thread: the server samples only the demo's tiny models, and on a shared CI box
        # with 2 busy cores torch's default thread pool made the demo workflow take 73 s, not 3-6 s.
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.proc = subprocess.Popen(cmd, cwd=str(self.base), stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        probe = f"{self.url}/object_info/NoiseSemanticTemporalSchedule"
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(probe, timeout=2) as r:
                    if r.status == 200 and json.loads(r.read()):
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI did not serve the pack's nodes within {timeout} s:\n{self.log_tail()}")

    def get_json(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()


def launch_chromium(playwright):
    """Debian's Chromium, headless; one per test session (a context per frontend keeps them apart)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def new_page(browser, scale: float = 2.0):
    """A fresh context (its own storage, like a new browser profile) and its page; returns (context,
    page). device_scale_factor 2 gives crisp screenshots for the docs; everything the tests compute
    is in CSS pixels."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=scale)
    return ctx, ctx.new_page()


@dataclass
class Benign:
    pattern: str        # regex on "text | url"
    reason: str


# Console errors that appear on every page load of this ComfyUI / frontend with or without this pack
# (checked by loading the page with the pack removed), none of them from this pack's code.
BENIGN = [
    Benign(r"status of 404 .*\| https?://127\.0\.0\.1:\d+/(api/userdata/)?user\.css$",
           "the frontend asks for the user's optional user.css; ComfyUI answers 404 when there is none"),
    Benign(r"status of 404 .*\| https?://127\.0\.0\.1:\d+/favicon\.ico$",
           "the browser asks for /favicon.ico; ComfyUI does not serve one at that path"),
    Benign(r"status of 404 .*\| https?://127\.0\.0\.1:\d+/api/userdata/comfy\.templates\.json$",
           "the frontend reads the user's saved node templates; 404 until the user saves one"),
    Benign(r"status of 404 .*\| https?://127\.0\.0\.1:\d+/extensions/comfyui-noise-semantics/docs/"
           r"NoiseSemantic\w+/[a-z]{2}(-[A-Za-z]+)?\.md$",
           "node help: the frontend first asks for a per-locale page docs/<NodeId>/<locale>.md, then falls "
           "back to docs/<NodeId>.md, the one page this pack ships for every locale"),
    Benign(r"status of 404 .*\| https?://127\.0\.0\.1:\d+/api/userdata/workflows%2F\.index\.json$",
           "the workflows sidebar reads the user's bookmarked workflows; 404 until the user bookmarks one"),
    Benign(r"net::ERR_[A-Z_]+ \| https?://(?!127\.0\.0\.1)",
           "the frontend queries api.comfy.org (registry, release notes); this test box has no internet"),
    Benign(r"^TypeError: Cannot read properties of undefined \(reading 'id'\)\n\s+at onChange .*\n\s+at Proxy\.set",
           "frontend 1.32.9 bug: useRenderModeSetting sets 'LiteGraph.Canvas.MinFontSizeForLOD' before the "
           "setting is registered, and settingStore's onChange reads setting.id of undefined"),
    Benign(r"^ComfyApp graph accessed before initialization \| ",
           "frontend 1.49.6 on a first visit (a fresh browser profile): its own start-up reads app.rootGraph "
           "before setup made it; also with no custom node at all"),
]


@dataclass
class ConsoleLog:
    errors: list = field(default_factory=list)      # (text, url), not benign
    ignored: list = field(default_factory=list)     # (text, url, reason)
    warnings: list = field(default_factory=list)

    def attach(self, page):
        page.on("console", self._on_console)
        page.on("pageerror", lambda e: self._add(f"{e.name}: {e.message}\n{e.stack or ''}".strip(), ""))

    def _on_console(self, msg):
        if msg.type == "error":
            self._add(msg.text, (msg.location or {}).get("url", ""))
        elif msg.type == "warning":
            self.warnings.append(msg.text)

    def _add(self, text, url):
        key = f"{text} | {url}"
        for b in BENIGN:
            if re.search(b.pattern, key, re.S):
                self.ignored.append((text, url, b.reason))
                return
        self.errors.append((text, url))

    def take(self):
        out, self.errors = self.errors, []
        return out


def have_chromium() -> bool:
    return CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is not None


# Run before the frontend's own scripts on every page load: the "Nodes 2.0" banner a first visit
# shows over the top of the canvas stays dismissed.
INIT_SCRIPT = "localStorage.setItem('vueNodesBannerDismissed', 'true')"

# The tests' helpers in the page. They reach the frontend only through `app` (window.app), the
# LiteGraph graph / nodes / widgets and the canvas transform, never through the frontend's CSS
# classes, which change from release to release.
# (A function: page.evaluate calls a function it is given, and would also call one that a script's
# last statement happened to evaluate to.)
PAGE_HELPERS = r"""() => {
window.__nsp = {
  // Node ids are never reused within a page: the Vue node renderer keeps widget state by node id,
  // and a node added after graph.clear() with a reused id would show the old node's values.
  nextId: 1000,
  reportedMissing: [],
  node: (id) => app.graph.getNodeById(id),
  widget(id, name) { return this.node(id).widgets.find((w) => w.name === name); },
  add(type, x, y) {
    const n = LiteGraph.createNode(type);
    n.pos = [x, y];
    n.id = this.nextId++;
    app.graph.add(n);
    return n.id;
  },
  // A widget change as the frontend makes it for a user's edit in either renderer: the value,
  // then the widget's callback (which the pack's previews listen to).
  async set(id, name, value) {
    const n = this.node(id), w = this.widget(id, name);
    if (typeof w.setValue === 'function') w.setValue(value, { node: n, canvas: app.canvas });
    else { w.value = value; w.callback?.(value, app.canvas, n); }
    await this.redraw();
  },
  frames: () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  async redraw() { app.canvas.setDirty(true, true); await this.frames(); },
  async reset() {
    app.graph.clear();
    app.canvas.ds.scale = 1;
    app.canvas.ds.offset[0] = 0;
    app.canvas.ds.offset[1] = 0;
    this.reportedMissing = [];
    await this.redraw();
  },
  // a graph-space rectangle in page (CSS) pixels, through the canvas transform
  rect(x, y, w, h) {
    const r = app.canvas.canvas.getBoundingClientRect();
    const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([x, y]);
    const s = app.canvas.ds.scale;
    return { x: r.left + cx, y: r.top + cy, width: w * s, height: h * s };
  },
  // the node with its title bar, `pad` graph units around it (outlines) and `above` more on top
  // (the classic canvas draws the node-source badge above the title bar)
  nodeRect(id, pad = 0, above = 0) {
    const n = this.node(id), t = LiteGraph.NODE_TITLE_HEIGHT;
    return this.rect(n.pos[0] - pad, n.pos[1] - t - pad - above, n.size[0] + 2 * pad,
                     n.size[1] + t + 2 * pad + above);
  },
  // the area a canvas-drawn widget occupies (classic renderer: widgets are laid out at w.y)
  widgetRect(id, name) {
    const n = this.node(id), w = this.widget(id, name);
    const h = w.computeSize ? w.computeSize(n.size[0])[1] : LiteGraph.NODE_WIDGET_HEIGHT;
    return this.rect(n.pos[0], n.pos[1] + w.y, n.size[0], h);
  },
  // page point of a canvas-drawn widget: its left / right arrow or its middle
  widgetPoint(id, name, where = 'center') {
    const n = this.node(id), w = this.widget(id, name);
    const x = where === 'right' ? n.size[0] - 25 : where === 'left' ? 25 : n.size[0] / 2;
    const r = this.rect(n.pos[0] + x, n.pos[1] + w.y + LiteGraph.NODE_WIDGET_HEIGHT / 2, 0, 0);
    return [r.x, r.y];
  },
  canvasRect() {
    const r = app.canvas.canvas.getBoundingClientRect();
    return { x: r.left, y: r.top, width: r.width, height: r.height };
  },
  curve: (id) => JSON.parse(JSON.stringify(app.graph.getNodeById(id).__nsCurve ?? null)),
  mix: (id) => JSON.parse(JSON.stringify(app.graph.getNodeById(id).__nsMix ?? null)),
  // Missing nodes as the graph holds them: a node whose type no registered node class has (the
  // frontend keeps it as a placeholder), in the graph or any subgraph.
  missing(graph = app.graph, seen = new Set()) {
    const out = [];
    for (const n of graph.nodes ?? graph._nodes ?? []) {
      if (n.subgraph) {
        if (!seen.has(n.subgraph)) { seen.add(n.subgraph); out.push(...this.missing(n.subgraph, seen)); }
      } else if (!LiteGraph.registered_node_types[n.type]) out.push(n.type);
    }
    return out;
  },
  // Missing nodes as the frontend reports them: app.showMissingNodesError (up to 1.49) and the
  // active workflow's pending warnings (1.49 on), whichever this frontend has.
  reported() {
    const pending = app.extensionManager.workflow?.activeWorkflow?.pendingWarnings?.missingNodeTypes ?? [];
    return [...this.reportedMissing, ...pending].map((t) => (typeof t === 'string' ? t : t?.type));
  },
};
if (typeof app.showMissingNodesError === 'function' && !app.showMissingNodesError.__nsp) {
  const orig = app.showMissingNodesError;
  const spy = function (types, ...rest) {
    __nsp.reportedMissing.push(...(types ?? []));
    return orig.call(this, types, ...rest);
  };
  spy.__nsp = true;
  app.showMissingNodesError = spy;
}
}"""
