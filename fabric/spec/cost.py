"""The ``[cost]`` table: what turns a measured JCT difference into accelerator-hours and money.

    [cost]
    accelerators = 2000           # cluster size: accelerators the job occupies
    accelerator_hour_usd = 3.0    # what one accelerator-hour costs, all in (rent or amortised)
    network_share = 0.10          # the back-end fabric's share of the cluster's cost
    job_hours = 24.0              # how long the job runs on the slower fabric of a pair
    measured_share = 1.0          # share of that time that behaves like the measured workload

Every field has a default taken from public figures (docs/metrics.md, "Cost line", gives the
sources); the report says which values it used and which assumptions carry the result.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


def _bounded(default: float, low: float, high: float | None = None) -> float:
    meta = {"min": low} if high is None else {"min": low, "max": high}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class CostSpec:
    """Cost assumptions (defaults: public figures, docs/metrics.md)."""
    accelerators: int = _bounded(2000, 1)               # type: ignore[assignment]
    accelerator_hour_usd: float = _bounded(3.0, 0.0)
    network_share: float = _bounded(0.10, 0.001, 0.999)
    job_hours: float = _bounded(24.0, 0.001)
    measured_share: float = _bounded(1.0, 0.001, 1.0)


DEFAULT_COST = CostSpec()
