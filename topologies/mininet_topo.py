"""The Mininet Topo of a fabric model: built from the same graph the controller reads.

Only names, addresses, dpids and port numbers come from here; link shaping (HTB + FIFO queue) is
applied by fabric.run.emulation because Mininet's TCLink sets queue limits with netem, which some
kernels (this CI machine's among them) lack.
"""
from __future__ import annotations

import logging
from typing import Any

import networkx as nx
from mininet.topo import Topo

from topologies.model import HOST, HOST_SUBNET, intf_name  # noqa: F401  (intf_name re-exported)

# Importing Mininet installs its MininetLogger as the class of every logger created afterwards
# (level OUTPUT=25: INFO lines vanish from the run's logs). Give later loggers the stock class.
logging.setLoggerClass(logging.Logger)


class ModelTopo(Topo):  # type: ignore[misc]  # Mininet has no type information
    """Mininet Topo mirroring a fabric model node for node, port for port."""

    def build(self, graph: nx.Graph, node_params: dict[str, dict[str, Any]] | None = None) -> None:
        """`node_params`: extra Mininet parameters per node (cluster mode: class and server)."""
        extra = node_params or {}
        for name, d in graph.nodes(data=True):
            if d["role"] == HOST:
                self.addHost(name, ip=f"{d['ip']}/{HOST_SUBNET.prefixlen}", mac=d["mac"],
                             **extra.get(name, {}))
            else:
                self.addSwitch(name, dpid=f"{d['dpid']:016x}", **extra.get(name, {}))
        for u, v, d in graph.edges(data=True):
            self.addLink(u, v, port1=d["ports"][u], port2=d["ports"][v])
