"""FAKE OpenFlow 1.3 switch for unit tests (test-only, no sockets, no OVS).

`FakeDatapath` carries the real os-ken ofproto_v1_3 modules, so the policies build genuine os-ken
message objects against it. `FakeFlowTable` applies those FlowMod/GroupMod messages the way OVS
would for the subset the policies use (add, replace, delete-all, group references, match
prerequisites) and answers which ports a packet could leave by, so tests read as
"fabric + policy + packet -> output ports".
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

# OXM field -> (field, value) it requires in the same match (OVS rejects flows without them).
PREREQUISITES = {
    "ipv4_src": ("eth_type", 0x0800), "ipv4_dst": ("eth_type", 0x0800),
    "arp_spa": ("eth_type", 0x0806), "arp_tpa": ("eth_type", 0x0806),
    "tcp_src": ("ip_proto", 6), "tcp_dst": ("ip_proto", 6),
    "udp_src": ("ip_proto", 17), "udp_dst": ("ip_proto", 17),
}


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


class FakeFlowTable:
    """Flows and groups of one FAKE switch, fed with os-ken messages."""

    def __init__(self, dp: FakeDatapath | None = None):
        self.dp = dp or FakeDatapath(1)
        self.flows: list[Flow] = []
        self.groups: dict[int, tuple[int, list[Any]]] = {}  # id -> (type, buckets)

    # ------------------------------------------------------------ applying messages
    def apply_all(self, msgs: Iterable[Any]) -> "FakeFlowTable":
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
            for name in fields:
                need = PREREQUISITES.get(name)
                if need and fields.get(need[0]) != need[1]:
                    raise FakeSwitchError(f"OFPBMC_BAD_PREREQ: {name} needs {need[0]}={need[1]:#x}")
            actions = [a for inst in msg.instructions
                       if inst.type == ofp.OFPIT_APPLY_ACTIONS for a in inst.actions]
            for a in actions:
                if isinstance(a, parser.OFPActionGroup) and a.group_id not in self.groups:
                    raise FakeSwitchError(f"OFPBAC_BAD_OUT_GROUP: group {a.group_id} missing")
            self.flows = [f for f in self.flows if not (
                f.table_id == msg.table_id and f.priority == msg.priority and f.match == fields)]
            self.flows.append(Flow(msg.table_id, msg.priority, fields, actions, msg.cookie))
        elif msg.command == ofp.OFPFC_DELETE:
            self.flows = [f for f in self.flows if not (
                msg.table_id in (ofp.OFPTT_ALL, f.table_id)
                and all(f.match.get(k) == v for k, v in fields.items()))]
        else:
            raise FakeSwitchError(f"FAKE switch does not handle flow command {msg.command}")

    def _group_mod(self, msg: Any) -> None:
        if msg.command == ofp.OFPGC_ADD:
            if msg.group_id in self.groups:
                raise FakeSwitchError(f"OFPGMFC_GROUP_EXISTS: group {msg.group_id}")
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

    # ------------------------------------------------------------ queries
    def lookup(self, packet: dict[str, Any], table_id: int = 0) -> list[int]:
        """Candidate output ports for a packet (select group: every bucket's port), sorted;
        [] when the best match drops it or nothing matches."""
        best = None
        for f in self.flows:
            if f.table_id == table_id and _matches(f.match, packet):
                if best is None or f.priority > best.priority:
                    best = f
        if best is None:
            return []
        ports: set[int] = set()
        for a in best.actions:
            if isinstance(a, parser.OFPActionOutput):
                ports.add(a.port)
            elif isinstance(a, parser.OFPActionGroup):
                _, buckets = self.groups[a.group_id]
                ports.update(b.port for bucket in buckets for b in bucket.actions
                             if isinstance(b, parser.OFPActionOutput))
        return sorted(ports)

    def snapshot(self) -> tuple[list[tuple], list[tuple]]:
        """Order-independent view of flows and groups, to compare two tables."""
        flows = sorted((f.table_id, f.priority, sorted(f.match.items(), key=str), f.cookie,
                        [str(a) for a in f.actions]) for f in self.flows)
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
