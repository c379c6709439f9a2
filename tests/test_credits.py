"""The DDC's credit allocator (controller.credits), the VOQ shaping text and the rtnetlink
message formats (fabric.run.tcnl): root-free."""
from __future__ import annotations

import struct

import pytest

from controller.credits import CreditAllocator, VoqSample, max_min_fair
from fabric.run import tcnl
from fabric.run.voq import ncp_fabric_bps, voq_table
from topologies.ddc import build_ddc, reassembling, scheduled
from topologies.shaping import voq_lines

MB = 1e6  # bytes/s, for readable rates

BUSY = VoqSample(sent_bytes=10_000, backlog_bytes=3000, throttled=True)
IDLE = VoqSample(sent_bytes=0, backlog_bytes=0, throttled=False)


def test_incast_shares_the_egress_port_equally():
    demands = {(f"ncp{i}", "h1"): float("inf") for i in range(1, 5)}
    rates = max_min_fair(demands, {"h1": 1 * MB}, {f"ncp{i}": 10 * MB for i in range(1, 5)})
    assert all(r == pytest.approx(0.25 * MB) for r in rates.values())


def test_a_small_demand_is_met_and_the_rest_goes_to_the_greedy():
    demands = {("ncp1", "h1"): 0.1 * MB, ("ncp2", "h1"): float("inf"), ("ncp3", "h1"): float("inf")}
    rates = max_min_fair(demands, {"h1": 1 * MB}, {"ncp1": 9 * MB, "ncp2": 9 * MB, "ncp3": 9 * MB})
    assert rates[("ncp1", "h1")] == pytest.approx(0.1 * MB)
    assert rates[("ncp2", "h1")] == pytest.approx(0.45 * MB)
    assert rates[("ncp3", "h1")] == pytest.approx(0.45 * MB)


def test_an_ingress_ncp_bottleneck_frees_port_capacity_for_others():
    """ncp1's fabric capacity (1 MB/s) is shared by its VOQs to h1 and h2; ncp2's VOQ to h2
    takes what ncp1 cannot use of h2's port."""
    demands = {("ncp1", "h1"): float("inf"), ("ncp1", "h2"): float("inf"),
               ("ncp2", "h2"): float("inf")}
    rates = max_min_fair(demands, {"h1": 1 * MB, "h2": 1 * MB}, {"ncp1": 1 * MB, "ncp2": 5 * MB})
    assert rates[("ncp1", "h1")] == pytest.approx(0.5 * MB)
    assert rates[("ncp1", "h2")] == pytest.approx(0.5 * MB)
    assert rates[("ncp2", "h2")] == pytest.approx(0.5 * MB)
    assert sum(r for (n, d), r in rates.items() if d == "h2") <= 1 * MB * (1 + 1e-9)


def test_allocator_gives_idle_voqs_the_ports_unallocated_rate():
    alloc = CreditAllocator({"h1": 1 * MB, "h2": 1 * MB}, {"ncp1": 5 * MB, "ncp2": 5 * MB})
    rates = alloc.decide({("ncp1", "h1"): BUSY, ("ncp2", "h1"): IDLE, ("ncp2", "h2"): IDLE}, 0.02)
    assert rates[("ncp1", "h1")] == pytest.approx(1 * MB)        # alone on h1: all of it
    assert rates[("ncp2", "h1")] == pytest.approx(0.02 * MB)     # h1 is full: the floor
    assert rates[("ncp2", "h2")] == pytest.approx(1 * MB)        # idle port: line rate at once
    # a second sender towards h1 turns busy: the next decision halves the port
    rates = alloc.decide({("ncp1", "h1"): BUSY, ("ncp2", "h1"): BUSY, ("ncp2", "h2"): IDLE}, 0.02)
    assert rates[("ncp1", "h1")] == pytest.approx(0.5 * MB)
    assert rates[("ncp2", "h1")] == pytest.approx(0.5 * MB)


def test_an_unsaturated_voq_gets_headroom_above_what_it_sent():
    alloc = CreditAllocator({"h1": 1 * MB}, {"ncp1": 5 * MB, "ncp2": 5 * MB})
    light = VoqSample(sent_bytes=2000, backlog_bytes=0, throttled=False)   # 0.1 MB/s
    rates = alloc.decide({("ncp1", "h1"): light, ("ncp2", "h1"): BUSY}, 0.02)
    assert rates[("ncp1", "h1")] == pytest.approx(0.15 * MB)    # 1.5 x what it sent
    assert rates[("ncp2", "h1")] == pytest.approx(0.9 * MB)     # all the light one does not send


def test_every_port_and_ncp_stays_within_capacity_on_random_demands():
    import random
    rng = random.Random(7)
    ports = {f"h{i}": rng.uniform(0.5, 2) * MB for i in range(1, 9)}
    ncps = {f"ncp{i}": rng.uniform(1, 4) * MB for i in range(1, 5)}
    for _ in range(50):
        demands = {(n, h): rng.choice([float("inf"), rng.uniform(0, 1) * MB])
                   for n in ncps for h in ports if rng.random() < 0.5}
        rates = max_min_fair(demands, ports, ncps)
        for h, cap in ports.items():
            assert sum(r for (n, d), r in rates.items() if d == h) <= cap * (1 + 1e-6)
        for n, cap in ncps.items():
            assert sum(r for (m, d), r in rates.items() if m == n) <= cap * (1 + 1e-6)
        for v, r in rates.items():
            assert r <= demands[v] * (1 + 1e-6)
            # max-min: a VOQ below its demand is held by a full port or a full NCP
            if r < demands[v] * (1 - 1e-6):
                port_full = sum(x for (m, d), x in rates.items() if d == v[1]) >= ports[v[1]] * (1 - 1e-6)
                ncp_full = sum(x for (m, d), x in rates.items() if m == v[0]) >= ncps[v[0]] * (1 - 1e-6)
                assert port_full or ncp_full


def test_scheduler_defaults_and_voq_table():
    g = build_ddc(2, 2, 2, host_rate_mbps=20)
    assert scheduled(g) and reassembling(g)
    assert not scheduled(build_ddc(2, 2, 2, host_rate_mbps=20, scheduler="none"))
    assert not reassembling(build_ddc(2, 2, 2, host_rate_mbps=20, reassembly=False))
    assert voq_table(g) == {"ncp1": ["h1", "h2", "h3", "h4"], "ncp2": ["h1", "h2", "h3", "h4"]}
    assert ncp_fabric_bps(g, "ncp1") == pytest.approx(2 * 25 * 1e6 / 8)   # speed-up 1.25
    with pytest.raises(ValueError, match="scheduler"):
        build_ddc(2, 2, 2, host_rate_mbps=20, scheduler="pfc")


def test_voq_lines_one_class_fifo_and_filter_per_destination():
    lines = voq_lines("ncp1-vq", ["10.0.0.3", "10.0.0.4"], 5, 1000)
    assert lines[0] == "qdisc replace dev ncp1-vq root handle 1: htb"
    assert "class add dev ncp1-vq parent 1: classid 1:2 htb rate 5mbit ceil 5mbit" in lines[4]
    assert lines[5] == "qdisc add dev ncp1-vq parent 1:2 handle 102: pfifo limit 1000"
    assert lines[6].endswith("u32 match ip dst 10.0.0.4/32 flowid 1:2")


def test_htb_opt_layout_matches_the_kernels_struct():
    opt = tcnl.htb_opt(625_000, 625_000, 1600, 1514)
    assert len(opt) == 44   # sizeof(struct tc_htb_opt)
    _cell_log, linklayer, _, _, _, rate = struct.unpack_from("=BBHhHI", opt)
    assert (linklayer, rate) == (tcnl.TC_LINKLAYER_ETHERNET, 625_000)
    buffer, cbuffer, quantum = struct.unpack_from("=III", opt, 24)
    assert buffer == cbuffer == int(1600 * 1e9 / 625_000) >> 6   # 2.56 ms in 64 ns ticks
    assert quantum == 1514


def test_parse_class_reads_bytes_backlog_drops_and_overlimits():
    basic = struct.pack("=QI", 123456, 99) + b"\0" * 4
    queue = struct.pack("=IIIII", 2, 3028, 5, 0, 77)
    stats = tcnl._attr(tcnl.TCA_STATS_BASIC, basic) + tcnl._attr(tcnl.TCA_STATS_QUEUE, queue)
    body = (struct.pack("=BBHiIII", 0, 0, 0, 7, 0x10002, 0x10000, 0)
            + tcnl._attr(tcnl.TCA_KIND, b"htb\0") + tcnl._attr(tcnl.TCA_STATS2, stats))
    c = tcnl.parse_class(body)
    assert c == tcnl.ClassStats(0x10002, 123456, 99, 3028, 2, 5, 77)
