"""Per-packet spraying over every uplink of an edge switch: the mechanism `ddc` and `spray` share.

    edge switch (NCP / leaf)          host port p                uplinks u1..uk
    ┌──────────────────────────┐      ──► nft netdev ingress hook on <sw>-eth<p>:
    │ OVS: deliver to hosts,   │           ip daddr {remote hosts} fwd to numgen inc mod k
    │ drop host->remote copies │           map { 0: u1, ..., k-1: uk }      (packet by packet)
    └──────────────────────────┘      ──► everything else: OVS as usual

Edge switches of the spraying role send every fabric-bound packet (destination on another edge
switch) round-robin over the uplinks that lie on a shortest path to it, in the kernel, through
an nftables netdev ingress hook on each host-facing interface (controller.nftables; the
controller applies it when the switch connects and whenever a link changes). OpenFlow cannot
spray per packet (select groups hash per flow).

OpenFlow state of an edge switch: the ecmp routes (deliver local hosts, and transit traffic
arriving from the fabric, which only happens around a failed link), plus, above them, a DROP for
every (host port, remote host) pair. Why the drop: with the userspace datapath OVS reads a port
through an AF_PACKET socket, which sees every packet before the netdev ingress hook, so OVS gets
a copy of each sprayed packet and would forward it a second time. With the kernel datapath the
hook's `fwd` takes the packet before OVS's rx handler, and the drop rules never match.

Every other switch (NCF, spine) forwards by destination, as in `ecmp`. When a link goes down the
routes are recomputed on the remaining graph (Policy.port_status) and each edge switch's spray
map loses the uplinks that no longer reach a destination (`fwd to` a down interface would drop).
"""
from __future__ import annotations

from typing import Any, ClassVar

import networkx as nx

from topologies.errors import SpecError
from topologies.model import HOST, hosts, intf_name, switches

from controller import ofmsgs
from controller.nftables import COUNTERS, NUMGEN_MODES, SprayRule, spray_ruleset
from controller.policies.base import Msg
from controller.policies.ecmp import IPV4, ROUTE_PRIORITY, EcmpPolicy

SPRAY_DROP_PRIORITY = ROUTE_PRIORITY + 10
SPRAY_COOKIE = 0x5B7A


class SprayingPolicy(EcmpPolicy):
    """ECMP routes everywhere, plus per-packet spraying at switches of role SPRAY_ROLE."""

    SPRAY_ROLE: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Any]] = {**EcmpPolicy.PARAMS, "numgen": "inc", "counter": "port"}

    def __init__(self, graph: nx.Graph, params: dict[str, Any] | None = None):
        super().__init__(graph, params)
        if self.params["numgen"] not in NUMGEN_MODES:
            raise SpecError("params.numgen", f"must be one of {', '.join(NUMGEN_MODES)}, "
                                             f"got {self.params['numgen']!r}")
        if self.params["counter"] not in COUNTERS:
            raise SpecError("params.counter", f"must be one of {', '.join(COUNTERS)}, "
                                              f"got {self.params['counter']!r}")
        # sprayer -> {host port: host}: switches of the role with hosts and uplinks
        self.sprayers: dict[str, dict[int, str]] = {}
        for sw in switches(graph, self.SPRAY_ROLE):
            ports = self.host_ports(sw)
            if ports and any(graph.nodes[n]["role"] != HOST for n in graph[sw]):
                self.sprayers[sw] = ports
        if not self.sprayers:
            raise SpecError("policy", f"policy {self.name!r} needs a fabric whose "
                                      f"{self.SPRAY_ROLE} switches have hosts and uplinks "
                                      f"(this is a {graph.graph.get('kind')!r} fabric)")

    def remote_ips(self, switch: str) -> list[str]:
        """Addresses of the hosts that are not on `switch`, in host order."""
        local = set(self.sprayers[switch].values())
        return [self.graph.nodes[h]["ip"] for h in hosts(self.full_graph) if h not in local]

    def switch_state(self, dp: Any, switch: str, now: float) -> list[Msg]:
        msgs = super().switch_state(dp, switch, now)
        if switch not in self.sprayers:
            return msgs
        remote = self.remote_ips(switch)
        for port in sorted(self.sprayers[switch]):
            for ip in remote:
                msgs.append(ofmsgs.flow_add(dp, SPRAY_DROP_PRIORITY,
                                            {"in_port": port, "eth_type": IPV4, "ipv4_dst": ip},
                                            [], cookie=SPRAY_COOKIE))
        return msgs

    def spray_rules(self, switch: str) -> list[SprayRule]:
        """Remote destinations grouped by the uplinks that reach them on the live graph, in
        first-seen order; unreachable destinations get a rule without uplinks (dropped)."""
        reach = dict(self.routes[switch])
        groups: dict[tuple[int, ...], list[str]] = {}
        for ip in self.remote_ips(switch):
            groups.setdefault(reach.get(ip, ()), []).append(ip)
        return [SprayRule(tuple(ips), tuple(intf_name(switch, p) for p in ports))
                for ports, ips in groups.items()]

    def nft_ruleset(self, switch: str) -> str | None:
        if switch not in self.sprayers:
            return None
        in_intfs = {p: intf_name(switch, p) for p in self.sprayers[switch]}
        return spray_ruleset(switch, in_intfs, self.spray_rules(switch), self.params["numgen"],
                             self.params["counter"])
