"""A real ComfyUI server and a real headless Chromium for tests/test_browser.py.

* ``ComfyServer``: ``python <ComfyUI>/main.py --cpu --listen 127.0.0.1 --port P --base-directory B``
  in a subprocess, B made by ``host.make_base_dir`` (custom_nodes/ links this checkout), plus the
  user settings of a returning user (see ``USER_SETTINGS``).
* ``launch_browser``: Debian's ``/usr/bin/chromium`` driven by Playwright (Playwright's own browser
  download is never used), headless, with a fresh profile.
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
# * ShowMissingModelsWarning off: the bundled workflows name checkpoints that a test base directory
#   does not hold; missing *nodes* (what this test is about) still raise their dialog;
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
    def __init__(self, base: Path | None = None, port: int | None = None):
        self.base = host.make_base_dir(base or Path(tempfile.mkdtemp(prefix="nsp-browser-")))
        user = self.base / "user" / "default"
        for d in ("workflows", "subgraphs"):  # a user's folders; absent, the frontend logs 404s
            (user / d).mkdir(parents=True, exist_ok=True)
        (user / "comfy.settings.json").write_text(json.dumps(USER_SETTINGS, indent=1))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / "server.log"
        self.proc = None

    def start(self, timeout: float = 180.0) -> "ComfyServer":
        comfy = host.comfyui_path()
        if not (comfy / "main.py").exists():
            raise RuntimeError(f"no ComfyUI at {comfy}: run scripts/setup_host.sh or set COMFYUI_PATH")
        cmd = [sys.executable, str(comfy / "main.py"), "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--base-directory", str(self.base),
               "--database-url", "sqlite:///:memory:", "--disable-auto-launch"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=str(self.base), stdout=self._log, stderr=subprocess.STDOUT)
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


def launch_browser(playwright, profile: Path, scale: float = 2.0):
    """Chromium with a fresh profile; returns (context, page). device_scale_factor 2 gives crisp
    screenshots for the docs; everything the tests compute is in CSS pixels."""
    ctx = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 900}, device_scale_factor=scale)
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    return ctx, page


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
    Benign(r"net::ERR_[A-Z_]+ \| https?://(?!127\.0\.0\.1)",
           "the frontend queries api.comfy.org (registry, release notes); this test box has no internet"),
    Benign(r"^TypeError: Cannot read properties of undefined \(reading 'id'\)\n\s+at onChange .*\n\s+at Proxy\.set",
           "frontend 1.32.9 bug: useRenderModeSetting sets 'LiteGraph.Canvas.MinFontSizeForLOD' before the "
           "setting is registered, and settingStore's onChange reads setting.id of undefined"),
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
