"""`priority` against FAKE switches (DSCP marking at the ingress, ECMP behind it), and the HTB
classes it asks the engine for. No root, no OVS."""
from __future__ import annotations

import random

import pytest

from controller.policies import make_policy
from controller.policies.priority import port_range_masks
from topologies.errors import SpecError
from topologies.shaping import QueueClasses, plan_shaping, shape_lines
from tests.fake_switch import FakeFabric
from topologies.leafspine import build_leaf_spine
from topologies.model import hosts


def ip(g, h):
    return g.nodes[h]["ip"]


def pkt(g, src, dst, sport=40000, dport=5201, dscp=0):
    return {"eth_type": 0x0800, "ip_proto": 6, "ipv4_src": ip(g, src), "ipv4_dst": ip(g, dst),
            "tcp_src": sport, "tcp_dst": dport, "ip_dscp": dscp}


@pytest.fixture
def g():
    return build_leaf_spine(2, 2, 2, host_rate_mbps=20, fabric_rate_mbps=20)


def marks_on_arrival(fab: FakeFabric, g, src, packet) -> set[int]:
    """DSCP of the packet on every switch it traverses after the ingress, for all ECMP walks."""
    seen = set()
    for walk in fab.walks(src, packet):
        assert walk[-1] != "DROP", walk
        p = dict(packet)
        (first,) = list(g.neighbors(src))
        in_port = g.edges[src, first]["ports"][first]
        for here, nxt in zip(walk, walk[1:]):
            p = fab.tables[here].process({**p, "in_port": in_port}).packet
            seen.add(p["ip_dscp"])
            if nxt in fab.tables:
                in_port = g.edges[here, nxt]["ports"][nxt]
    return seen


def test_latency_hosts_are_marked_both_ways_and_everything_else_cleared(g):
    fab = FakeFabric(g, make_policy("priority", g, {"latency_hosts": ["h1"]}))
    assert marks_on_arrival(fab, g, "h1", pkt(g, "h1", "h3")) == {46}     # from a latency host
    assert marks_on_arrival(fab, g, "h4", pkt(g, "h4", "h1")) == {46}     # to it
    assert marks_on_arrival(fab, g, "h2", pkt(g, "h2", "h3")) == {0}      # bulk
    # a host cannot promote itself: its own DSCP 46 is re-marked 0 at the ingress
    assert marks_on_arrival(fab, g, "h2", pkt(g, "h2", "h4", dscp=46)) == {0}


def test_port_ranges_select_the_latency_class(g):
    fab = FakeFabric(g, make_policy("priority", g, {"latency_tcp_ports": [[7000, 7099]]}))
    assert marks_on_arrival(fab, g, "h1", pkt(g, "h1", "h3", dport=7050)) == {46}
    assert marks_on_arrival(fab, g, "h3", pkt(g, "h3", "h1", sport=7099)) == {46}  # replies
    assert marks_on_arrival(fab, g, "h1", pkt(g, "h1", "h3", dport=7100)) == {0}
    assert marks_on_arrival(fab, g, "h1", pkt(g, "h1", "h3", dport=6999)) == {0}


def test_forwarding_is_ecmp_behind_the_classifier(g):
    ecmp = FakeFabric(g, make_policy("ecmp", g, {}))
    prio = FakeFabric(g, make_policy("priority", g, {"latency_hosts": ["h2"]}))
    for src in hosts(g):
        for dst in hosts(g):
            if src != dst:
                p = pkt(g, src, dst)
                assert prio.walks(src, p) == ecmp.walks(src, p)
    assert prio.tables["l1"].lookup({"in_port": 1, "eth_type": 0x0806}) == []   # ARP dropped


def test_reconnection_gives_the_same_tables(g):
    policy = make_policy("priority", g, {"latency_hosts": ["h1"], "latency_tcp_ports": [[1, 9]]})
    fab = FakeFabric(g, policy)
    for t in fab.tables.values():
        before = t.snapshot()
        t.apply_all(policy.switch_up(t.dp, 1.0))
        assert t.snapshot() == before


@pytest.mark.parametrize("lo, hi", [(0, 65535), (5201, 5201), (7000, 7099), (1, 2), (1023, 4097)])
def test_port_range_masks_cover_exactly_the_range(lo, hi):
    masks = port_range_masks(lo, hi)
    covered = {p for p in range(65536) if any(p & m == v for v, m in masks)}
    assert covered == set(range(lo, hi + 1))


def test_port_range_masks_random():
    rng = random.Random(5)
    for _ in range(20):
        lo = rng.randrange(65536)
        hi = rng.randrange(lo, 65536)
        masks = port_range_masks(lo, hi)
        for p in {lo, hi, max(0, lo - 1), min(65535, hi + 1), rng.randrange(65536)}:
            assert any(p & m == v for v, m in masks) == (lo <= p <= hi)


def test_queue_classes_follow_the_params(g):
    p = make_policy("priority", g, {"latency_hosts": ["h1"], "scheduling": "weighted",
                                    "latency_share": 0.8, "latency_dscp": 34})
    assert p.queue_classes() == QueueClasses("weighted", 0.8, 34)
    assert make_policy("ecmp", g, {}).queue_classes() is None


@pytest.mark.parametrize("params, key", [
    ({}, "params"),
    ({"latency_hosts": ["h9"]}, "params.latency_hosts[0]"),
    ({"latency_tcp_ports": [[10, 5]]}, "params.latency_tcp_ports[0]"),
    ({"latency_tcp_ports": [7000]}, "params.latency_tcp_ports[0]"),
    ({"latency_hosts": ["h1"], "scheduling": "fifo"}, "params.scheduling"),
    ({"latency_hosts": ["h1"], "latency_share": 1.0}, "params.latency_share"),
    ({"latency_hosts": ["h1"], "latency_dscp": 0}, "params.latency_dscp"),
])
def test_bad_params_name_the_key(g, params, key):
    with pytest.raises(SpecError) as err:
        make_policy("priority", g, params)
    assert err.value.key == key


# ---------------------------------------------------------------- the HTB side

def test_default_shaping_is_unchanged_by_the_classes_option():
    assert shape_lines("x-eth0", 20, 7) == shape_lines("x-eth0", 20, 7, None)
    assert not any("1:12" in line for line in shape_lines("x-eth0", 20, 7))


def _classes(lines):
    """classid -> (rate mbit, prio, quantum) from `class add` lines."""
    out = {}
    for line in lines:
        w = line.split()
        if w[:2] == ["class", "add"]:
            out[w[w.index("classid") + 1]] = (float(w[w.index("rate") + 1].rstrip("mbit")),
                                              int(w[w.index("prio") + 1]) if "prio" in w else None,
                                              int(w[w.index("quantum") + 1]))
    return out


def test_strict_classes_put_latency_first():
    lines = shape_lines("x-eth0", 20, 50, QueueClasses("strict"))
    c = _classes(lines)
    assert c["1:12"][1] == 0 and c["1:11"][1] == 1          # latency served first
    assert c["1:11"][0] == pytest.approx(0.2)               # bulk keeps a 1% floor
    assert c["1:10"][0] + c["1:11"][0] + c["1:12"][0] == pytest.approx(20)
    assert any("match u8 0xb8 0xfc at 1 flowid 1:12" in line for line in lines)   # DSCP 46
    assert sum("pfifo limit 50" in line for line in lines) == 3


def test_weighted_classes_split_rates_and_quanta():
    c = _classes(shape_lines("x-eth0", 20, 50, QueueClasses("weighted", 0.75, 10)))
    assert c["1:12"][1] == c["1:11"][1] == 1
    assert c["1:12"][0] / c["1:11"][0] == pytest.approx(3)
    assert c["1:12"][2] / c["1:11"][2] == pytest.approx(3, rel=0.01)


def test_plan_shaping_applies_the_classes_everywhere(g):
    plan = plan_shaping(g, QueueClasses())
    for key, lines in plan.items():
        roots = sum("root handle 1:" in line for line in lines)
        assert sum("flowid 1:12" in line for line in lines) == roots > 0, key


def test_queue_classes_validate():
    for bad in (dict(scheduling="fifo"), dict(latency_share=0.0), dict(dscp=64)):
        with pytest.raises(ValueError):
            QueueClasses(**bad)
