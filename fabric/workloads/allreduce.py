"""`kind = "allreduce"`: a training job of ring or halving-doubling all-reduces."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fabric.spec.workload import register
from fabric.workloads.collective import CollectiveJob


@register
@dataclass(frozen=True, kw_only=True)
class AllReduceSpec(CollectiveJob):
    """All-reduce job over a group of hosts (``hosts = "all"`` or a list of host names); S is
    each rank's array; fields shared with the other collectives: CollectiveJob."""
    kind: Literal["allreduce"]
    algorithm: Literal["ring", "halving-doubling"] = "ring"
    name: str = "allreduce"
