"""`kind = "background"`: flows with sizes from a CDF at a target load, and their FCT slowdown.

FCT slowdown (per background workload) = FCT / ideal, clamped at 1, with ideal = wire bytes * 8
/ line rate + base RTT (HPCC's definition; wire bytes: payload + the agent's header in full
frames, fabric.analysis.ideal.WireModel), by fixed size bins (pFabric style: (0,100KB),
[100KB,10MB), >=10MB; sizes in the workload's input units) with count, mean, p50, p95, p99.
A base RTT of 0 means "estimate from this run": the smallest FCT - serialisation over the
workload's flows, at least 0 (HTB's burst lets small flows beat the line rate, so it can come
out 0; give base_rtt_s for a fixed value). Contention penalty = p99 under background load / p99
alone: compare two runs' summaries. The summary's `slowdown` section holds one SlowdownResult
per workload.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

from topologies.errors import SpecError
from traffic import background, connections
from traffic.plan import TrafficPlan
from traffic.records import FlowRecord

from fabric.analysis.ideal import WireModel
from fabric.analysis.metrics import fmt, percentile
from fabric.spec.load import bounded
from fabric.spec.workload import (Connections, PlanContext, SummaryContext, Units, Workload,
                                  WorkloadSummary, listed_hosts, register, require_positive)

SLOWDOWN_BINS: tuple[tuple[str, float, float], ...] = (
    ("<100KB", 0, 100e3), ("100KB-10MB", 100e3, 10e6), (">=10MB", 10e6, math.inf))


@register
@dataclass(frozen=True, kw_only=True)
class BackgroundSpec(Workload):
    """Background flows (traffic.background): sizes from `cdf` ("websearch", "datamining" or
    a CSV path), Poisson arrivals offering `load` x the host link rate on every host link,
    random pairs of `hosts`, arriving for `duration_s` from `start_s`. FCT slowdown uses
    ideal = size*8/line rate + `base_rtt_s` (0: estimated from the run's fastest flow)."""
    section = "slowdown"
    kind: Literal["background"]
    cdf: str = "websearch"
    load: float = bounded(0, 1, above=True, default=0.3)
    hosts: tuple[str, ...] = ("all",)
    duration_s: float = 10.0
    start_s: float = 0.0
    base_rtt_s: float = bounded(0, 10, default=0.0)
    connections: Connections = "per_transfer"
    units: Units = "emulated"
    name: str = "background"

    def named_hosts(self) -> list[tuple[str, str]]:
        return listed_hosts("hosts", self.hosts)

    def check(self, key: str) -> None:
        if not self.hosts:
            raise SpecError(f"{key}.hosts", 'needs "all" or at least 2 hosts')
        if not (math.isfinite(self.load) and 0 < self.load <= 1):
            raise SpecError(f"{key}.load", f"must be a fraction of the host link rate in "
                                           f"(0, 1], got {self.load}")
        require_positive(self, key, "duration_s")
        try:
            background.load_cdf(self.cdf)
        except SpecError as e:
            raise SpecError(f"{key}.cdf", str(e).removeprefix("cdf: ")) from None

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        hs = ctx.hosts(self.hosts)
        c = ctx.convert
        transfers = background.poisson_flows(
            hs, background.load_cdf(self.cdf), self.load,
            min(ctx.host_rate_mbps(h) for h in hs), c.seconds(self.duration_s),
            ctx.rng_seed(self.name), c.seconds(self.start_s), c.size_factor, workload=self.name)
        transfers, conns = connections.flows(transfers, self.connections)
        return TrafficPlan(self.name, ctx.seed, tuple(transfers), connections=conns)

    def summarise(self, records: Sequence[FlowRecord],
                  ctx: SummaryContext) -> WorkloadSummary:
        rates = ctx.host_rates_mbps
        hs = {h for r in records for h in (r.src, r.dst)} or set(rates)
        return WorkloadSummary(fct_slowdown(
            records, min(rates[h] for h in hs), ctx.convert.seconds(self.base_rtt_s),
            ctx.convert.size_factor))


@dataclass(frozen=True)
class SlowdownBin:
    """FCT slowdown statistics of the flows in one size bin."""
    label: str
    count: int
    mean: float
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, label: str, xs: Sequence[float]) -> SlowdownBin:
        nan = math.nan
        if not xs:
            return cls(label, 0, nan, nan, nan, nan)
        return cls(label, len(xs), sum(xs) / len(xs), percentile(xs, 50), percentile(xs, 95),
                   percentile(xs, 99))


@dataclass(frozen=True)
class SlowdownResult:
    """FCT slowdown of one workload's flows, overall and per size bin."""
    line_rate_mbps: float
    base_rtt_s: float
    base_rtt_source: str
    overall: SlowdownBin
    bins: list[SlowdownBin]

    def lines(self, name: str, time_dilation: float | None) -> list[str]:
        """Its block of the printed summary."""
        out = [f"FCT slowdown {name} (line {self.line_rate_mbps:g} Mbit/s, base RTT "
               f"{self.base_rtt_s * 1e3:.2f} ms {self.base_rtt_source})",
               f"  {'size bin':<14}{'n':>6}{'mean':>8}{'p50':>8}{'p95':>8}{'p99':>8}"]
        for b in self.bins + [self.overall]:
            out.append(f"  {b.label:<14}{b.count:>6}{fmt(b.mean, 1):>8}{fmt(b.p50, 1):>8}"
                       f"{fmt(b.p95, 1):>8}{fmt(b.p99, 1):>8}")
        return out + [""]


def ideal_fct_s(size_bytes: float, line_rate_mbps: float, base_rtt_s: float,
                wire: WireModel = WireModel()) -> float:
    """The flow alone on the fabric: its wire bytes at line rate plus one base RTT."""
    wire_bytes = (size_bytes + wire.header_bytes) * wire.forward_cost
    return wire_bytes * 8 / (line_rate_mbps * 1e6) + base_rtt_s


def fct_slowdown(records: Sequence[FlowRecord], line_rate_mbps: float, base_rtt_s: float = 0.0,
                 bin_size_factor: float = 1.0, wire: WireModel = WireModel()) -> SlowdownResult:
    """Slowdown = max(1, FCT / ideal FCT) of the complete flows, binned by size / bin_size_factor
    (the workload's input units); base_rtt_s = 0 estimates it from the fastest flow."""
    done = [(r.bytes, r.fct_s) for r in records if r.complete and r.fct_s is not None]
    source = "spec"
    if base_rtt_s <= 0:
        base_rtt_s = max(0.0, min((fct - ideal_fct_s(size, line_rate_mbps, 0.0, wire)
                                   for size, fct in done), default=0.0))
        source = f"estimated (fastest of {len(done)} flows)"
    pairs = [(size / bin_size_factor,
              max(1.0, fct / ideal_fct_s(size, line_rate_mbps, base_rtt_s, wire)))
             for size, fct in done]
    bins = [SlowdownBin.of(label, [x for size, x in pairs if lo <= size < hi])
            for label, lo, hi in SLOWDOWN_BINS]
    return SlowdownResult(line_rate_mbps, base_rtt_s, source,
                          SlowdownBin.of("all", [x for _, x in pairs]), bins)
