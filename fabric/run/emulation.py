"""Thin Mininet adapter: bring a fabric model up as real hosts and Open vSwitch switches, and down.

The Topo comes from topologies.mininet_topo (same graph as the controller's). After Mininet starts,
every host gets: checksum offload off (TCP breaks on the userspace datapath otherwise, docs/benchmarks.md),
IPv6 off (no stray neighbour discovery), a static ARP table for every other host (the controller
never floods), and its NIC shaped; every switch port is shaped in the root namespace.
"""
from __future__ import annotations

import logging
import shlex
import subprocess
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import networkx as nx

from topologies import model
from topologies.mininet_topo import ModelTopo
from topologies.model import intf_name
from topologies.queues import DEFAULT_MTU, graph_mtu

from fabric.analysis import loss
from fabric.analysis import tcp as tcpstats
from fabric.analysis.paths import FlowPath
from fabric.run import registry, voq
from fabric.run.failures import set_links
from fabric.run.paths import trace_plan
from fabric.run.samplers import LinkSampler
from fabric.run.pycompat import ensure_strict_version
from topologies.ddc import scheduled
from topologies.errors import RunError
from topologies.shaping import QueueClasses, plan_shaping

log = logging.getLogger("fabric.run.emulation")
# Initial congestion window of every host route. Larger values (RoCE starts at line rate) were
# measured to cause burst losses at 100-packet queues and lower busbw, so the default stays.
NIC_GSO_MAX_SEGS = 1  # segments per skb a host NIC accepts (see _send_host_config)
INIT_CWND = 10  # Linux default, stated explicitly so every kernel agrees


def _mininet() -> Any:
    """Import Mininet lazily so the pure core never needs it."""
    ensure_strict_version()   # Mininet 2.3.0 imports distutils, gone in Python 3.12
    try:
        from mininet import log as mnlog
        from mininet.link import Link
        from mininet.net import Mininet
        from mininet.node import OVSSwitch, RemoteController
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RunError("Mininet is not importable: run `bash scripts/setup.sh` and use the "
                       f".venv it creates ({exc})") from None
    mnlog.setLogLevel("error")

    class QuietRemoteController(RemoteController):
        """No `telnet` probe of the controller port: the engine has already waited for the
        socket (ControllerProcess.wait_listening), and Mininet decodes what telnet prints as
        UTF-8, so the controller's binary OpenFlow HELLO crashed the build now and then
        (UnicodeDecodeError, seen in the soak)."""

        def checkListening(self) -> None:
            return None
    return Mininet, OVSSwitch, QuietRemoteController, Link


class EmulatedNetwork:
    """A fabric model running under Mininet; use as a context manager or call start()/stop()."""

    def __init__(self, graph: nx.Graph, controller_port: int, datapath: str, workdir: Path,
                 classes: QueueClasses | None = None, slow_start_after_idle: bool = False):
        self.graph = graph
        self.controller_port = controller_port
        self.datapath = datapath  # 'kernel' or 'user'
        self.workdir = Path(workdir)
        self.slow_start_after_idle = slow_start_after_idle   # per host namespace sysctl
        self.classes = classes  # extra egress queue classes the policy needs (topologies.shaping)
        self.net: Any = None

    # ------------------------------------------------------------ lifecycle
    def build(self) -> None:
        """Create the hosts, links and (not yet started) switches; the VOQs of a scheduled DDC.
        Needs no controller: fabric.run.startup overlaps it with the controller's start."""
        if self.net is not None:
            return
        Mininet, OVSSwitch, RemoteController, Link = _mininet()
        # batch: every bridge and port is created by ovs-vsctl run as a program, not typed into
        # the switch's shell: a shell line is cut at the terminal's 4095 characters, which
        # silently dropped the command of a switch with ~50 ports or more (a 64-host single
        # switch never existed and the controller waited for it in vain).
        registry.register(bridges=model.switches(self.graph),  # before they exist (fabric clean)
                          interfaces=[model.intf_name(n, d["ports"][n]) for a, b, d in
                                      self.graph.edges(data=True) for n in (a, b)])
        switch = partial(OVSSwitch, datapath=self.datapath, protocols="OpenFlow13",
                         failMode="secure", batch=True)
        controller = partial(RemoteController, ip="127.0.0.1", port=self.controller_port)
        self.net = Mininet(topo=ModelTopo(graph=self.graph), switch=switch, controller=controller,
                           link=Link, autoSetMacs=False, autoStaticArp=False, build=False,
                           waitConnected=False)
        self.net.build()
        if scheduled(self.graph):  # before the switches connect: their nft tables name the VOQs
            voq.create(self.graph, self.workdir)
        registry.register(pids=[n.pid for n in (*self.net.hosts, *self.net.switches,
                                                *self.net.controllers)])

    def start(self) -> None:
        """Build (if not yet), then start the switches and shape and configure everything. The
        hosts' configuration goes to their shells before the switches start and is collected
        after: both proceed at once (bench.build)."""
        self.build()
        shaping = plan_shaping(self.graph, self.classes)  # tc lines per host, switches under ''
        self._send_host_config(shaping)
        self.net.start()
        self._set_switch_mtu()
        self._collect_host_config()
        self._shape_switch_ports(shaping[""])
        log.info("network up: %d hosts, %d switches, datapath=%s", len(self.net.hosts),
                 len(self.net.switches), self.datapath)

    def stop(self) -> None:
        """Tear everything down; safe to call twice or after a failed start."""
        if self.net is None:
            return
        net, self.net = self.net, None
        if scheduled(self.graph):
            voq.remove(self.graph)
        try:
            net.stop()
        except Exception as exc:
            log.error("mininet stop failed: %s", exc)
        for ctl in net.controllers:  # RemoteController.stop() leaves its shell running
            try:
                ctl.terminate()
            except Exception as exc:
                log.error("stopping %s's shell failed: %s", ctl.name, exc)
        self._remove_stragglers()

    def _remove_stragglers(self) -> None:
        """Delete this fabric's bridges and root-namespace veths that Mininet's stop missed: a
        link whose creation was interrupted (Ctrl-C while building) is not in net.links."""
        bridges = set(model.switches(self.graph)) & registry.existing_bridges()
        for b in sorted(bridges):
            subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", b],
                           capture_output=True, timeout=10)
        names = {model.intf_name(n, d["ports"][n]) for a, b, d in self.graph.edges(data=True)
                 for n in (a, b)}
        for intf in sorted(names & registry.existing_interfaces()):
            if model.INTF_NAME.match(intf):
                subprocess.run(["ip", "link", "del", intf], capture_output=True, timeout=10)
        if bridges:
            log.warning("removed bridges Mininet left: %s", ", ".join(sorted(bridges)))

    def __enter__(self) -> EmulatedNetwork:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ accessors
    def host(self, name: str) -> Any:
        return self.net.get(name)

    def tcp_counters(self, names: list[str]) -> dict[str, dict[str, int]]:
        """Each host's TCP counters now (see fabric.analysis.tcp)."""
        return {n: tcpstats.parse(self.host(n).cmd(tcpstats.READ_COMMAND)) for n in names}

    def nic_queue_drops(self, names: list[str]) -> int:
        """Drops of every root qdisc in these hosts' namespaces (their NIC queues), summed."""
        return sum(sum(loss.qdisc_drops(self.host(n).cmd(" ".join(loss.QDISC_COMMAND))).values())
                   for n in names)

    # ------------------------------------------------------------ where things are
    def set_links(self, interfaces: Sequence[str], up: bool) -> str:
        """Switch interfaces up or down (failures, `fabric up`'s fail/restore); '' or errors."""
        return set_links(interfaces, up)

    def trace(self, plan: Any, policy: str) -> list[FlowPath]:
        """Each transfer's path, asked of the switches (ofproto/trace)."""
        return trace_plan(self.graph, plan, policy)

    def link_sampler(self, run_dir: Path, agents_match: Path) -> Any:
        """The context manager that writes run_dir/links.csv while the workload runs
        (`agents_match`: a path in the agents' command lines; cluster mode samples them)."""
        return LinkSampler(self.graph, run_dir / "links.csv")

    # ------------------------------------------------------------ configuration
    def _send_host_config(self, shaping: dict[str, list[str]]) -> None:
        cfg = self.workdir / "netcfg"
        cfg.mkdir(parents=True, exist_ok=True)
        host_names = model.hosts(self.graph)
        mtu = graph_mtu(self.graph)
        scripts: dict[str, str] = {}
        # Three programs per host (ethtool, ip -batch, tc -batch; IPv6 off by shell builtins),
        # sent to every host's shell before any answer is awaited: the shells work in parallel.
        # One blocking host.cmd per host made this half of the build time at 64 hosts (bench.build).
        for name in host_names:
            intf = intf_name(name, model.port(self.graph, name, model.attachment(self.graph, name)[0]))
            ip_lines = [f"neigh replace {self.graph.nodes[o]['ip']} lladdr {self.graph.nodes[o]['mac']} "
                        f"dev {intf} nud permanent" for o in host_names if o != name]
            if mtu != DEFAULT_MTU:
                ip_lines.append(f"link set dev {intf} mtu {mtu}")
            # One packet per skb: Linux TCP always builds GSO super-packets (up to 64 KB), and
            # HTB charges one as a whole but releases all its segments at once, at veth speed:
            # measured here, a 5 Mbit/s NIC then sent bursts of ~18 packets every ~46 ms
            # instead of one every 2.4 ms. A real NIC serialises TSO segments at line rate;
            # gso_max_segs 1 gives that (docs/ddc.md, "Egress reassembly and reordering").
            ip_lines.append(f"link set dev {intf} gso_max_segs {NIC_GSO_MAX_SEGS}")
            ip_lines.append(f"route replace {model.HOST_SUBNET} dev {intf} initcwnd {INIT_CWND} "
                            f"initrwnd {INIT_CWND}")
            (cfg / f"{name}.ip").write_text("\n".join(ip_lines) + "\n")
            (cfg / f"{name}.tc").write_text("\n".join(shaping[name]) + "\n")
            ip_file = shlex.quote(str(cfg / f"{name}.ip"))
            tc_file = shlex.quote(str(cfg / f"{name}.tc"))
            ssai = int(self.slow_start_after_idle)
            scripts[name] = (f"ethtool -K {intf} tx off rx off >/dev/null 2>&1; "
                             "for f in all default; do echo 1 2>/dev/null "
                             ">/proc/sys/net/ipv6/conf/$f/disable_ipv6; done; "
                             f"echo {ssai} >/proc/sys/net/ipv4/tcp_slow_start_after_idle && "
                             f"ip -batch {ip_file} && tc -batch {tc_file} && echo CFG-OK")
        self._config_files_written(cfg)
        for name, script in scripts.items():
            self.host(name).sendCmd(script)

    def _config_files_written(self, cfg: Path) -> None:
        """Hook: the hosts' configuration files are in `cfg` and about to be read by the
        hosts' shells (cluster mode copies them to servers that do not share the run dir)."""

    def _collect_host_config(self) -> None:
        """Every host's answer to _send_host_config (so no shell is left mid-command)."""
        failed = []
        for name in model.hosts(self.graph):
            out = self.host(name).waitOutput()
            if "CFG-OK" not in out:
                failed.append(f"{name} ({self.graph.nodes[name]['ip']}): {out.strip()}")
        if failed:
            raise RunError(f"configuring hosts failed: {'; '.join(failed)}")

    def _set_switch_mtu(self) -> None:
        """Every switch port at the fabric's MTU, in one ovs-vsctl call (OVS's mtu_request sets
        the kernel interface and the datapath's own view; `ip link` alone only the first)."""
        mtu = graph_mtu(self.graph)
        if mtu == DEFAULT_MTU:
            return
        args = ["ovs-vsctl"]
        for u, v, d in self.graph.edges(data=True):
            for node in (u, v):
                if self.graph.nodes[node]["role"] != model.HOST:
                    args += ["--", "set", "Interface", intf_name(node, d["ports"][node]),
                             f"mtu_request={mtu}"]
        res = subprocess.run(args, capture_output=True, text=True)
        if res.returncode:
            raise RunError(f"setting switch ports to MTU {mtu} failed: {res.stderr.strip()}")

    def _shape_switch_ports(self, lines: list[str]) -> None:
        path = self.workdir / "netcfg" / "switches.tc"
        path.write_text("\n".join(lines) + "\n")
        res = subprocess.run(["tc", "-batch", str(path)], capture_output=True, text=True)
        if res.returncode:
            raise RunError(f"shaping switch ports failed: {res.stderr.strip()}")
