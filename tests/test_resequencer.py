"""The egress reassembly's state machine (fabric.run.resequencer) on fake packets and a fake clock."""
from __future__ import annotations

import random

import pytest

from fabric.run.resequencer import HostResequencer, ReseqParams, percentile


def feed(r: HostResequencer, seqs: list[int], stream: str | None = "ncp2", t0: float = 0.0,
         dt: float = 0.0001) -> list[int]:
    """Packets with handles = their seqs, 0.1 ms apart; every released handle, in order."""
    out: list[int] = []
    for i, seq in enumerate(seqs):
        out += r.packet(stream, seq, seq, t0 + i * dt)
    return out


def test_in_order_passes_through_without_holding():
    r = HostResequencer(ReseqParams())
    assert feed(r, list(range(100))) == list(range(100))
    assert r.stats.in_order == 100 and r.stats.held == 0 and r.held_count() == 0
    assert r.next_deadline() is None


def test_one_swap_is_held_then_released_in_order():
    r = HostResequencer(ReseqParams())
    assert r.packet("a", 0, "p0", 0.0) == ["p0"]
    assert r.packet("a", 2, "p2", 0.001) == []
    assert r.next_deadline() == pytest.approx(0.001 + 0.050)
    assert r.packet("a", 1, "p1", 0.003) == ["p1", "p2"]
    s = r.stats
    assert (s.in_order, s.held, s.released_after_hold, s.gaps) == (2, 1, 1, 0)
    assert s.as_dict()["hold_ms_max"] == pytest.approx(2.0)


def test_a_burst_reordering_comes_out_in_order():
    rng = random.Random(7)
    seqs = list(range(2000))
    for i in range(0, 2000, 16):  # shuffle within blocks of 16: every packet at most 15 late
        block = seqs[i:i + 16]
        rng.shuffle(block)
        seqs[i:i + 16] = block
    r = HostResequencer(ReseqParams(hold_timeout_ms=1000))
    assert feed(r, seqs) == list(range(2000))
    s = r.stats
    assert s.held > 0 and s.in_order + s.released_after_hold == 2000
    assert r.held_count() == sum(len(st.held) for st in r.streams.values()) == 0
    assert s.gaps == s.late == s.resyncs == 0


def test_a_lost_packet_holds_until_the_timeout_then_the_gap_is_skipped():
    r = HostResequencer(ReseqParams(hold_timeout_ms=10))
    assert feed(r, [0, 1, 3, 4]) == [0, 1]  # 2 is lost
    assert r.expire(0.005) == []
    assert r.next_deadline() == pytest.approx(0.0002 + 0.010)
    assert r.expire(0.0102) == [3, 4]
    assert r.packet("ncp2", 5, 5, 0.011) == [5]
    assert r.packet("ncp2", 2, 2, 0.012) == [2]  # arrives after all: behind, released at once
    s = r.stats
    assert (s.gaps, s.gap_seqs, s.timeouts, s.late, s.released_after_hold) == (1, 1, 1, 1, 2)


def test_a_full_hold_buffer_skips_the_gap_at_once():
    r = HostResequencer(ReseqParams(hold_packets=4))
    assert feed(r, [1, 2, 3, 4]) == []
    assert feed(r, [5, 7]) == [1, 2, 3, 4, 5]
    assert r.stats.overflows == 1 and r.stats.gap_seqs == 1 and r.held_count() == 1


def test_sequence_numbers_wrap_at_65536():
    r = HostResequencer(ReseqParams(window=100))
    r.packet("a", 0, "x", 0.0)
    r.streams["a"].expected = 65534
    seqs = [65534, 0, 65535, 2, 1, 3]
    out = feed(r, seqs, stream="a")
    assert out == [65534, 65535, 0, 1, 2, 3]
    assert r.stats.resyncs == 0 and r.stats.late == 0


def test_a_counter_reset_resyncs_and_releases_what_was_held():
    r = HostResequencer(ReseqParams(window=1000))
    feed(r, list(range(30_000)), stream="a", dt=0.0)
    assert r.packet("a", 30_002, "h", 1.0) == []
    assert r.packet("a", 0, "new0", 1.001) == ["h", "new0"]  # table replaced: counters at 0
    assert r.packet("a", 1, "new1", 1.002) == ["new1"]
    assert r.stats.resyncs == 1 and r.held_count() == 0


def test_a_first_packet_far_from_zero_resyncs():
    r = HostResequencer(ReseqParams())
    assert feed(r, [40_000, 40_001, 40_003, 40_002]) == [40_000, 40_001, 40_002, 40_003]
    assert r.stats.resyncs == 1


def test_unsequenced_sources_pass_at_once_and_streams_are_independent():
    r = HostResequencer(ReseqParams())
    assert r.packet(None, 7, "local", 0.0) == ["local"]
    assert r.packet("a", 1, "a1", 0.0) == []
    assert r.packet("b", 0, "b0", 0.0) == ["b0"]  # b does not wait for a's gap
    assert r.packet("a", 0, "a0", 0.0) == ["a0", "a1"]
    assert r.stats.unsequenced == 1 and r.stats.seen == 4


def test_flush_releases_held_packets_in_sequence_order():
    r = HostResequencer(ReseqParams())
    feed(r, [5, 3, 4], stream="a")
    assert r.flush(0.5) == [3, 4, 5]
    assert r.stats.flushed == 3 and r.held_count() == 0


def test_stats_merge_and_percentiles():
    a, b = HostResequencer(ReseqParams()), HostResequencer(ReseqParams())
    a.packet("x", 1, 1, 0.0)
    a.packet("x", 0, 0, 0.004)
    b.packet("x", 0, 0, 0.0)
    total = a.stats
    total.merge(b.stats)
    d = total.as_dict()
    assert d["seen"] == 3 and d["held"] == 1 and d["hold_ms_p50"] == pytest.approx(4.0)
    assert percentile([], 50) == 0.0 and percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


@pytest.mark.parametrize("bad", [{"hold_timeout_ms": 0}, {"hold_packets": 0},
                                 {"window": 40_000}])
def test_params_are_bounded(bad):
    with pytest.raises(ValueError):
        ReseqParams(**bad)


@pytest.mark.parametrize("seed", range(5))
def test_random_reordering_and_loss_release_every_packet_once(seed):
    """Two streams, 5% lost, local reordering, time moving on: every packet that arrives is
    released exactly once, and apart from `late` ones each stream comes out in order."""
    rng = random.Random(seed)
    r = HostResequencer(ReseqParams(hold_timeout_ms=5, hold_packets=64))
    sent = [(name, q) for q in range(3000) for name in ("a", "b") if rng.random() > 0.05]
    arrivals = sorted(range(len(sent)), key=lambda i: i + rng.uniform(0, 20))
    out, now = [], 0.0
    for i in arrivals:
        now += rng.expovariate(1 / 0.0002)
        out += r.expire(now)
        name, q = sent[i]
        out += r.packet(name, q % 65536, (name, q), now)
        assert r.held_count() == sum(len(s.held) for s in r.streams.values())
    out += r.flush(now)
    assert sorted(out) == sorted(sent)
    for name in ("a", "b"):
        got = [q for n, q in out if n == name]
        inversions = sum(1 for x, y in zip(got, got[1:]) if y < x)
        assert inversions <= r.stats.late
    assert r.stats.seen == len(sent)
