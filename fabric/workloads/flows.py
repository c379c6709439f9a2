"""`kind = "flows"`: a list of point-to-point flows with fixed start times (traffic.p2p)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from traffic import p2p
from traffic.plan import TrafficPlan

from fabric.spec.workload import PlanContext, Workload, register


@dataclass(frozen=True)
class FlowSpec:
    """One point-to-point flow."""
    src: str
    dst: str
    size_bytes: int
    start_s: float = 0.0


@register
@dataclass(frozen=True)
class FlowsSpec(Workload):
    """A list of point-to-point flows (``[[workload.flows]]``)."""
    kind: Literal["flows"]
    flows: tuple[FlowSpec, ...]
    name: str = "flows"

    def named_hosts(self) -> list[tuple[str, str]]:
        return [pair for j, f in enumerate(self.flows)
                for pair in ((f"flows[{j}].src", f.src), (f"flows[{j}].dst", f.dst))]

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        transfers = p2p.flows([(f.src, f.dst, f.size_bytes, f.start_s) for f in self.flows],
                              workload=self.name)
        return TrafficPlan(self.name, ctx.seed, tuple(transfers))
