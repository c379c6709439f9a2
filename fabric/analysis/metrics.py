"""Metrics from raw flow records: FCT percentiles, collective JCT, algbw and busbw.

Definitions (docs/metrics.md explains each one):
  FCT   = last byte received by the application - first byte offered by the sender application.
  JCT   = end of the collective's last transfer - start of its first (one clock for all hosts).
  algbw = S / JCT (S: bytes per rank for all-reduce, nccl-tests); busbw = algbw * factor with
          factor 2(n-1)/n for all-reduce, (n-1)/n for all-gather, reduce-scatter and all-to-all.
  lower bound (nccl-tests) for all-reduce: t >= (S / B) * 2(n-1)/n, B = host line rate.
  job JCT = end of its last transfer - start of its first iteration (compute included).
Percentiles use linear interpolation between closest ranks, and always travel with their sample count.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from traffic.plan import Collective, TrafficPlan
from traffic.records import FlowRecord, span

BUSBW_FACTOR: dict[str, Callable[[int], float]] = {
    "allreduce": lambda n: 2 * (n - 1) / n,
    "allgather": lambda n: (n - 1) / n,
    "reducescatter": lambda n: (n - 1) / n,
    "alltoall": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
}
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile (0..100) by linear interpolation; NaN for no samples."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class Distribution:
    """Summary of one sample set: count, min/mean/max and the standard percentiles."""
    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        xs = [float(v) for v in values]
        if not xs:
            nan = math.nan
            return cls(0, nan, nan, nan, nan, nan, nan, nan)
        p50, p90, p99, p999 = (percentile(xs, q) for q in PERCENTILES)
        return cls(len(xs), min(xs), sum(xs) / len(xs), p50, p90, p99, p999, max(xs))


@dataclass(frozen=True)
class CollectiveResult:
    """One collective instance, measured."""
    id: str
    kind: str
    algorithm: str
    ranks: int
    size_bytes: int
    transfers: int
    complete: bool
    jct_s: float
    algbw_mbps: float
    busbw_mbps: float
    lower_bound_s: float
    busbw_efficiency: float  # busbw / host line rate
    ideal_jct_s: float = math.nan   # fabric.analysis.ideal: max-min fluid model of the same plan
    jct_vs_ideal: float = math.nan  # measured JCT / ideal JCT


def busbw_factor(kind: str, n: int) -> float:
    try:
        return BUSBW_FACTOR[kind](n)
    except KeyError:
        raise ValueError(f"no busbw factor for collective kind {kind!r}") from None


def collective_result(coll: Collective, records: Sequence[FlowRecord],
                      line_rate_mbps: float) -> CollectiveResult:
    """Measure one collective (traffic.plan.Collective) from its flow records (FlowRecord)."""
    mine = [r for r in records if r.group == coll.id]
    complete = bool(mine) and all(r.complete for r in mine)
    n = len(coll.hosts)
    factor = busbw_factor(coll.kind, n)
    lower = coll.size_bytes * 8 / (line_rate_mbps * 1e6) * factor
    whole = span(mine) if complete else None
    if whole is not None:
        jct = whole[1] - whole[0]
        algbw = coll.size_bytes * 8 / jct / 1e6 if jct > 0 else math.nan
    else:
        jct = algbw = math.nan
    busbw = algbw * factor
    return CollectiveResult(coll.id, coll.kind, coll.algorithm, n, coll.size_bytes, len(mine),
                            complete, jct, algbw, busbw, lower, busbw / line_rate_mbps)


@dataclass(frozen=True)
class JobResult:
    """One training job (a workload of collectives): JCT = end of its last transfer - start of
    its first iteration (the first compute gap included); roofline = iterations * (compute +
    8 * S * busbw factor / line rate); jct_ratio = JCT / roofline (docs/metrics.md; IETF BMWG AI-fabric drafts)."""
    name: str
    kind: str
    algorithm: str
    ranks: int
    iterations: int
    channels: int
    size_bytes: int
    compute_s: float
    complete: bool
    jct_s: float
    roofline_s: float
    jct_ratio: float


def job_results(plan: TrafficPlan, records: Sequence[FlowRecord],
                host_rates_mbps: Mapping[str, float]) -> list[JobResult]:
    """Per job (workload owning collectives, plan order): its JCT from the flow records.

    A job's first transfers leave `gap_s` (compute) after the job starts, so the job start is
    min(record.start - transfer.gap_s) over its transfers (one clock for every host)."""
    by_id = {t.id: t for t in plan.transfers}
    owner = {t.group: t.workload for t in plan.transfers if t.group is not None}
    jobs: dict[str, list[Collective]] = {}
    for c in plan.collectives:
        jobs.setdefault(owner.get(c.id, c.id), []).append(c)
    out = []
    for name, colls in jobs.items():
        mine = [r for r in records if r.workload == name]
        first = colls[0]
        n = len(first.hosts)
        rate = min(host_rates_mbps[h] for h in first.hosts)
        compute = max((by_id[r.flow_id].gap_s for r in mine), default=0.0)
        comm = sum(c.size_bytes * 8 / (rate * 1e6) * busbw_factor(c.kind, n) for c in colls)
        roofline = len(colls) * compute + comm
        complete = bool(mine) and all(r.complete for r in mine)
        ends = [r.end for r in mine if r.end is not None]
        starts = [r.start - by_id[r.flow_id].gap_s for r in mine if r.start is not None]
        jct = max(ends) - min(starts) if complete and ends and starts else math.nan
        out.append(JobResult(name, first.kind, first.algorithm, n, len(colls),
                             first.channels, first.size_bytes, compute, complete,
                             jct, roofline, jct / roofline if roofline > 0 else math.nan))
    return out


def fct_distribution(records: Iterable[FlowRecord]) -> Distribution:
    """FCT distribution (seconds) over the complete flows."""
    return Distribution.of(r.fct_s for r in records if r.complete and r.fct_s is not None)


def to_jsonable(obj: Any) -> Any:
    """Dataclasses to dicts, NaN to None, recursively (JSON has no NaN)."""
    if hasattr(obj, "__dataclass_fields__"):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def fmt(value: float | None, digits: int = 3, scale: float = 1.0) -> str:
    """A figure for the printed tables: value * scale with `digits` decimals, "-" for None/NaN."""
    return "-" if value is None or value != value else f"{value * scale:.{digits}f}"
