"""Builders for the OpenFlow 1.3 messages the controller sends (os-ken message objects).

Why: policies describe switch state as plain lists of messages; keeping the os-ken constructor
details (wildcards, instruction wrapping, bucket layout) in one place keeps policies readable and
lets tests apply the very same objects to a fake flow table. No forwarding logic lives here.

`dp` is anything datapath-like: it has `.ofproto`, `.ofproto_parser` and `.id` (a real os-ken
Datapath, or tests.fake_switch.FakeDatapath).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

Msg = Any      # an os-ken MsgBase subclass instance
Action = Any   # an os-ken OFPAction* instance

TABLE_MISS_PRIORITY = 0


def make_match(dp: Any, fields: Mapping[str, Any]) -> Any:
    """OFPMatch from a dict of os-ken OXM field names, e.g. {'eth_type': 0x0800, 'ipv4_dst': ip}."""
    return dp.ofproto_parser.OFPMatch(**dict(fields))


def output(dp: Any, port: int) -> Action:
    """Output action to one port (max_len only matters for OFPP_CONTROLLER)."""
    return dp.ofproto_parser.OFPActionOutput(port, dp.ofproto.OFPCML_NO_BUFFER)


def group_action(dp: Any, group_id: int) -> Action:
    """Action that hands the packet to a group (e.g. a select group for ECMP)."""
    return dp.ofproto_parser.OFPActionGroup(group_id)


def flow_add(dp: Any, priority: int, match: Mapping[str, Any], actions: Iterable[Action],
             table_id: int = 0, cookie: int = 0, idle_timeout: int = 0,
             hard_timeout: int = 0) -> Msg:
    """FlowMod ADD applying `actions`; an empty action list means drop."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    actions = list(actions)
    inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else []
    return parser.OFPFlowMod(dp, cookie=cookie, table_id=table_id, command=ofp.OFPFC_ADD,
                             idle_timeout=idle_timeout, hard_timeout=hard_timeout,
                             priority=priority, buffer_id=ofp.OFP_NO_BUFFER,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=make_match(dp, match), instructions=inst)


def table_miss_drop(dp: Any, table_id: int = 0) -> Msg:
    """Lowest-priority catch-all with no instructions: unmatched packets are dropped, never
    sent to the controller and never flooded (the fabric has loops)."""
    return flow_add(dp, TABLE_MISS_PRIORITY, {}, [], table_id=table_id)


def select_group_add(dp: Any, group_id: int, ports: Iterable[int]) -> Msg:
    """GroupMod ADD of a select group, one bucket per port (weight 1, watching that port, so a
    port that goes down leaves the hash). OVS picks a bucket per flow (hash), i.e. ECMP."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    buckets = [parser.OFPBucket(weight=1, watch_port=p, watch_group=ofp.OFPG_ANY,
                                actions=[output(dp, p)]) for p in ports]
    return parser.OFPGroupMod(dp, command=ofp.OFPGC_ADD, type_=ofp.OFPGT_SELECT,
                              group_id=group_id, buckets=buckets)


def delete_all_flows(dp: Any) -> Msg:
    """FlowMod DELETE over every table, any out port/group, empty match."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(dp, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=parser.OFPMatch())


def delete_all_groups(dp: Any) -> Msg:
    """GroupMod DELETE of OFPG_ALL."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPGroupMod(dp, command=ofp.OFPGC_DELETE, type_=ofp.OFPGT_ALL,
                              group_id=ofp.OFPG_ALL)


def barrier(dp: Any) -> Msg:
    """BarrierRequest: the switch answers once everything before it has been processed."""
    return dp.ofproto_parser.OFPBarrierRequest(dp)


def port_stats_request(dp: Any) -> Msg:
    """Port counters of every port."""
    return dp.ofproto_parser.OFPPortStatsRequest(dp, 0, dp.ofproto.OFPP_ANY)


def flow_stats_request(dp: Any, table_id: int | None = None, cookie: int = 0,
                       cookie_mask: int = 0) -> Msg:
    """Flow counters of every flow (optionally one table / cookie)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL if table_id is None else table_id,
                                      ofp.OFPP_ANY, ofp.OFPG_ANY, cookie, cookie_mask,
                                      parser.OFPMatch())
