"""Distributed Disaggregated Chassis (DDC): hosts on NCPs, every NCP linked to every NCF.

::

        ncf1          ncf2             NCFs (fabric boxes, ncf1..ncfF): forward towards the
        |  \\         / |              egress NCP, nothing else
        |    \\     /   |
        |      \\ /     |              every NCP to every NCF; fabric links run at a speed-up,
        |      / \\     |              so the fabric tier is never the bottleneck; the ingress
        |    /     \\   |              NCP sprays packets over ALL its NCF links
        ncp1          ncp2             NCPs (packet forwarders, ncp1..ncpN), deep egress queues
       /    \\        /    \\           on their host ports (the Jericho-class buffer)
      h1    h2      h3    h4           hosts (h1..hH, hosts_per_ncp on each NCP, NCP by NCP)

Ports: an NCP's host ports come first (1..hosts_per_ncp), then its uplinks in NCF order; an
NCF's port i goes to NCP i.

Fabric link rate: unless given, host_rate * hosts_per_ncp * speedup / ncfs, i.e. an NCP's uplink
capacity is `speedup` times its host capacity (a real cell fabric is provisioned with speed-up
so that cell overhead and imperfect spraying never make it the bottleneck).
Queues: `egress_queue_packets` at the NCP end of every host link (the NCP's egress queue towards
the host) and in every VOQ; `queue_packets` everywhere else (host NICs, fabric links).

Scheduling (`scheduler = "credits"`, the default): every NCP has a VOQ stage between its host
ports and its fabric links, a veth pair that is not an OVS port::

    host port ──nft──► <ncp>-vq ═══ HTB: one class (VOQ) per remote host, rate = credits ═══►
        <ncp>-vs ──nft: stamp a sequence number per destination, spray──► NCF links

A credit allocator (controller.credits, applied by fabric.run.voq) sets each VOQ's rate so the
VOQs towards one egress port share its line rate max-min fairly. `reassembly`: the sequence
numbers let the egress side deliver each VOQ's packets in order (fabric.run.resequencer).
`scheduler = "none"`: no VOQs, spraying straight from the host ports (the fabric's speed-up and
the egress queue do what credits do).
"""
from __future__ import annotations

import networkx as nx

from topologies.model import ModelBuilder

DEFAULT_SPEEDUP = 1.25
DEFAULT_EGRESS_QUEUE_PACKETS = 1000
SCHEDULERS = ("credits", "none")
DEFAULT_CREDIT_INTERVAL_MS = 20.0


def voq_intfs(ncp: str) -> tuple[str, str]:
    """The NCP's VOQ veth pair: packets enter `<ncp>-vq` (its egress HTB holds the VOQs) and
    come out of `<ncp>-vs` into the spraying hook."""
    return f"{ncp}-vq", f"{ncp}-vs"


def scheduled(g: nx.Graph) -> bool:
    """True for a DDC whose NCPs hold VOQs under credit scheduling."""
    return bool(g.graph.get("kind") == "ddc"
                and g.graph.get("params", {}).get("scheduler") == "credits")


def reassembling(g: nx.Graph) -> bool:
    """True for a scheduled DDC whose egress delivers each VOQ's packets in order."""
    return scheduled(g) and bool(g.graph["params"].get("reassembly", False))


def ddc_fabric_rate_mbps(host_rate_mbps: float, hosts_per_ncp: int, ncfs: int,
                         speedup: float) -> float:
    """Per-link fabric rate that gives an NCP `speedup` x its host capacity towards the NCFs."""
    return host_rate_mbps * hosts_per_ncp * speedup / ncfs


def build_ddc(ncps: int, ncfs: int, hosts_per_ncp: int, host_rate_mbps: float,
              fabric_rate_mbps: float | None = None, speedup: float = DEFAULT_SPEEDUP,
              egress_queue_packets: int = DEFAULT_EGRESS_QUEUE_PACKETS, queue_packets: int = 100,
              name: str = "ddc", scheduler: str = "credits",
              credit_interval_ms: float = DEFAULT_CREDIT_INTERVAL_MS,
              reassembly: bool = True) -> nx.Graph:
    """Return the DDC model (see topologies.model for the graph conventions)."""
    for key, value in (("ncps", ncps), ("ncfs", ncfs), ("hosts_per_ncp", hosts_per_ncp),
                       ("egress_queue_packets", egress_queue_packets),
                       ("queue_packets", queue_packets)):
        if value < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")
    if not speedup > 0 or not host_rate_mbps > 0:
        raise ValueError(f"speedup and host_rate_mbps must be > 0, got {speedup}, {host_rate_mbps}")
    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
    if not credit_interval_ms > 0:
        raise ValueError(f"credit_interval_ms must be > 0, got {credit_interval_ms}")
    if fabric_rate_mbps is None:
        fabric_rate_mbps = ddc_fabric_rate_mbps(host_rate_mbps, hosts_per_ncp, ncfs, speedup)
    b = ModelBuilder(name, "ddc", dict(
        ncps=ncps, ncfs=ncfs, hosts_per_ncp=hosts_per_ncp, host_rate_mbps=host_rate_mbps,
        fabric_rate_mbps=fabric_rate_mbps,
        speedup=fabric_rate_mbps * ncfs / (host_rate_mbps * hosts_per_ncp),  # effective
        egress_queue_packets=egress_queue_packets, queue_packets=queue_packets,
        scheduler=scheduler, credit_interval_ms=float(credit_interval_ms),
        reassembly=bool(reassembly) and scheduler == "credits"))
    b.two_tier(("ncp", "ncp", ncps), ("ncf", "ncf", ncfs), hosts_per_ncp, host_rate_mbps,
               fabric_rate_mbps, queue_packets, edge_queue_packets=egress_queue_packets)
    return b.graph
