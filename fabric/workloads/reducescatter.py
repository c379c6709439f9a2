"""`kind = "reducescatter"`: a training job of ring reduce-scatters."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fabric.spec.workload import register
from fabric.workloads.collective import CollectiveJob


@register
@dataclass(frozen=True, kw_only=True)
class ReduceScatterSpec(CollectiveJob):
    """Ring reduce-scatter; S is each rank's input array."""
    kind: Literal["reducescatter"]
    algorithm: Literal["ring"] = "ring"
    name: str = "reducescatter"
