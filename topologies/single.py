"""The ideal reference: every host on one big non-blocking switch.

::

              sw1                 one switch, no fabric tier: no collisions, no oversubscription
        /   /    \\   \\
      h1  h2 ...  hN-1 hN         hosts h1..hN
"""
from __future__ import annotations

import networkx as nx

from topologies.model import ModelBuilder


def build_single_switch(hosts: int, host_rate_mbps: float, queue_packets: int = 100,
                        name: str = "single") -> nx.Graph:
    """Return the one-switch model (see topologies.model for the graph conventions)."""
    if hosts < 2:
        raise ValueError(f"hosts must be >= 2, got {hosts}")
    b = ModelBuilder(name, "single", dict(hosts=hosts, host_rate_mbps=host_rate_mbps,
                                          queue_packets=queue_packets))
    sw = b.switch("sw1", "switch")
    for i in range(hosts):
        b.link(b.host(f"h{i + 1}"), sw, host_rate_mbps, queue_packets, "host")
    return b.graph
