"""`kind = "bursts"`: repeated all-to-all bursts (traffic.patterns.bursts)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fabric.spec.load import positive
from fabric.spec.workload import PlanContext, Workload, listed_hosts, register
from topologies.errors import SpecError
from traffic import p2p, patterns
from traffic.plan import TrafficPlan


@register
@dataclass(frozen=True)
class BurstsSpec(Workload):
    """`bursts` all-to-all bursts `interval_s` apart from t0 + `start_s`: in each, every host
    of `hosts` sends `size_bytes` to every other (or to `fanout` others drawn per burst), each
    flow starting up to `jitter_s` late (uniform); draws from the run's seed. Bursts do not
    wait for each other: a burst longer than `interval_s` overlaps the next."""
    kind: Literal["bursts"]
    size_bytes: int
    bursts: int = positive(1, 1000, default=3)
    interval_s: float = 1.0
    fanout: int = positive(0, 1024, default=0)
    jitter_s: float = 0.0
    hosts: tuple[str, ...] = ("all",)
    start_s: float = 0.0
    name: str = "bursts"

    def named_hosts(self) -> list[tuple[str, str]]:
        return listed_hosts("hosts", self.hosts)

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        chosen = ctx.hosts(self.hosts)
        if len(set(chosen)) != len(chosen) or len(chosen) < 2:
            raise SpecError("hosts", "needs at least 2 distinct hosts")
        if self.fanout >= len(chosen):
            raise SpecError("fanout", f"must be below the {len(chosen)} hosts (0: all others), "
                                      f"got {self.fanout}")
        flows = patterns.bursts(chosen, self.size_bytes, self.bursts, self.interval_s,
                                self.start_s, self.fanout, self.jitter_s, ctx.rng_seed(self.name))
        return TrafficPlan(self.name, ctx.seed, tuple(p2p.flows(flows, workload=self.name)))
