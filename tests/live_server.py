"""A real ComfyUI server (``main.py --cpu`` in a subprocess, on 127.0.0.1, a free port, its own temporary
base directory and database) driven through its HTTP and websocket API, as the frontend drives it.

``LiveServer(tmp, custom_nodes={folder name: source dir})`` links each source into the base directory's
``custom_nodes/`` (``install(custom_nodes_dir)`` may put folders there another way, e.g. as a copy);
``stop()`` ends the process (use it in a ``finally`` or a fixture). A websocket
listener (aiohttp, a ComfyUI dependency, in a background thread) records every JSON message with its
arrival time, per prompt id, so tests can wait on a prompt's end and read what the executor reported
(``executing``, ``execution_cached``, ``progress``, ``execution_error``, ``execution_interrupted``...).
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Callable

from host import comfyui_path

BOOT_TIMEOUT_S = 240
TERMINAL = ("execution_success", "execution_error", "execution_interrupted")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, tmp: Path, custom_nodes: dict[str, Path], extra_args: tuple = (),
                 install: Callable[[Path], object] | None = None, websocket: bool = True):
        base = tmp / "base"
        for d in ("custom_nodes", "models", "input", "output", "temp", "user"):
            (base / d).mkdir(parents=True, exist_ok=True)
        for name, src in custom_nodes.items():
            (base / "custom_nodes" / name).symlink_to(src, target_is_directory=True)
        if install is not None:
            install(base / "custom_nodes")
        self.output_dir = base / "output"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = uuid.uuid4().hex
        self.log_path = tmp / "server.log"
        self.log = open(self.log_path, "wb")
        self.messages: list[tuple[float, str, dict]] = []
        self.by_prompt: dict[str, list[tuple[float, str, dict]]] = {}
        self._cond = threading.Condition()
        self._loop = None
        self._ws_thread = None
        self._ws_error = None
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", DO_NOT_TRACK="1")
        cmd = [sys.executable, str(comfyui_path() / "main.py"), "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--base-directory", str(base),
               "--database-url", f"sqlite:///{tmp / 'comfyui.db'}", "--disable-auto-launch", *extra_args]
        self.proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait_up()
            if websocket:
                self._start_ws()
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------------ process
    def _wait_up(self):
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if self.get("/system_stats", timeout=5)[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ComfyUI did not answer within {BOOT_TIMEOUT_S} s:\n{self.tail()}")
            time.sleep(0.5)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss(self) -> int:
        """Resident memory of the server process, in bytes (/proc, Linux)."""
        with open(f"/proc/{self.proc.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def tail(self, n: int = 4000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def stop(self):
        if self._ws_thread is not None and self._ws_thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_ws.set)
            self._ws_thread.join(timeout=10)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    # ------------------------------------------------------------------ HTTP
    def get(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return r.status, r.read()

    def get_json(self, path: str):
        status, body = self.get(path)
        assert status == 200, path
        return json.loads(body)

    def post(self, path: str, data) -> tuple[int, dict]:
        # json.dumps writes NaN / Infinity literals, which the server's json.loads accepts: how a
        # script (or a frontend widget fed by another tool) gets a non-finite number into a prompt.
        req = urllib.request.Request(self.url + path, data=json.dumps(data).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
                return r.status, json.loads(body) if body else {}
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def queue(self, prompt: dict) -> tuple[int, dict]:
        """POST /prompt. (200, {"prompt_id", ...}) when queued; (400, {"error", "node_errors"}) when the
        executor's validation refused it (such a prompt never runs and never reaches /history)."""
        return self.post("/prompt", {"prompt": prompt, "client_id": self.client_id})

    def interrupt(self, prompt_id: str | None = None) -> float:
        """POST /interrupt (targeted when prompt_id is given); returns the time it was sent."""
        t = time.monotonic()
        status, _ = self.post("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})
        assert status == 200
        return t

    def history(self, prompt_id: str, timeout: float = 30) -> dict:
        """The prompt's /history entry. The worker stores it just after the executor's last websocket
        message, so a prompt seen ending may need a moment to appear."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            if entry is not None or time.monotonic() > deadline:
                return entry
            time.sleep(0.05)

    def queue_remaining(self) -> int:
        return self.get_json("/prompt")["exec_info"]["queue_remaining"]

    def view(self, ref: dict) -> bytes:
        q = urllib.parse.urlencode({k: ref[k] for k in ("filename", "subfolder", "type")})
        status, body = self.get("/view?" + q)
        assert status == 200, ref
        return body

    # ------------------------------------------------------------------ websocket
    def _start_ws(self):
        ready = threading.Event()

        async def listen():
            import aiohttp
            self._stop_ws = asyncio.Event()
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"ws://127.0.0.1:{self.port}/ws?clientId={self.client_id}",
                                              max_msg_size=0) as ws:
                    ready.set()
                    stop = asyncio.ensure_future(self._stop_ws.wait())
                    while not self._stop_ws.is_set():
                        recv = asyncio.ensure_future(ws.receive())
                        done, _ = await asyncio.wait({recv, stop}, return_when=asyncio.FIRST_COMPLETED)
                        if recv not in done:
                            recv.cancel()
                            break
                        msg = recv.result()
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            self._record(json.loads(msg.data))
                        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                          aiohttp.WSMsgType.ERROR):
                            break

        def run():
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(listen())
            except BaseException as e:  # reported by wait()
                self._ws_error = e
                ready.set()
            finally:
                with self._cond:
                    self._cond.notify_all()

        self._ws_thread = threading.Thread(target=run, name="comfyui-ws", daemon=True)
        self._ws_thread.start()
        if not ready.wait(30) or self._ws_error is not None:
            raise RuntimeError(f"websocket did not connect: {self._ws_error}")

    def _record(self, msg: dict):
        t = time.monotonic()
        data = msg.get("data") or {}
        with self._cond:
            self.messages.append((t, msg["type"], data))
            pid = data.get("prompt_id") if isinstance(data, dict) else None
            if pid:
                self.by_prompt.setdefault(pid, []).append((t, msg["type"], data))
            self._cond.notify_all()

    def events(self, prompt_id: str) -> list[tuple[float, str, dict]]:
        with self._cond:
            return list(self.by_prompt.get(prompt_id, []))

    def end_of(self, prompt_id: str):
        """The prompt's terminal message (time, type, data), or None while it runs."""
        return next((e for e in self.events(prompt_id) if e[1] in TERMINAL), None)

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = predicate()
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0 or self._ws_error is not None or not self.alive():
                    raise AssertionError(f"timed out waiting for {what} (ws error {self._ws_error!r}, server "
                                         f"alive {self.alive()}):\n{self.tail()}")
                self._cond.wait(min(left, 1.0))

    def wait_done(self, prompt_ids, timeout: float = 120) -> dict:
        """Waits until every prompt has ended; returns {prompt_id: terminal message type}."""
        ids = list(prompt_ids)

        def all_done():
            ends = {p: self._end_unlocked(p) for p in ids}
            return {p: e[1] for p, e in ends.items()} if all(ends.values()) else None

        return self.wait_for(all_done, timeout, f"{len(ids)} prompt(s) to end")

    def _end_unlocked(self, prompt_id):
        return next((e for e in self.by_prompt.get(prompt_id, []) if e[1] in TERMINAL), None)

    def run(self, prompt: dict, timeout: float = 120) -> tuple[str, dict]:
        """Queue one prompt and wait for it: (prompt_id, its /history entry)."""
        status, body = self.queue(prompt)
        assert status == 200, body
        pid = body["prompt_id"]
        self.wait_done([pid], timeout)
        return pid, self.history(pid)
