"""`ecmp`: proactive shortest-path forwarding with per-flow hashing over equal-cost next hops.

Everything is computed from the fabric graph before any switch connects: for every destination
host an IPv4 rule (eth_type 0x0800, ipv4_dst) outputs to the single next hop, or to a select
group over all next hops (OVS hashes each flow onto one bucket). Nothing is flooded and nothing
goes to the controller: the fabric has loops, and the engine pre-populates the hosts' ARP
tables, so ARP and every other unmatched packet hit the table-miss drop.
"""
from __future__ import annotations

from typing import Any

import networkx as nx

from topologies.model import hosts, next_hops, switch_distances, switches

from .. import ofmsgs
from . import register
from .base import Msg, Policy

IPV4 = 0x0800
ROUTE_PRIORITY = 100
COOKIE = 0xEC4D


@register("ecmp")
class EcmpPolicy(Policy):
    """Per-flow ECMP over all shortest paths (select groups, one per distinct port set)."""

    PARAMS: dict[str, Any] = {}

    def __init__(self, graph: nx.Graph, params: dict[str, Any] | None = None):
        super().__init__(graph, params)
        # switch -> [(host ip, next-hop ports)], in host order; computed once for all switches.
        self.routes: dict[str, list[tuple[str, tuple[int, ...]]]] = {s: [] for s in switches(graph)}
        for host in hosts(graph):
            dist = switch_distances(graph, host)
            ip = graph.nodes[host]["ip"]
            for sw in self.routes:
                ports = tuple(next_hops(graph, sw, host, dist))
                if ports:
                    self.routes[sw].append((ip, ports))

    def groups(self, switch: str) -> dict[tuple[int, ...], int]:
        """Select-group id per distinct multi-port next-hop set of a switch (ids from 1)."""
        ids: dict[tuple[int, ...], int] = {}
        for _, ports in self.routes[switch]:
            if len(ports) > 1 and ports not in ids:
                ids[ports] = len(ids) + 1
        return ids

    def switch_state(self, dp: Any, switch: str, now: float) -> list[Msg]:
        """Table-miss drop, the select groups, a barrier (groups exist before flows use them),
        then one IPv4 rule per reachable destination host."""
        groups = self.groups(switch)
        msgs: list[Msg] = [ofmsgs.table_miss_drop(dp)]
        msgs += [ofmsgs.select_group_add(dp, gid, ports) for ports, gid in groups.items()]
        msgs.append(ofmsgs.barrier(dp))
        for ip, ports in self.routes[switch]:
            action = (ofmsgs.output(dp, ports[0]) if len(ports) == 1
                      else ofmsgs.group_action(dp, groups[ports]))
            msgs.append(ofmsgs.flow_add(dp, ROUTE_PRIORITY, {"eth_type": IPV4, "ipv4_dst": ip},
                                        [action], cookie=COOKIE))
        return msgs
