"""What the collective workloads share: a training job of one collective kind (traffic.jobs)."""
from __future__ import annotations

from dataclasses import dataclass

from traffic import jobs
from traffic.plan import TrafficPlan

from topologies.errors import SpecError

from fabric.spec.load import positive
from fabric.spec.workload import PlanContext, Units, Workload, listed_hosts


# Largest plan `fabric check` builds (~1 s here); bigger plans are refused before they are computed
# (a 256-host all-to-all with 64 channels and 1,000 iterations would be 4e9 transfers). The
# agents, one TCP connection per transfer, could not run such a plan either.
MAX_PLAN_TRANSFERS = 200_000


def estimated_transfers(kind: str, algorithm: str, ranks: int, channels: int,
                        iterations: int) -> int:
    """Transfers a collective job plans (an upper bound for halving-doubling)."""
    n = ranks
    per_iteration = {"allreduce": 2 * (n - 1) * n, "allgather": (n - 1) * n,
                     "reducescatter": (n - 1) * n, "alltoall": n * (n - 1)}.get(kind, n * n)
    if algorithm == "halving-doubling":
        per_iteration = 2 * n * (max(1, (n - 1).bit_length()) + 1)
    return per_iteration * channels * iterations


@dataclass(frozen=True, kw_only=True)
class CollectiveJob(Workload):
    """A training job: `iterations` x (compute `gap_s` + one collective of S = `size_bytes`,
    nccl-tests' S for the kind) over `hosts` ("all" or names, in ring order), each step's
    message split over `channels` parallel TCP connections (traffic.jobs). Subclasses add
    `kind`, `algorithm` and `name`; the summary's `jobs` and `collectives` tables report them
    (fabric.analysis.metrics, from the plan's collectives)."""
    size_bytes: int
    hosts: tuple[str, ...] = ("all",)
    iterations: int = positive(1, 1000, default=1)
    gap_s: float = 0.0
    start_s: float = 0.0
    channels: int = positive(1, 64, default=1)
    units: Units = "emulated"
    algorithm: str

    def named_hosts(self) -> list[tuple[str, str]]:
        return listed_hosts("hosts", self.hosts)

    def check_plan_size(self, ranks: int) -> None:
        """SpecError naming the field that makes the plan too large to compute."""
        count = estimated_transfers(self.kind, self.algorithm, ranks, self.channels,
                                    self.iterations)
        if count <= MAX_PLAN_TRANSFERS:
            return
        culprit = ("iterations" if self.iterations > 1 else
                   "channels" if self.channels > 1 else "hosts")
        raise SpecError(culprit, f"the plan would have {count:,} transfers ({ranks} ranks x "
                                 f"{self.channels} channels x {self.iterations} iterations); at "
                                 f"most {MAX_PLAN_TRANSFERS:,} are planned: lower {culprit}")

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        self.check_plan_size(len(ctx.hosts(self.hosts)))
        c = ctx.convert
        transfers, colls = jobs.training_job(
            self.kind, self.algorithm, ctx.hosts(self.hosts), c.bytes(self.size_bytes),
            self.name, iterations=self.iterations, gap_s=c.seconds(self.gap_s),
            start_s=c.seconds(self.start_s), channels=self.channels)
        return TrafficPlan(self.name, ctx.seed, tuple(transfers), tuple(colls))
