"""`fabric compare`'s numbers: per-run metrics, aggregates over seeds, ratios to a reference.
(The loop that runs every fabric for every seed: fabric.run.compare.)

Reference fabric: the experiment's top-level ``reference = "<fabric name>"``; when absent, the first
fabric of kind "single" (the ideal big switch); when there is none, no ratios are reported.
Ratios are fabric mean / reference mean (JCT, iteration JCT, FCT p99, busbw).

Per run and workload: ``jct_s`` = last flow end - first flow start of the workload (the job
completion time, compute gaps included), ``iteration_jct_s`` and ``busbw_mbps`` = mean over the
workload's collective instances (fabric.analysis.metrics), FCT p50/p99 from the run summary.
Runs that are not complete are excluded from every mean and listed as excluded.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from traffic.records import FlowRecord, read_csv

from topologies.errors import SpecError
from fabric.analysis.links import LinkSample, LinkUtilisation, TierBalance, balance, read_links_csv, utilisation
from fabric.analysis.metrics import to_jsonable
from fabric.analysis.summary import RunSummary
from fabric.spec.experiment import ExperimentSpec

FORMAT = 1


# ---------------------------------------------------------------- per run

@dataclass(frozen=True)
class Stat:
    """Spread of one metric over the complete runs (seeds); None where undefined."""
    n: int
    mean: float | None
    stdev: float | None  # sample standard deviation (n - 1); None for n < 2
    cv: float | None  # stdev / mean
    min: float | None
    max: float | None

    @classmethod
    def of(cls, values: Iterable[float | None]) -> "Stat":
        xs = [float(v) for v in values if v is not None and not math.isnan(v)]
        if not xs:
            return cls(0, None, None, None, None, None)
        mean = sum(xs) / len(xs)
        sd = statistics.stdev(xs) if len(xs) > 1 else None
        cv = sd / mean if sd is not None and mean else None
        return cls(len(xs), mean, sd, cv, min(xs), max(xs))


@dataclass(frozen=True)
class WorkloadRun:
    """One workload in one run (None: not measurable, e.g. no collective)."""
    jct_s: float | None
    iteration_jct_s: float | None
    busbw_mbps: float | None
    fct_p50_s: float | None
    fct_p99_s: float | None
    flows_complete: int
    flows_planned: int


@dataclass(frozen=True)
class RunMetrics:
    """What the comparison keeps of one run (fabric x seed)."""
    fabric: str
    kind: str
    policy: str
    seed: int
    status: str
    error: str | None
    run_dir: str
    elapsed_s: float
    setup: dict[str, Any]
    workloads: dict[str, WorkloadRun]
    fct_s: tuple[float, ...] = ()  # every complete flow's FCT, for CDFs
    links: tuple[LinkUtilisation, ...] = ()
    link_balance: TierBalance | None = None
    window: tuple[float, float] | None = None  # epoch s: first flow start, last flow end

    @property
    def complete(self) -> bool:
        return self.status == "complete"


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x


def _mean(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(xs) / len(xs) if xs else None


def measure_run(summary: RunSummary, kind: str, records: Sequence[FlowRecord],
                link_samples: Sequence[LinkSample] = (), elapsed_s: float = 0.0) -> RunMetrics:
    """Per-workload JCT/busbw/FCT and fabric-tier utilisation of one run (pure).

    Link utilisation is taken over the workload window (first flow start to last flow end).
    """
    workloads: dict[str, WorkloadRun] = {}
    group_workload = {r.group: r.workload for r in records if r.group}
    for name in dict.fromkeys(r.workload for r in records):
        mine = [r for r in records if r.workload == name]
        done = [r for r in mine if r.complete]
        jct = (max(r.end for r in done) - min(r.start for r in done)
               if done and len(done) == len(mine) else None)
        colls = [c for c in summary.collectives if group_workload.get(c.id) == name and c.complete]
        fct = summary.fct_by_workload.get(name)
        workloads[name] = WorkloadRun(
            jct, _mean([c.jct_s for c in colls]), _mean([c.busbw_mbps for c in colls]),
            _nan_to_none(fct.p50) if fct else None, _nan_to_none(fct.p99) if fct else None,
            len(done), len(mine))
    done = [r for r in records if r.complete]
    window = (min(r.start for r in done), max(r.end for r in done)) if done else None
    links = tuple(utilisation(link_samples, window))
    return RunMetrics(summary.fabric, kind, summary.policy, summary.seed, summary.status,
                      summary.error, summary.run_dir, elapsed_s, dict(summary.setup), workloads,
                      tuple(r.fct_s for r in done if r.fct_s is not None), links,
                      balance(links, "fabric"), window)


def load_run(summary: RunSummary, kind: str, elapsed_s: float) -> RunMetrics:
    """measure_run on what a finished run wrote into its directory."""
    run_dir = Path(summary.run_dir)
    flows = run_dir / "flows.csv"
    links = run_dir / "links.csv"
    records = read_csv(flows) if flows.exists() else []
    samples = read_links_csv(links) if links.exists() else []
    return measure_run(summary, kind, records, samples, elapsed_s)


# ---------------------------------------------------------------- over seeds

@dataclass(frozen=True)
class WorkloadAggregate:
    """One workload on one fabric over its complete runs; *_ratio = mean / reference mean."""
    jct_s: Stat
    iteration_jct_s: Stat
    busbw_mbps: Stat
    fct_p50_s: Stat
    fct_p99_s: Stat
    jct_ratio: float | None = None
    iteration_jct_ratio: float | None = None
    busbw_ratio: float | None = None
    fct_p99_ratio: float | None = None


@dataclass(frozen=True)
class LinkAggregate:
    """Fabric-tier links of one fabric over its complete runs (utilisation as fractions)."""
    links: int
    util_mean: Stat
    util_max: Stat
    mmr: Stat
    jain: Stat
    per_link: dict[str, float]  # "src>dst" -> mean over runs of that direction's mean utilisation


@dataclass(frozen=True)
class FabricAggregate:
    name: str
    kind: str
    policy: str
    reference: bool
    setup: dict[str, Any]
    runs: int
    runs_complete: int
    excluded: list[dict[str, Any]]
    workloads: dict[str, WorkloadAggregate]
    links: LinkAggregate | None


@dataclass(frozen=True)
class Comparison:
    experiment: str
    seeds: list[int]
    reference: str | None
    workloads: list[str]
    fabrics: list[FabricAggregate]
    runs: list[RunMetrics]
    spec_path: str | None = None
    report_dir: str | None = None
    interrupted: bool = False
    elapsed_s: float = 0.0

    @property
    def all_complete(self) -> bool:
        return not self.interrupted and all(f.runs_complete == f.runs == len(self.seeds)
                                            for f in self.fabrics)

    def to_dict(self) -> dict[str, Any]:
        """The stable --json document (README.md, "fabric compare --json")."""
        return to_jsonable({
            "format": FORMAT, "experiment": self.experiment, "spec_path": self.spec_path,
            "report_dir": self.report_dir, "seeds": self.seeds, "reference": self.reference,
            "workloads": self.workloads, "all_complete": self.all_complete,
            "interrupted": self.interrupted, "elapsed_s": self.elapsed_s,
            "fabrics": [{
                "name": f.name, "kind": f.kind, "policy": f.policy, "reference": f.reference,
                "setup": f.setup, "runs": f.runs, "runs_complete": f.runs_complete,
                "excluded": f.excluded,
                "workloads": {w: a for w, a in f.workloads.items()},
                "links": None if f.links is None else {
                    "links": f.links.links, "util_mean": f.links.util_mean,
                    "util_max": f.links.util_max, "mmr": f.links.mmr, "jain": f.links.jain,
                    "per_link": f.links.per_link},
            } for f in self.fabrics],
            "runs": [{
                "fabric": r.fabric, "seed": r.seed, "status": r.status, "error": r.error,
                "run_dir": r.run_dir, "elapsed_s": r.elapsed_s, "workloads": r.workloads,
                "links": r.link_balance,
            } for r in self.runs],
        })


def _ratio(value: float | None, ref: float | None) -> float | None:
    return value / ref if value is not None and ref else None


def _aggregate_workload(runs: Sequence[RunMetrics], name: str) -> WorkloadAggregate:
    ws = [r.workloads[name] for r in runs if name in r.workloads]
    return WorkloadAggregate(Stat.of(w.jct_s for w in ws), Stat.of(w.iteration_jct_s for w in ws),
                             Stat.of(w.busbw_mbps for w in ws), Stat.of(w.fct_p50_s for w in ws),
                             Stat.of(w.fct_p99_s for w in ws))


def _aggregate_links(runs: Sequence[RunMetrics]) -> LinkAggregate | None:
    with_links = [r for r in runs if r.link_balance is not None]
    if not with_links:
        return None
    per: dict[str, list[float]] = {}
    for r in with_links:
        for u in r.links:
            if u.tier == "fabric":
                per.setdefault(f"{u.src}>{u.dst}", []).append(u.util_mean)
    bals = [r.link_balance for r in with_links]
    return LinkAggregate(max(b.links for b in bals), Stat.of(b.util_mean for b in bals),
                         Stat.of(b.util_max for b in bals), Stat.of(b.mmr for b in bals),
                         Stat.of(b.jain for b in bals),
                         {k: sum(v) / len(v) for k, v in per.items()})


def aggregate(experiment: str, fabrics: Sequence[tuple[str, str, str]], runs: Sequence[RunMetrics],
              seeds: Sequence[int], workloads: Sequence[str], reference: str | None,
              **extra: Any) -> Comparison:
    """Per fabric (name, kind, policy): spread over its complete runs, ratios to `reference`.

    Incomplete runs (status other than "complete") count in `runs` but in no mean; they are
    listed in `excluded`. `extra` goes to Comparison (spec_path, report_dir, interrupted, elapsed_s).
    """
    if reference is not None and reference not in [f[0] for f in fabrics]:
        raise ValueError(f"reference {reference!r} is not one of the fabrics")
    out: list[FabricAggregate] = []
    for name, kind, policy in fabrics:
        mine = [r for r in runs if r.fabric == name]
        ok = [r for r in mine if r.complete]
        excluded = [{"seed": r.seed, "status": r.status, "error": r.error, "run_dir": r.run_dir}
                    for r in mine if not r.complete]
        setup = next((r.setup for r in mine if r.setup), {})
        out.append(FabricAggregate(name, kind, policy, name == reference, setup, len(mine),
                                   len(ok), excluded,
                                   {w: _aggregate_workload(ok, w) for w in workloads},
                                   _aggregate_links(ok)))
    ref = next((f for f in out if f.reference), None)
    if ref is not None:
        for i, f in enumerate(out):
            ratios = {}
            for w, a in f.workloads.items():
                r = ref.workloads[w]
                ratios[w] = WorkloadAggregate(
                    a.jct_s, a.iteration_jct_s, a.busbw_mbps, a.fct_p50_s, a.fct_p99_s,
                    _ratio(a.jct_s.mean, r.jct_s.mean),
                    _ratio(a.iteration_jct_s.mean, r.iteration_jct_s.mean),
                    _ratio(a.busbw_mbps.mean, r.busbw_mbps.mean),
                    _ratio(a.fct_p99_s.mean, r.fct_p99_s.mean))
            out[i] = FabricAggregate(f.name, f.kind, f.policy, f.reference, f.setup, f.runs,
                                     f.runs_complete, f.excluded, ratios, f.links)
    return Comparison(experiment, seeds=list(seeds), reference=reference,
                      workloads=list(workloads), fabrics=out, runs=list(runs), **extra)


# ---------------------------------------------------------------- checks

def reference_fabric(spec: ExperimentSpec) -> str | None:
    """The explicit `reference`, else the first fabric of kind "single", else None."""
    if spec.reference:
        return spec.reference
    return next((f.name for f in spec.fabrics if f.kind == "single"), None)


def check_comparable(spec: ExperimentSpec) -> None:
    """Every fabric must get the same traffic plan (e.g. hosts = "all" on fabrics of different
    sizes would not); raise SpecError naming the first fabric that differs."""
    from fabric.plan.traffic import build_plan
    plans = [build_plan(spec, f.build(), spec.seed) for f in spec.fabrics]
    for i, p in enumerate(plans[1:], start=1):
        if (p.transfers, p.collectives) != (plans[0].transfers, plans[0].collectives):
            raise SpecError(f"fabric[{i}]", f"fabric {spec.fabrics[i].name!r} gets a different traffic "
                            f"plan than {spec.fabrics[0].name!r} ({len(p.transfers)} vs "
                            f"{len(plans[0].transfers)} transfers, hosts {p.hosts()} vs "
                            f"{plans[0].hosts()}): a comparison needs the same plan on every fabric; "
                            f"name the hosts in the workload or give the fabrics the same hosts")
