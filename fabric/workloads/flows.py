"""`kind = "flows"`: a list of point-to-point flows with fixed start times (traffic.p2p)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from topologies.errors import SpecError
from traffic import connections, p2p
from traffic.plan import TrafficPlan

from fabric.spec.workload import Connections, PlanContext, Workload, register


MAX_FLOWS = 10_000  # flows of one workload (README "Bounds")


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
    connections: Connections = "per_transfer"
    name: str = "flows"

    def check(self, key: str) -> None:
        if not self.flows:
            raise SpecError(f"{key}.flows", "needs at least one flow")
        if len(self.flows) > MAX_FLOWS:
            raise SpecError(f"{key}.flows", f"{len(self.flows)} flows, more than {MAX_FLOWS}")

    def transfer_count(self, ctx: PlanContext) -> tuple[int, str]:
        return len(self.flows), "flows"

    def named_hosts(self) -> list[tuple[str, str]]:
        return [pair for j, f in enumerate(self.flows)
                for pair in ((f"flows[{j}].src", f.src), (f"flows[{j}].dst", f.dst))]

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        transfers = p2p.flows([(f.src, f.dst, f.size_bytes, f.start_s) for f in self.flows],
                              workload=self.name)
        transfers, conns = connections.flows(transfers, self.connections)
        return TrafficPlan(self.name, ctx.seed, tuple(transfers), connections=conns)
