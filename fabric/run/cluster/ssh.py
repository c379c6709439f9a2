"""Reaching the servers of a cluster run over ssh: their addresses, the checks made before
building (ssh, OVS, the tunnel kind, the clock), and the reverse forwards that let each
server's switches reach the head's controller on their own loopback."""
from __future__ import annotations

import logging
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from topologies.errors import RunError

from fabric.run import registry
from fabric.spec.cluster import ClusterSpec

log = logging.getLogger("fabric.run.cluster")
SSH_TIMEOUT_S = 20
# a server that vanishes (powered off, its network gone) ends every ssh of the run within ~20 s
# instead of leaving the teardown waiting on TCP for minutes
ALIVE = ("-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")

@dataclass(frozen=True)
class Server:
    """One server as the head reaches it: its name in the spec and its address."""
    name: str
    ip: str
    user: str
    ssh_config: str
    control_path: str

    def ssh(self, *extra: str) -> list[str]:
        """ssh argv to this server (shared master connection), `extra` options before the host."""
        cfg = ["-F", self.ssh_config] if self.ssh_config else []
        return ["ssh", *cfg, "-o", "BatchMode=yes", *ALIVE, "-o", f"ControlPath={self.control_path}",
                "-o", "ControlMaster=auto", "-o", "ControlPersist=60", *extra,
                f"{self.user}@{self.ip}"]

    def popen(self, argv: Sequence[str]) -> subprocess.Popen[str]:
        """A long-running program on the server (argv quoted for its shell); stdin, stdout and
        stderr are pipes (a line protocol with the head, or its output to read at the end)."""
        return subprocess.Popen([*self.ssh(), shlex.join(argv)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                bufsize=1)

    def run(self, command: str, input_text: str | None = None,
            timeout_s: float = SSH_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the server's root namespace."""
        return subprocess.run([*self.ssh(), command], input=input_text, capture_output=True,
                              text=True, timeout=timeout_s)


def resolve(cluster: ClusterSpec, run_id: str) -> list[Server]:
    """Each server's address (ssh -G: the ssh config's HostName, else the name itself)."""
    out = []
    for name in cluster.servers:
        cfg = ["-F", cluster.ssh_config] if cluster.ssh_config else []
        res = subprocess.run(["ssh", *cfg, "-G", name], capture_output=True, text=True, timeout=10)
        host = next((line.split()[1] for line in res.stdout.splitlines()
                     if line.startswith("hostname ")), name)
        ip = host if re.fullmatch(r"[0-9.]+", host) else _getent(host)
        out.append(Server(name, ip, cluster.user, cluster.ssh_config,
                          f"/tmp/aifabric-ssh-{run_id}-%h"))
    return out


def _getent(host: str) -> str:
    res = subprocess.run(["getent", "ahostsv4", host], capture_output=True, text=True, timeout=10)
    found = re.findall(r"\d+\.\d+\.\d+\.\d+", res.stdout)
    if not found:
        raise RunError(f"cluster: cannot resolve server {host!r}")
    return found[0]


@dataclass(frozen=True)
class ServerCheck:
    """What the head measured of one server before building: clock offset, RTT, OVS, kernel."""
    server: str
    ip: str
    clock_offset_ms: float
    rtt_ms: float
    ovs: bool
    tunnel_ok: bool

    @property
    def clock_correction_ms(self) -> float:
        """What the head subtracts from this server's timestamps: the measured offset, or 0
        when the offset is within half the measuring round trip (the clocks cannot be told
        apart: correcting by the measurement's own noise would add error, not remove it)."""
        return self.clock_offset_ms if abs(self.clock_offset_ms) > self.rtt_ms / 2 else 0.0


def check_servers(servers: list[Server], tunnel: str, max_skew_ms: float) -> list[ServerCheck]:
    """Reach every server, compare its clock with the head's (offset corrected by half the
    RTT), check its OVS answers and its kernel has the tunnel kind. RunError when a server is
    unreachable, lacks OVS or the tunnel, or its clock is off by more than max_skew_ms."""
    probe = {"vxlan": "ip link add aifx-probe type vxlan id 1 dstport 4789 && "
                      "ip link del aifx-probe && echo TUN-OK",
             "gretap": "ip link add aifx-probe type gretap local 127.0.0.1 remote 127.0.0.2 && "
                       "ip link del aifx-probe && echo TUN-OK",
             "ssh": "test -e /dev/net/tun && echo TUN-OK"}[tunnel]
    out = []
    for s in servers:
        best = clock_offset(s)
        res = s.run(f"ovs-vsctl --timeout=5 show >/dev/null && echo OVS-OK; {probe}")
        check = ServerCheck(s.name, s.ip, round(best[0] * 1000, 3), round(best[1] * 1000, 3),
                            "OVS-OK" in res.stdout, "TUN-OK" in res.stdout)
        if not check.ovs:
            raise RunError(f"cluster: Open vSwitch does not answer on {s.name}")
        if not check.tunnel_ok:
            raise RunError(f"cluster: {s.name}'s kernel cannot make {tunnel} tunnels "
                           f"({res.stderr.strip()[:200]}): try tunnel = \"vxlan\" or \"ssh\"")
        if abs(check.clock_offset_ms) > max_skew_ms:
            raise RunError(f"cluster: {s.name}'s clock is {check.clock_offset_ms:+.1f} ms off the "
                           f"head's (bound {max_skew_ms:g} ms, cluster.max_clock_skew_ms): "
                           "synchronise the clocks (chrony/NTP)")
        out.append(check)
    return out


def close_masters(servers: Iterable[Server]) -> None:
    """End the shared ssh connections (ssh -O exit)."""
    for s in servers:
        try:
            subprocess.run(s.ssh("-O", "exit"), capture_output=True, timeout=10)
        except (subprocess.TimeoutExpired, OSError) as exc:
            log.error("closing the ssh connection to %s failed: %s", s.name, exc)


def clock_offset(s: Server, samples: int = 10) -> tuple[float, float]:
    """(offset s, RTT s) of the server's clock against the head's: one ssh session answers
    each line of stdin with its time (no ssh set-up inside the measured round trip); the
    sample with the lowest RTT, its offset corrected by half that RTT."""
    proc = subprocess.Popen([*s.ssh(), "while read -r _; do date +%s.%N; done"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    best: tuple[float, float] | None = None
    try:
        for _ in range(samples):
            t0 = time.time()
            proc.stdin.write("t\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            line = proc.stdout.readline()  # type: ignore[union-attr]
            t1 = time.time()
            if not line:
                raise RunError(f"cluster: server {s.name} ({s.ip}) does not answer over ssh: "
                               f"{proc.stderr.read().strip()[:300]}")  # type: ignore[union-attr]
            rtt = t1 - t0
            if best is None or rtt < best[1]:
                best = (float(line) - (t0 + t1) / 2, rtt)
    finally:
        proc.kill()
        proc.wait()
    assert best is not None
    return best


class ReverseForwards:
    """`ssh -N -R port:127.0.0.1:port` to every server: its switches reach the head's controller
    on the server's own loopback (nothing listens on the management network)."""

    def __init__(self, servers: Iterable[Server], port: int):
        self.servers, self.port = list(servers), port
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for s in self.servers:
            argv = s.ssh("-N", "-o", "ExitOnForwardFailure=yes",
                         "-R", f"127.0.0.1:{self.port}:127.0.0.1:{self.port}")
            self.procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE))
        registry.register(pids=[p.pid for p in self.procs])
        for s in self.servers:  # the forward listens once the server's loopback port answers
            for _ in range(100):
                res = s.run(f"ss -Hltn 'sport = :{self.port}' | grep -q 127.0.0.1 && echo UP")
                if "UP" in res.stdout:
                    break
                time.sleep(0.1)
            else:
                raise RunError(f"cluster: the controller's reverse forward to {s.name} did not "
                               "come up (AllowTcpForwarding on the server's sshd?)")

    def stop(self) -> None:
        end_processes(self.procs)


def end_processes(procs: list[Any]) -> None:
    """SIGTERM each process still running, wait up to 5 s each, then SIGKILL; empty the list."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    procs.clear()


def remote_agent_prefix() -> tuple[str, ...]:
    """The project's import path on a server (ssh passes no environment): this checkout, at
    the same path on every server (the test bed shares the file system; real machines install
    the project at the same path, docs/cluster.md)."""
    root = Path(__file__).resolve().parents[3]
    return ("env", f"PYTHONPATH={root}")


def remote_python(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args` on a server with this project's interpreter."""
    return [*remote_agent_prefix(), sys.executable, "-m", module, *args]


def ended_stderr(proc: subprocess.Popen[str]) -> str:
    """What a remote program (Server.popen) wrote on stderr, once it has ended ('' while it
    runs: reading then would block)."""
    if proc.poll() is None or proc.stderr is None or proc.stderr.closed:
        return ""
    try:
        return proc.stderr.read().strip()
    except (OSError, ValueError):
        return ""
