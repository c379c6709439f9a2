"""Start one traffic agent inside each Mininet host, release them together, wait for them.

The line protocol is traffic.agent_protocol: each agent says READY once listening; then we write
CONNECT and every agent opens its warm persistent connections (handshakes before t0, like
NCCL's communicator set-up) and answers CONNECTED; then GO <t0> to every agent's stdin, t0 a
moment in the shared clock's future, so every host starts from the same instant; each agent
ends with DONE (exit 0) or FAILED <reason> (exit 1).
"""
from __future__ import annotations

import logging
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from topologies.errors import RunError
from traffic import agent_protocol as proto

log = logging.getLogger("fabric.run.agents")
AGENT_PORT = 5201
EXIT = "EXIT"  # what the reader queues when an agent's stdout closes (not a protocol line)


class AgentGroup:
    """The agents of one run; stop() is idempotent and leaves no process behind."""

    def __init__(self, hosts: dict[str, Any], plan_file: Path, hosts_file: Path, out_dir: Path,
                 deadline_s: float, tcp_cc: str | None = None, prefix: tuple[str, ...] = ()):
        """`prefix`: words before the agent's command (cluster mode: `env PYTHONPATH=...`)."""
        self.hosts = hosts  # name -> Mininet host
        self.plan_file, self.hosts_file = plan_file, hosts_file
        self.out_dir = out_dir
        self.deadline_s = deadline_s
        self.tcp_cc = tcp_cc
        self.prefix = prefix
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.status: dict[str, str] = {}

    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, host in self.hosts.items():
            argv = [*self.prefix, sys.executable, "-m", "traffic.agent", "--plan", str(self.plan_file),
                    "--hosts", str(self.hosts_file), "--me", name, "--port", str(AGENT_PORT),
                    "--out", str(self.out_dir), "--deadline-s", str(self.deadline_s)]
            if self.tcp_cc:
                argv += ["--tcp-cc", self.tcp_cc]
            err = open(self.out_dir / f"{name}.stderr", "w")  # noqa: SIM115 - closed below
            proc = host.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                              text=True, bufsize=1)
            err.close()
            self.procs[name] = proc
            threading.Thread(target=self._read, args=(name, proc), daemon=True).start()

    def _read(self, name: str, proc: subprocess.Popen[str]) -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            self.events.put((name, line.strip()))
        self.events.put((name, EXIT))

    def _wait_for(self, want: set[str], timeout_s: float, check: Callable[[], None]) -> None:
        """Collect events until every agent reported one of `want`, or fail."""
        pending = set(self.procs)
        end = time.monotonic() + timeout_s
        while pending:
            check()
            try:
                name, line = self.events.get(timeout=min(0.5, max(0.01, end - time.monotonic())))
            except queue.Empty:
                if time.monotonic() > end:
                    raise RunError(f"agents timed out after {timeout_s:.0f} s waiting for "
                                   f"{'/'.join(sorted(want))}: {', '.join(sorted(pending))}"
                                   ) from None
                continue
            word = proto.kind(line)
            if name not in pending:  # e.g. the EXIT that follows an agent's DONE
                continue
            self.status[name] = line
            if word in want:
                pending.discard(name)
            elif word in (proto.FAILED, EXIT):
                raise RunError(f"agent on {name} failed: {line} "
                               f"(see {self.out_dir / (name + '.stderr')})")

    def wait_ready(self, timeout_s: float, check: Callable[[], None]) -> None:
        self._wait_for({proto.READY}, timeout_s, check)

    def connect(self, timeout_s: float, check: Callable[[], None]) -> None:
        """Every agent opens its warm persistent connections; returns once all have."""
        for proc in self.procs.values():
            proc.stdin.write(proto.CONNECT + "\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        self._wait_for({proto.CONNECTED}, timeout_s, check)

    def go(self, start_delay_s: float, clock_offset_s: Mapping[str, float] | None = None) -> float:
        """Release every agent at the same future instant t0 of the head's clock; return t0.
        `clock_offset_s`: host -> how far its clock is ahead of the head's (cluster mode; one
        machine: one clock), so each agent is told t0 on its own clock."""
        t0 = time.time() + start_delay_s
        offsets = clock_offset_s or {}
        for host, proc in self.procs.items():
            proc.stdin.write(proto.go(t0 + offsets.get(host, 0.0)) + "\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        return t0

    def wait_done(self, timeout_s: float, check: Callable[[], None]) -> None:
        self._wait_for({proto.DONE}, timeout_s, check)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + 3
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
