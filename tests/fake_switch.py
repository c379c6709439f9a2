"""FAKE OpenFlow 1.3 switch for unit tests (test-only, no sockets, no OVS).

`FakeDatapath` carries the real os-ken ofproto_v1_3 modules, so the policies build genuine os-ken
message objects against it. `FakeFlowTable` applies those FlowMod/GroupMod messages the way OVS
would for the subset the policies use (flow add, modify-strict, delete, delete-strict; group
add, modify, delete; idle timeouts kept but never expiring; group references, match
prerequisites, apply-actions + goto-table pipelines, set-field, output, select groups, the
Nicira bundle action) and answers which ports a packet could leave by, so tests read as
"fabric + policy + packet -> output ports". It also counts bytes per flow entry (`send`) and
answers flow statistics with real os-ken stats objects.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

# OXM field -> (field, value) it requires in the same match (OVS rejects flows without them).
PREREQUISITES = {
    "ipv4_src": ("eth_type", 0x0800), "ipv4_dst": ("eth_type", 0x0800),
    "ip_dscp": ("eth_type", 0x0800), "ip_proto": ("eth_type", 0x0800),
    "arp_spa": ("eth_type", 0x0806), "arp_tpa": ("eth_type", 0x0806),
    "tcp_src": ("ip_proto", 6), "tcp_dst": ("ip_proto", 6),
    "udp_src": ("ip_proto", 17), "udp_dst": ("ip_proto", 17),
}
N_TABLES = 254


class FakeSwitchError(Exception):
    """What a real switch would answer with an OFPT_ERROR."""


class FakeDatapath:
    """FAKE datapath: real OF1.3 ofproto/parser, an id, xids, and a list of sent messages."""

    def __init__(self, dpid: int):
        self.id = dpid
        self.ofproto = ofp
        self.ofproto_parser = parser
        self.xid = 0
        self.sent: list[Any] = []

    def set_xid(self, msg: Any) -> int:
        self.xid = (self.xid + 1) & ofp.MAX_XID
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg: Any) -> bool:
        if msg.xid is None:
            self.set_xid(msg)
        msg.serialize()
        self.sent.append(msg)
        return True


@dataclass
class Flow:
    table_id: int
    priority: int
    match: dict[str, Any]
    actions: list[Any]
    cookie: int
    goto: int | None = None
    idle_timeout: int = 0
    n_packets: int = 0
    n_bytes: int = 0
    created: float = 0.0     # FakeFlowTable.now when added (its duration counts from here)


@dataclass
class Forwarding:
    """What the pipeline does with one packet: candidate output ports (a select group or
    bundle contributes all its ports), whether a copy goes to the controller, the packet as
    rewritten by set-field actions, and the flow entries it matched (one per table)."""
    ports: list[int]
    to_controller: bool
    packet: dict[str, Any]
    flows: list[Flow] = field(default_factory=list)


class FakeFlowTable:
    """Flows and groups of one FAKE switch, fed with os-ken messages."""

    def __init__(self, dp: FakeDatapath | None = None):
        self.dp = dp or FakeDatapath(1)
        self.flows: list[Flow] = []
        self.groups: dict[int, tuple[int, list[Any]]] = {}  # id -> (type, buckets)
        self.now = 0.0   # the switch's clock (s): tests advance it; flow durations use it

    # ------------------------------------------------------------ applying messages
    def apply_all(self, msgs: Iterable[Any]) -> FakeFlowTable:
        for msg in msgs:
            self.apply(msg)
        return self

    def apply(self, msg: Any) -> None:
        """Apply one message; every message must also serialise, as it would on the wire."""
        if msg.xid is None:
            self.dp.set_xid(msg)
        msg.serialize()
        if isinstance(msg, parser.OFPFlowMod):
            self._flow_mod(msg)
        elif isinstance(msg, parser.OFPGroupMod):
            self._group_mod(msg)
        elif isinstance(msg, (parser.OFPBarrierRequest, parser.OFPMultipartRequest)):
            pass
        else:
            raise FakeSwitchError(f"FAKE switch does not handle {type(msg).__name__}")

    def _flow_mod(self, msg: Any) -> None:
        fields = dict(msg.match.items())
        if msg.command == ofp.OFPFC_ADD:
            self._check_match(fields)
            actions, goto = self._instructions(msg, fields)
            self.flows = [f for f in self.flows if not (
                f.table_id == msg.table_id and f.priority == msg.priority and f.match == fields)]
            self.flows.append(Flow(msg.table_id, msg.priority, fields, actions, msg.cookie, goto,
                                   msg.idle_timeout, created=self.now))
        elif msg.command == ofp.OFPFC_MODIFY_STRICT:
            actions, goto = self._instructions(msg, fields)
            for f in self.flows:   # OF1.3: nothing matches -> nothing happens; counters kept
                if f.table_id == msg.table_id and f.priority == msg.priority \
                        and f.match == fields:
                    f.actions, f.goto = actions, goto
        elif msg.command == ofp.OFPFC_DELETE:
            self.flows = [f for f in self.flows if not (
                msg.table_id in (ofp.OFPTT_ALL, f.table_id)
                and all(f.match.get(k) == v for k, v in fields.items()))]
        elif msg.command == ofp.OFPFC_DELETE_STRICT:
            self.flows = [f for f in self.flows if not (
                f.table_id == msg.table_id and f.priority == msg.priority and f.match == fields)]
        else:
            raise FakeSwitchError(f"FAKE switch does not handle flow command {msg.command}")

    @staticmethod
    def _check_match(fields: dict[str, Any]) -> None:
        for name in fields:
            need = PREREQUISITES.get(name)
            if need and fields.get(need[0]) != need[1]:
                raise FakeSwitchError(f"OFPBMC_BAD_PREREQ: {name} needs {need[0]}={need[1]:#x}")

    def _instructions(self, msg: Any, fields: dict[str, Any]) -> tuple[list[Any], int | None]:
        actions: list[Any] = []
        goto = None
        for inst in msg.instructions:
            if inst.type == ofp.OFPIT_APPLY_ACTIONS:
                actions += inst.actions
            elif inst.type == ofp.OFPIT_GOTO_TABLE:
                if not msg.table_id < inst.table_id < N_TABLES:
                    raise FakeSwitchError(f"OFPBIC_BAD_TABLE_ID: goto {inst.table_id} "
                                          f"from table {msg.table_id}")
                goto = inst.table_id
            else:
                raise FakeSwitchError(f"FAKE switch does not handle instruction {inst.type}")
        for a in actions:
            if isinstance(a, parser.OFPActionGroup) and a.group_id not in self.groups:
                raise FakeSwitchError(f"OFPBAC_BAD_OUT_GROUP: group {a.group_id} missing")
            need = PREREQUISITES.get(a.key) if isinstance(a, parser.OFPActionSetField) else None
            if need and fields.get(need[0]) != need[1]:   # OVS checks set-field against the match
                raise FakeSwitchError(f"OFPBAC_MATCH_INCONSISTENT: set {a.key} needs "
                                      f"{need[0]}={need[1]:#x} in the match")
        return actions, goto

    def _group_mod(self, msg: Any) -> None:
        if msg.command == ofp.OFPGC_ADD:
            if msg.group_id in self.groups:
                raise FakeSwitchError(f"OFPGMFC_GROUP_EXISTS: group {msg.group_id}")
            self.groups[msg.group_id] = (msg.type, list(msg.buckets))
        elif msg.command == ofp.OFPGC_MODIFY:
            if msg.group_id not in self.groups:
                raise FakeSwitchError(f"OFPGMFC_UNKNOWN_GROUP: group {msg.group_id}")
            self.groups[msg.group_id] = (msg.type, list(msg.buckets))
        elif msg.command == ofp.OFPGC_DELETE:
            gone = set(self.groups) if msg.group_id == ofp.OFPG_ALL else {msg.group_id}
            for gid in gone:
                self.groups.pop(gid, None)
            # OVS also removes flows that referenced a deleted group.
            self.flows = [f for f in self.flows if not any(
                isinstance(a, parser.OFPActionGroup) and a.group_id in gone for a in f.actions)]
        else:
            raise FakeSwitchError(f"FAKE switch does not handle group command {msg.command}")

    # ------------------------------------------------------------ the pipeline
    def best(self, packet: dict[str, Any], table_id: int = 0) -> Flow | None:
        """Highest-priority flow of `table_id` matching the packet."""
        found = None
        for f in self.flows:
            if (f.table_id == table_id and _matches(f.match, packet)
                    and (found is None or f.priority > found.priority)):
                found = f
        return found

    def process(self, packet: dict[str, Any], table_id: int = 0) -> Forwarding:
        """Run a packet through the tables from `table_id`: apply-actions, then goto."""
        pkt = dict(packet)
        result = Forwarding([], False, pkt)
        ports: set[int] = set()
        table: int | None = table_id
        while table is not None:
            flow = self.best(pkt, table)
            if flow is None:
                break
            result.flows.append(flow)
            for a in flow.actions:
                if isinstance(a, parser.OFPActionSetField):
                    pkt[a.key] = a.value
                elif isinstance(a, parser.OFPActionOutput):
                    if a.port == ofp.OFPP_CONTROLLER:
                        result.to_controller = True
                    else:
                        ports.add(a.port)
                elif isinstance(a, parser.OFPActionGroup):
                    _, buckets = self.groups[a.group_id]
                    ports.update(b.port for bucket in buckets for b in bucket.actions
                                 if isinstance(b, parser.OFPActionOutput))
                elif isinstance(a, parser.NXActionBundle):
                    ports.update(a.slaves)
                else:
                    raise FakeSwitchError(f"FAKE switch does not execute {type(a).__name__}")
            table = flow.goto
        result.ports = sorted(ports)
        return result

    def lookup(self, packet: dict[str, Any], table_id: int = 0) -> list[int]:
        """Candidate output ports for a packet (select group: every bucket's port), sorted;
        [] when the best match drops it or nothing matches. Copies to the controller are not
        ports (see process())."""
        return self.process(packet, table_id).ports

    def send(self, packet: dict[str, Any], size_bytes: int, packets: int = 1) -> Forwarding:
        """Forward `packets` packets totalling `size_bytes` and count them on every flow entry
        they match, as the switch's flow counters would."""
        result = self.process(packet)
        for f in result.flows:
            f.n_packets += packets
            f.n_bytes += size_bytes
        return result

    # ------------------------------------------------------------ statistics
    def flow_stats(self) -> list[Any]:
        """The body of a flow-stats reply (real os-ken OFPFlowStats objects)."""
        out = []
        for f in self.flows:
            inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, f.actions)]
            age = self.now - f.created
            out.append(parser.OFPFlowStats(
                table_id=f.table_id, duration_sec=int(age),
                duration_nsec=round((age - int(age)) * 1e9), priority=f.priority,
                idle_timeout=f.idle_timeout, hard_timeout=0, flags=0, cookie=f.cookie,
                packet_count=f.n_packets, byte_count=f.n_bytes,
                match=parser.OFPMatch(**f.match), instructions=inst))
        return out

    def snapshot(self) -> tuple[list[tuple], list[tuple]]:
        """Order-independent view of flows and groups, to compare two tables."""
        flows = sorted((f.table_id, f.priority, sorted((k, str(v)) for k, v in f.match.items()),
                        f.cookie, [str(a) for a in f.actions], -1 if f.goto is None else f.goto)
                       for f in self.flows)
        groups = sorted((gid, t, [str(b) for b in buckets])
                        for gid, (t, buckets) in self.groups.items())
        return flows, groups


def _matches(match: dict[str, Any], packet: dict[str, Any]) -> bool:
    for name, want in match.items():
        if name not in packet:
            return False
        have = packet[name]
        if isinstance(want, tuple):  # (value, mask)
            value, mask = want
            if isinstance(value, str):
                net = ipaddress.ip_network(f"{value}/{mask}", strict=False)
                if ipaddress.ip_address(have) not in net:
                    return False
            elif (have & mask) != (value & mask):
                return False
        elif have != want:
            return False
    return True


class FakeFabric:
    """FAKE switches for every switch of a fabric model, each connected once to `policy`:
    tests walk packets through the whole fabric and feed the policy's later messages back."""

    def __init__(self, graph: Any, policy: Any, now: float = 0.0):
        self.graph, self.policy = graph, policy
        self.tables: dict[str, FakeFlowTable] = {}
        for sw, d in graph.nodes(data=True):
            if d["role"] != "host":
                dp = FakeDatapath(d["dpid"])
                self.tables[sw] = FakeFlowTable(dp).apply_all(policy.switch_up(dp, now))
        self.by_dpid = {t.dp.id: t for t in self.tables.values()}

    def apply(self, pairs: Iterable[tuple[int, Any]]) -> None:
        """Deliver a policy's (dpid, message) pairs (from tick or packet_in)."""
        for dpid, msg in pairs:
            self.by_dpid[dpid].apply(msg)

    def tick(self, seconds: float) -> None:
        """Advance every switch's clock."""
        for t in self.tables.values():
            t.now += seconds

    def _peer(self, node: str, port_no: int) -> str:
        return next(n for n in self.graph.neighbors(node)
                    if self.graph.edges[node, n]["ports"][node] == port_no)

    def walks(self, src: str, packet: dict[str, Any], limit: int = 16) -> set[tuple[str, ...]]:
        """Every way the packet can go from host `src` (ECMP choices branch): tuples of node
        names from the first switch to the receiving host, or ending in 'DROP'."""
        done: set[tuple[str, ...]] = set()
        (first,) = list(self.graph.neighbors(src))
        todo = [((first,), self.graph.edges[src, first]["ports"][first], dict(packet))]
        while todo:
            walk, in_port, pkt = todo.pop()
            if len(walk) > limit:
                raise AssertionError(f"forwarding loop: {walk}")
            fwd = self.tables[walk[-1]].process({**pkt, "in_port": in_port})
            if not fwd.ports:
                done.add(walk + ("DROP",))
            for p in fwd.ports:
                nxt = self._peer(walk[-1], p)
                if self.graph.nodes[nxt]["role"] == "host":
                    done.add(walk + (nxt,))
                else:
                    todo.append((walk + (nxt,), self.graph.edges[walk[-1], nxt]["ports"][nxt],
                                 fwd.packet))
        return done

    def send(self, src: str, packet: dict[str, Any], size_bytes: int,
             packets: int = 1) -> tuple[str, ...]:
        """Send traffic along the packet's single path, counting it on every switch's
        entries; returns the path. Fails if the fabric would still choose by hash."""
        (walk,) = self.walks(src, packet)
        (first,) = list(self.graph.neighbors(src))
        in_port = self.graph.edges[src, first]["ports"][first]
        pkt = dict(packet)
        for here, nxt in zip(walk, walk[1:]):
            pkt = self.tables[here].send({**pkt, "in_port": in_port}, size_bytes, packets).packet
            if nxt in self.tables:
                in_port = self.graph.edges[here, nxt]["ports"][nxt]
        return walk
