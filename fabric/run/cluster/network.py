"""ClusterNetwork: Mininet Cluster Edition's RemoteHost/RemoteOVSSwitch, fixed for this project,
and the run's lifecycle on every server.

The engine owns the lifecycle (fabric.run.cluster.lifecycle): every server's leftovers of this
run (the names registered on it: bridges, interfaces, processes, a copied run directory) are
removed by name in stop(), whatever happened; reverse forwards, the run locks on the servers and
ssh masters are closed.
What Cluster Edition does not do, done here: a VXLAN link class (no ip_gre on many kernels),
no probe of the head's own OVS, ssh sharing per node, bridges created by ovs-vsctl run as a
program on the server (not typed into a 4095-character terminal line), switch ports shaped and
MTU-set on the server that owns them.

The run directory is at the same path on every server: shared with the head (the namespace test
bed, a shared mount) or copied there and back (lifecycle.RunDirSync).
"""
from __future__ import annotations

import logging
import re
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Sequence

import networkx as nx

from topologies import model
from topologies.errors import RunError
from topologies.mininet_topo import ModelTopo
from topologies.placement import Placement
from topologies.queues import graph_mtu

from fabric.analysis.paths import FlowPath
from fabric.run.cluster import lifecycle, measure
from fabric.run.cluster.ddc import create_voqs
from fabric.run.cluster.ssh import ALIVE, ReverseForwards, Server, ServerCheck, close_masters
from fabric.run.cluster.tunnels import ssh_link_class
from fabric.run.emulation import EmulatedNetwork, _mininet
from fabric.run.paths import trace_plan
from fabric.run.pycompat import ensure_strict_version
from fabric.spec.cluster import ClusterSpec

log = logging.getLogger("fabric.run.cluster")
VXLAN_PORT = 4789
DEV = re.compile(r"\bdev (\S+)")


def _cluster_classes(ssh_config: str, run_dir: Path) -> tuple[Any, Any, Any]:
    """Cluster Edition's RemoteHost / RemoteOVSSwitch / link classes, fixed for this project."""
    ensure_strict_version()   # Cluster Edition imports distutils, gone in Python 3.12
    try:
        from mininet.examples import cluster as ce
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RunError(f"Mininet Cluster Edition (mininet.examples.cluster) is not importable: {exc}"
                       ) from None
    base = ["ssh", "-q", *(["-F", ssh_config] if ssh_config else []), "-o", "BatchMode=yes",
            *ALIVE, "-tt"]

    class Direct:
        """ssh run directly, as the engine's own user, like every other ssh of the run
        (Cluster Edition wraps it in `sudo -E -u <user>`: from a terminal, sudo's use_pty
        then relayed nothing and `fabric up`/`fabric run` hung at the first node's shell)."""
        sshcmd: list[str]

        def startShell(self, *args: Any, **kwargs: Any) -> None:
            if self.sshcmd[:1] == ["sudo"]:
                self.sshcmd = self.sshcmd[self.sshcmd.index("ssh"):]
            super().startShell(*args, **kwargs)  # type: ignore[misc]

    class Host(Direct, ce.RemoteHost):
        sshbase = base

    class Switch(Direct, ce.RemoteOVSSwitch):
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
                          "ssh": ssh_link_class(ce, ssh_config, run_dir)}


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
        self.locks = lifecycle.ServerLocks(servers, f"cluster run {workdir.name}")
        self.sync: lifecycle.RunDirSync | None = None   # set once the servers are checked

    def server_of(self, node: str) -> Server:
        return self.servers[self.placement.node_server[node]]

    def build(self) -> None:
        """Nothing ahead of start(): the fabric is built on the servers there (after their
        reverse forwards to the controller are up)."""

    def start(self) -> None:
        Mininet, _OVSSwitch, RemoteController, _Link = _mininet()
        Host, Switch, links = _cluster_classes(self.cluster.ssh_config, self.workdir)
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
        create_voqs(self)   # a scheduled DDC's VOQs, before its NCPs' nft tables name them
        self.net.start()
        from topologies.shaping import plan_shaping
        shaping = plan_shaping(self.graph, self.classes)
        self._set_switch_mtu()
        self._send_host_config(shaping)
        self._collect_host_config()
        self._shape_switch_ports(shaping[""])
        log.info("cluster network up: %d hosts, %d switches over %s", len(self.net.hosts),
                 len(self.net.switches), ", ".join(self.servers))

    def set_links(self, interfaces: Sequence[str], up: bool) -> str:
        return measure.set_links_on_servers(self, up)(interfaces)

    def trace(self, plan: Any, policy: str) -> list[FlowPath]:
        return trace_plan(self.graph, plan, policy, measure.tracer_on_servers(self))

    def link_sampler(self, run_dir: Path, agents_match: Path) -> Any:
        """One sampler process per server (links.csv, servers/<name>/cpu.csv)."""
        return measure.ClusterSampling(self, self.graph, run_dir, agents_match)

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
                self.locks.release()
                close_masters(self.servers.values())

    def _config_files_written(self, cfg: Path) -> None:
        if self.sync is not None:   # servers that do not share the run directory
            self.sync.push(cfg)

    def remove_leftovers(self) -> list[str]:
        """On every server: what this run registered there (lifecycle.register_on: its
        processes, matched by the run directory in their command lines, bridges, interfaces,
        nft tables, a copied run directory); a server cleaned leaves the run's record. Returns
        what was removed."""
        removed = []
        for name, s in self.servers.items():
            entry = lifecycle.entry(name)
            if entry is None:
                continue
            try:
                removed += lifecycle.remove_on(s, entry)
                lifecycle.forget(name)
            except RunError as exc:   # stays in the record: `fabric clean` tries again
                log.error("%s", exc)
        if removed:
            log.info("cluster leftovers removed: %s", "; ".join(removed))
        return removed
