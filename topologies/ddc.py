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
the host); `queue_packets` everywhere else (host NICs, fabric links).
"""
from __future__ import annotations

import networkx as nx

from topologies.model import ModelBuilder

DEFAULT_SPEEDUP = 1.25
DEFAULT_EGRESS_QUEUE_PACKETS = 1000


def ddc_fabric_rate_mbps(host_rate_mbps: float, hosts_per_ncp: int, ncfs: int,
                         speedup: float) -> float:
    """Per-link fabric rate that gives an NCP `speedup` x its host capacity towards the NCFs."""
    return host_rate_mbps * hosts_per_ncp * speedup / ncfs


def build_ddc(ncps: int, ncfs: int, hosts_per_ncp: int, host_rate_mbps: float,
              fabric_rate_mbps: float | None = None, speedup: float = DEFAULT_SPEEDUP,
              egress_queue_packets: int = DEFAULT_EGRESS_QUEUE_PACKETS, queue_packets: int = 100,
              name: str = "ddc") -> nx.Graph:
    """Return the DDC model (see topologies.model for the graph conventions)."""
    for key, value in (("ncps", ncps), ("ncfs", ncfs), ("hosts_per_ncp", hosts_per_ncp),
                       ("egress_queue_packets", egress_queue_packets),
                       ("queue_packets", queue_packets)):
        if value < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")
    if not speedup > 0 or not host_rate_mbps > 0:
        raise ValueError(f"speedup and host_rate_mbps must be > 0, got {speedup}, {host_rate_mbps}")
    if fabric_rate_mbps is None:
        fabric_rate_mbps = ddc_fabric_rate_mbps(host_rate_mbps, hosts_per_ncp, ncfs, speedup)
    b = ModelBuilder(name, "ddc", dict(
        ncps=ncps, ncfs=ncfs, hosts_per_ncp=hosts_per_ncp, host_rate_mbps=host_rate_mbps,
        fabric_rate_mbps=fabric_rate_mbps,
        speedup=fabric_rate_mbps * ncfs / (host_rate_mbps * hosts_per_ncp),  # effective
        egress_queue_packets=egress_queue_packets, queue_packets=queue_packets))
    b.two_tier(("ncp", "ncp", ncps), ("ncf", "ncf", ncfs), hosts_per_ncp, host_rate_mbps,
               fabric_rate_mbps, queue_packets, edge_queue_packets=egress_queue_packets)
    return b.graph
