"""Cluster mode: the fabric split over several servers with Mininet Cluster Edition's mechanics.

    head (the engine, the controller on 127.0.0.1)
      │ ssh (shared connections: one master per server)
      │ ssh -N -R <port>:127.0.0.1:<port>   each server's switches reach the controller on
      ▼                                      their own 127.0.0.1: nothing listens on the LAN
    server k: RemoteHost / RemoteOVSSwitch (mininet.examples.cluster), its part of the fabric;
              links between servers are kernel VXLAN (or gretap, or Cluster Edition's ssh taps)

The engine owns the lifecycle: every server's leftovers of this run (bridges, interfaces, agents)
are removed by name in stop(), whatever happened; reverse forwards and ssh masters are closed.
What Cluster Edition does not do, done here: a VXLAN link class (no ip_gre on many kernels),
no probe of the head's own OVS, ssh sharing per node, bridges created by ovs-vsctl run as a
program on the server (not typed into a 4095-character terminal line), switch ports shaped and
MTU-set on the server that owns them, clocks compared, each tunnel's extra RTT measured.

Assumes the run directory's path is readable and writable on every server (true on the
namespace test bed, scripts/testbed.sh; on real machines: a shared mount, docs/cluster.md).
"""
from __future__ import annotations

import logging
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterable

import networkx as nx

from topologies import model
from topologies.errors import RunError
from topologies.mininet_topo import ModelTopo
from topologies.placement import Placement
from topologies.queues import graph_mtu

from fabric.run import registry
from fabric.run.emulation import EmulatedNetwork, _mininet
from fabric.spec.cluster import ClusterSpec

log = logging.getLogger("fabric.run.cluster")
SSH_TIMEOUT_S = 20
VXLAN_PORT = 4789
DEV = re.compile(r"\bdev (\S+)")


# ------------------------------------------------------------------------------ ssh

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
        return ["ssh", *cfg, "-o", "BatchMode=yes", "-o", f"ControlPath={self.control_path}",
                "-o", "ControlMaster=auto", "-o", "ControlPersist=60", *extra,
                f"{self.user}@{self.ip}"]

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
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()


# ------------------------------------------------------------------------------ Mininet

def _cluster_classes(ssh_config: str) -> tuple[Any, Any, Any]:
    """Cluster Edition's RemoteHost / RemoteOVSSwitch / link classes, fixed for this project."""
    try:
        from mininet.examples import cluster as ce
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RunError(f"Mininet Cluster Edition (mininet.examples.cluster) is not importable: {exc}"
                       ) from None
    base = ["ssh", "-q", *(["-F", ssh_config] if ssh_config else []), "-o", "BatchMode=yes",
            "-tt"]

    class Host(ce.RemoteHost):
        sshbase = base

    class Switch(ce.RemoteOVSSwitch):
        sshbase = base
        argmax = 60000   # one ovs-vsctl program per ~60 kB of arguments

        @classmethod
        def setup(cls) -> None:
            """Cluster Edition probes the head's own OVS and exits without it: the servers'
            OVS was checked by check_servers instead."""

        def isOldOVS(self) -> bool:  # StrictVersion (distutils) is gone in Python 3.12
            return False

        @classmethod
        def batchStartup(cls, switches: Any, **_kw: Any) -> Any:
            """Per server, ovs-vsctl run as a program over ssh (Cluster Edition types it into
            the switch's terminal, which cuts lines at 4095 characters)."""
            by_server: dict[str, list[Any]] = {}
            for sw in switches:
                by_server.setdefault(sw.server, []).append(sw)
            for group in by_server.values():
                first = group[0]

                def run(cmds: str, first: Any = first, **_: Any) -> None:
                    out = first.rcmd(cmds)
                    if "ovs-vsctl:" in out:
                        raise RunError(f"ovs-vsctl on {first.server}: {out.strip()[:300]}")
                ce.OVSSwitch.batchStartup(group, run=run)
            return switches

    class VXLANLink(ce.RemoteLink):
        """A link between servers as a pair of kernel VXLAN devices (one VNI per link)."""
        vni = 0

        def makeTunnel(self, node1: Any, node2: Any, intfname1: str, intfname2: str,
                       addr1: Any = None, addr2: Any = None) -> Any:
            type(self).vni += 1
            for node, intf, addr, local, remote in (
                    (node1, intfname1, addr1, node1.serverIP, node2.serverIP),
                    (node2, intfname2, addr2, node2.serverIP, node1.serverIP)):
                cmd = (f"ip link add {intf} type vxlan id {type(self).vni} local {local} "
                       f"remote {remote} dstport {VXLAN_PORT}")
                out = node.rcmd(cmd)
                if out.strip():
                    raise RunError(f"making VXLAN {intf} on {node.server}: {out.strip()[:200]}")
                if addr:
                    node.rcmd(f"ip link set {intf} address {addr}")
                node.rcmd(f"ip link set {intf} up")
            return True   # a tunnel (RemoteLink.stop deletes both ends)

        def stop(self) -> None:
            if getattr(self, "tunnel", None):
                for intf in (self.intf1, self.intf2):
                    intf.node.rcmd(f"ip link del {intf.name}")
                self.tunnel = None
            else:
                ce.Link.stop(self)

        def status(self) -> str:   # Cluster Edition's crashes on tunnel links
            return f"({self.intf1.name}, {self.intf2.name}) {'VXLAN' if self.tunnel else 'OK'}"

    return Host, Switch, {"vxlan": VXLANLink, "gretap": ce.RemoteGRELink,
                          "ssh": ce.RemoteSSHLink}


class ClusterNetwork(EmulatedNetwork):
    """The fabric over several servers (see the module docstring); same interface as
    EmulatedNetwork, so the engine and the agents use it unchanged."""

    def __init__(self, graph: nx.Graph, controller_port: int, datapath: str, workdir: Path,
                 cluster: ClusterSpec, placement: Placement, servers: list[Server],
                 **kw: Any):
        super().__init__(graph, controller_port, datapath, workdir, **kw)
        self.cluster, self.placement = cluster, placement
        self.servers = {s.name: s for s in servers}
        self.forwards = ReverseForwards(servers, controller_port)
        self.checks: list[ServerCheck] = []

    def server_of(self, node: str) -> Server:
        return self.servers[self.placement.node_server[node]]

    def build(self) -> None:
        """Nothing ahead of start(): the fabric is built on the servers there (after their
        reverse forwards to the controller are up)."""

    def start(self) -> None:
        Mininet, _OVSSwitch, RemoteController, _Link = _mininet()
        Host, Switch, links = _cluster_classes(self.cluster.ssh_config)
        self.forwards.start()
        switch = partial(Switch, datapath=self.datapath, protocols="OpenFlow13",
                         failMode="secure", batch=True)
        params = {}
        for node in self.graph.nodes:
            s = self.server_of(node)
            cls = Host if self.graph.nodes[node]["role"] == model.HOST else switch
            params[node] = dict(cls=cls, server=s.name, serverIP=s.ip, user=s.user,
                                controlPath=s.control_path)
        controller = partial(RemoteController, ip="127.0.0.1", port=self.controller_port)
        self.net = Mininet(topo=ModelTopo(graph=self.graph, node_params=params), switch=switch,
                           host=Host, controller=controller, link=links[self.cluster.tunnel],
                           autoSetMacs=False, autoStaticArp=False, build=False,
                           waitConnected=False)
        self.net.build()
        self.net.start()
        from topologies.shaping import plan_shaping
        shaping = plan_shaping(self.graph, self.classes)
        self._set_switch_mtu()
        self._send_host_config(shaping)
        self._collect_host_config()
        self._shape_switch_ports(shaping[""])
        log.info("cluster network up: %d hosts, %d switches over %s", len(self.net.hosts),
                 len(self.net.switches), ", ".join(self.servers))

    def _per_server(self, items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
        """(switch, line) pairs grouped by the server owning the switch."""
        out: dict[str, list[str]] = {}
        for node, line in items:
            out.setdefault(self.placement.node_server[node], []).append(line)
        return out

    def _set_switch_mtu(self) -> None:
        """Every switch port at the fabric's MTU, with ovs-vsctl on its own server (VXLAN
        devices included: their default MTU is already the tunnel's)."""
        mtu = graph_mtu(self.graph)
        pairs = [(node, f"-- set Interface {model.intf_name(node, d['ports'][node])} "
                        f"mtu_request={mtu}")
                 for u, v, d in self.graph.edges(data=True) for node in (u, v)
                 if self.graph.nodes[node]["role"] != model.HOST]
        for server, args in self._per_server(pairs).items():
            res = self.servers[server].run("ovs-vsctl " + " ".join(args))
            if res.returncode:
                raise RunError(f"MTU {mtu} on {server}'s switch ports failed: {res.stderr.strip()}")

    def _shape_switch_ports(self, lines: list[str]) -> None:
        """HTB on each switch port, by `tc -batch -` on the server that owns the interface."""
        pairs = []
        for line in lines:
            m = DEV.search(line)
            if m is None:
                raise RunError(f"shaping line names no device: {line}")
            pairs.append((m.group(1).rsplit("-", 1)[0], line))
        for server, batch in self._per_server(pairs).items():
            res = self.servers[server].run("tc -batch -", input_text="\n".join(batch) + "\n")
            if res.returncode:
                raise RunError(f"shaping switch ports on {server} failed: {res.stderr.strip()}")

    def stop(self) -> None:
        """Mininet's stop, then every server's leftovers of this run by name, the forwards and
        the shared ssh connections; each step runs whatever the one before did."""
        try:
            if self.net is not None:
                net, self.net = self.net, None
                try:
                    net.stop()
                except Exception as exc:
                    log.error("mininet stop failed: %s", exc)
                for ctl in net.controllers:
                    try:
                        ctl.terminate()
                    except Exception as exc:
                        log.error("stopping %s's shell failed: %s", ctl.name, exc)
        finally:
            try:
                self.remove_leftovers()
            finally:
                self.forwards.stop()
                close_masters(self.servers.values())

    def remove_leftovers(self) -> list[str]:
        """On every server: this run's agents (matched by its own plan file), bridges and
        interfaces (by their names in the model); returns what was removed."""
        removed = []
        # "[-]-plan": the pattern does not match the shell running pkill (its own command line)
        plan = shlex.quote(f"[-]-plan {self.workdir / 'plan.json'}")
        for name, s in self.servers.items():
            bridges = [n for n in self.placement.nodes_on(name) if n not in self.placement.hosts]
            intfs = sorted({model.intf_name(n, d["ports"][n]) for a, b, d in
                            self.graph.edges(data=True) for n in (a, b)
                            if self.placement.node_server[n] == name
                            and self.graph.nodes[n]["role"] != model.HOST})
            script = (f"pkill -TERM -f -- {plan} && echo AGENTS; "
                      + "".join(f"ovs-vsctl --timeout=5 br-exists {b} && "
                                f"ovs-vsctl --timeout=5 del-br {b} && echo BR {b}; " for b in bridges)
                      + "".join(f"ip link del {i} 2>/dev/null && echo IF {i}; " for i in intfs)
                      + "true")
            try:
                res = s.run(script, timeout_s=60)
                removed += [f"{name}: {line}" for line in res.stdout.split("\n") if line]
            except (subprocess.TimeoutExpired, OSError) as exc:
                log.error("cleaning %s failed: %s", name, exc)
        if removed:
            log.info("cluster leftovers removed: %s", "; ".join(removed))
        return removed


# ------------------------------------------------------------------------------ measurements

@dataclass(frozen=True)
class TunnelRtt:
    """A cut link's extra round-trip time: the underlay RTT between its two servers."""
    link: str
    server_a: str
    server_b: str
    extra_rtt_ms: float | None


def tunnel_rtts(placement: Placement, servers: dict[str, Server]) -> list[TunnelRtt]:
    """Ping each pair of servers a cut link joins (10 pings, 0.05 s apart; the mean)."""
    measured: dict[tuple[str, str], float | None] = {}
    out = []
    for c in placement.cut:
        pair = (c.server_a, c.server_b)
        if pair not in measured:
            res = servers[c.server_a].run(f"ping -q -n -c 10 -i 0.05 -W 1 {servers[c.server_b].ip}")
            m = re.search(r"= [0-9.]+/([0-9.]+)/", res.stdout)
            measured[pair] = measured[pair[::-1]] = float(m.group(1)) if m else None
        out.append(TunnelRtt(f"{c.a}-{c.b}", c.server_a, c.server_b, measured[pair]))
    return out


def cluster_record(cluster: ClusterSpec, placement: Placement, checks: list[ServerCheck],
                   rtts: list[TunnelRtt]) -> dict[str, Any]:
    """What the run directory's cluster.json holds."""
    return {"servers": [asdict(c) for c in checks], "tunnel": cluster.tunnel,
            "placement": dict(sorted(placement.node_server.items())),
            "load_mbps": placement.load_mbps,
            "cut": [{"link": f"{c.a}-{c.b}", "servers": [c.server_a, c.server_b],
                     "rate_mbps": c.rate_mbps} for c in placement.cut],
            "tunnel_rtt_ms": [asdict(r) for r in rtts],
            "python": sys.executable}


# ------------------------------------------------------------------------------ engine glue

def cluster_network(cluster: ClusterSpec, run_dir: Path, graph: nx.Graph, controller_port: int,
                    datapath: str, workdir: Path, **kw: Any) -> ClusterNetwork:
    """The ClusterNetwork of a run: servers resolved and checked (clocks, OVS, the tunnel
    kind), the fabric placed; cluster.json written. RunError before anything is built."""
    from topologies.placement import place
    servers = resolve(cluster, run_dir.name[-24:].replace("/", "_"))
    try:
        checks = check_servers(servers, cluster.tunnel, cluster.max_clock_skew_ms)
    except BaseException:
        close_masters(servers)
        raise
    placement = place(graph, [s.name for s in servers])
    net = ClusterNetwork(graph, controller_port, datapath, workdir, cluster, placement, servers,
                         **kw)
    net.checks = checks
    _write_json(run_dir / "cluster.json", cluster_record(cluster, placement, checks, []))
    return net


def record_tunnels(net: Any, run_dir: Path) -> None:
    """Measure each tunnel's extra RTT once the network is up; rewrite cluster.json."""
    rtts = tunnel_rtts(net.placement, net.servers)
    _write_json(run_dir / "cluster.json",
                cluster_record(net.cluster, net.placement, net.checks, rtts))
    for r in rtts:
        log.info("tunnel %s (%s<->%s): extra RTT %s ms", r.link, r.server_a, r.server_b,
                 r.extra_rtt_ms)


def remote_agent_prefix() -> tuple[str, ...]:
    """The agent's import path on a server (ssh passes no environment): this checkout."""
    root = Path(__file__).resolve().parents[2]
    return ("env", f"PYTHONPATH={root}")


def _write_json(path: Path, data: Any) -> None:
    import json
    path.write_text(json.dumps(data, indent=1))
