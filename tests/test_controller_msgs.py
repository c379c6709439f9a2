"""Every ofmsgs builder yields a real os-ken OF1.3 message that serialises; and the app's
handlers, fed real os-ken events around FAKE datapaths, send them and report on stdout."""
from __future__ import annotations

import io

import pytest
from os_ken.controller import ofp_event
from os_ken.controller.handler import DEAD_DISPATCHER

from controller import app as app_mod
from controller import ofmsgs
from controller.policies import Policy, make_policy
from tests.fake_switch import FakeDatapath, FakeFlowTable
from topologies.leafspine import build_leaf_spine

DP = FakeDatapath(0x1234)

MESSAGES = {
    "flow_add": lambda: ofmsgs.flow_add(DP, 100, {"eth_type": 0x0800, "ipv4_dst": "10.0.0.3"},
                                        [ofmsgs.output(DP, 3)], table_id=0, cookie=7),
    "flow_add_group": lambda: ofmsgs.flow_add(DP, 100, {"eth_type": 0x0800},
                                              [ofmsgs.group_action(DP, 1)]),
    "flow_add_drop": lambda: ofmsgs.flow_add(DP, 5, {"in_port": 1}, []),
    "select_group_add": lambda: ofmsgs.select_group_add(DP, 1, [3, 4]),
    "delete_all_flows": lambda: ofmsgs.delete_all_flows(DP),
    "delete_all_groups": lambda: ofmsgs.delete_all_groups(DP),
    "table_miss_drop": lambda: ofmsgs.table_miss_drop(DP),
    "barrier": lambda: ofmsgs.barrier(DP),
    "port_stats_request": lambda: ofmsgs.port_stats_request(DP),
    "flow_stats_request": lambda: ofmsgs.flow_stats_request(DP),
    "flow_add_to_controller": lambda: ofmsgs.flow_add(
        DP, 150, {"in_port": 1, "eth_type": 0x0800, "ip_proto": 6, "ipv4_dst": "10.0.0.3"},
        [ofmsgs.to_controller(DP), ofmsgs.group_action(DP, 1)]),
    "flow_add_set_field_goto": lambda: ofmsgs.flow_add(
        DP, 20, {"in_port": 1, "eth_type": 0x0800}, [ofmsgs.set_field(DP, ip_dscp=46)],
        goto_table=1),
    "flow_add_goto_only": lambda: ofmsgs.flow_add(DP, 0, {}, [], goto_table=1),
    "flow_add_masked_tcp": lambda: ofmsgs.flow_add(
        DP, 20, {"eth_type": 0x0800, "ip_proto": 6, "tcp_dst": (0x1400, 0xFF00)}, []),
    "flow_add_timeout": lambda: ofmsgs.flow_add(
        DP, 200, {"eth_type": 0x0800, "ip_proto": 6, "ipv4_src": "10.0.0.1",
                  "ipv4_dst": "10.0.0.3", "tcp_src": 40000, "tcp_dst": 5201},
        [ofmsgs.output(DP, 3)], idle_timeout=5),
    **{f"flow_add_bundle_{name}": (lambda name=name: ofmsgs.flow_add(
        DP, 100, {"eth_type": 0x0800}, [ofmsgs.bundle(DP, [3, 4, 5], name, basis=7)]))
       for name in ofmsgs.NX_HASH_FIELDS},
    "flow_modify_strict": lambda: ofmsgs.flow_modify_strict(
        DP, 200, {"eth_type": 0x0800, "ip_proto": 6, "tcp_src": 40000},
        [ofmsgs.output(DP, 4)]),
    "flow_delete_strict": lambda: ofmsgs.flow_delete_strict(DP, 200, {"eth_type": 0x0800}),
    "group_mod_modify": lambda: ofmsgs.group_mod(
        DP, DP.ofproto.OFPGC_MODIFY, DP.ofproto.OFPGT_SELECT, 1,
        ofmsgs.select_group_add(DP, 1, [3]).buckets),
}
# Builders that return an action or a match, not a message: exercised inside MESSAGES above.
PARTS = {"make_match", "output", "to_controller", "set_field", "bundle", "group_action"}


def test_every_builder_is_serialised_here():
    """A new builder in controller.ofmsgs must join MESSAGES (or PARTS) to be tested."""
    import inspect
    public = {n for n, f in inspect.getmembers(ofmsgs, inspect.isfunction)
              if not n.startswith("_") and f.__module__ == ofmsgs.__name__}
    covered = PARTS | {n for n in public if any(k == n or k.startswith(n + "_")
                                                   for k in MESSAGES)}
    assert public <= covered, f"not serialised by a test: {sorted(public - covered)}"


def test_bundle_round_trips_through_the_wire_format():
    """NXActionBundle with OVS's field-set numbers (os-ken names only two) parses back."""
    msg = ofmsgs.flow_add(DP, 100, {"eth_type": 0x0800},
                          [ofmsgs.bundle(DP, [3, 4], "symmetric_l3", basis=9)])
    DP.set_xid(msg)
    msg.serialize()
    back = DP.ofproto_parser.OFPFlowMod.parser(DP, msg.version, msg.msg_type, msg.msg_len,
                                               msg.xid, bytes(msg.buf))
    (action,) = back.instructions[0].actions
    assert (action.fields, action.basis, list(action.slaves)) == (6, 9, [3, 4])
    assert action.algorithm == 1   # NX_BD_ALG_HRW


def test_set_field_takes_one_field():
    with pytest.raises(ValueError):
        ofmsgs.set_field(DP, ip_dscp=1, ip_ecn=1)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_builder_serialises(name):
    msg = MESSAGES[name]()
    assert isinstance(msg, DP.ofproto_parser.MsgBase)
    DP.set_xid(msg)
    msg.serialize()
    assert len(msg.buf) >= 8 and msg.buf[0] == DP.ofproto.OFP_VERSION


def test_select_group_has_one_weighted_watched_bucket_per_port():
    msg = ofmsgs.select_group_add(DP, 9, [2, 5, 7])
    assert msg.type == DP.ofproto.OFPGT_SELECT and msg.group_id == 9
    assert [(b.weight, b.watch_port, b.actions[0].port) for b in msg.buckets] == \
        [(1, 2, 2), (1, 5, 5), (1, 7, 7)]


def test_table_miss_drops():
    msg = ofmsgs.table_miss_drop(DP)
    assert msg.priority == 0 and msg.instructions == [] and dict(msg.match.items()) == {}


def test_delete_all_flows_covers_every_table():
    msg = ofmsgs.delete_all_flows(DP)
    ofp = DP.ofproto
    assert (msg.command, msg.table_id, msg.out_port, msg.out_group) == \
        (ofp.OFPFC_DELETE, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY)


# ---------------------------------------------------------------- the app, driven by real
# os-ken event objects around FAKE datapaths (no sockets): install bookkeeping and stdout lines.


class Harness:
    def __init__(self, policy_name: str = "ecmp", policy: Policy | None = None):
        self.graph = build_leaf_spine(1, 2, 1, host_rate_mbps=10, fabric_rate_mbps=10)
        self.out = io.StringIO()
        self.policy = policy or make_policy(policy_name, self.graph, {})
        app_mod.configure(self.graph, self.policy, self.out)
        self.app = app_mod.FabricController()

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()

    def connect(self, dpid: int) -> FakeDatapath:
        dp = FakeDatapath(dpid)
        dp.address = ("127.0.0.1", 40000 + dpid)
        msg = dp.ofproto_parser.OFPSwitchFeatures(dp, datapath_id=dpid)
        self.app._switch_features(ofp_event.EventOFPSwitchFeatures(msg))
        return dp

    def barrier_reply(self, dp: FakeDatapath, xid: int) -> None:
        msg = dp.ofproto_parser.OFPBarrierReply(dp)
        msg.xid = xid
        self.app._barrier_reply(ofp_event.EventOFPBarrierReply(msg))

    def finish(self, dp: FakeDatapath) -> None:
        """Answer the last barrier the app sent, as the switch would."""
        self.barrier_reply(dp, dp.sent[-1].xid)

    def dead(self, dp: FakeDatapath) -> None:
        ev = ofp_event.EventOFPStateChange(dp)
        ev.state = DEAD_DISPATCHER
        self.app._state_change(ev)


def test_app_installs_then_reports_installed_and_ready():
    h = Harness()                       # switches l1 (1), l2 (2), s1 (3)
    dps = [h.connect(d) for d in (1, 2, 3)]
    assert isinstance(dps[0].sent[-1], dps[0].ofproto_parser.OFPBarrierRequest)
    table = FakeFlowTable(dps[0]).apply_all(dps[0].sent)
    assert table.lookup({"eth_type": 0x0800, "ipv4_dst": "10.0.0.2"}) == [2]
    h.barrier_reply(dps[0], dps[0].sent[2].xid)   # an intermediate barrier: not the end
    assert "INSTALLED l1" not in h.lines()
    for dp in dps:
        h.finish(dp)
    assert h.lines() == ["CONNECTED l1", "CONNECTED l2", "CONNECTED s1",
                         "INSTALLED l1", "INSTALLED l2", "INSTALLED s1", "READY"]


def test_app_reconnect_reinstalls_and_announces_ready_again():
    h = Harness()
    dps = {d: h.connect(d) for d in (1, 2, 3)}
    for dp in dps.values():
        h.finish(dp)
    old = dps[1]
    new = h.connect(1)                  # new connection before the old one is reported dead
    h.dead(old)                         # stale: must not un-install the new connection
    h.finish(new)
    h.finish(old)                       # a late reply on the stale connection is ignored
    assert h.lines()[-3:] == ["CONNECTED l1", "INSTALLED l1", "READY"]
    h.dead(new)
    assert h.lines()[-1] == "DISCONNECTED l1"
    assert h.app.installed == {"l2", "s1"}


def test_app_ignores_unknown_dpid_and_survives_handler_errors():
    class Broken(Policy):
        def switch_state(self, dp, switch, now):
            raise RuntimeError("policy bug")

    h = Harness(policy=Broken(build_leaf_spine(1, 2, 1, 10, 10), {}))
    dp = h.connect(99)
    assert dp.sent == [] and h.lines() == []
    h.connect(1)                        # raises inside the handler: logged, not raised
    assert h.lines() == []


def test_app_reports_switch_errors():
    h = Harness()
    dp = h.connect(1)
    err = dp.ofproto_parser.OFPErrorMsg(dp, type_=5, code=1, data=b"\x04\x0f\x00\x10\x00\x00\x00\x07")
    h.app._error(ofp_event.EventOFPErrorMsg(err))
    assert h.lines()[-1] == "OFPERROR l1 type=5 code=1"


def test_app_tick_polls_stats_and_sends_policy_messages():
    class Ticking(Policy):
        interval_s = 1.0

        def switch_state(self, dp, switch, now):
            return []

        def tick(self, now, stats):
            return [(dpid, ofmsgs.barrier(dp)) for dpid, dp in self.datapaths.items()]

    h = Harness(policy=Ticking(build_leaf_spine(1, 2, 1, 10, 10), {}))
    dp = h.connect(1)
    h.finish(dp)
    before = len(dp.sent)
    h.app._tick()
    kinds = [type(m).__name__ for m in dp.sent[before:]]
    assert kinds == ["OFPPortStatsRequest", "OFPBarrierRequest"]


def test_app_forgets_a_flow_stats_reply_cut_off_by_a_disconnect():
    """Parts of a multipart reply from a closed connection never join the next one's."""
    h = Harness()
    dp = h.connect(1)
    h.finish(dp)

    def reply(d: FakeDatapath, flags: int, cookie: int) -> None:
        parser = d.ofproto_parser
        entry = parser.OFPFlowStats(cookie=cookie, match=parser.OFPMatch(), instructions=[])
        msg = parser.OFPFlowStatsReply(d, flags=flags, body=[entry])
        h.app._flow_stats(ofp_event.EventOFPFlowStatsReply(msg))

    reply(dp, dp.ofproto.OFPMPF_REPLY_MORE, 1)   # more to come ... but the switch goes away
    h.dead(dp)
    new = h.connect(1)
    h.finish(new)
    reply(new, 0, 2)
    assert [e.cookie for e in h.app.stats.flows[1]] == [2]
