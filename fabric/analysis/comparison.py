"""`fabric compare`'s numbers: per-run metrics, aggregates over seeds, ratios to a reference.
(The loop that runs every fabric for every seed: fabric.run.compare.)

Reference fabric: the experiment's top-level ``reference = "<fabric name>"``; when absent, the first
fabric of kind "single" (the ideal big switch); when there is none, no ratios are reported.
Ratios are fabric mean / reference mean (JCT, iteration JCT, FCT p99, busbw).

Per run and workload: ``jct_s`` = last flow end - first flow start of the workload (the job
completion time, compute gaps included; docs/metrics.md), ``iteration_jct_s`` and ``busbw_mbps`` = mean
over the workload's collective instances (fabric.metrics), FCT p50/p99 from the run summary.
Runs that are not complete are excluded from every mean and listed as excluded. So are runs the
fidelity monitor judged UNFAITHFUL (or could not judge): the machine, not the fabric, set their
numbers. ``include_unfaithful=True`` (``fabric compare --include-unfaithful``) counts complete
unfaithful runs too; they stay flagged everywhere.

Head-to-head (fabric.analysis.headtohead): for every pair of fabrics and every workload, the JCT
ratio seed by seed with a 95% confidence interval, and one verdict line.
Beside each fabric: ``x ideal`` (mean JCT / the ideal model's JCT of the same plan on the same
fabric, fabric.analysis.ideal, spread view) and, for ECMP fabrics, the model's expected ECMP
penalty (mean JCT over random path choices / the no-collision JCT), computed by
:func:`expected_ecmp_penalty` where the plan and model are at hand.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from traffic.records import FlowRecord, read_csv, span

from topologies.errors import SpecError
from fabric.analysis.links import LinkSample, LinkUtilisation, TierBalance, balance, read_links_csv, utilisation
from fabric.analysis.headtohead import PairedRatio, paired_ratio, verdict
from fabric.analysis.metrics import CollectiveResult, Distribution, to_jsonable
from fabric.analysis.summary import RunSummary
from fabric.spec.experiment import ExperimentSpec

FORMAT = 2  # 2: fidelity, head-to-head, ideal; run_dir relative to the report


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
    def of(cls, values: Iterable[float | None]) -> Stat:
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
    faithful: bool | None = None  # the fidelity verdict; None = not assessed
    fidelity_reasons: tuple[str, ...] = ()  # why not faithful
    ideal_jct_s: dict[str, float] = field(default_factory=dict)  # workload -> ideal model's JCT

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    def counts(self, include_unfaithful: bool = False) -> bool:
        """Whether this run enters means, ratios and verdicts: complete, and faithful unless
        unfaithful runs are included."""
        return self.complete and (include_unfaithful or self.faithful is True)

    @property
    def fidelity(self) -> str:
        """"faithful", "UNFAITHFUL" or "not assessed"."""
        return {True: "faithful", False: "UNFAITHFUL", None: "not assessed"}[self.faithful]


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x


def _mean(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(xs) / len(xs) if xs else None


def measure_run(summary: RunSummary, kind: str, records: Sequence[FlowRecord],
                link_samples: Sequence[LinkSample] = (), elapsed_s: float = 0.0,
                ideal_times: dict[int, tuple[float, float]] | None = None) -> RunMetrics:
    """Per-workload JCT/busbw/FCT, fabric-tier utilisation and fidelity of one run (pure).

    Link utilisation is taken over the workload window (first flow start to last flow end).
    ideal_times: flow id -> (ideal ready, ideal end) from ideal.csv; a workload's ideal JCT is
    its last ideal end - its first ideal ready.
    """
    workloads: dict[str, WorkloadRun] = {}
    group_workload = {r.group: r.workload for r in records if r.group}
    for name in dict.fromkeys(r.workload for r in records):
        mine = [r for r in records if r.workload == name]
        done = [r for r in mine if r.complete]
        whole = span(done) if done and len(done) == len(mine) else None
        jct = whole[1] - whole[0] if whole else None
        colls = [c for c in summary.collectives if group_workload.get(c.id) == name and c.complete]
        fct = summary.fct_by_workload.get(name)
        workloads[name] = WorkloadRun(
            jct, _mean([c.jct_s for c in colls]), _mean([c.busbw_mbps for c in colls]),
            _nan_to_none(fct.p50) if fct else None, _nan_to_none(fct.p99) if fct else None,
            len(done), len(mine))
    done = [r for r in records if r.complete]
    window = span(done)
    links = tuple(utilisation(link_samples, window))
    ideal: dict[str, float] = {}
    for name in workloads:
        times = [ideal_times[r.flow_id] for r in records
                 if r.workload == name and ideal_times and r.flow_id in ideal_times]
        if times:
            ideal[name] = max(e for _, e in times) - min(b for b, _ in times)
    faithful, reasons = fidelity_of(summary.fidelity)
    return RunMetrics(summary.fabric, kind, summary.policy, summary.seed, summary.status,
                      summary.error, summary.run_dir, elapsed_s, dict(summary.setup), workloads,
                      tuple(r.fct_s for r in done if r.fct_s is not None), links,
                      balance(links, "fabric"), window, faithful, reasons, ideal)


def fidelity_of(verdict: Any) -> tuple[bool | None, tuple[str, ...]]:
    """(faithful, reasons) of a summary's fidelity field (a Fidelity, its JSON dict, or None)."""
    if verdict is None:
        return None, ()
    if isinstance(verdict, dict):
        return bool(verdict.get("faithful")), tuple(verdict.get("reasons") or ())
    return bool(verdict.faithful), tuple(verdict.reasons)


def read_ideal_times(path: Path) -> dict[int, tuple[float, float]]:
    """ideal.csv -> flow id -> (ideal ready, ideal end), in the file's time base."""
    out: dict[int, tuple[float, float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                ready = row.get("ideal_ready", row.get("ideal_ready_s"))
                end = row.get("ideal_end", row.get("ideal_end_s"))
                out[int(row["flow_id"])] = (float(ready), float(end))  # type: ignore[arg-type]
            except (KeyError, TypeError, ValueError):
                continue
    return out


def load_run(summary: RunSummary, kind: str, elapsed_s: float) -> RunMetrics:
    """measure_run on what a finished run wrote into its directory."""
    run_dir = Path(summary.run_dir)
    flows = run_dir / "flows.csv"
    links = run_dir / "links.csv"
    records = read_csv(flows) if flows.exists() else []
    samples = read_links_csv(links) if links.exists() else []
    ideal = run_dir / "ideal.csv"
    return measure_run(summary, kind, records, samples, elapsed_s,
                       read_ideal_times(ideal) if ideal.exists() else None)


def summary_from_json(doc: dict[str, Any]) -> RunSummary:
    """The parts of a summary.json a comparison reads, back as a RunSummary (fidelity and ideal
    stay dicts)."""
    def dist(d: dict[str, Any] | None) -> Distribution | None:
        if d is None:
            return None
        kw: dict[str, Any] = {k: math.nan if d.get(k) is None else d[k]
                              for k in Distribution.__dataclass_fields__}
        return Distribution(**kw)

    def coll(c: dict[str, Any]) -> CollectiveResult:
        kw: dict[str, Any] = {k: (math.nan if v is None else v) for k, v in c.items()
                              if k in CollectiveResult.__dataclass_fields__}
        return CollectiveResult(**kw)
    colls = [coll(c) for c in doc.get("collectives") or []]
    s = RunSummary(doc["experiment"], doc["fabric"], doc["policy"], doc["seed"], doc["run_dir"],
                   status=doc.get("status", "failed"), error=doc.get("error"),
                   datapath=doc.get("datapath", ""), setup=doc.get("setup") or {},
                   flows_planned=doc.get("flows_planned", 0),
                   flows_complete=doc.get("flows_complete", 0), fct_s=dist(doc.get("fct_s")),
                   collectives=colls)
    s.fct_by_workload = {k: d for k, v in (doc.get("fct_by_workload") or {}).items()
                         if (d := dist(v)) is not None}
    s.ideal, s.fidelity = doc.get("ideal"), doc.get("fidelity")
    return s


def read_run_dir(run_dir: Path, elapsed_s: float = 0.0) -> RunMetrics:
    """RunMetrics of a recorded run directory (summary.json, flows.csv, links.csv, ideal.csv);
    the run is found where it is now, whatever summary.json says."""
    run_dir = Path(run_dir)
    summary = summary_from_json(json.loads((run_dir / "summary.json").read_text()))
    summary.run_dir = str(run_dir)
    return load_run(summary, str(summary.setup.get("topology", "")), elapsed_s)


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
    ideal_jct_s: float | None = None    # the ideal model's JCT (spread view) of this plan here
    x_ideal: float | None = None        # mean JCT / ideal JCT
    ecmp_penalty: float | None = None   # model: expected ECMP JCT / no-collision JCT (ECMP only)


@dataclass(frozen=True)
class LinkAggregate:
    """Fabric-tier links of one fabric over its complete runs (utilisation as fractions)."""
    links: int
    util_mean: Stat
    util_max: Stat
    mmr: Stat
    jain: Stat
    per_link: dict[str, float]  # "src>dst" -> mean over runs of that direction's mean utilisation
    per_seed: dict[int, dict[str, float]] = field(default_factory=dict)  # seed -> "src>dst" -> util


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
    runs_faithful: int = 0  # complete and judged faithful
    runs_counted: int = 0   # in the means (= runs_faithful unless unfaithful runs are included)
    unfaithful: list[dict[str, Any]] = field(default_factory=list)  # complete, not faithful


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
    include_unfaithful: bool = False
    pairs: list[PairedRatio] = field(default_factory=list)
    cost: Any = None  # fabric.spec.cost.CostSpec: the [cost] assumptions (None: defaults)

    @property
    def not_faithful(self) -> list[RunMetrics]:
        """Complete runs whose fidelity verdict is not FAITHFUL (unfaithful or not assessed)."""
        return [r for r in self.runs if r.complete and r.faithful is not True]

    def label(self, fabric: str) -> str:
        """A fabric's name with what it is: "leafspine (leaf/spine+ecmp)", "ddc (DDC)"."""
        f = next((f for f in self.fabrics if f.name == fabric), None)
        return fabric if f is None else fabric_label(f.name, f.kind, f.policy)

    def verdicts(self) -> list[str]:
        """One line per fabric pair and workload (fabric.analysis.headtohead.verdict)."""
        labels = {f.name: self.label(f.name) for f in self.fabrics}
        return [verdict(p, labels) for p in self.pairs]

    @property
    def all_complete(self) -> bool:
        return not self.interrupted and all(f.runs_complete == f.runs == len(self.seeds)
                                            for f in self.fabrics)

    def to_dict(self) -> dict[str, Any]:
        """The stable --json document (README.md, "fabric compare --json")."""
        doc: dict[str, Any] = to_jsonable({
            "format": FORMAT, "experiment": self.experiment, "spec_path": self.spec_path,
            "report_dir": self.report_dir, "seeds": self.seeds, "reference": self.reference,
            "workloads": self.workloads, "all_complete": self.all_complete,
            "interrupted": self.interrupted, "elapsed_s": self.elapsed_s,
            "fabrics": [{
                "name": f.name, "kind": f.kind, "policy": f.policy, "reference": f.reference,
                "setup": f.setup, "runs": f.runs, "runs_complete": f.runs_complete,
                "runs_faithful": f.runs_faithful, "runs_counted": f.runs_counted,
                "excluded": [{**e, "run_dir": self.relative(e["run_dir"])} for e in f.excluded],
                "unfaithful": [{**e, "run_dir": self.relative(e["run_dir"])}
                               for e in f.unfaithful],
                "workloads": dict(f.workloads),
                "links": None if f.links is None else {
                    "links": f.links.links, "util_mean": f.links.util_mean,
                    "util_max": f.links.util_max, "mmr": f.links.mmr, "jain": f.links.jain,
                    "per_link": f.links.per_link,
                    "per_seed": {str(k): v for k, v in f.links.per_seed.items()}},
            } for f in self.fabrics],
            "include_unfaithful": self.include_unfaithful,
            "runs_not_faithful": len(self.not_faithful),
            "head_to_head": [{
                "workload": p.workload, "a": p.a, "b": p.b, "seeds": p.seeds,
                "jct_ratios": p.ratios, "jct_ratio": p.ratio, "ci_low": p.low,
                "ci_high": p.high, "level": p.level, "resolved": p.resolved, "verdict": v,
            } for p, v in zip(self.pairs, self.verdicts())],
            "runs": [{
                "fabric": r.fabric, "seed": r.seed, "status": r.status, "error": r.error,
                "faithful": r.faithful, "fidelity_reasons": r.fidelity_reasons,
                "counted": r.counts(self.include_unfaithful),
                "run_dir": self.relative(r.run_dir), "elapsed_s": r.elapsed_s,
                "workloads": r.workloads, "ideal_jct_s": r.ideal_jct_s,
                "links": r.link_balance,
            } for r in self.runs],
        })
        return doc

    def relative(self, path: str) -> str:
        """A run directory relative to the report directory (as given when outside it)."""
        if not self.report_dir:
            return path
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(self.report_dir))
        return path if rel.startswith("..") else rel


KIND_LABELS = {"leafspine": "leaf/spine", "ddc": "DDC", "single": "one switch"}


def fabric_label(name: str, kind: str, policy: str) -> str:
    """"leafspine (leaf/spine+ecmp)": a fabric's name and what it is, for verdicts."""
    what = KIND_LABELS.get(kind, kind)
    if kind == "leafspine":
        what += f"+{policy}"
    return name if what == name else f"{name} ({what})"


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
    per_seed: dict[int, dict[str, float]] = {}
    for r in with_links:
        for u in r.links:
            if u.tier == "fabric":
                per.setdefault(f"{u.src}>{u.dst}", []).append(u.util_mean)
                per_seed.setdefault(r.seed, {})[f"{u.src}>{u.dst}"] = u.util_mean
    bals = [r.link_balance for r in with_links if r.link_balance is not None]
    return LinkAggregate(max(b.links for b in bals), Stat.of(b.util_mean for b in bals),
                         Stat.of(b.util_max for b in bals), Stat.of(b.mmr for b in bals),
                         Stat.of(b.jain for b in bals),
                         {k: sum(v) / len(v) for k, v in per.items()}, per_seed)


def aggregate(experiment: str, fabrics: Sequence[tuple[str, str, str]], runs: Sequence[RunMetrics],
              seeds: Sequence[int], workloads: Sequence[str], reference: str | None,
              include_unfaithful: bool = False,
              ecmp_penalty: dict[tuple[str, str], float] | None = None,
              **extra: Any) -> Comparison:
    """Per fabric (name, kind, policy): spread over its counted runs, ratios to `reference`,
    the ideal model beside it, and every pair of fabrics head to head.

    Counted runs: complete and faithful (RunMetrics.counts); the others count in `runs` but in
    no mean, ratio or verdict: incomplete ones are listed in `excluded`, complete but not
    faithful ones in `unfaithful` (counted anyway with include_unfaithful). ecmp_penalty:
    (fabric, workload) -> the model's expected ECMP penalty (expected_ecmp_penalty). `extra`
    goes to Comparison (spec_path, report_dir, interrupted, elapsed_s, cost).
    """
    if reference is not None and reference not in [f[0] for f in fabrics]:
        raise ValueError(f"reference {reference!r} is not one of the fabrics")
    out: list[FabricAggregate] = []
    for name, kind, policy in fabrics:
        mine = [r for r in runs if r.fabric == name]
        ok = [r for r in mine if r.counts(include_unfaithful)]
        excluded = [{"seed": r.seed, "status": r.status, "error": r.error, "run_dir": r.run_dir}
                    for r in mine if not r.complete]
        unfaithful = [{"seed": r.seed, "fidelity": r.fidelity, "reasons": list(r.fidelity_reasons),
                       "counted": include_unfaithful, "run_dir": r.run_dir}
                      for r in mine if r.complete and r.faithful is not True]
        setup = next((r.setup for r in mine if r.setup), {})
        aggs = {}
        for w in workloads:
            a = _aggregate_workload(ok, w)
            ideal = next((r.ideal_jct_s[w] for r in mine if w in r.ideal_jct_s), None)
            aggs[w] = dataclasses.replace(
                a, ideal_jct_s=ideal, x_ideal=_ratio(a.jct_s.mean, ideal),
                ecmp_penalty=(ecmp_penalty or {}).get((name, w)))
        out.append(FabricAggregate(name, kind, policy, name == reference, setup, len(mine),
                                   sum(1 for r in mine if r.complete), excluded, aggs,
                                   _aggregate_links(ok),
                                   sum(1 for r in mine if r.complete and r.faithful is True),
                                   len(ok), unfaithful))
    ref = next((f for f in out if f.reference), None)
    if ref is not None:
        for i, f in enumerate(out):
            ratios = {}
            for w, a in f.workloads.items():
                r = ref.workloads[w]
                ratios[w] = dataclasses.replace(
                    a, jct_ratio=_ratio(a.jct_s.mean, r.jct_s.mean),
                    iteration_jct_ratio=_ratio(a.iteration_jct_s.mean, r.iteration_jct_s.mean),
                    busbw_ratio=_ratio(a.busbw_mbps.mean, r.busbw_mbps.mean),
                    fct_p99_ratio=_ratio(a.fct_p99_s.mean, r.fct_p99_s.mean))
            out[i] = dataclasses.replace(f, workloads=ratios)
    pairs = []
    for wname in workloads:
        jct = {name: {r.seed: r.workloads[wname].jct_s for r in runs
                      if r.fabric == name and r.counts(include_unfaithful)
                      and wname in r.workloads}
               for name, _, _ in fabrics}
        for i, (fa, _, _) in enumerate(fabrics):
            for fb, _, _ in fabrics[i + 1:]:
                pairs.append(paired_ratio(wname, fa, fb, jct[fa], jct[fb]))
    return Comparison(experiment, seeds=list(seeds), reference=reference,
                      workloads=list(workloads), fabrics=out, runs=list(runs),
                      include_unfaithful=include_unfaithful, pairs=pairs, **extra)


def expected_ecmp_penalty(graph: Any, plan: Any, workloads: Sequence[str], samples: int = 16,
                          seed: int = 0) -> dict[str, float]:
    """Per workload: the ideal model's expected JCT under ECMP (mean over `samples` seeded
    uniform random path choices per flow, a hash we cannot predict) / its JCT with flows spread
    evenly over every equal-cost path (no collision). 1.0 on a fabric with one path."""
    import random

    from fabric.analysis.ideal import hash_chooser, ideal_plan

    def jcts(result: Any) -> dict[str, float]:
        out = {}
        for w in workloads:
            fl = [result.flows[t.id] for t in plan.transfers
                  if t.workload == w and t.id in result.flows]
            if fl:
                out[w] = max(f.end_s for f in fl) - min(f.ready_s for f in fl)
        return out
    spread = jcts(ideal_plan(graph, plan, "spread"))
    rng = random.Random(seed)
    pinned = [jcts(ideal_plan(graph, plan, "pinned", hash_chooser(rng.randrange(2**32))))
              for _ in range(samples)]
    return {w: sum(p[w] for p in pinned) / samples / spread[w]
            for w in spread if spread[w] > 0 and all(w in p for p in pinned)}


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
