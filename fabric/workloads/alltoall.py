"""`kind = "alltoall"`: a training job of all-to-alls (MoE expert parallelism)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fabric.spec.workload import register
from fabric.workloads.collective import CollectiveJob


@register
@dataclass(frozen=True, kw_only=True)
class AllToAllSpec(CollectiveJob):
    """All-to-all; S is each rank's send buffer (S/n to every rank); `algorithm` is the
    schedule: "concurrent" (all at once) or "phased" (n-1 shifted pairwise phases)."""
    kind: Literal["alltoall"]
    algorithm: Literal["concurrent", "phased"] = "concurrent"
    name: str = "alltoall"
