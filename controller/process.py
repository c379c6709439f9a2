"""Run the controller as a child process and follow its stdout protocol (used by the engine).

Why a process: os-ken owns its threads, sockets and global config, and can only be stopped by
exiting (see controller.main); a child process keeps that away from the engine and lets a run
observe controller death. Progress is event-driven: a reader thread parses the stdout protocol
lines (controller.protocol) and wakes whoever waits in wait_ready / wait_listening.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

from controller import protocol
from topologies.errors import RunError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL_LINES = 20


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that is free right now (bind to port 0, read it back)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class ControllerProcess:
    """One controller child process: start, wait for READY, watch, stop (never left behind)."""

    def __init__(self, fabric_file: str | os.PathLike[str], policy: str,
                 params: dict[str, Any] | None, log_path: str | os.PathLike[str],
                 port: int | None = None, debug: bool = False,
                 run_dir: str | os.PathLike[str] | None = None, stats_interval_s: float = 1.0):
        self.fabric_file = Path(fabric_file)
        self.run_dir = None if run_dir is None else Path(run_dir)  # port_stats.csv, reports
        self.stats_interval_s = stats_interval_s
        self.policy = policy
        self.params = dict(params or {})
        self.log_path = Path(log_path)
        self.port = port if port is not None else free_port()
        self.debug = debug
        self.nft_remote: Path | None = None  # cluster mode: switch -> argv prefix (JSON file)
        self.events: list[tuple[float, str, str]] = []  # (monotonic time, kind, argument)
        self.ofp_errors: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._listening = False
        self._ready_now = False
        self._ready_count = 0
        self._installed: set[str] = set()
        self._error: str | None = None
        self._exited = False
        self._other_lines: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.switch_count = self._count_switches()

    # ------------------------------------------------------------------ lifecycle
    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "controller.main", "--fabric", str(self.fabric_file),
               "--policy", self.policy, "--params", json.dumps(self.params),
               "--port", str(self.port), "--log", str(self.log_path), "--watch-stdin"]
        if self.run_dir is not None:
            cmd += ["--run-dir", str(self.run_dir),
                    "--stats-interval-s", f"{self.stats_interval_s:g}"]
        if self.nft_remote is not None:
            cmd += ["--nft-remote", str(self.nft_remote)]
        return cmd + (["--debug"] if self.debug else [])

    def start(self) -> ControllerProcess:
        """Spawn the controller; returns at once (use wait_ready)."""
        if self._proc is not None:
            raise RunError("controller already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1", OSKEN_HUB_TYPE="native",
                   PYTHONPATH=os.pathsep.join(
                       p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p))
        with open(self.log_path, "ab") as stderr:  # tracebacks land in the same log
            self._proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=stderr, text=True,
                                          bufsize=1, env=env, cwd=str(PROJECT_ROOT))
        self._reader = threading.Thread(target=self._read, name=f"ctl-reader-{self.port}",
                                        daemon=True)
        self._reader.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM, wait up to timeout_s, then SIGKILL. Idempotent; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if self._error is not None and proc.poll() is None:
            try:  # after ERROR the process is already on its way out
                proc.wait(min(timeout_s, 2.0))
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdin and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass
        if self._reader is not None:
            self._reader.join(timeout_s)
        return proc.returncode

    def __enter__(self) -> ControllerProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ state
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def installed_count(self) -> int:
        """Switches whose full state is currently installed."""
        with self._cond:
            return len(self._installed)

    def installed(self) -> set[str]:
        with self._cond:
            return set(self._installed)

    def ready_count(self) -> int:
        """How many READY lines so far: take it before a reconnect, pass it to wait_ready."""
        with self._cond:
            return self._ready_count

    def is_ready(self) -> bool:
        """Every switch installed and nothing (re)connected or disconnected since READY."""
        with self._cond:
            return self._ready_now

    # ------------------------------------------------------------------ waiting
    def wait_listening(self, timeout_s: float) -> None:
        """Block until the OpenFlow socket listens (switches may be pointed at it)."""
        self._wait(lambda: self._listening, timeout_s, "listening")

    def wait_ready(self, timeout_s: float, after: int | None = None,
                   strict: bool = True) -> None:
        """Block until the fabric is fully installed.

        after=None: until it is ready now (returns at once if it is). after=N (a ready_count()
        taken earlier): until a READY newer than that one, e.g. after a reconnect. Raises
        RunError when the process exits, reports ERROR, or times out; with strict, also when a
        switch rejected a message (OFPERROR), since the installed state is then incomplete.
        """
        def done() -> bool:
            if strict and self.ofp_errors:
                raise self._failure(f"switch rejected messages: {'; '.join(self.ofp_errors)}")
            return self._ready_now if after is None else self._ready_count > after
        self._wait(done, timeout_s, "ready")

    def _wait(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        if self._proc is None:
            raise RunError("controller not started")
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self._error is not None:
                    try:  # it exits on its own after ERROR: let the exit code be known
                        self._proc.wait(2.0)
                    except subprocess.TimeoutExpired:
                        pass
                    raise self._failure(f"controller error: {self._error} "
                                        f"(exit code {self._proc.poll()})")
                if done():
                    return
                if self._exited:
                    raise self._failure(f"controller exited with code {self._proc.poll()} "
                                        f"before {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._failure(
                        f"controller not {what} after {timeout_s:g} s "
                        f"({len(self._installed)}/{self.switch_count} switches installed)")
                self._cond.wait(left)

    def _failure(self, message: str) -> RunError:
        return RunError(f"{message}; port {self.port}, log {self.log_path}; last log lines:\n"
                        + "\n".join(self.log_tail()))

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        """The last lines of the controller's log (and unparsed stdout, if any)."""
        try:
            with open(self.log_path, errors="replace") as f:
                tail = list(deque(f, maxlen=lines))
        except OSError:
            tail = []
        return [t.rstrip("\n") for t in tail] + [f"stdout: {t}" for t in self._other_lines]

    # ------------------------------------------------------------------ stdout reader
    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            self._handle(raw.rstrip("\n"))
        self._proc.wait()
        with self._cond:
            self._exited = True
            self._ready_now = False
            self._cond.notify_all()

    def _handle(self, line: str) -> None:
        kind, arg = protocol.parse(line)
        with self._cond:
            self.events.append((time.monotonic(), kind, arg))
            if kind == protocol.LISTENING:
                self._listening = True
            elif kind in (protocol.CONNECTED, protocol.DISCONNECTED):
                self._installed.discard(arg)
                self._ready_now = False
            elif kind == protocol.INSTALLED:
                self._installed.add(arg)
            elif kind == protocol.READY:
                self._ready_count += 1
                self._ready_now = True
            elif kind == protocol.OFPERROR:
                self.ofp_errors.append(arg)
            elif kind == protocol.ERROR:
                self._error = arg
            else:
                self._other_lines.append(line)
            self._cond.notify_all()

    def _count_switches(self) -> int:
        try:
            desc = json.loads(self.fabric_file.read_text())
            return sum(1 for n in desc["nodes"] if n.get("role") != "host")
        except (OSError, ValueError, KeyError, TypeError):
            return 0  # the child reports the real problem as ERROR
