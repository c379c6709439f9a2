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


def to_controller(dp: Any, max_len: int = 128) -> Action:
    """Output a copy of the packet's first `max_len` bytes to the controller (a packet-in)."""
    return dp.ofproto_parser.OFPActionOutput(dp.ofproto.OFPP_CONTROLLER, max_len)


def set_field(dp: Any, **fields: Any) -> Action:
    """Set-field action, e.g. set_field(dp, ip_dscp=46) (one OXM field per call)."""
    if len(fields) != 1:
        raise ValueError(f"set_field takes exactly one field, got {sorted(fields)}")
    return dp.ofproto_parser.OFPActionSetField(**fields)


# OVS's NX_HASH_FIELDS_* values (openflow/nicira-ext.h); os-ken names only the first two.
NX_HASH_FIELDS = {"eth_src": 0, "symmetric_l4": 1, "symmetric_l3l4": 2,
                  "symmetric_l3l4+udp": 3, "nw_src": 4, "nw_dst": 5, "symmetric_l3": 6}


def bundle(dp: Any, ports: Iterable[int], fields: str, basis: int = 0) -> Action:
    """Nicira `bundle` action (an OpenFlow 1.3 experimenter action, OVS >= 1.2): hash the
    `fields` set (a key of NX_HASH_FIELDS) with `basis` and output to one live port of `ports`
    (highest random weight). The only way an OF1.3 controller picks the hash fields of a
    per-flow multipath choice in OVS; see controller.policies.ecmp."""
    from os_ken.ofproto import nicira_ext
    ports = list(ports)
    return dp.ofproto_parser.NXActionBundle(
        algorithm=nicira_ext.NX_BD_ALG_HRW, fields=NX_HASH_FIELDS[fields], basis=basis,
        slave_type=nicira_ext.NXM_OF_IN_PORT, n_slaves=len(ports), ofs_nbits=0, dst=0,
        slaves=ports)


def group_action(dp: Any, group_id: int) -> Action:
    """Action that hands the packet to a group (e.g. a select group for ECMP)."""
    return dp.ofproto_parser.OFPActionGroup(group_id)


def _instructions(dp: Any, actions: Iterable[Action], goto_table: int | None) -> list[Any]:
    ofp, parser = dp.ofproto, dp.ofproto_parser
    actions = list(actions)
    inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else []
    if goto_table is not None:
        inst.append(parser.OFPInstructionGotoTable(goto_table))
    return inst


def flow_add(dp: Any, priority: int, match: Mapping[str, Any], actions: Iterable[Action],
             table_id: int = 0, cookie: int = 0, idle_timeout: int = 0,
             hard_timeout: int = 0, goto_table: int | None = None) -> Msg:
    """FlowMod ADD applying `actions`, then continuing in `goto_table` if given; no actions
    and no goto means drop."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(dp, cookie=cookie, table_id=table_id, command=ofp.OFPFC_ADD,
                             idle_timeout=idle_timeout, hard_timeout=hard_timeout,
                             priority=priority, buffer_id=ofp.OFP_NO_BUFFER,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=make_match(dp, match),
                             instructions=_instructions(dp, actions, goto_table))


def flow_modify_strict(dp: Any, priority: int, match: Mapping[str, Any],
                       actions: Iterable[Action], table_id: int = 0, cookie: int = 0) -> Msg:
    """FlowMod MODIFY_STRICT: new actions for the entry with exactly this match and priority,
    keeping its counters and timeouts (re-routing a flow without losing its byte count)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(dp, cookie=cookie, table_id=table_id,
                             command=ofp.OFPFC_MODIFY_STRICT, priority=priority,
                             buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, match=make_match(dp, match),
                             instructions=_instructions(dp, actions, None))


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


def group_mod(dp: Any, command: int, type_: int, group_id: int, buckets: Iterable[Any]) -> Msg:
    """GroupMod of any command (ADD, MODIFY, DELETE) with the given buckets."""
    return dp.ofproto_parser.OFPGroupMod(dp, command=command, type_=type_, group_id=group_id,
                                         buckets=list(buckets))


def flow_delete_strict(dp: Any, priority: int, match: Mapping[str, Any], table_id: int = 0) -> Msg:
    """FlowMod DELETE_STRICT: remove exactly the entry with this table, priority and match."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(dp, table_id=table_id, command=ofp.OFPFC_DELETE_STRICT,
                             priority=priority, buffer_id=ofp.OFP_NO_BUFFER,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=make_match(dp, match))
