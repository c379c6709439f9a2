"""`ecmp`: proactive shortest-path forwarding with per-flow hashing over equal-cost next hops.

Everything is computed from the fabric graph before any switch connects: for every destination
host an IPv4 rule (eth_type 0x0800, ipv4_dst) outputs to the single next hop, or spreads flows
over all next hops by a per-flow hash. Nothing is flooded and nothing goes to the controller:
the fabric has loops, and the engine pre-populates the hosts' ARP tables, so ARP and every
other unmatched packet hit the table-miss drop.

What it models: static ECMP of a routed Clos (every switch hashes each flow's header fields
onto one of its equal-cost next hops; no switch knows the load). Collisions of large flows on
one uplink are the classic weakness that `adaptive` and `spray` address.

Hash fields (param `hash_fields`):
- `[]` (default): an OpenFlow select group, one bucket per next hop. OVS (>= 2.10, 3.1 here)
  then uses its default selection method, dp_hash with the symmetric L3/L4 hash: source and
  destination IP, IP protocol, TCP/SCTP ports, i.e. the 5-tuple.
- a list of fields: OVS accepts a select group's selection method and fields only as a
  Netronome experimenter *group property*, which exists only in OpenFlow 1.5 group_mod
  messages (`ovs-ofctl -O OpenFlow15 add-group ... selection_method=hash,fields(...)` works on
  OVS 3.1 here). os-ken's OpenFlow 1.3 OFPGroupMod has no properties at all, and its 1.5
  parser only offers a raw OFPGroupPropExperimenter; the controller, the switches and every
  message builder speak OpenFlow 1.3, so a hand-packed 1.5-only property is not used. Instead
  the rule carries OVS's Nicira `bundle` action (an OF1.3 experimenter action os-ken builds
  with NXActionBundle), which hashes one of OVS's predefined field sets and outputs to one
  live port (highest random weight). The field list must therefore name one of those sets
  (HASH_FIELD_SETS); anything else is a SpecError listing them. All sets are symmetric
  (swapping source and destination gives the same hash), as OVS's default is.
"""
from __future__ import annotations

from typing import Any, ClassVar

import networkx as nx

from topologies.errors import SpecError
from topologies.model import hosts, next_hop_table, switches

from controller import ofmsgs
from controller.policies import register
from controller.policies.base import Msg, Policy

IPV4 = 0x0800
ROUTE_PRIORITY = 100
COOKIE = 0xEC4D

# OVS bundle hash field sets (ofmsgs.NX_HASH_FIELDS) by the OXM-style field names a spec uses.
# eth_type and ip_proto are the same for all routed IPv4/TCP traffic; they may be listed where
# OVS includes them. Values: (required fields, fields that may also be listed).
HASH_FIELD_SETS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "nw_src": (frozenset({"ip_src"}), frozenset()),
    "nw_dst": (frozenset({"ip_dst"}), frozenset()),
    "eth_src": (frozenset({"eth_src"}), frozenset()),
    "symmetric_l3": (frozenset({"ip_src", "ip_dst"}), frozenset({"eth_type"})),
    "symmetric_l3l4": (frozenset({"ip_src", "ip_dst", "tcp_src", "tcp_dst"}),
                       frozenset({"ip_proto"})),
    "symmetric_l3l4+udp": (frozenset({"ip_src", "ip_dst", "tcp_src", "tcp_dst",
                                      "udp_src", "udp_dst"}), frozenset({"ip_proto"})),
    "symmetric_l4": (frozenset({"eth_src", "eth_dst", "ip_src", "ip_dst", "tcp_src", "tcp_dst"}),
                     frozenset({"eth_type", "vlan_vid", "ip_proto"})),
}


def hash_field_set(fields: list[Any], key: str = "params.hash_fields") -> str | None:
    """The OVS bundle field set that hashes exactly `fields` (None for [] = select group)."""
    if not fields:
        return None
    if not all(isinstance(f, str) for f in fields):
        raise SpecError(key, f"expected a list of field names, got {fields!r}")
    want = frozenset(fields)
    for name, (required, optional) in HASH_FIELD_SETS.items():
        if required <= want <= required | optional:
            return name
    sets = "; ".join(f"{sorted(r)}" for r, _ in HASH_FIELD_SETS.values())
    raise SpecError(key, f"OVS can hash {sorted(want)} only through a select-group property "
                         f"that needs OpenFlow 1.5; over OpenFlow 1.3 the supported field "
                         f"sets are: {sets} (or [] for the select group's default 5-tuple hash)")


@register("ecmp")
class EcmpPolicy(Policy):
    """Per-flow ECMP over all shortest paths (select groups, one per distinct port set, or the
    Nicira bundle action when `hash_fields` is set)."""

    PARAMS: ClassVar[dict[str, Any]] = {"hash_fields": [], "hash_basis": 0}

    def __init__(self, graph: nx.Graph, params: dict[str, Any] | None = None):
        super().__init__(graph, params)
        self.hash_set = hash_field_set(self.params["hash_fields"])
        if not 0 <= self.params["hash_basis"] <= 0xFFFF:
            raise SpecError("params.hash_basis", "must be in 0..65535")
        self.routes: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        self.recompute()

    def recompute(self) -> None:
        """switch -> [(host ip, next-hop ports)], in host order, for all switches at once, on
        the live graph (called again after a link fails or returns)."""
        graph = self.graph
        self.routes = {s: [] for s in switches(graph)}
        table = next_hop_table(graph)
        for host in hosts(graph):
            ip = graph.nodes[host]["ip"]
            for sw in self.routes:
                ports = table[sw].get(host)
                if ports:
                    self.routes[sw].append((ip, ports))

    def groups(self, switch: str) -> dict[tuple[int, ...], int]:
        """Select-group id per distinct multi-port next-hop set of a switch (ids from 1);
        none when the bundle action does the hashing."""
        ids: dict[tuple[int, ...], int] = {}
        if self.hash_set is not None:
            return ids
        for _, ports in self.routes[switch]:
            if len(ports) > 1 and ports not in ids:
                ids[ports] = len(ids) + 1
        return ids

    def next_hop_action(self, dp: Any, ports: tuple[int, ...],
                        groups: dict[tuple[int, ...], int]) -> Any:
        """The action that sends a packet to one of `ports`: output, group or bundle."""
        if len(ports) == 1:
            return ofmsgs.output(dp, ports[0])
        if self.hash_set is not None:
            return ofmsgs.bundle(dp, ports, self.hash_set, self.params["hash_basis"])
        return ofmsgs.group_action(dp, groups[ports])

    def route_msgs(self, dp: Any, switch: str, table_id: int = 0) -> list[Msg]:
        """The select groups, a barrier (groups exist before flows use them), then one IPv4
        rule per reachable destination host in `table_id`."""
        groups = self.groups(switch)
        msgs: list[Msg] = [ofmsgs.select_group_add(dp, gid, ports)
                           for ports, gid in groups.items()]
        msgs.append(ofmsgs.barrier(dp))
        for ip, ports in self.routes[switch]:
            msgs.append(ofmsgs.flow_add(dp, ROUTE_PRIORITY, {"eth_type": IPV4, "ipv4_dst": ip},
                                        [self.next_hop_action(dp, ports, groups)],
                                        table_id=table_id, cookie=COOKIE))
        return msgs

    def switch_state(self, dp: Any, switch: str, now: float) -> list[Msg]:
        """Table-miss drop, then the routes."""
        return [ofmsgs.table_miss_drop(dp), *self.route_msgs(dp, switch)]
