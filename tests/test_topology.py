"""Topology models: counts, ports, addresses, routes, oversubscription, bisection, round trip."""
import json

import pytest

from topologies.shaping import plan_shaping, shape_lines
from topologies import model
from topologies.leafspine import build_leaf_spine
from topologies.single import build_single_switch


def test_leaf_spine_shape():
    g = build_leaf_spine(spines=4, leaves=8, hosts_per_leaf=4, host_rate_mbps=20, fabric_rate_mbps=20)
    assert len(model.hosts(g)) == 32
    assert len(model.switches(g, "leaf")) == 8 and len(model.switches(g, "spine")) == 4
    assert len(model.fabric_links(g)) == 32
    dpids = [g.nodes[s]["dpid"] for s in model.switches(g)]
    assert len(set(dpids)) == len(dpids) and min(dpids) > 0
    ips = [g.nodes[h]["ip"] for h in model.hosts(g)]
    macs = [g.nodes[h]["mac"] for h in model.hosts(g)]
    assert len(set(ips)) == 32 and len(set(macs)) == 32
    # hosts numbered leaf by leaf, on the leaf's first ports
    assert model.attachment(g, "h5") == ("l2", 1)
    for sw in model.switches(g):
        ports = [model.port(g, sw, n) for n in g.neighbors(sw)]
        assert sorted(ports) == list(range(1, len(ports) + 1))


def test_ecmp_next_hops():
    g = build_leaf_spine(2, 2, 2, 20, 20)
    assert model.next_hops(g, "l1", "h3") == [3, 4]      # both uplinks
    assert model.next_hops(g, "l1", "h2") == [2]         # local host port
    assert model.next_hops(g, "s1", "h3") == [2]         # down to l2
    g.remove_edge("l2", "s2")                            # a failed link leaves one path
    assert model.next_hops(g, "l1", "h3") == [3]


@pytest.mark.parametrize("spines, hpl, host, fab, ratio, bisection", [
    (2, 2, 20, 20, 1.0, 40.0),    # non-blocking
    (1, 4, 20, 20, 4.0, 20.0),    # 4:1 oversubscribed
    (2, 4, 10, 40, 0.5, 40.0),    # host-limited
])
def test_oversubscription_and_bisection(spines, hpl, host, fab, ratio, bisection):
    g = build_leaf_spine(spines, 2, hpl, host, fab)
    assert model.oversubscription(g, "leaf") == pytest.approx(ratio)
    assert model.bisection_mbps(g) == pytest.approx(bisection)


def test_single_switch_is_non_blocking():
    g = build_single_switch(8, 20)
    assert model.bisection_mbps(g) == pytest.approx(80.0)
    assert model.next_hops(g, "sw1", "h8") == [8]


def test_description_round_trip():
    g = build_leaf_spine(2, 3, 2, 25, 50)
    desc = json.loads(json.dumps(model.to_description(g)))
    g2 = model.from_description(desc)
    assert model.to_description(g2) == desc
    assert model.setup_table(g2) == model.setup_table(g)


def test_bad_builder_arguments():
    with pytest.raises(ValueError, match="spines"):
        build_leaf_spine(0, 2, 2, 20, 20)
    with pytest.raises(ValueError, match="hosts"):
        build_single_switch(1, 20)


def test_shaping_covers_every_interface_once():
    g = build_leaf_spine(2, 2, 2, 20, 40, queue_packets=50)
    plan = plan_shaping(g)
    roots = [line for lines in plan.values() for line in lines if "root" in line]
    assert len(roots) == 2 * g.number_of_edges()
    assert any("dev h1-eth0" in l for l in plan["h1"])
    assert any("dev l1-eth3" in l and "40mbit" in l for l in plan[""])
    lines = shape_lines("x-eth0", 20, 7)
    assert sum(l.endswith("pfifo limit 7") for l in lines) == 2     # data and ACK queues
    assert any("flowid 1:10" in l for l in lines)                  # pure ACKs go first


def test_names_match_cleanup_patterns():
    g = build_leaf_spine(2, 2, 2, 20, 20)
    assert all(model.SWITCH_NAME.match(s) for s in model.switches(g))
    assert all(model.INTF_NAME.match(f"{h}-eth0") for h in model.hosts(g))
    assert not model.SWITCH_NAME.match("br-lan")
