"""Move a live switch from one policy state to another without wiping it (make before break).

A policy describes a switch's full state as a list of messages (controller.policies.base:
`switch_state`). When the fabric changes under a running workload (a link fails), re-sending
that state after a wipe would black-hole every packet the switch sees meanwhile; instead
`update` compares old and new state and sends only the difference, in an order that never
leaves a flow pointing at a missing group:

    1. groups: ADD the new ones, MODIFY the changed ones; barrier
    2. flows: ADD new and changed flows (an ADD with the same table, priority and match
       replaces the old one in place), DELETE_STRICT flows that are gone; barrier
    3. groups: DELETE the ones no longer used

Only FlowMod ADD and GroupMod ADD messages of a state matter; other messages are ignored.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable

from controller import ofmsgs

Msg = Any


def _flow_key(msg: Msg) -> Hashable:
    return (msg.table_id, msg.priority, frozenset(msg.match.items()))


def _flow_body(msg: Msg) -> str:
    return f"{msg.cookie}|{msg.idle_timeout}|{msg.hard_timeout}|{msg.instructions}"


def _index(msgs: Iterable[Msg], dp: Any) -> tuple[dict[Hashable, Msg], dict[int, Msg]]:
    ofp, parser = dp.ofproto, dp.ofproto_parser
    flows: dict[Hashable, Msg] = {}
    groups: dict[int, Msg] = {}
    for m in msgs:
        if isinstance(m, parser.OFPFlowMod) and m.command == ofp.OFPFC_ADD:
            flows[_flow_key(m)] = m
        elif isinstance(m, parser.OFPGroupMod) and m.command == ofp.OFPGC_ADD:
            groups[m.group_id] = m
    return flows, groups


def update(dp: Any, old: Iterable[Msg], new: Iterable[Msg]) -> list[Msg]:
    """Messages that turn a switch holding state `old` into one holding state `new`;
    [] when they are equivalent."""
    ofp = dp.ofproto
    old_flows, old_groups = _index(old, dp)
    new_flows, new_groups = _index(new, dp)
    group_msgs = []
    for gid, m in new_groups.items():
        before = old_groups.get(gid)
        if before is None:
            group_msgs.append(m)
        elif (before.type, str(before.buckets)) != (m.type, str(m.buckets)):
            group_msgs.append(ofmsgs.group_mod(dp, ofp.OFPGC_MODIFY, m.type, gid, m.buckets))
    flow_msgs = [m for k, m in new_flows.items()
                 if k not in old_flows or _flow_body(old_flows[k]) != _flow_body(m)]
    flow_msgs += [ofmsgs.flow_delete_strict(dp, m.priority, dict(m.match.items()), m.table_id)
                  for k, m in old_flows.items() if k not in new_flows]
    gone = [ofmsgs.group_mod(dp, ofp.OFPGC_DELETE, m.type, gid, [])
            for gid, m in old_groups.items() if gid not in new_groups]
    out: list[Msg] = []
    if group_msgs:
        out += group_msgs + [ofmsgs.barrier(dp)]
    if flow_msgs:
        out += flow_msgs
    if gone:
        out += [ofmsgs.barrier(dp)] + gone
    return out
