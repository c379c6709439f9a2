"""What the collective workloads share: a training job of one collective kind (traffic.jobs)."""
from __future__ import annotations

from dataclasses import dataclass

from traffic import connections, jobs
from traffic.plan import TrafficPlan


from fabric.spec.load import positive
from fabric.spec.workload import Connections, PlanContext, Units, Workload, listed_hosts


# transfers of one collective instance over n ranks, per channel (traffic.collectives, ...)
PER_INSTANCE = {
    ("allreduce", "ring"): lambda n: 2 * (n - 1) * n,
    ("allreduce", "halving-doubling"): lambda n: 2 * max(1, (n - 1).bit_length()) * n,
    ("allgather", "ring"): lambda n: (n - 1) * n,
    ("reducescatter", "ring"): lambda n: (n - 1) * n,
    ("alltoall", "concurrent"): lambda n: (n - 1) * n,
    ("alltoall", "phased"): lambda n: (n - 1) * n,
}


@dataclass(frozen=True, kw_only=True)
class CollectiveJob(Workload):
    """A training job: `iterations` x (compute `gap_s` + one collective of S = `size_bytes`,
    nccl-tests' S for the kind) over `hosts` ("all" or names, in ring order), each step's
    message split over `channels` parallel TCP connections (traffic.jobs), each kept open for
    the whole job unless `connections = "per_transfer"` (traffic.connections). Subclasses add
    `kind`, `algorithm` and `name`; the summary's `jobs` and `collectives` tables report them
    (fabric.analysis.metrics, from the plan's collectives)."""
    size_bytes: int
    hosts: tuple[str, ...] = ("all",)
    iterations: int = positive(1, 1000, default=1)
    gap_s: float = 0.0
    start_s: float = 0.0
    channels: int = positive(1, 64, default=1)
    connections: Connections = "persistent"
    units: Units = "emulated"
    algorithm: str

    def named_hosts(self) -> list[tuple[str, str]]:
        return listed_hosts("hosts", self.hosts)

    def transfer_count(self, ctx: PlanContext) -> tuple[int, str]:
        n = len(ctx.hosts(self.hosts))
        per = PER_INSTANCE.get((self.kind, self.algorithm), lambda n: 2 * n * n)(n)
        return (per * self.channels * self.iterations,
                f"{per} per {self.kind} of {n} ranks x {self.channels} channels x "
                f"{self.iterations} iterations")

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        c = ctx.convert
        transfers, colls = jobs.training_job(
            self.kind, self.algorithm, ctx.hosts(self.hosts), c.bytes(self.size_bytes),
            self.name, iterations=self.iterations, gap_s=c.seconds(self.gap_s),
            start_s=c.seconds(self.start_s), channels=self.channels)
        transfers, conns = connections.collective(transfers, self.connections)
        return TrafficPlan(self.name, ctx.seed, tuple(transfers), tuple(colls), conns)
