"""Results read back from disk as plain rows: a run directory, a comparison or a sweep report.

    load_run(run_dir)          -> RunResult: summary.json as a dict, flows.csv as FlowRecords,
                                  one MetricRow per workload
    load_comparison(report)    -> ComparisonResult: compare.json, one MetricRow per fabric x seed x
                                  workload ("run") and per fabric x workload ("aggregate")
    load_sweep(report)         -> the same rows for every point of a sweep, `params` saying which

No root, no Mininet: everything comes from the files a run or report wrote (formats in README.md).
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabric.analysis.comparison import RunMetrics, WorkloadRun, measure_run
from fabric.analysis.links import read_links_csv
from fabric.analysis.metrics import CollectiveResult, Distribution
from fabric.analysis.summary import RunSummary
from topologies.errors import FabricError
from traffic.records import FlowRecord, read_csv


@dataclass(frozen=True)
class MetricRow:
    """One workload in one run (`row_type` "run"), or over a fabric's complete runs
    ("aggregate": means, `*_stdev` sample standard deviations, `n` runs behind the means).
    Times in seconds, rates in Mbit/s; None where not measurable. `params` holds a sweep
    point's settings (key path -> value as written), {} for a comparison."""
    row_type: str
    fabric: str
    kind: str
    workload: str
    seed: int | None = None
    status: str = ""
    jct_s: float | None = None
    iteration_jct_s: float | None = None
    busbw_mbps: float | None = None
    fct_p50_s: float | None = None
    fct_p99_s: float | None = None
    n: int = 1
    jct_stdev_s: float | None = None
    busbw_stdev_mbps: float | None = None
    fct_p99_stdev_s: float | None = None
    jct_ratio: float | None = None
    busbw_ratio: float | None = None
    fct_p99_ratio: float | None = None
    run_dir: str = ""
    params: dict[str, str] = field(default_factory=dict)
    point: int | None = None  # a sweep point's index


@dataclass(frozen=True)
class RunResult:
    """One run directory: what ran, how it went, every flow and the per-workload figures."""
    run_dir: str
    experiment: str
    fabric: str
    kind: str
    policy: str
    seed: int
    status: str
    error: str | None
    summary: dict[str, Any]          # summary.json as written (README.md lists the fields)
    flows: list[FlowRecord]          # flows.csv, one per planned transfer
    workloads: list[MetricRow]       # one "run" row per workload

    def workload(self, name: str) -> MetricRow:
        for row in self.workloads:
            if row.workload == name:
                return row
        raise KeyError(f"no workload {name!r} in {self.run_dir} "
                       f"(have: {', '.join(r.workload for r in self.workloads)})")


@dataclass(frozen=True)
class ComparisonResult:
    """A `fabric compare` report (or one point of a sweep)."""
    report_dir: str
    experiment: str
    seeds: list[int]
    reference: str | None
    document: dict[str, Any]         # compare.json as written
    rows: list[MetricRow]

    @property
    def runs(self) -> list[MetricRow]:
        return [r for r in self.rows if r.row_type == "run"]

    @property
    def aggregates(self) -> list[MetricRow]:
        return [r for r in self.rows if r.row_type == "aggregate"]

    def mean(self, fabric: str, workload: str, metric: str = "jct_s") -> float | None:
        """The aggregate mean of `metric` for one fabric and workload."""
        for r in self.aggregates:
            if r.fabric == fabric and r.workload == workload:
                value: float | None = getattr(r, metric)
                return value
        raise KeyError(f"no aggregate row for fabric {fabric!r}, workload {workload!r}")


# ---------------------------------------------------------------- summary.json back to objects

def _build(cls: type, data: Mapping[str, Any]) -> Any:
    """A flat dataclass from its JSON dict (to_jsonable wrote NaN as null: read back as NaN)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            v = data[f.name]
            values[f.name] = math.nan if v is None and hints[f.name] is float else v
    return cls(**values)


def summary_from_dict(d: Mapping[str, Any]) -> RunSummary:
    """RunSummary from summary.json (nested results stay plain dicts except those the
    comparison reads: FCT distributions and collectives)."""
    known = {f.name for f in dataclasses.fields(RunSummary)}
    s = RunSummary(**{k: v for k, v in d.items() if k in known})
    s.fct_s = _build(Distribution, d["fct_s"]) if d.get("fct_s") else None
    s.fct_by_workload = {k: _build(Distribution, v) for k, v in (d.get("fct_by_workload") or {}).items()}
    s.collectives = [_build(CollectiveResult, c) for c in d.get("collectives") or []]
    return s


def read_summary(run_dir: str | Path) -> RunSummary:
    path = Path(run_dir) / "summary.json"
    try:
        return summary_from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise FabricError(f"{run_dir}: no summary.json (not a run directory, or the run "
                          f"was killed before it wrote one)") from None


def run_metrics(run_dir: str | Path, elapsed_s: float = 0.0) -> RunMetrics:
    """The comparison's view of one run directory (fabric.analysis.comparison.measure_run)."""
    summary = read_summary(run_dir)
    summary.run_dir = str(run_dir)
    d = Path(run_dir)
    records = read_csv(d / "flows.csv") if (d / "flows.csv").exists() else []
    samples = read_links_csv(d / "links.csv") if (d / "links.csv").exists() else []
    kind = str(summary.setup.get("topology", ""))
    return measure_run(summary, kind, records, samples, elapsed_s)


def run_rows(m: RunMetrics, params: Mapping[str, str] | None = None,
             point: int | None = None) -> list[MetricRow]:
    """One "run" row per workload of a run."""
    return [MetricRow("run", m.fabric, m.kind, name, m.seed, m.status, w.jct_s, w.iteration_jct_s,
                      w.busbw_mbps, w.fct_p50_s, w.fct_p99_s, run_dir=m.run_dir,
                      params=dict(params or {}), point=point)
            for name, w in m.workloads.items()]


def load_run(run_dir: str | Path) -> RunResult:
    """Everything one run wrote, as plain rows (no root needed)."""
    d = Path(run_dir)
    m = run_metrics(d)
    doc = json.loads((d / "summary.json").read_text())
    flows = read_csv(d / "flows.csv") if (d / "flows.csv").exists() else []
    return RunResult(str(d), doc.get("experiment", ""), m.fabric, m.kind, m.policy, m.seed,
                     m.status, m.error, doc, flows, run_rows(m))


# ---------------------------------------------------------------- compare.json back to rows

def comparison_rows(doc: Mapping[str, Any], params: Mapping[str, str] | None = None,
                    point: int | None = None) -> list[MetricRow]:
    """The rows of a comparison document (Comparison.to_dict(), compare.json)."""
    kinds = {f["name"]: f["kind"] for f in doc["fabrics"]}
    ps = dict(params or {})
    rows = [MetricRow("run", r["fabric"], kinds.get(r["fabric"], ""), w, r["seed"], r["status"],
                      v["jct_s"], v["iteration_jct_s"], v["busbw_mbps"], v["fct_p50_s"],
                      v["fct_p99_s"], run_dir=r["run_dir"] or "", params=ps, point=point)
            for r in doc["runs"] for w, v in r["workloads"].items()]
    for f in doc["fabrics"]:
        for w, a in f["workloads"].items():
            rows.append(MetricRow(
                "aggregate", f["name"], f["kind"], w, None, "reference" if f["reference"] else "",
                a["jct_s"]["mean"], a["iteration_jct_s"]["mean"], a["busbw_mbps"]["mean"],
                a["fct_p50_s"]["mean"], a["fct_p99_s"]["mean"], a["jct_s"]["n"],
                a["jct_s"]["stdev"], a["busbw_mbps"]["stdev"], a["fct_p99_s"]["stdev"],
                a["jct_ratio"], a["busbw_ratio"], a["fct_p99_ratio"], params=ps, point=point))
    return rows


def load_comparison(report_dir: str | Path) -> ComparisonResult:
    """A `fabric compare` report directory (its compare.json) as rows."""
    path = Path(report_dir) / "compare.json"
    if not path.exists():
        raise FabricError(f"{report_dir}: no compare.json (not a comparison report)")
    doc = json.loads(path.read_text())
    return ComparisonResult(str(report_dir), doc["experiment"], doc["seeds"], doc["reference"],
                            doc, comparison_rows(doc))


def metrics_to_json(m: RunMetrics) -> dict[str, Any]:
    """A RunMetrics as one JSON object (the per-flow FCTs left out): a sweep's ledger line."""
    from fabric.analysis.metrics import to_jsonable
    out: dict[str, Any] = to_jsonable(dataclasses.replace(m, fct_s=()))
    return out


def metrics_from_json(d: Mapping[str, Any]) -> RunMetrics:
    from fabric.analysis.links import LinkUtilisation, TierBalance
    bal = d.get("link_balance")
    return RunMetrics(
        d["fabric"], d["kind"], d["policy"], d["seed"], d["status"], d["error"], d["run_dir"],
        d["elapsed_s"], dict(d["setup"]),
        {k: WorkloadRun(**v) for k, v in d["workloads"].items()}, (),
        tuple(_build(LinkUtilisation, u) for u in d.get("links") or ()),
        None if bal is None else _build(TierBalance, bal),
        None if d.get("window") is None else tuple(d["window"]),
        d.get("faithful"), tuple(d.get("fidelity_reasons") or ()),
        dict(d.get("ideal_jct_s") or {}))
