"""Headless Chromium driven over the DevTools protocol through a pipe (--remote-debugging-pipe:
Chromium reads commands on fd 3 and answers on fd 4, NUL-separated JSON), so tests can run a
page's JavaScript, read its DOM and take screenshots with the standard library only."""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or \
    shutil.which("google-chrome")


class Browser:
    """One headless Chromium with one page; close() ends it and removes its profile."""

    def __init__(self, width: int = 1280, height: int = 800, timeout_s: float = 30.0):
        if CHROMIUM is None:
            raise RuntimeError("no chromium on PATH (apt-get install chromium)")
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="fabric-chromium-")
        r1, w1 = os.pipe()   # we write w1, chromium reads fd 3
        r2, w2 = os.pipe()   # chromium writes fd 4, we read r2
        # above fd 4, so dup2 onto 3/4 in the child never clobbers them (and clears CLOEXEC)
        cr = fcntl.fcntl(r1, fcntl.F_DUPFD_CLOEXEC, 10)
        cw = fcntl.fcntl(w2, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(r1)
        os.close(w2)

        def child() -> None:
            os.dup2(cr, 3)
            os.dup2(cw, 4)
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            close_fds=False, preexec_fn=child, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(cr)
        os.close(cw)
        self._w, self._r = w1, r2
        self._buf = b""
        self._id = 0
        targets = self._call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self._call("Target.attachToTarget", targetId=page["targetId"],
                                  flatten=True)["sessionId"]

    def _call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + self.timeout_s
        while True:
            while b"\0" not in self._buf:
                if time.monotonic() > end:
                    raise TimeoutError(f"chromium did not answer {method}")
                chunk = os.read(self._r, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed its pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self._call(method, session=self.session, **params)

    def goto(self, url: str) -> None:
        self.page("Page.enable")
        self.page("Page.navigate", url=url)

    def eval(self, expression: str) -> Any:
        res = self.page("Runtime.evaluate", expression=expression, returnByValue=True,
                        awaitPromise=True)
        return res["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.page("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self._call("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
