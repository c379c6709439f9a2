"""The ideal fluid model on cases solved by hand."""
import math

import pytest

from fabric.analysis.ideal import (WireModel, ecmp_average, equal_cost_paths, fct_slowdown, ideal_plan,
                                   max_min_rates, spread_shares)
from topologies.leafspine import build_leaf_spine
from topologies.single import build_single_switch
from traffic.collectives import ring_allreduce
from traffic.plan import Transfer, TrafficPlan

C = 10e6          # 10 Mbit/s links
MB = 1_000_000
BARE = WireModel.none()


def plan(*transfers, collectives=()):
    return TrafficPlan("t", 1, tuple(transfers), tuple(collectives))


def star(n=4):
    return build_single_switch(n, host_rate_mbps=C / 1e6)


def test_goodput_factor_is_mtu_1500_with_timestamps():
    w = WireModel()
    assert w.goodput_factor == pytest.approx(1448 / 1514)
    assert w.reverse_cost == pytest.approx(66 / 2 / 1448)
    assert BARE.goodput_factor == 1 and BARE.reverse_cost == 0


def test_flow_alone_takes_size_over_rate():
    r = ideal_plan(star(), plan(Transfer(0, "h1", "h2", MB)), wire=BARE)
    f = r.flows[0]
    assert f.fct_s == pytest.approx(MB * 8 / C) and f.alone_fct_s == pytest.approx(f.fct_s)


def test_flow_alone_pays_wire_overhead_and_latency():
    w = WireModel()
    r = ideal_plan(star(), plan(Transfer(0, "h1", "h2", MB)), wire=w)
    handshake = 2 * 2 * 74 * 8 / C            # SYN and SYN-ACK over two links
    tail = 1514 * 8 / C                       # last frame crosses the second link
    data = (MB + 100) * 8 * 1514 / 1448 / C
    assert r.flows[0].fct_s == pytest.approx(handshake + data + tail)


def test_two_flows_share_one_link_max_min():
    # h1->h3 (1 MB) and h2->h3 (3 MB) share sw1->h3: both at C/2 until the small one ends at
    # 2*1MB/C; the big one then has the link alone: ends at (1+3) MB / C.
    r = ideal_plan(star(), plan(Transfer(0, "h1", "h3", MB), Transfer(1, "h2", "h3", 3 * MB)),
                   wire=BARE)
    assert r.flows[0].end_s == pytest.approx(2 * MB * 8 / C)
    assert r.flows[1].end_s == pytest.approx(4 * MB * 8 / C)
    assert r.flows[1].alone_fct_s == pytest.approx(3 * MB * 8 / C)


def test_start_offset_and_dependency_chain_with_gap():
    # 0: h1->h2 at t=0.5; 1: h2->h3 after 0 arrived, plus 0.25 s of compute
    r = ideal_plan(star(), plan(Transfer(0, "h1", "h2", MB, start_s=0.5),
                                Transfer(1, "h2", "h3", MB, after=(0,), gap_s=0.25)), wire=BARE)
    t = MB * 8 / C
    assert r.flows[0].ready_s == 0.5 and r.flows[0].end_s == pytest.approx(0.5 + t)
    assert r.flows[1].ready_s == pytest.approx(0.5 + t + 0.25)
    assert r.flows[1].end_s == pytest.approx(0.5 + 2 * t + 0.25)


def test_progressive_filling_textbook_case():
    # link x (cap 1) carries A and B, link y (cap 2) carries A and C: A=B=0.5, C=1.5
    rates = max_min_rates({"A": {"x": 1, "y": 1}, "B": {"x": 1}, "C": {"y": 1}},
                          {"x": 1.0, "y": 2.0})
    assert rates == pytest.approx({"A": 0.5, "B": 0.5, "C": 1.5})


def test_opposite_flows_pay_for_each_others_acks():
    w = WireModel()
    r = ideal_plan(star(2), plan(Transfer(0, "h1", "h2", MB), Transfer(1, "h2", "h1", MB)),
                   wire=WireModel(syn_frame_bytes=0, header_bytes=0))
    rate = C / (w.forward_cost + w.reverse_cost)
    assert r.flows[0].end_s == pytest.approx(MB * 8 / rate + 1514 * 8 / C)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_ring_allreduce_on_one_switch_meets_nccl_tests_bound(n):
    hosts = [f"h{i + 1}" for i in range(n)]
    size = 8 * MB
    ts, coll = ring_allreduce(hosts, size, "ar")
    r = ideal_plan(star(n), plan(*ts, collectives=[coll]), wire=BARE)
    bound = size * 8 / C * 2 * (n - 1) / n
    assert r.jct_s["ar"] == pytest.approx(bound)


def test_ring_allreduce_with_tcp_overhead():
    # every NIC carries its data one way and its predecessor's ACKs the other way
    n, size = 4, 8 * MB
    hosts = [f"h{i + 1}" for i in range(n)]
    ts, coll = ring_allreduce(hosts, size, "ar")
    w = WireModel(syn_frame_bytes=0, header_bytes=0)
    r = ideal_plan(star(n), plan(*ts, collectives=[coll]), wire=w)
    step = (size / n) * 8 * (w.forward_cost + w.reverse_cost) / C + 1514 * 8 / C
    assert r.jct_s["ar"] == pytest.approx(2 * (n - 1) * step)


def leafspine():
    #  h1 h2 on l1, h3 h4 on l2, two spines; all links C
    return build_leaf_spine(2, 2, 2, C / 1e6, C / 1e6)


def test_equal_cost_paths_and_spread_shares():
    g = leafspine()
    paths = equal_cost_paths(g, "h1", "h3")
    assert paths == [("h1", "l1", "s1", "l2", "h3"), ("h1", "l1", "s2", "l2", "h3")]
    assert spread_shares(paths) == {("h1", "l1"): 1, ("l1", "s1"): 0.5, ("l1", "s2"): 0.5,
                                    ("s1", "l2"): 0.5, ("s2", "l2"): 0.5, ("l2", "h3"): 1}
    assert equal_cost_paths(g, "h1", "h2") == [("h1", "l1", "h2")]


def test_spread_vs_pinned_collision():
    g = leafspine()
    p = plan(Transfer(0, "h1", "h3", MB), Transfer(1, "h2", "h4", MB))
    t = MB * 8 / C
    spread = ideal_plan(g, p, wire=BARE)
    assert [f.fct_s for f in spread.flows.values()] == pytest.approx([t, t])
    same = ideal_plan(g, p, "pinned", lambda tr, paths: 0, wire=BARE)
    assert [f.fct_s for f in same.flows.values()] == pytest.approx([2 * t, 2 * t])
    apart = ideal_plan(g, p, "pinned", lambda tr, paths: tr.id, wire=BARE)
    assert [f.fct_s for f in apart.flows.values()] == pytest.approx([t, t])
    avg = ecmp_average(g, p, samples=32, seed=1, wire=BARE)
    assert avg.view == "ecmp-average"
    assert t < avg.flows[0].fct_s < 2 * t  # some samples collide, some do not


def test_busy_links_follow_saturation():
    r = ideal_plan(star(), plan(Transfer(0, "h1", "h2", MB), Transfer(1, "h3", "h4", MB // 10)),
                   wire=BARE)
    busy = r.busy_links(min_s=0.5)
    assert set(busy) == {("h1", "sw1"), ("sw1", "h2")}
    assert busy[("h1", "sw1")] == pytest.approx(MB * 8 / C)
    assert r.active_utilisation(("h1", "sw1")) == pytest.approx(1.0)


def test_active_utilisation_of_a_link_shared_with_a_slower_bottleneck():
    # h1->h3 and h2->h3 share sw1->h3 (each C/2); h1->h4 also leaves h1: h1's uplink carries
    # C/2 + C/2 while both run, so it is full whenever active; sw1->h4 carries only C/2
    r = ideal_plan(star(), plan(Transfer(0, "h1", "h3", MB), Transfer(1, "h2", "h3", MB),
                                Transfer(2, "h1", "h4", MB)), wire=BARE)
    assert r.active_utilisation(("h1", "sw1")) == pytest.approx(1.0)
    assert r.active_utilisation(("sw1", "h4")) < 1.0
    assert math.isnan(r.active_utilisation(("sw1", "h1")))


def test_peak_forwarding_counts_switch_egress():
    # two 1 MB flows through one switch, alone on their links: the switch forwards 2 C at peak
    r = ideal_plan(star(), plan(Transfer(0, "h1", "h2", MB), Transfer(1, "h3", "h4", MB)),
                   wire=BARE)
    assert r.peak_forwarding_bps == pytest.approx(2 * C)


def test_fct_slowdown_is_clamped_at_one():
    assert fct_slowdown(2.0, 1.0) == 2.0
    assert fct_slowdown(0.9, 1.0) == 1.0
    assert math.isnan(fct_slowdown(1.0, 0.0))
