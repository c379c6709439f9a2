"""Per-packet spraying (`ddc`, `spray`): nft text, the nft bookkeeping, OpenFlow state on FAKE
switches, and re-routing after a port goes down (hitless state diff). Pure: no root."""
from __future__ import annotations

import pytest

from controller import statediff
from controller.nftables import (NftTables, SprayRule, delete_ruleset, spray_ruleset,
                                 table_name)
from controller.policies import POLICIES, make_policy
from controller.policies.ddc import DDCPolicy
from controller.policies.spray import SprayPolicy
from topologies.errors import SpecError
from tests.fake_switch import FakeDatapath, FakeFlowTable
from topologies.ddc import build_ddc
from topologies.leafspine import build_leaf_spine
from topologies.model import switches
from topologies.single import build_single_switch

DDC_NCP1 = """\
# per-packet spraying at ncp1 (controller.nftables)
table netdev fabric_ncp1
delete table netdev fabric_ncp1
table netdev fabric_ncp1 {
\tchain ports {
\t\ttype filter hook ingress devices = { "ncp1-eth1", "ncp1-eth2" } priority 0; policy accept;
\t\tip daddr { 10.0.0.3, 10.0.0.4 } fwd to numgen inc mod 2 map { 0 : "ncp1-eth3", 1 : "ncp1-eth4" }
\t}
}
"""

# `counter = "port"`: each host port keeps its own round-robin counter (`spray`'s default)
DDC_NCP1_PER_PORT = """\
# per-packet spraying at ncp1 (controller.nftables)
table netdev fabric_ncp1
delete table netdev fabric_ncp1
table netdev fabric_ncp1 {
\tchain port1 {
\t\ttype filter hook ingress device "ncp1-eth1" priority 0; policy accept;
\t\tip daddr { 10.0.0.3, 10.0.0.4 } fwd to numgen inc mod 2 map { 0 : "ncp1-eth3", 1 : "ncp1-eth4" }
\t}
\tchain port2 {
\t\ttype filter hook ingress device "ncp1-eth2" priority 0; policy accept;
\t\tip daddr { 10.0.0.3, 10.0.0.4 } fwd to numgen inc mod 2 map { 0 : "ncp1-eth3", 1 : "ncp1-eth4" }
\t}
}
"""


def ipv4(dst: str, in_port: int) -> dict:
    return {"in_port": in_port, "eth_type": 0x0800, "ipv4_src": "10.0.0.1", "ipv4_dst": dst,
            "ip_proto": 6}


def connect_all(g, policy) -> dict[str, FakeFlowTable]:
    out = {}
    for sw in switches(g):
        dp = FakeDatapath(g.nodes[sw]["dpid"])
        out[sw] = FakeFlowTable(dp).apply_all(policy.switch_up(dp, 0.0))
    return out


def dpid(g, sw: str) -> int:
    return g.nodes[sw]["dpid"]


# ---------------------------------------------------------------- nft text

def test_nft_golden_text_for_a_ddc_ncp():
    g = build_ddc(2, 2, 2, host_rate_mbps=20, scheduler="none")
    assert make_policy("ddc", g).nft_ruleset("ncp1") == DDC_NCP1


DDC_NCP1_VOQ = """\
# VOQs and per-packet spraying at ncp1 (controller.nftables)
table netdev fabric_ncp1
delete table netdev fabric_ncp1
table netdev fabric_ncp1 {
\tchain ports {
\t\ttype filter hook ingress devices = { "ncp1-eth1", "ncp1-eth2" } priority 0; policy accept;
\t\tip daddr { 10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4 } fwd to "ncp1-vq"
\t}
\tchain voq {
\t\ttype filter hook ingress device "ncp1-vs" priority 0; policy accept;
\t\tip daddr 10.0.0.1 fwd to "ncp1-eth1"
\t\tip daddr 10.0.0.2 fwd to "ncp1-eth2"
\t\tip daddr 10.0.0.3 ip id set numgen inc mod 65536 << 16
\t\tip daddr 10.0.0.4 ip id set numgen inc mod 65536 << 16
\t\tip daddr { 10.0.0.3, 10.0.0.4 } fwd to numgen inc mod 2 map { 0 : "ncp1-eth3", 1 : "ncp1-eth4" }
\t\tdrop
\t}
}
"""


def test_nft_golden_text_for_a_scheduled_ddc_ncp():
    """VOQs (the default): every host-port packet into the VOQ device; out of it, local
    hosts directly, remote ones stamped per destination and sprayed."""
    g = build_ddc(2, 2, 2, host_rate_mbps=20)
    assert make_policy("ddc", g).nft_ruleset("ncp1") == DDC_NCP1_VOQ
    no_stamp = make_policy("ddc", build_ddc(2, 2, 2, host_rate_mbps=20, reassembly=False))
    assert "ip id set" not in no_stamp.nft_ruleset("ncp1")


def test_scheduled_ddc_drops_ovs_copies_of_local_traffic_too():
    g = build_ddc(2, 2, 2, host_rate_mbps=20)
    tables = connect_all(g, make_policy("ddc", g))
    h2 = g.nodes["h2"]["ip"]
    # h1 -> h2 (same NCP): the kernel path (VOQ) carries it, OVS drops its copy
    assert tables["ncp1"].lookup(ipv4(h2, 1)) == []
    unscheduled = build_ddc(2, 2, 2, host_rate_mbps=20, scheduler="none")
    tables = connect_all(unscheduled, make_policy("ddc", unscheduled))
    assert tables["ncp1"].lookup(ipv4(h2, 1)) != []


def test_ddc_counter_per_port_and_spray_default_per_port():
    g = build_ddc(2, 2, 2, host_rate_mbps=20, scheduler="none")
    assert make_policy("ddc", g, {"counter": "port"}).nft_ruleset("ncp1") == DDC_NCP1_PER_PORT
    ls = build_leaf_spine(2, 2, 2, host_rate_mbps=20, fabric_rate_mbps=20)
    assert "chain port1 {" in make_policy("spray", ls).nft_ruleset("l1")


def test_unknown_spray_counter_is_a_spec_error():
    with pytest.raises(SpecError) as e:
        make_policy("ddc", build_ddc(2, 2, 2, host_rate_mbps=20), {"counter": "flow"})
    assert e.value.key == "params.counter"


def test_nft_rules_single_uplink_unreachable_and_random():
    text = spray_ruleset("l2", {1: "l2-eth1"}, [
        SprayRule(("10.0.0.1",), ("l2-eth3",)),
        SprayRule(("10.0.0.2", "10.0.0.5"), ()),
        SprayRule(("10.0.0.6",), ("l2-eth3", "l2-eth4", "l2-eth5")),
        SprayRule((), ("l2-eth3",)),  # no destinations: no rule
    ], mode="random")
    body = [line.strip() for line in text.splitlines()[5:-2]]
    assert body == [
        'type filter hook ingress device "l2-eth1" priority 0; policy accept;',
        'ip daddr { 10.0.0.1 } fwd to "l2-eth3"',
        "ip daddr { 10.0.0.2, 10.0.0.5 } drop",
        'ip daddr { 10.0.0.6 } fwd to numgen random mod 3 map '
        '{ 0 : "l2-eth3", 1 : "l2-eth4", 2 : "l2-eth5" }',
    ]
    assert delete_ruleset("l2") == "table netdev fabric_l2\ndelete table netdev fabric_l2\n"


@pytest.mark.parametrize("switch, intf, ip, mode", [
    ("ncp1; flush ruleset", "ncp1-eth1", "10.0.0.3", "inc"),
    ("ncp1", 'ncp1-eth1" ; flush ruleset', "10.0.0.3", "inc"),
    ("ncp1", "eth0", "10.0.0.3", "inc"),
    ("ncp1", "ncp1-eth1", "10.0.0.3 } drop", "inc"),
    ("ncp1", "ncp1-eth1", "10.0.0.3", "alternate"),
])
def test_nft_text_refuses_anything_not_from_the_model(switch, intf, ip, mode):
    with pytest.raises(ValueError):
        spray_ruleset(switch, {1: intf}, [SprayRule((ip,), ("ncp1-eth3",))], mode)
    with pytest.raises(ValueError):
        spray_ruleset("ncp1", {1: "ncp1-eth1"}, [SprayRule(("10.0.0.3",), (intf + "x;",))])


def test_table_names_carry_the_cleanup_prefix():
    assert table_name("ncp12") == "fabric_ncp12"


def test_nft_bookkeeping_applies_only_changes():
    applied = []
    nft = NftTables(runner=applied.append)
    assert nft.sync("ncp1", None) is False and applied == []       # nothing to do
    assert nft.sync("ncp1", DDC_NCP1) is True
    assert nft.sync("ncp1", DDC_NCP1) is False                     # unchanged: not re-applied
    assert nft.sync("ncp1", None) is True
    assert applied == [DDC_NCP1, delete_ruleset("ncp1")] and nft.applied == {}


# ---------------------------------------------------------------- policies on FAKE switches

def test_registry():
    assert POLICIES["ddc"] is DDCPolicy and POLICIES["spray"] is SprayPolicy


def test_ddc_ncp_drops_ovs_copies_of_sprayed_packets_and_delivers_locally():
    g = build_ddc(2, 2, 2, host_rate_mbps=20, scheduler="none")
    t = connect_all(g, make_policy("ddc", g))
    # ncp1: h1, h2 on ports 1, 2; uplinks to ncf1, ncf2 on ports 3, 4
    assert t["ncp1"].lookup(ipv4("10.0.0.3", in_port=1)) == []   # nft sprays it; OVS drops
    assert t["ncp1"].lookup(ipv4("10.0.0.4", in_port=2)) == []
    assert t["ncp1"].lookup(ipv4("10.0.0.2", in_port=1)) == [2]  # local: OVS switches it
    assert t["ncp2"].lookup(ipv4("10.0.0.3", in_port=3)) == [1]  # egress NCP delivers
    assert t["ncp2"].lookup(ipv4("10.0.0.4", in_port=4)) == [2]
    for ncf in ("ncf1", "ncf2"):                                 # NCFs: towards the egress NCP
        assert t[ncf].lookup(ipv4("10.0.0.3", in_port=1)) == [2]
        assert t[ncf].lookup(ipv4("10.0.0.1", in_port=2)) == [1]
    arp = {"in_port": 1, "eth_type": 0x0806, "arp_tpa": "10.0.0.3"}
    assert all(table.lookup(arp) == [] for table in t.values())


def test_spray_on_leaf_spine_matches_ddc_mechanism():
    g = build_leaf_spine(2, 2, 2, host_rate_mbps=20, fabric_rate_mbps=20)
    p = make_policy("spray", g)
    t = connect_all(g, p)
    assert t["l1"].lookup(ipv4("10.0.0.3", in_port=1)) == []
    assert t["l1"].lookup(ipv4("10.0.0.2", in_port=1)) == [2]
    assert t["l1"].lookup(ipv4("10.0.0.3", in_port=3)) == [3, 4]  # transit (after failures)
    assert t["s2"].lookup(ipv4("10.0.0.3", in_port=1)) == [2]
    assert p.nft_ruleset("s1") is None
    assert p.nft_ruleset("l2") == DDC_NCP1_PER_PORT.replace("ncp1", "l2").replace(
        "10.0.0.3, 10.0.0.4", "10.0.0.1, 10.0.0.2")


def test_numgen_param():
    g = build_ddc(2, 3, 1, host_rate_mbps=20)
    assert "numgen random mod 3" in make_policy("ddc", g, {"numgen": "random"}).nft_ruleset("ncp2")
    with pytest.raises(SpecError) as err:
        make_policy("ddc", g, {"numgen": "roundrobin"})
    assert err.value.key == "params.numgen"


@pytest.mark.parametrize("policy, graph", [
    ("ddc", build_leaf_spine(2, 2, 2, 20, 20)),
    ("spray", build_ddc(2, 2, 2, 20)),
    ("spray", build_single_switch(4, 20)),
])
def test_policy_refuses_a_fabric_it_cannot_spray(policy, graph):
    with pytest.raises(SpecError) as err:
        make_policy(policy, graph)
    assert err.value.key == "policy"


# ---------------------------------------------------------------- link failures

def fresh_tables(g, name, down_edges):
    live = g.copy()
    live.remove_edges_from(down_edges)
    return connect_all(live, make_policy(name, live))


def apply_updates(g, tables, updates):
    by_dpid = {dpid(g, sw): t for sw, t in tables.items()}
    for d, msg in updates:
        by_dpid[d].apply(msg)


def test_ddc_link_down_reroutes_spray_maps_and_ncfs_hitlessly():
    g = build_ddc(2, 2, 2, host_rate_mbps=20, scheduler="none")
    p = make_policy("ddc", g)
    t = connect_all(g, p)
    before = {sw: t[sw].snapshot() for sw in t}
    updates = p.port_status(dpid(g, "ncf1"), 2, False, 1.0)   # ncf1 port 2 = link to ncp2
    # the spray maps no longer use ncf1 towards (or from) ncp2
    assert 'ip daddr { 10.0.0.3, 10.0.0.4 } fwd to "ncp1-eth4"' in p.nft_ruleset("ncp1")
    assert 'ip daddr { 10.0.0.1, 10.0.0.2 } fwd to "ncp2-eth4"' in p.nft_ruleset("ncp2")
    # no switch is wiped (no delete-all), and ncf2, whose routes stay, gets nothing
    ofp = FakeDatapath(1).ofproto
    assert updates and not any(getattr(m, "command", None) == ofp.OFPFC_DELETE
                               and m.table_id == ofp.OFPTT_ALL for _, m in updates)
    assert {d for d, _ in updates} == {dpid(g, s) for s in ("ncp1", "ncp2", "ncf1")}
    apply_updates(g, t, updates)
    fresh = fresh_tables(g, "ddc", [("ncf1", "ncp2")])
    assert {sw: t[sw].snapshot() for sw in t} == {sw: fresh[sw].snapshot() for sw in fresh}
    # in-flight packets at ncf1 for ncp2 now go around, through ncp1 and ncf2
    assert t["ncf1"].lookup(ipv4("10.0.0.3", in_port=1)) == [1]
    # the other end reporting the same link: nothing more to do
    assert p.port_status(dpid(g, "ncp2"), 3, False, 1.1) == []
    assert p.port_status(dpid(g, "ncp2"), 0xfffffffe, False, 1.1) == []  # OVS LOCAL port
    # both ends come back: everything as before
    assert p.port_status(dpid(g, "ncp2"), 3, True, 2.0) == []  # ncf1's end still down
    apply_updates(g, t, p.port_status(dpid(g, "ncf1"), 2, True, 2.1))
    assert {sw: t[sw].snapshot() for sw in t} == before
    assert p.nft_ruleset("ncp1") == DDC_NCP1


def test_ncf_failure_leaves_spray_maps_with_the_surviving_ncfs():
    g = build_ddc(3, 3, 1, host_rate_mbps=20)
    p = make_policy("ddc", g)
    for port in (1, 2, 3):                       # every link of ncf2
        p.port_status(dpid(g, "ncf2"), port, False, 1.0)
    text = p.nft_ruleset("ncp3")
    assert 'fwd to numgen inc mod 2 map { 0 : "ncp3-eth2", 1 : "ncp3-eth4" }' in text
    assert "ncp3-eth3" not in text


def test_ecmp_reroutes_remote_switches_around_a_failed_uplink():
    g = build_leaf_spine(2, 2, 2, host_rate_mbps=20, fabric_rate_mbps=20)
    p = make_policy("ecmp", g)
    t = connect_all(g, p)
    assert t["l2"].lookup(ipv4("10.0.0.1", in_port=1)) == [3, 4]
    apply_updates(g, t, p.port_status(dpid(g, "l1"), 3, False, 1.0))  # l1 -> s1
    assert t["l2"].lookup(ipv4("10.0.0.1", in_port=1)) == [4]          # only via s2 now
    assert t["l1"].lookup(ipv4("10.0.0.3", in_port=1)) == [4]
    fresh = fresh_tables(g, "ecmp", [("l1", "s1")])
    assert {sw: t[sw].snapshot() for sw in t} == {sw: fresh[sw].snapshot() for sw in fresh}


def test_state_diff_is_empty_for_equal_states_and_minimal_otherwise():
    g = build_leaf_spine(2, 2, 2, host_rate_mbps=20, fabric_rate_mbps=20)
    p = make_policy("ecmp", g)
    dp = FakeDatapath(dpid(g, "l2"))
    state = p.switch_state(dp, "l2", 0.0)
    assert statediff.update(dp, state, p.switch_state(dp, "l2", 0.0)) == []
    p.port_status(dpid(g, "l1"), 3, False, 1.0)
    msgs = statediff.update(dp, state, p.switch_state(dp, "l2", 0.0))
    ofp = dp.ofproto
    kinds = [(type(m).__name__, getattr(m, "command", None)) for m in msgs]
    # routes to h1, h2 re-pointed (ADD replaces in place), the unused select group removed last
    assert kinds.count(("OFPFlowMod", ofp.OFPFC_ADD)) == 2
    assert kinds[-1] == ("OFPGroupMod", ofp.OFPGC_DELETE)
    assert ("OFPFlowMod", ofp.OFPFC_DELETE) not in kinds


# ---------------------------------------------------------------- the app, FAKE datapaths

def test_app_applies_nft_at_install_and_reroutes_on_port_status():
    import io

    from os_ken.controller import ofp_event

    from controller import app as app_mod

    g = build_ddc(2, 2, 1, host_rate_mbps=20)
    applied: list[str] = []
    out = io.StringIO()
    app_mod.configure(g, make_policy("ddc", g), out, nft=NftTables(runner=applied.append))
    app = app_mod.FabricController()
    dps = {}
    for sw in switches(g):
        dp = FakeDatapath(dpid(g, sw))
        dp.address = ("127.0.0.1", 40000 + dp.id)
        app._switch_features(ofp_event.EventOFPSwitchFeatures(
            dp.ofproto_parser.OFPSwitchFeatures(dp, datapath_id=dp.id)))
        reply = dp.ofproto_parser.OFPBarrierReply(dp)
        reply.xid = dp.sent[-1].xid
        app._barrier_reply(ofp_event.EventOFPBarrierReply(reply))
        dps[sw] = dp
    assert "READY" in out.getvalue().split()
    assert [t.splitlines()[1] for t in applied] == ["table netdev fabric_ncp1",
                                                   "table netdev fabric_ncp2"]
    tables = {sw: FakeFlowTable(dp).apply_all(dp.sent) for sw, dp in dps.items()}
    # ncf1 loses its link to ncp2 (port 2): OVS reports the port's link down
    dp = dps["ncf1"]
    ofp, parser = dp.ofproto, dp.ofproto_parser
    sent_before = {sw: len(d.sent) for sw, d in dps.items()}

    def port_status(port_no, state, reason=ofp.OFPPR_MODIFY):
        desc = parser.OFPPort(port_no=port_no, hw_addr="02:00:00:00:00:99", name=b"ncf1-eth2",
                              config=0, state=state, curr=0, advertised=0, supported=0,
                              peer=0, curr_speed=0, max_speed=0)
        app._port_status(ofp_event.EventOFPPortStatus(parser.OFPPortStatus(dp, reason, desc)))

    port_status(2, ofp.OFPPS_LINK_DOWN)
    assert len(applied) == 4                                      # both NCPs' maps changed
    assert '\t\tip daddr { 10.0.0.2 } fwd to "ncp1-eth3"\n' in applied[2]   # ncf2 only
    assert '\t\tip daddr { 10.0.0.1 } fwd to "ncp2-eth3"\n' in applied[3]
    for sw, d in dps.items():
        tables[sw].apply_all(d.sent[sent_before[sw]:])
    assert tables["ncf1"].lookup(ipv4("10.0.0.2", in_port=1)) == [1]  # around, via ncp1
    port_status(2, 0, reason=ofp.OFPPR_DELETE)                    # teardown: ignored
    assert len(applied) == 4


def test_host_ports_going_down_are_not_failures():
    g = build_ddc(2, 2, 2, host_rate_mbps=20, scheduler="none")
    p = make_policy("ddc", g)
    connect_all(g, p)
    assert p.port_status(dpid(g, "ncp1"), 1, False, 1.0) == []   # h1's port: teardown
    assert p.down_ports == set() and p.nft_ruleset("ncp1") == DDC_NCP1


def test_scheduled_ddc_link_down_leaves_the_dead_uplink_out_of_the_voq_spray():
    g = build_ddc(2, 2, 2, host_rate_mbps=20)
    p = make_policy("ddc", g)
    connect_all(g, p)
    p.port_status(dpid(g, "ncp1"), 3, False, 1.0)   # ncp1-eth3 (to ncf1) down
    text = p.nft_ruleset("ncp1")
    assert 'ip daddr { 10.0.0.3, 10.0.0.4 } fwd to "ncp1-eth4"' in text
    assert '"ncp1-eth3"' not in text and 'fwd to "ncp1-vq"' in text
