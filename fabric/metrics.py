"""Metrics from raw flow records: FCT percentiles, collective JCT, algbw and busbw.

Definitions follow DESIGN.md / REFERENCE.md:
  FCT   = last byte received by the application - first byte offered by the sender application.
  JCT   = end of the collective's last transfer - start of its first (one clock for all hosts).
  algbw = S / JCT (S: bytes per rank for all-reduce, nccl-tests); busbw = algbw * factor with
          factor 2(n-1)/n for all-reduce, (n-1)/n for all-gather, reduce-scatter and all-to-all.
  lower bound (nccl-tests) for all-reduce: t >= (S / B) * 2(n-1)/n, B = host line rate.
Percentiles use linear interpolation between closest ranks, and always travel with their sample count.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

BUSBW_FACTOR = {
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
    def of(cls, values: Iterable[float]) -> "Distribution":
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


def busbw_factor(kind: str, n: int) -> float:
    try:
        return BUSBW_FACTOR[kind](n)
    except KeyError:
        raise ValueError(f"no busbw factor for collective kind {kind!r}") from None


def collective_result(coll: Any, records: Sequence[Any], line_rate_mbps: float) -> CollectiveResult:
    """Measure one collective (traffic.plan.Collective) from its flow records (FlowRecord)."""
    mine = [r for r in records if r.group == coll.id]
    complete = bool(mine) and all(r.complete for r in mine)
    n = len(coll.hosts)
    factor = busbw_factor(coll.kind, n)
    lower = coll.size_bytes * 8 / (line_rate_mbps * 1e6) * factor
    if complete:
        jct = max(r.end for r in mine) - min(r.start for r in mine)
        algbw = coll.size_bytes * 8 / jct / 1e6 if jct > 0 else math.nan
    else:
        jct = algbw = math.nan
    busbw = algbw * factor
    return CollectiveResult(coll.id, coll.kind, coll.algorithm, n, coll.size_bytes, len(mine),
                            complete, jct, algbw, busbw, lower, busbw / line_rate_mbps)


def fct_distribution(records: Iterable[Any]) -> Distribution:
    """FCT distribution (seconds) over the complete flows."""
    return Distribution.of(r.fct_s for r in records if r.complete)


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
