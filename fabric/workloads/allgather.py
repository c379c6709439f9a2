"""`kind = "allgather"`: a training job of ring all-gathers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fabric.spec.workload import register
from fabric.workloads.collective import CollectiveJob


@register
@dataclass(frozen=True, kw_only=True)
class AllGatherSpec(CollectiveJob):
    """Ring all-gather; S is the total gathered array (each rank contributes S/n; busbw factor
    (n-1)/n)."""
    kind: Literal["allgather"]
    algorithm: Literal["ring"] = "ring"
    name: str = "allgather"
