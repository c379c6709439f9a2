"""`kind = "incast"`: N senders to one receiver, all at once (fan-in: a parameter server, the
reduce step of a badly placed collective, a storage read).

The summary section `incast` reports its completion time and Jain's fairness index over the
senders' goodput (bytes / FCT; 1.0 = every sender got the same share of the receiver's port,
1/N = one sender got it all): the per-flow-throughput form of Jain's index in the AI-fabric
benchmark conventions (IETF BMWG drafts).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Sequence

from topologies.errors import SpecError
from traffic import connections, p2p
from traffic.plan import TrafficPlan
from traffic.records import FlowRecord

from fabric.spec.workload import (Connections, PlanContext, SummaryContext, Workload, WorkloadSummary,
                                  listed_hosts, register)


@register
@dataclass(frozen=True)
class IncastSpec(Workload):
    """Every host of `senders` ("all": every other host) sends `size_bytes` to `receiver` at
    once, at t0 + `start_s`."""
    kind: Literal["incast"]
    receiver: str
    size_bytes: int
    senders: tuple[str, ...] = ("all",)
    start_s: float = 0.0
    connections: Connections = "per_transfer"
    name: str = "incast"
    section: ClassVar[str] = "incast"

    def named_hosts(self) -> list[tuple[str, str]]:
        return [("receiver", self.receiver)] + listed_hosts("senders", self.senders)

    def _senders(self, fabric_hosts: Sequence[str]) -> list[str]:
        if self.senders == ("all",):
            return [h for h in fabric_hosts if h != self.receiver]
        return list(self.senders)

    def check_fabric(self, fabric_hosts: Sequence[str], key: str, fabric_key: str) -> None:
        senders = self._senders(fabric_hosts)
        if self.receiver in senders:
            raise SpecError(f"{key}.senders", f"the receiver {self.receiver} cannot also send")
        if len(set(senders)) != len(senders) or not senders:
            raise SpecError(f"{key}.senders", "needs at least 1 distinct sender")

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        senders = self._senders(ctx.hosts(("all",)))
        transfers = p2p.flows([(s, self.receiver, self.size_bytes, self.start_s)
                               for s in senders], workload=self.name, group=self.name)
        transfers, conns = connections.flows(transfers, self.connections)
        return TrafficPlan(self.name, ctx.seed, tuple(transfers), connections=conns)

    def summarise(self, records: Sequence[FlowRecord],
                  ctx: SummaryContext) -> WorkloadSummary | None:
        return WorkloadSummary(incast_result(records, ctx.host_rates_mbps.get(self.receiver)))


def jain(xs: Sequence[float]) -> float | None:
    """Jain's fairness index (sum x)^2 / (n sum x^2); None for no sample or all zero."""
    squares = sum(x * x for x in xs)
    return sum(xs) ** 2 / (len(xs) * squares) if xs and squares > 0 else None


@dataclass(frozen=True)
class IncastRound:
    """One round: its senders' goodput (Mbit/s) and Jain's index over them."""
    round: str
    senders: int
    complete: int
    jct_s: float | None
    goodput_mbps_min: float | None
    goodput_mbps_max: float | None
    jain: float | None


@dataclass(frozen=True)
class IncastResult:
    """The incast workload's section of the summary."""
    receiver_rate_mbps: float | None
    rounds: list[IncastRound]

    @property
    def jain_mean(self) -> float | None:
        xs = [r.jain for r in self.rounds if r.jain is not None]
        return sum(xs) / len(xs) if xs else None

    def lines(self, name: str, time_dilation: float | None) -> list[str]:
        out = [f"incast {name} (receiver port {self.receiver_rate_mbps or 0:g} Mbit/s): "
               f"Jain over senders' goodput, mean {_f(self.jain_mean)}",
               f"  {'round':<10}{'senders':>8}{'done':>6}{'JCT s':>9}{'min Mb/s':>10}"
               f"{'max Mb/s':>10}{'Jain':>7}"]
        for r in self.rounds:
            out.append(f"  {r.round:<10}{r.senders:>8}{r.complete:>6}{_f(r.jct_s):>9}"
                       f"{_f(r.goodput_mbps_min):>10}{_f(r.goodput_mbps_max):>10}{_f(r.jain):>7}")
        return out + [""]


def _f(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def incast_result(records: Sequence[FlowRecord], receiver_rate_mbps: float | None) -> IncastResult:
    """Per round (the records' group): goodput = bytes * 8 / FCT of each complete flow."""
    rounds = []
    for group in sorted({r.group or "" for r in records}, key=lambda g: (len(g), g)):
        rs = [r for r in records if (r.group or "") == group]
        done = [r for r in rs if r.complete and r.fct_s]
        rates = [r.bytes * 8 / r.fct_s / 1e6 for r in done if r.fct_s]
        starts = [r.start for r in done if r.start is not None]
        ends = [r.end for r in done if r.end is not None]
        rounds.append(IncastRound(group, len(rs), len(done),
                                  max(ends) - min(starts) if starts and ends else None,
                                  min(rates, default=None), max(rates, default=None),
                                  jain(rates) if len(done) == len(rs) else None))
    return IncastResult(receiver_rate_mbps, rounds)
