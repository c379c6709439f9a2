"""The live view's web server: one page and one JSON endpoint on 127.0.0.1 (never beyond).

    GET /            the page (fabric/run/live.html): the fabric drawn in SVG, every link
                     direction coloured by its utilisation, flows, collectives, events; it polls
    GET /state.json  LiveState.snapshot() (fabric.analysis.live) several times a second

The server runs in daemon threads beside the emulation and reads only the run directory's files
(fabric.analysis.live), so it adds no work to the datapath. Port 0 takes a free ephemeral port.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fabric.analysis.live import LiveState

log = logging.getLogger("fabric.run.live")
PAGE = Path(__file__).with_name("live.html")
HOST = "127.0.0.1"


def link_up(intf: str) -> bool:
    """Whether a switch interface is administratively and operationally up (root namespace)."""
    try:
        return Path(f"/sys/class/net/{intf}/operstate").read_text().strip() != "down"
    except OSError:
        return False


def start_live(graph: Any, run_dir: Path, title: str, port: int = 0) -> LiveServer:
    """A LiveState of `run_dir` served on 127.0.0.1:`port`; its URL printed on stderr."""
    server = LiveServer(LiveState(graph, run_dir, title, link_up), port).start()
    print(f"fabric: live view on {server.url}", file=sys.stderr, flush=True)
    return server


class LiveServer:
    """Serve `state` on 127.0.0.1:`port` (0: any free port) until stop()."""

    def __init__(self, state: LiveState, port: int = 0):
        self.state = state
        self.port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def start(self) -> LiveServer:
        page = PAGE.read_bytes()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/state.json":
                    with server._lock:
                        body = json.dumps(server.state.snapshot()).encode()
                    kind = "application/json"
                elif path in ("/", "/index.html"):
                    body, kind = page, "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("live: " + fmt, *args)

        self._httpd = ThreadingHTTPServer((HOST, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="live-view",
                                        daemon=True)
        self._thread.start()
        log.info("live view on %s", self.url)
        return self

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self.state.snapshot()

    def stop(self) -> None:
        if self._httpd is None:
            return
        httpd, self._httpd = self._httpd, None
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
