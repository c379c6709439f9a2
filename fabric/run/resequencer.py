"""The DDC's egress reassembly, as a pure state machine: packets in, packets out in order.

A real DDC's egress NCP delivers the cells of each ingress in order, so hosts never see the
spraying. Here the ingress NCP stamps every fabric-bound IPv4 packet with a sequence number per
(ingress NCP, destination host) in its IPv4 ID field (controller.nftables.voq_ruleset); the
receiving host's namespace queues those packets to user space (fabric.run.reseqd) before its TCP
sees them, and this module decides, per stream (destination host x ingress NCP), when each one
may go on:

- seq == expected: released, with every held packet now contiguous;
- seq behind expected (mod 2^16, within `window`): released at once, counted `late`;
- seq ahead (within `window`): held until the gap fills;
- a held packet older than `hold_timeout_ms`, or a full hold buffer: the gap is skipped
  (counted: `gaps`, `gap_seqs`), the held packets released in order up to the next gap;
- anything further away than `window` either way (the stamping table was replaced, counters
  restarted): resync to it (counted), after releasing what was held.

Packets are opaque handles (the adapter's NFQUEUE ids); time is passed in explicitly, so the
policy is tested with fake packets and a fake clock (tests/test_resequencer.py).
"""
from __future__ import annotations

import random
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Hashable

SEQ_MOD = 1 << 16
HALF = SEQ_MOD // 2
HOLD_SAMPLES_MAX = 100_000  # hold times kept for percentiles (a uniform reservoir beyond)


@dataclass(frozen=True)
class ReseqParams:
    """Tuning of the reassembly: how long a gap may hold packets back, how many it may hold."""
    hold_timeout_ms: float = 50.0
    hold_packets: int = 512  # per stream; a fuller buffer skips the gap at once
    window: int = 4096  # seq distance beyond which a packet means a reset, not reordering

    def __post_init__(self) -> None:
        if not 0 < self.hold_timeout_ms <= 10_000:
            raise ValueError(f"hold_timeout_ms must be in (0, 10000], got {self.hold_timeout_ms}")
        if not 1 <= self.hold_packets <= 65_536:
            raise ValueError(f"hold_packets must be in [1, 65536], got {self.hold_packets}")
        if not 1 <= self.window < HALF:
            raise ValueError(f"window must be in [1, {HALF}), got {self.window}")


@dataclass
class ReseqStats:
    """What one host's resequencing did (counts of packets unless said otherwise)."""
    seen: int = 0
    unsequenced: int = 0  # from a source not in the map (same NCP): passed through at once
    in_order: int = 0  # released on arrival, seq == expected
    held: int = 0  # held for a gap
    released_after_hold: int = 0
    late: int = 0  # behind expected: released at once (its gap was already skipped)
    duplicates: int = 0  # a seq already held: released at once
    gaps: int = 0  # gaps skipped (timeout or full buffer)
    gap_seqs: int = 0  # sequence numbers skipped in them (lost, or arriving later as `late`)
    timeouts: int = 0  # gaps skipped because a held packet waited hold_timeout_ms
    overflows: int = 0  # gaps skipped because the hold buffer was full
    resyncs: int = 0
    flushed: int = 0  # held packets released at shutdown
    hold_ms_max: float = 0.0
    hold_samples_ms: list[float] = field(default_factory=list, repr=False)
    _hold_count: int = field(default=0, repr=False)

    def add_hold(self, ms: float, rng: random.Random) -> None:
        self._hold_count += 1
        self.hold_ms_max = max(self.hold_ms_max, ms)
        if len(self.hold_samples_ms) < HOLD_SAMPLES_MAX:
            self.hold_samples_ms.append(ms)
        else:
            j = rng.randrange(self._hold_count)
            if j < HOLD_SAMPLES_MAX:
                self.hold_samples_ms[j] = ms

    def merge(self, other: ReseqStats) -> None:
        for name, value in asdict(other).items():
            if name == "hold_samples_ms":
                self.hold_samples_ms.extend(other.hold_samples_ms)
            elif name == "hold_ms_max":
                self.hold_ms_max = max(self.hold_ms_max, other.hold_ms_max)
            else:
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, Any]:
        """JSON form: the counters and the hold time's p50/p99/max in ms."""
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")
               and k != "hold_samples_ms"}
        out["hold_ms_p50"] = percentile(self.hold_samples_ms, 50)
        out["hold_ms_p99"] = percentile(self.hold_samples_ms, 99)
        out["hold_ms_max"] = round(self.hold_ms_max, 3)
        return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0.0 for no values), rounded to microseconds."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, -(-len(ordered) * q // 100) - 1))
    return round(ordered[int(k)], 3)


class _Stream:
    """One (destination host, ingress NCP) sequence."""
    __slots__ = ("arrivals", "expected", "held")

    def __init__(self) -> None:
        self.expected = 0  # the stamping counters start at 0
        self.held: dict[int, tuple[Any, float]] = {}  # seq -> (handle, arrival s)
        self.arrivals: deque[tuple[float, int]] = deque()  # (arrival s, seq), oldest first


class HostResequencer:
    """Every stream towards one host. `packet` and `expire` return the handles to release, in
    the order they must be delivered."""

    def __init__(self, params: ReseqParams, seed: int = 0):
        self.params = params
        self.streams: dict[Hashable, _Stream] = {}
        self.stats = ReseqStats()
        self.n_held = 0  # packets held over all streams
        self._rng = random.Random(seed)

    def packet(self, stream: Hashable | None, seq: int, handle: Any, now_s: float) -> list[Any]:
        """A packet arrived: `stream` is its ingress NCP (None: unsequenced), `seq` its stamp."""
        st = self.stats
        st.seen += 1
        if stream is None:
            st.unsequenced += 1
            return [handle]
        s = self.streams.get(stream)
        if s is None:
            s = self.streams[stream] = _Stream()
        ahead = (seq - s.expected) % SEQ_MOD
        if ahead == 0:
            st.in_order += 1
            s.expected = (seq + 1) % SEQ_MOD
            out = [handle]
            if s.held:
                self._drain(s, now_s, out)
            return out
        window = self.params.window
        if ahead < HALF and ahead <= window:
            if seq in s.held:
                st.duplicates += 1
                return [handle]
            st.held += 1
            self.n_held += 1
            s.held[seq] = (handle, now_s)
            s.arrivals.append((now_s, seq))
            if len(s.held) > self.params.hold_packets:
                st.overflows += 1
                out = []
                self._skip(s, now_s, out)
                return out
            return []
        if ahead >= HALF and SEQ_MOD - ahead <= window:
            st.late += 1
            return [handle]
        # far away either way: the counters restarted (or a long loss); start again from it
        st.resyncs += 1
        out = self._flush(s, now_s)
        s.expected = (seq + 1) % SEQ_MOD
        st.in_order += 1
        out.append(handle)
        return out

    def expire(self, now_s: float) -> list[Any]:
        """Skip the gaps whose oldest held packet waited hold_timeout_ms; release what follows."""
        limit = now_s - self.params.hold_timeout_ms / 1000.0
        out: list[Any] = []
        if not self.n_held:
            return out
        for s in self.streams.values():
            while s.held:
                self._trim(s)
                if s.arrivals[0][0] > limit:
                    break
                self.stats.timeouts += 1
                self._skip(s, now_s, out)
        return out

    def next_deadline(self) -> float | None:
        """When expire() next has work (monotonic s), None if nothing is held."""
        best = None
        if not self.n_held:
            return None
        for s in self.streams.values():
            if s.held:
                self._trim(s)
                t = s.arrivals[0][0]
                if best is None or t < best:
                    best = t
        return None if best is None else best + self.params.hold_timeout_ms / 1000.0

    def held_count(self) -> int:
        return self.n_held

    def flush(self, now_s: float) -> list[Any]:
        """Release everything held, in sequence order per stream (at shutdown)."""
        out: list[Any] = []
        for s in self.streams.values():
            n = len(s.held)
            out += self._flush(s, now_s)
            self.stats.flushed += n
        return out

    # -- internals ------------------------------------------------------------------------

    def _trim(self, s: _Stream) -> None:
        """Drop arrival records of packets no longer held (released since)."""
        arrivals, held = s.arrivals, s.held
        while arrivals and (arrivals[0][1] not in held or held[arrivals[0][1]][1] != arrivals[0][0]):
            arrivals.popleft()

    def _drain(self, s: _Stream, now_s: float, out: list[Any]) -> None:
        held, st = s.held, self.stats
        while s.expected in held:
            handle, t = held.pop(s.expected)
            self.n_held -= 1
            out.append(handle)
            st.released_after_hold += 1
            st.add_hold((now_s - t) * 1000.0, self._rng)
            s.expected = (s.expected + 1) % SEQ_MOD
        if not held:
            s.arrivals.clear()

    def _skip(self, s: _Stream, now_s: float, out: list[Any]) -> None:
        """Give up on the gap before the lowest held seq, release from there in order."""
        first = min(s.held, key=lambda q: (q - s.expected) % SEQ_MOD)
        self.stats.gaps += 1
        self.stats.gap_seqs += (first - s.expected) % SEQ_MOD
        s.expected = first
        self._drain(s, now_s, out)

    def _flush(self, s: _Stream, now_s: float) -> list[Any]:
        out: list[Any] = []
        for seq in sorted(s.held, key=lambda q: (q - s.expected) % SEQ_MOD):
            handle, t = s.held[seq]
            out.append(handle)
            self.stats.released_after_hold += 1
            self.stats.add_hold((now_s - t) * 1000.0, self._rng)
        self.n_held -= len(s.held)
        s.held.clear()
        s.arrivals.clear()
        return out
