"""`kind = "hotspot"`: flows of which a share goes to a few hot hosts (traffic.patterns.hotspot)."""
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
class HotspotSpec(Workload):
    """`flows` flows of `size_bytes` among `hosts`: each goes to a hot host with probability
    `hot_fraction`, else to any host, from a random other host; starts uniform over
    [`start_s`, `start_s` + `duration_s`) (0: all at once). The hot hosts are `hot`, or
    `hot_hosts` of them drawn from the run's seed (as every other draw)."""
    kind: Literal["hotspot"]
    size_bytes: int
    flows: int = positive(1, 100000, default=16)
    hot: tuple[str, ...] = ()
    hot_hosts: int = positive(1, 1024, default=1)
    hot_fraction: float = 0.5
    duration_s: float = 0.0
    hosts: tuple[str, ...] = ("all",)
    start_s: float = 0.0
    name: str = "hotspot"

    def named_hosts(self) -> list[tuple[str, str]]:
        return listed_hosts("hosts", self.hosts) + listed_hosts("hot", self.hot)

    def check(self, key: str) -> None:
        if not 0 <= self.hot_fraction <= 1:
            raise SpecError(f"{key}.hot_fraction", f"must be in [0, 1], got {self.hot_fraction}")

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        chosen = ctx.hosts(self.hosts)
        if len(set(chosen)) != len(chosen) or len(chosen) < 2:
            raise SpecError("hosts", "needs at least 2 distinct hosts")
        seed = ctx.rng_seed(self.name)
        hot = list(self.hot) or patterns.pick_hot(chosen, self.hot_hosts, seed + "/hot")
        for j, h in enumerate(hot):
            if h not in chosen:
                raise SpecError(f"hot[{j}]", f"{h!r} is not one of the workload's hosts")
        flows = patterns.hotspot(chosen, hot, self.hot_fraction, self.flows, self.size_bytes,
                                 self.start_s, self.duration_s, seed)
        return TrafficPlan(self.name, ctx.seed, tuple(p2p.flows(flows, workload=self.name)))
