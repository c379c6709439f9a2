"""`priority`: two traffic classes, latency-sensitive (inference) and bulk (training), each in
its own egress queue on every port of the fabric, scheduled strictly or by weight.

What it models: a DSCP-based QoS policy of an AI fabric (e.g. inference/KV-cache and
control traffic in a high-priority traffic class, collectives in a bulk class; on RoCE fabrics
the same DSCP -> traffic class -> queue mapping also selects PFC priorities). The ingress
switch classifies and marks, every egress port queues by the mark: the usual "classify at the
edge, trust in the core" design.

Mechanism (works on the userspace and the kernel OVS datapath alike):

    host ──► ingress switch, table 0             table 1 (= ecmp routes)      egress port (tc)
             in_port=host port, class rules  ──►  ipv4_dst -> port/group  ──►  HTB: u32 on DSCP
             set ip_dscp=<dscp> | 0, goto 1                                     1:12 latency
             any other packet: goto 1                                           1:11 bulk, 1:10 ACKs

* Classification (params): `latency_hosts` (traffic sent by or to these hosts) and
  `latency_tcp_ports` ([lo, hi] ranges matched on the TCP source or destination port). Every
  other IPv4 packet entering from a host is re-marked DSCP 0, so hosts cannot self-promote.
* Queues: OpenFlow set_queue is not used. On OVS's userspace datapath it never reaches the
  Linux qdisc, and on the kernel datapath it only selects a queue OVS itself configured
  (OVS QoS tables), which would replace the project's HTB shaping. The DSCP mark survives
  every hop and both datapaths, and each shaped interface's HTB selects the class by it
  (topologies.shaping.QueueClasses, chosen by the engine from queue_classes()).
* `scheduling = "strict"`: latency class first whenever it has packets (bulk keeps a 1%
  floor); `"weighted"`: the two data classes share the line by `latency_share`.
"""
from __future__ import annotations

from typing import Any, ClassVar

import networkx as nx

from topologies.errors import SpecError
from topologies.shaping import QueueClasses
from topologies.model import hosts

from controller import ofmsgs
from controller.policies import register
from controller.policies.base import Msg
from controller.policies.ecmp import IPV4, EcmpPolicy

CLASSIFY_TABLE = 0
ROUTE_TABLE = 1
COOKIE = 0x9210
TCP = 6


def port_range_masks(lo: int, hi: int) -> list[tuple[int, int]]:
    """(value, mask) pairs whose matches cover exactly the ports lo..hi (prefix split)."""
    out = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << 16
        while size > hi - lo + 1:
            size >>= 1
        out.append((lo, 0xFFFF & ~(size - 1)))
        lo += size
    return out


def _port_match(value: int, mask: int) -> Any:
    return value if mask == 0xFFFF else (value, mask)


@register("priority")
class PriorityPolicy(EcmpPolicy):
    """ECMP forwarding in table 1; table 0 marks DSCP by class at the ingress switch."""

    PARAMS: ClassVar[dict[str, Any]] = {**EcmpPolicy.PARAMS, "latency_hosts": [],
                              "latency_tcp_ports": [], "scheduling": "strict",
                              "latency_share": 0.5, "latency_dscp": 46}

    def __init__(self, graph: nx.Graph, params: dict[str, Any] | None = None):
        super().__init__(graph, params)
        p = self.params
        known = set(hosts(graph))
        for i, h in enumerate(p["latency_hosts"]):
            if not isinstance(h, str) or h not in known:
                raise SpecError(f"params.latency_hosts[{i}]",
                                f"host {h!r} is not in {graph.graph.get('name')}")
        self.ranges: list[tuple[int, int]] = []
        for i, r in enumerate(p["latency_tcp_ports"]):
            if (not isinstance(r, list) or len(r) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in r)
                    or not 0 <= r[0] <= r[1] <= 0xFFFF):
                raise SpecError(f"params.latency_tcp_ports[{i}]",
                                f"expected [lo, hi] with 0 <= lo <= hi <= 65535, got {r!r}")
            self.ranges.append((r[0], r[1]))
        if not p["latency_hosts"] and not self.ranges:
            raise SpecError("params", "policy 'priority' needs latency_hosts or "
                                      "latency_tcp_ports to know the latency class")
        if not 1 <= p["latency_dscp"] <= 63:
            raise SpecError("params.latency_dscp", "must be in 1..63 (0 is the bulk class)")
        try:
            self.classes = QueueClasses(p["scheduling"], float(p["latency_share"]),
                                        p["latency_dscp"])
        except ValueError as exc:
            key = "scheduling" if "scheduling" in str(exc) else "latency_share"
            raise SpecError(f"params.{key}", str(exc)) from None

    def queue_classes(self) -> QueueClasses:
        return self.classes

    def classify_msgs(self, dp: Any, switch: str) -> list[Msg]:
        """Table 0: mark packets entering from hosts, send everything on to table 1."""
        dscp = self.params["latency_dscp"]
        lat = [ofmsgs.set_field(dp, ip_dscp=dscp)]
        bulk = [ofmsgs.set_field(dp, ip_dscp=0)]
        ips = [self.graph.nodes[h]["ip"] for h in self.params["latency_hosts"]]

        def add(prio: int, match: dict[str, Any], actions: list[Any]) -> Msg:
            return ofmsgs.flow_add(dp, prio, match, actions, table_id=CLASSIFY_TABLE,
                                   cookie=COOKIE, goto_table=ROUTE_TABLE)

        msgs = [add(0, {}, [])]
        for hp, host in self.host_ports(switch).items():
            ip4 = {"in_port": hp, "eth_type": IPV4}
            msgs.append(add(10, ip4, bulk))
            for ip in ips:
                if ip == self.graph.nodes[host]["ip"]:
                    msgs.append(add(20, {**ip4, "ipv4_src": ip}, lat))
                msgs.append(add(20, {**ip4, "ipv4_dst": ip}, lat))
            for lo, hi in self.ranges:
                for value, mask in port_range_masks(lo, hi):
                    for fld in ("tcp_dst", "tcp_src"):
                        msgs.append(add(20, {**ip4, "ip_proto": TCP,
                                             fld: _port_match(value, mask)}, lat))
        return msgs

    def switch_state(self, dp: Any, switch: str, now: float) -> list[Msg]:
        """Table-miss drop in the route table, the routes, then the classifier in front."""
        return [ofmsgs.table_miss_drop(dp, ROUTE_TABLE),
                *self.route_msgs(dp, switch, ROUTE_TABLE),
                *self.classify_msgs(dp, switch)]

