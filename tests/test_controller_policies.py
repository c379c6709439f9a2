"""Policies against FAKE switches: fabric + policy + packet -> output ports. No root, no OVS."""
from __future__ import annotations

from typing import Any, ClassVar

import pytest

from controller.policies import POLICIES, Policy, Stats, make_policy
from controller.policies.ecmp import EcmpPolicy
from topologies.errors import SpecError
from tests.fake_switch import FakeDatapath, FakeFlowTable, FakeSwitchError
from topologies.leafspine import build_leaf_spine
from topologies.model import attachment, from_description, switches, to_description
from topologies.single import build_single_switch


def ipv4(dst: str, in_port: int = 1) -> dict:
    return {"in_port": in_port, "eth_type": 0x0800, "ipv4_src": "10.0.0.1", "ipv4_dst": dst,
            "ip_proto": 6}


def tables(g, policy: Policy) -> dict[str, FakeFlowTable]:
    """Every switch of the fabric, connected once, with the policy's state applied."""
    out = {}
    for sw in switches(g):
        dp = FakeDatapath(g.nodes[sw]["dpid"])
        out[sw] = FakeFlowTable(dp).apply_all(policy.switch_up(dp, 0.0))
    return out


@pytest.fixture
def fabric():
    return build_leaf_spine(2, 2, 2, host_rate_mbps=10, fabric_rate_mbps=10)


@pytest.fixture
def ecmp_tables(fabric):
    return tables(fabric, make_policy("ecmp", fabric, {}))


def test_registry_knows_ecmp():
    assert POLICIES["ecmp"] is EcmpPolicy
    assert EcmpPolicy.name == "ecmp"


def test_leaf_sprays_remote_traffic_over_both_uplinks(ecmp_tables):
    # l1: hosts h1,h2 on ports 1,2; uplinks to s1,s2 on ports 3,4
    assert ecmp_tables["l1"].lookup(ipv4("10.0.0.3")) == [3, 4]
    assert ecmp_tables["l1"].lookup(ipv4("10.0.0.4", in_port=2)) == [3, 4]


def test_leaf_delivers_local_host_on_its_port(ecmp_tables):
    assert ecmp_tables["l1"].lookup(ipv4("10.0.0.2")) == [2]
    assert ecmp_tables["l2"].lookup(ipv4("10.0.0.3", in_port=3)) == [1]


def test_spine_sends_down_the_right_port(ecmp_tables):
    # a spine's port i goes to leaf i: h3 (on l2) is behind port 2
    for spine in ("s1", "s2"):
        assert ecmp_tables[spine].lookup(ipv4("10.0.0.3")) == [2]
        assert ecmp_tables[spine].lookup(ipv4("10.0.0.1", in_port=2)) == [1]


def test_arp_unknown_and_ipv6_are_dropped(ecmp_tables):
    arp = {"in_port": 1, "eth_type": 0x0806, "arp_tpa": "10.0.0.3"}
    for table in ecmp_tables.values():
        assert table.lookup(arp) == []
        assert table.lookup(ipv4("10.0.9.9")) == []
        assert table.lookup({"in_port": 1, "eth_type": 0x86DD}) == []


def test_no_flood_or_controller_output_anywhere(ecmp_tables):
    ofp = FakeDatapath(1).ofproto
    for table in ecmp_tables.values():
        for f in table.flows:
            for a in f.actions:
                assert getattr(a, "port", 0) not in (ofp.OFPP_FLOOD, ofp.OFPP_ALL,
                                                     ofp.OFPP_CONTROLLER, ofp.OFPP_IN_PORT)
        assert any(f.priority == 0 and f.match == {} and f.actions == [] for f in table.flows)


def test_groups_are_deduplicated_per_port_set(fabric, ecmp_tables):
    # l1 reaches h3 and h4 over the same uplinks: one select group serves both
    assert len(ecmp_tables["l1"].groups) == 1
    gtype, buckets = ecmp_tables["l1"].groups[1]
    assert gtype == FakeDatapath(1).ofproto.OFPGT_SELECT
    assert [(b.weight, b.watch_port) for b in buckets] == [(1, 3), (1, 4)]
    assert ecmp_tables["s1"].groups == {}


def test_every_host_reaches_every_host_by_walking_the_tables(fabric, ecmp_tables):
    """Follow every candidate port hop by hop: each path ends at the destination host."""
    hosts = [n for n, d in fabric.nodes(data=True) if d["role"] == "host"]
    for src in hosts:
        for dst in hosts:
            if src == dst:
                continue
            ip = fabric.nodes[dst]["ip"]
            frontier = [attachment(fabric, src)[0]]
            for _ in range(len(fabric)):
                nxt = []
                for sw in frontier:
                    ports = ecmp_tables[sw].lookup(ipv4(ip))
                    assert ports, (src, dst, sw)
                    for p in ports:
                        peer = next(n for n in fabric.neighbors(sw)
                                    if fabric.edges[sw, n]["ports"][sw] == p)
                        if peer == dst:
                            continue
                        assert fabric.nodes[peer]["role"] != "host", (src, dst, sw, p)
                        nxt.append(peer)
                frontier = nxt
                if not frontier:
                    break
            assert not frontier, f"{src}->{dst} did not converge"


def test_reconnection_yields_the_same_table(fabric):
    policy = make_policy("ecmp", fabric, {})
    dp = FakeDatapath(1)
    table = FakeFlowTable(dp).apply_all(policy.switch_up(dp, 0.0))
    first = table.snapshot()
    table.apply_all(policy.switch_up(dp, 5.0))      # same switch comes back with stale state
    assert table.snapshot() == first
    fresh = FakeFlowTable(FakeDatapath(1)).apply_all(policy.switch_up(FakeDatapath(1), 9.0))
    assert fresh.snapshot() == first


def test_switch_up_starts_with_a_wipe(fabric):
    policy = make_policy("ecmp", fabric, {})
    dp = FakeDatapath(3)
    msgs = policy.switch_up(dp, 0.0)
    ofp = dp.ofproto
    assert msgs[0].command == ofp.OFPFC_DELETE and msgs[0].table_id == ofp.OFPTT_ALL
    assert msgs[1].command == ofp.OFPGC_DELETE and msgs[1].group_id == ofp.OFPG_ALL


def test_stale_flows_do_not_survive_reconnection(fabric):
    policy = make_policy("ecmp", fabric, {})
    dp = FakeDatapath(1)
    table = FakeFlowTable(dp)
    from controller import ofmsgs
    table.apply(ofmsgs.flow_add(dp, 500, {"eth_type": 0x0806}, [ofmsgs.output(dp, 1)]))
    table.apply_all(policy.switch_up(dp, 0.0))
    assert table.lookup({"in_port": 2, "eth_type": 0x0806}) == []


def test_fake_table_rejects_flow_before_its_group(fabric):
    """The fake behaves like OVS here, which is why groups go before the flows that use them."""
    from controller import ofmsgs
    dp = FakeDatapath(1)
    with pytest.raises(FakeSwitchError, match="BAD_OUT_GROUP"):
        FakeFlowTable(dp).apply(ofmsgs.flow_add(dp, 1, {"eth_type": 0x0800},
                                                [ofmsgs.group_action(dp, 7)]))
    with pytest.raises(FakeSwitchError, match="PREREQ"):
        FakeFlowTable(dp).apply(ofmsgs.flow_add(dp, 1, {"ipv4_dst": "10.0.0.1"}, []))


def test_single_switch_fabric(fabric):
    g = build_single_switch(4, host_rate_mbps=10)
    t = tables(g, make_policy("ecmp", g, {}))["sw1"]
    assert [t.lookup(ipv4(f"10.0.0.{i}")) for i in range(1, 5)] == [[1], [2], [3], [4]]
    assert t.groups == {}


def test_policy_reads_the_json_description(fabric):
    g = from_description(to_description(fabric))
    assert tables(g, make_policy("ecmp", g, {}))["l2"].lookup(ipv4("10.0.0.1")) == [3, 4]


def test_bigger_fabric_uses_all_spines():
    g = build_leaf_spine(4, 3, 2, host_rate_mbps=10, fabric_rate_mbps=10)
    t = tables(g, make_policy("ecmp", g, None))
    assert t["l1"].lookup(ipv4("10.0.0.6")) == [3, 4, 5, 6]
    assert t["s3"].lookup(ipv4("10.0.0.6")) == [3]


def test_unknown_policy_names_it_and_lists_known(fabric):
    with pytest.raises(SpecError) as err:
        make_policy("hedera-typo", fabric, {})
    assert err.value.key == "policy"
    assert "hedera-typo" in str(err.value) and "ecmp" in str(err.value)


def test_unknown_param_names_the_key(fabric):
    with pytest.raises(SpecError) as err:
        make_policy("ecmp", fabric, {"bogus_knob": 3})
    assert "bogus_knob" in err.value.key and "bogus_knob" in str(err.value)


def test_params_must_be_a_table(fabric):
    with pytest.raises(SpecError):
        make_policy("ecmp", fabric, ["x"])  # type: ignore[arg-type]


def test_param_types_are_checked_against_defaults(fabric):
    class Tuned(Policy):
        PARAMS: ClassVar[dict[str, Any]] = {"threshold": 0.5, "enabled": True}

        def switch_state(self, dp, switch, now):
            return []

    assert Tuned(fabric, {"threshold": 1}).params == {"threshold": 1, "enabled": True}
    with pytest.raises(SpecError, match="threshold"):
        Tuned(fabric, {"threshold": "high"})
    with pytest.raises(SpecError, match="enabled"):
        Tuned(fabric, {"enabled": 1})


def test_base_defaults(fabric):
    policy = make_policy("ecmp", fabric, {})
    assert policy.interval_s is None
    assert policy.tick(1.0, Stats()) == []
    assert policy.switch_name(1) == "l1" and policy.switch_name(99) is None
    with pytest.raises(KeyError):
        policy.switch_up(FakeDatapath(99), 0.0)
