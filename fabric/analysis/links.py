"""Per-link byte counters of every switch interface, sampled during a run, and link utilisation.

Why kernel counters: /sys/class/net/<intf>/statistics count what really left an interface,
including traffic that bypasses OVS (nftables per-packet spraying in the DDC fabric), which
OpenFlow port statistics would miss. Switch interfaces live in the root namespace, so one thread
of the engine reads them all; host NICs live in the hosts' namespaces and are not sampled.

``links.csv`` (written into the run directory; a stable format that fabric.compare and the
fidelity checks read; new columns are only ever appended at the end):

    time        epoch seconds (time.time(): the same clock as flows.csv) of the sample
    link        the model edge as "<a>-<b>", a and b as in fabric.json's "links" (e.g. "l1-s1"):
                one name per cable, shared by its two directions
    src, dst    the direction: bytes leaving src's interface towards dst
    tier        the edge's tier in the model: "host" or "fabric"
    rate_mbps   the link's configured line rate (Mbit/s)
    tx_bytes    cumulative tx_bytes of src's interface (since the interface was created)
    tx_dropped  cumulative tx_dropped of src's interface
    intf        the interface read, e.g. "l1-eth3"
    qdisc_dropped  cumulative drops of the interface's egress queues (its root qdisc)
    ovs_rx_dropped cumulative drops of ovs-vswitchd's packet socket on the interface: packets
                arriving on it (direction dst -> src) that the userspace datapath never read
                (both: fabric.analysis.loss; read about once a second, 0 when unreadable)

One row per sampled direction per sample; every switch end of every model edge is a direction
(so both directions of a fabric link, and the switch->host direction of a host link). Samples are
taken when the sampler starts, every `interval_s` (0.25 s), and when it stops.

Utilisation of a direction over a window = bytes sent in the window * 8 / (rate * window length),
a fraction of line rate; p95/max are over the sampling intervals. MMR and Jain's index (docs/metrics.md,
"Benchmark conventions") are computed over the per-direction mean utilisations of one tier.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import networkx as nx

from topologies import model
from topologies.model import intf_name

from fabric.analysis.metrics import percentile

log = logging.getLogger("fabric.linkstats")
COLUMNS = ("time", "link", "src", "dst", "tier", "rate_mbps", "tx_bytes", "tx_dropped", "intf",
           "qdisc_dropped", "ovs_rx_dropped")


@dataclass(frozen=True)
class Direction:
    """One sampled direction of a model edge."""
    link: str
    src: str
    dst: str
    tier: str
    rate_mbps: float
    intf: str


@dataclass(frozen=True)
class LinkSample:
    """One row of links.csv."""
    time: float
    link: str
    src: str
    dst: str
    tier: str
    rate_mbps: float
    tx_bytes: int
    tx_dropped: int
    intf: str = ""
    qdisc_dropped: int = 0
    ovs_rx_dropped: int = 0


def directions(graph: nx.Graph) -> list[Direction]:
    """Every switch end of every edge, in model order."""
    out = []
    for u, v, d in model.iter_links(graph):
        for src, dst in ((u, v), (v, u)):
            if graph.nodes[src]["role"] != model.HOST:
                out.append(Direction(f"{u}-{v}", src, dst, d["tier"], float(d["rate_mbps"]),
                                     intf_name(src, d["ports"][src])))
    return out


# ---------------------------------------------------------------- pure analysis

def read_links_csv(path: Path) -> list[LinkSample]:
    """Rows of a links.csv; a torn last line (crashed run) is skipped."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                out.append(LinkSample(float(row["time"]), row["link"], row["src"], row["dst"],
                                      row["tier"], float(row["rate_mbps"]), int(row["tx_bytes"]),
                                      int(row["tx_dropped"]), row.get("intf") or "",
                                      int(row.get("qdisc_dropped") or 0),
                                      int(row.get("ovs_rx_dropped") or 0)))
            except (KeyError, TypeError, ValueError):
                continue
    return out


@dataclass(frozen=True)
class LinkUtilisation:
    """One direction over a window; util_* are fractions of line rate (1.0 = saturated)."""
    link: str
    src: str
    dst: str
    tier: str
    rate_mbps: float
    duration_s: float
    bytes: float
    dropped: int
    util_mean: float
    util_p95: float
    util_max: float


def first_last(samples: Iterable[LinkSample]
               ) -> dict[tuple[str, str], tuple[LinkSample, LinkSample]]:
    """Per direction (src, dst): its earliest and latest sample (for counter deltas)."""
    out: dict[tuple[str, str], tuple[LinkSample, LinkSample]] = {}
    for s in samples:
        a, b = out.get((s.src, s.dst), (s, s))
        out[(s.src, s.dst)] = (s if s.time < a.time else a, s if s.time >= b.time else b)
    return out


def _by_direction(samples: Iterable[LinkSample]) -> dict[tuple[str, str, str], list[LinkSample]]:
    by_dir: dict[tuple[str, str, str], list[LinkSample]] = {}
    for s in samples:
        by_dir.setdefault((s.link, s.src, s.dst), []).append(s)
    for rows in by_dir.values():
        rows.sort(key=lambda r: r.time)
    return by_dir


def _intervals(rows: Sequence[LinkSample], window: tuple[float, float] | None
               ) -> Iterator[tuple[LinkSample, LinkSample, float, float]]:
    """(a, b, interval length, overlap with window) for consecutive samples overlapping window."""
    for a, b in zip(rows, rows[1:]):
        dt = b.time - a.time
        lo, hi = (a.time, b.time) if window is None else (max(a.time, window[0]),
                                                         min(b.time, window[1]))
        if dt > 0 and hi > lo:
            yield a, b, dt, hi - lo


def _delta(a: LinkSample, b: LinkSample) -> int:
    """Bytes sent between two samples; a counter that went backwards (re-created) counts zero."""
    return max(0, b.tx_bytes - a.tx_bytes)


def utilisation(samples: Iterable[LinkSample],
                window: tuple[float, float] | None = None) -> list[LinkUtilisation]:
    """Per-direction utilisation, over `window` (epoch start, end) or the whole sampled span.

    Intervals that straddle a window edge count pro rata. Directions with no interval in the
    window are left out.
    """
    out = []
    for (link, src, dst), rows in _by_direction(samples).items():
        rate_bps = rows[0].rate_mbps * 1e6
        total_bytes = total_s = 0.0
        dropped = 0
        rates = []
        for a, b, dt, overlap in _intervals(rows, window):
            total_bytes += _delta(a, b) * overlap / dt
            total_s += overlap
            dropped += max(0, b.tx_dropped - a.tx_dropped)
            rates.append(_delta(a, b) * 8 / dt / rate_bps)
        if total_s <= 0:
            continue
        out.append(LinkUtilisation(link, src, dst, rows[0].tier, rows[0].rate_mbps, total_s,
                                   total_bytes, dropped, total_bytes * 8 / total_s / rate_bps,
                                   percentile(rates, 95.0), max(rates)))
    out.sort(key=lambda u: (u.link, u.src))
    return out


def series(samples: Iterable[LinkSample], window: tuple[float, float] | None = None,
           tier: str | None = None) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Per direction (src, dst) of `tier` (None: all): (interval start time, utilisation) of
    every sampling interval that overlaps `window`; for time/heat plots."""
    out = {}
    for (_, src, dst), rows in _by_direction(samples).items():
        if tier is not None and rows[0].tier != tier:
            continue
        rate_bps = rows[0].rate_mbps * 1e6
        out[(src, dst)] = [(a.time, _delta(a, b) * 8 / dt / rate_bps)
                           for a, b, dt, _ in _intervals(rows, window)]
    return out


@dataclass(frozen=True)
class TierBalance:
    """Load balance over the directions of one tier (per-direction mean utilisation).

    mmr = busiest / mean (1.0 perfect; None when the tier carried nothing);
    jain = (sum x)^2 / (N * sum x^2) (1.0 perfect, 1/N worst; None when nothing was carried).
    """
    tier: str
    links: int
    util_mean: float
    util_max: float
    mmr: float | None
    jain: float | None


def balance(utils: Sequence[LinkUtilisation], tier: str = "fabric") -> TierBalance | None:
    """MMR and Jain's index over the directions of `tier`; None when the tier has no direction."""
    xs = [u.util_mean for u in utils if u.tier == tier]
    if not xs:
        return None
    mean = sum(xs) / len(xs)
    squares = sum(x * x for x in xs)
    return TierBalance(tier, len(xs), mean, max(xs), max(xs) / mean if mean > 0 else None,
                       sum(xs) ** 2 / (len(xs) * squares) if squares > 0 else None)
