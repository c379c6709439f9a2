"""Per-workload results: training jobs (from the plan's collectives) and each workload's own
summary section (Workload.summarise: inference requests, FCT slowdown, ...), plus the [scale].

What each section's figures mean is defined with the workload kind (fabric/workloads/).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import networkx as nx

from topologies import model
from traffic.plan import TrafficPlan
from traffic.records import FlowRecord
from traffic.scaling import IDENTITY

from fabric.analysis import metrics
from fabric.analysis.summary import RunSummary
from fabric.plan.traffic import plan_scale
from fabric.spec.experiment import ExperimentSpec
from fabric.spec.workload import WORKLOADS, SummaryContext


def summarise(spec: ExperimentSpec, plan: TrafficPlan, records: Sequence[FlowRecord],
              graph: nx.Graph, summary: RunSummary, run_dir: Path | None = None) -> None:
    """Fill summary.jobs, .sections and .scale; write the workloads' CSV files to run_dir."""
    rates = {h: model.host_rate_mbps(graph, h) for h in model.hosts(graph)}
    summary.jobs = metrics.job_results(plan, records, rates)
    scale = plan_scale(spec, graph)
    if scale is not None:
        summary.scale = scale.describe({w.name: w.units for w in spec.workloads})
    for section in sorted({cls.section for cls in WORKLOADS.values() if cls.section}):
        summary.sections.setdefault(section, {})  # present, if empty, in every summary.json
    tables: dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]] = {}
    for w in spec.workloads:
        ctx = SummaryContext(rates, scale.convert(w.units) if scale else IDENTITY)
        out = w.summarise([r for r in records if r.workload == w.name], ctx)
        if out is None:
            continue
        summary.sections.setdefault(w.section, {})[w.name] = out.result
        if out.csv_name:
            tables.setdefault(out.csv_name, (out.csv_header, []))[1].extend(out.csv_rows)
    if run_dir is not None:
        for name, (header, rows) in tables.items():
            if rows:
                write_rows(run_dir / name, header, rows)


def write_rows(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A CSV file: the header, then the rows."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
