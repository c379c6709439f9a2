"""`kind = "permutation"`: a seeded random permutation, every destination on another leaf (or
any other host), all flows at once (traffic.patterns.permutation)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fabric.spec.load import positive
from fabric.spec.workload import PlanContext, Workload, listed_hosts, register
from topologies.errors import SpecError
from topologies.model import attachment
from topologies.model import hosts as fabric_hosts
from traffic import p2p, patterns
from traffic.plan import TrafficPlan


@register
@dataclass(frozen=True)
class PermutationSpec(Workload):
    """Every host of `hosts` sends `size_bytes` to one other, every host receives once, all at
    t0 + `start_s`. `exclude = "leaf"`: never to a host on its own leaf (the switch it hangs
    off: leaf, NCP); with `hosts_per_leaf = k`, hosts h1..hk count as one leaf, the next k as
    the next, whatever the fabric (so a single switch gets the same plan as a leaf/spine with
    k hosts per leaf). `exclude = "self"`: any other host. Drawn from the run's seed, or from
    `seed` when given (one fixed permutation for every run)."""
    kind: Literal["permutation"]
    size_bytes: int
    exclude: Literal["leaf", "self"] = "leaf"
    hosts_per_leaf: int = positive(0, 256, default=0)
    seed: int | None = None
    hosts: tuple[str, ...] = ("all",)
    start_s: float = 0.0
    name: str = "permutation"

    def named_hosts(self) -> list[tuple[str, str]]:
        return listed_hosts("hosts", self.hosts)

    def groups(self, ctx: PlanContext, chosen: tuple[str, ...]) -> dict[str, str]:
        """Host -> the group it must not send within."""
        if self.exclude == "self":
            return {h: h for h in chosen}
        if self.hosts_per_leaf:
            order = fabric_hosts(ctx.graph)
            return {h: f"leaf{order.index(h) // self.hosts_per_leaf}" for h in chosen}
        group = {h: attachment(ctx.graph, h)[0] for h in chosen}
        if len({attachment(ctx.graph, h)[0] for h in fabric_hosts(ctx.graph)}) < 2:
            raise SpecError("hosts_per_leaf", "every host is on one switch here: give "
                            "hosts_per_leaf (that of the other fabrics, so every fabric gets "
                            "the same permutation) or exclude = \"self\"")
        return group

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        chosen = ctx.hosts(self.hosts)
        if len(set(chosen)) != len(chosen) or len(chosen) < 2:
            raise SpecError("hosts", "needs at least 2 distinct hosts")
        seed = ctx.rng_seed(self.name) if self.seed is None else f"{self.seed}/{self.name}"
        pairs = patterns.permutation(chosen, self.groups(ctx, chosen), seed)
        transfers = p2p.flows([(s, d, self.size_bytes, self.start_s) for s, d in pairs],
                              workload=self.name)
        return TrafficPlan(self.name, ctx.seed, tuple(transfers))
