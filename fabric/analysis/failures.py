"""The impact of each applied failure on the collectives it hit.

The failure test of the AI-fabric benchmark drafts (docs/metrics.md): the JCT overhead of the
iteration that saw the failure, and "zero impact" if that JCT stays within the steady-state p99.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from traffic.records import FlowRecord

from fabric.analysis.metrics import CollectiveResult, percentile


# what impact() adds to each failure event (recomputed when a run is analysed again)
IMPACT_KEYS = frozenset({"collectives_hit", "steady_jct_p50_s", "steady_jct_p99_s",
                         "steady_samples", "hit_jct_s", "jct_overhead", "zero_impact"})


def impact(events: Sequence[dict[str, Any]], collectives: Sequence[CollectiveResult],
           records: Sequence[FlowRecord]) -> list[dict[str, Any]]:
    """Each applied failure with the collectives running at that instant and their JCT overhead.

    steady = collectives of the same workload that ended before the first failure;
    overhead = JCT(hit) / p50(steady JCT) - 1; zero_impact = JCT(hit) <= p99(steady JCT).
    When several workloads are hit, the row reports the hit collective with the largest overhead
    against its own workload's steady state (jobs of different sizes are never pooled).
    """
    spans: dict[str, tuple[float, float]] = {}
    owner: dict[str, str] = {}  # collective id -> its workload
    for r in records:
        if r.group is not None and r.complete and r.start is not None and r.end is not None:
            lo, hi = spans.get(r.group, (math.inf, -math.inf))
            spans[r.group] = (min(lo, r.start), max(hi, r.end))
            owner[r.group] = r.workload
    applied = [e["time"] for e in events if e.get("time") is not None]
    first = min(applied) if applied else math.inf
    steady_of: dict[str | None, list[float]] = {}  # workload -> steady-state JCTs
    for c in collectives:
        if c.id in spans and spans[c.id][1] < first and c.complete:
            steady_of.setdefault(owner.get(c.id), []).append(c.jct_s)
    out = []
    for e in events:
        row = {k: v for k, v in e.items() if k not in IMPACT_KEYS}  # idempotent: fabric analyse
        t = e.get("time")
        hit = [c for c in collectives if t is not None and c.id in spans
               and spans[c.id][0] <= t <= spans[c.id][1]]
        row["collectives_hit"] = [c.id for c in hit]
        judged = [(c.jct_s / percentile(steady_of[owner.get(c.id)], 50), c) for c in hit
                  if c.complete and steady_of.get(owner.get(c.id))]
        worst = max(judged, key=lambda x: x[0])[1] if judged else None
        steady = (steady_of[owner.get(worst.id)] if worst is not None
                  else [x for xs in steady_of.values() for x in xs])
        row["steady_jct_p50_s"] = percentile(steady, 50) if steady else None
        row["steady_jct_p99_s"] = percentile(steady, 99) if steady else None
        row["steady_samples"] = len(steady)
        if worst is not None:
            row["hit_jct_s"] = worst.jct_s
            row["jct_overhead"] = worst.jct_s / row["steady_jct_p50_s"] - 1
            row["zero_impact"] = worst.jct_s <= row["steady_jct_p99_s"]
        out.append(row)
    return out
