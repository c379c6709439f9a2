"""What a cluster run records (cluster.json: the servers' checks, the placement, the cut links,
each tunnel's extra RTT) and the engine's entry points into cluster mode."""
from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from topologies.placement import Placement

from fabric.run.cluster.network import ClusterNetwork
from fabric.run.cluster.ssh import Server, ServerCheck, check_servers, close_masters, resolve
from fabric.spec.cluster import ClusterSpec

log = logging.getLogger("fabric.run.cluster")


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
    return {"servers": [{**asdict(c), "clock_correction_ms": c.clock_correction_ms}
                        for c in checks], "tunnel": cluster.tunnel,
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


def host_clock_offsets(run_dir: Path) -> dict[str, float]:
    """Host -> seconds its server's clock is ahead of the head's (its clock_correction_ms),
    from the run's cluster.json; {} for a one-machine run (one clock)."""
    path = run_dir / "cluster.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    by_server = {s["server"]: s.get("clock_correction_ms", 0.0) / 1000 for s in data["servers"]}
    return {node: by_server.get(server, 0.0) for node, server in data["placement"].items()}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1))
