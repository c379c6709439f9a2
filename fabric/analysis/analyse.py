"""Every computed number of a run, from the files it wrote: what the engine calls after a run and
what `fabric analyse RUN_DIR` calls on an old one (no root, no network), so a changed metric can
be applied to runs already on disk.

    run directory                      analyse()                        rewritten
    summary.json (what the run saw:  ─►  FCT, collectives (busbw), ─►  summary.json
      status, phases, tcp, failures)     jobs, workload sections,      ideal.csv
    fabric.json, plan.json, flows.csv    failure impact, ideal model,  requests.csv, ...
    spec.toml, links.csv, cpu.csv        fidelity verdict, status

What only the live run could see (status and error of the emulation, phase times, TCP
counters, when each failure was applied, the setup facts) is read back from summary.json;
everything else is recomputed.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import networkx as nx

from topologies import model
from topologies.errors import SpecError
from traffic.plan import TrafficPlan
from traffic.records import FlowRecord, read_csv

from fabric.analysis import capture, fidelity, ideal, metrics, servers, transport
from fabric.analysis import workloads as workload_metrics
from fabric.analysis.failures import impact
from fabric.analysis.paths import read_paths, run_collisions
from fabric.analysis.summary import RunSummary, write_json
from fabric.plan.experiment import parse_experiment
from fabric.spec.experiment import ExperimentSpec, read_toml

log = logging.getLogger("fabric.analysis")

# summary.json fields the live run recorded (everything else is computed here)
RECORDED = ("experiment", "fabric", "policy", "seed", "status", "error", "datapath", "t0", "setup",
            "phases_s", "flows_planned", "tcp", "loss", "failures")


def analyse(summary: RunSummary, spec: ExperimentSpec | None, graph: nx.Graph,
            plan: TrafficPlan, records: list[FlowRecord], run_dir: Path) -> None:
    """Fill every computed field of `summary` from the run's flow records and samples; write
    ideal.csv and the workloads' CSV files to run_dir. A run whose flows did not all complete
    becomes `partial`."""
    summary.flows_complete = sum(1 for r in records if r.complete)
    summary.fct_s = metrics.fct_distribution(records)
    summary.fct_by_workload = {
        name: metrics.fct_distribution(r for r in records if r.workload == name)
        for name in sorted({r.workload for r in records})}
    summary.collectives = [  # busbw efficiency against the slowest member's NIC
        metrics.collective_result(c, records, min(model.host_rate_mbps(graph, h) for h in c.hosts))
        for c in plan.collectives]
    summary.failures = impact(summary.failures, summary.collectives, records)
    if spec is not None:  # per job and per workload section; the scale
        workload_metrics.summarise(spec, plan, records, graph, summary, run_dir)
    _against_ideal(plan, graph, run_dir, summary, records)
    agent_dir = run_dir / "agents"     # connections: handshakes, base RTT per path, RTT scale
    summary.transport = transport.summarise(
        transport.read_rows(agent_dir) if agent_dir.exists() else [],
        [r.fct_s for r in records if r.complete and r.fct_s is not None], summary.scale)
    _paths_and_packets(graph, run_dir, summary, records)
    ddc_file = run_dir / "ddc.json"   # written by the scheduled DDC's data plane (fabric.run.voq)
    summary.ddc = json.loads(ddc_file.read_text()) if ddc_file.exists() else None
    if summary.status == "complete" and summary.flows_complete < summary.flows_planned:
        summary.status = "partial"
        summary.error = f"{summary.flows_planned - summary.flows_complete} flows did not complete"
    elif summary.status != "complete" and summary.flows_complete:
        summary.status = "partial"


def _paths_and_packets(graph: nx.Graph, run_dir: Path, summary: RunSummary,
                       records: list[FlowRecord]) -> None:
    """ECMP collisions from paths.csv (flows running at the first failure left out) and, with
    `[run] capture`, capture.csv from the pcaps."""
    first_failure = min((f["time"] for f in summary.failures if f.get("time")), default=None)
    summary.collisions = [c.text() for c in run_collisions(
        read_paths(run_dir / "paths.csv"), records, run_dir / "agents",
        set(model.switches(graph)), summary.policy, first_failure)]
    pcaps = {p.stem: p for p in sorted((run_dir / "capture").glob("*.pcap"))}
    if pcaps:   # per flow and captured link: spread and reordering
        try:
            capture.write_csv(capture.analyse(pcaps), run_dir / "capture.csv")
        except Exception:
            log.exception("capture analysis failed")


def _against_ideal(plan: TrafficPlan, graph: nx.Graph, run_dir: Path, summary: RunSummary,
                   records: list[FlowRecord]) -> None:
    """The ideal model beside the measurements (ideal.csv) and the fidelity verdict."""
    busy: dict[tuple[str, str], float] = {}
    peak: float | None = None
    delivery: float | None = None
    try:
        res = ideal.ideal_plan(graph, plan, ideal.SUMMARY_VIEW)
        ideal.write_csv(res, records, run_dir / "ideal.csv", summary.t0 or 0.0)
        summary.ideal = ideal.summarize(res, records)
        summary.collectives = [ideal.with_ideal(c, res) for c in summary.collectives]
        # the model knows no injected failure: links are then only judged by CPU and drops
        busy = {} if summary.failures else {
            link: res.active_utilisation(link)
            for link in res.busy_links(fidelity.IDEAL_BUSY_MIN_S)}
        peak, delivery = res.peak_forwarding_bps, res.peak_delivery_bps
    except Exception:
        log.exception("ideal model failed")
    try:
        # a cluster run: a verdict per server (fabric.analysis.servers), else the machine's
        summary.fidelity = (servers.assess_run(run_dir, graph, plan, summary.policy, busy)
                            or fidelity.assess_run(run_dir, graph, plan, summary.policy, busy,
                                                   peak, summary.datapath, delivery))
    except Exception:
        log.exception("fidelity assessment failed")


def reanalyse(run_dir: Path) -> RunSummary:
    """Recompute a run directory's summary.json, ideal.csv, ... from its files; SpecError naming
    the file when one the analysis needs is missing or unreadable."""
    recorded = _read_json(run_dir / "summary.json")
    summary = RunSummary(run_dir=str(run_dir), **{k: recorded[k] for k in RECORDED
                                                  if k in recorded})
    graph = model.from_description(_read_json(run_dir / "fabric.json"))
    plan = TrafficPlan.load(_need(run_dir / "plan.json"))
    records = read_csv(_need(run_dir / "flows.csv"))
    spec = None
    if (run_dir / "spec.toml").exists():  # a run started from Python may have none
        try:
            spec = parse_experiment(read_toml(run_dir / "spec.toml"))
        except SpecError as exc:
            raise SpecError(str(run_dir / "spec.toml"), str(exc)) from None
    analyse(summary, spec, graph, plan, records, run_dir)
    write_json(run_dir / "summary.json", summary.to_dict())
    return summary


def _need(path: Path) -> Path:
    if not path.exists():
        raise SpecError(str(path), "missing: not a complete run directory")
    return path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_need(path).read_text())
    except json.JSONDecodeError as exc:
        raise SpecError(str(path), f"not valid JSON: {exc}") from None
