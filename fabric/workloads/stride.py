"""`kind = "stride"`: a permutation, host i sends to host (i + stride) mod n, all at once."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from topologies.errors import SpecError
from traffic import connections, p2p
from traffic.plan import TrafficPlan

from fabric.spec.load import positive
from fabric.spec.workload import Connections, PlanContext, Workload, listed_hosts, register


@register
@dataclass(frozen=True)
class StrideSpec(Workload):
    """Permutation traffic: the i-th host sends `size_bytes` to host (i + stride) mod n, all at once."""
    kind: Literal["stride"]
    size_bytes: int
    stride: int = positive(1, 255, default=1)
    hosts: tuple[str, ...] = ("all",)
    start_s: float = 0.0
    connections: Connections = "per_transfer"
    name: str = "stride"

    def named_hosts(self) -> list[tuple[str, str]]:
        return listed_hosts("hosts", self.hosts)

    def check_fabric(self, fabric_hosts: Sequence[str], key: str, fabric_key: str) -> None:
        chosen = list(fabric_hosts) if self.hosts == ("all",) else list(self.hosts)
        if len(set(chosen)) != len(chosen) or len(chosen) < 2:
            raise SpecError(f"{key}.hosts", "needs at least 2 distinct hosts")
        if self.stride % len(chosen) == 0:
            raise SpecError(f"{key}.stride", f"stride {self.stride} is a multiple of the "
                            f"{len(chosen)} hosts in {fabric_key}: every host would send to itself")

    def transfer_count(self, ctx: PlanContext) -> tuple[int, str]:
        return len(ctx.hosts(self.hosts)), "hosts"

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        hs = ctx.hosts(self.hosts)
        transfers = p2p.flows([(h, hs[(i + self.stride) % len(hs)], self.size_bytes, self.start_s)
                               for i, h in enumerate(hs)], workload=self.name)
        transfers, conns = connections.flows(transfers, self.connections)
        return TrafficPlan(self.name, ctx.seed, tuple(transfers), connections=conns)
