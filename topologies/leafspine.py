"""Two-tier leaf/spine (folded Clos): hosts on leaves, every leaf linked to every spine.

::

        s1          s2            spines  (s1..sS)
        | \\       / |
        |   \\   /   |            every leaf to every spine: S equal-cost paths leaf -> leaf
        |    /  \\   |
        l1          l2            leaves  (l1..lL)
       /  \\        /  \\
      h1  h2      h3  h4          hosts   (h1..hH, hosts_per_leaf on each leaf, numbered leaf by leaf)

Ports: a leaf's host ports come first (1..hosts_per_leaf), then its uplinks in spine order;
a spine's port i goes to leaf i.
"""
from __future__ import annotations

import networkx as nx

from topologies.model import ModelBuilder


def build_leaf_spine(spines: int, leaves: int, hosts_per_leaf: int, host_rate_mbps: float,
                     fabric_rate_mbps: float, queue_packets: int = 100,
                     name: str = "leafspine") -> nx.Graph:
    """Return the leaf/spine model (see topologies.model for the graph conventions)."""
    for key, value in (("spines", spines), ("leaves", leaves), ("hosts_per_leaf", hosts_per_leaf)):
        if value < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")
    b = ModelBuilder(name, "leafspine", dict(
        spines=spines, leaves=leaves, hosts_per_leaf=hosts_per_leaf, host_rate_mbps=host_rate_mbps,
        fabric_rate_mbps=fabric_rate_mbps, queue_packets=queue_packets))
    b.two_tier(("l", "leaf", leaves), ("s", "spine", spines), hosts_per_leaf, host_rate_mbps,
               fabric_rate_mbps, queue_packets)
    return b.graph
