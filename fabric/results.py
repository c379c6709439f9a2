"""Run directories and the run summary (a dataclass written as summary.json, printed as a table).

A run directory is never overwritten: runs/<UTC time>-<experiment>-<fabric>[-N]/ holds
spec.toml, environment.json, fabric.json, plan.json, hosts.json, agents/ (raw per-host csv),
flows.csv, links.csv (switch interface byte counters, fabric.linkstats), summary.json,
engine.log and controller.log.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .metrics import CollectiveResult, Distribution, JobResult, to_jsonable


def new_run_dir(base: Path, experiment: str, fabric: str) -> Path:
    """Create and return a fresh directory under `base`; never reuses an existing one."""
    base.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{experiment}-{fabric}"
    for n in range(1000):
        path = base / (stem if n == 0 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory under {base}")


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")


def environment(datapath: str) -> dict[str, Any]:
    """Facts about the machine a run came from, stored beside its results."""
    import importlib.metadata as md

    def version(pkg: str) -> str | None:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    return {
        "hostname": platform.node(), "kernel": platform.release(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "datapath": datapath,
        "os_ken": version("os-ken"), "networkx": version("networkx"), "mininet": version("mininet"),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dataclass
class RunSummary:
    """Everything a run measured; `status` is complete, partial (some flows missing) or failed."""
    experiment: str
    fabric: str
    policy: str
    seed: int
    run_dir: str
    status: str = "failed"
    error: str | None = None
    datapath: str = ""
    setup: dict[str, Any] = field(default_factory=dict)
    phases_s: dict[str, float] = field(default_factory=dict)
    flows_planned: int = 0
    flows_complete: int = 0
    fct_s: Distribution | None = None
    fct_by_workload: dict[str, Distribution] = field(default_factory=dict)
    collectives: list[CollectiveResult] = field(default_factory=list)
    tcp: dict[str, int] = field(default_factory=dict)  # fabric.tcpstats.total over all hosts
    failures: list[dict[str, Any]] = field(default_factory=list)  # fabric.failures (+ impact)
    jobs: list[JobResult] = field(default_factory=list)        # per training job (JCT, roofline)
    inference: dict[str, Any] = field(default_factory=dict)    # workload -> InferenceResult
    slowdown: dict[str, Any] = field(default_factory=dict)     # workload -> SlowdownResult
    scale: dict[str, Any] | None = None                       # fabric.scaling.Scale.describe
    ideal: Any = None        # fabric.ideal.IdealSummary: the max-min fluid model beside the run
    fidelity: Any = None     # fabric.fidelity.Fidelity: did the emulation keep up (CPU, links)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


def _f(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    if value is None or value != value:  # NaN
        return "-"
    return f"{value * scale:.{digits}f}"


def format_summary(s: RunSummary) -> str:
    """The human table `fabric run` prints."""
    lines = [f"experiment {s.experiment}  fabric {s.fabric}  policy {s.policy}  seed {s.seed}  "
             f"datapath {s.datapath}",
             f"status: {s.status.upper()}" + (f"  ({s.error})" if s.error else ""),
             "setup: " + "  ".join(f"{k}={v}" for k, v in s.setup.items()),
             "phases: " + "  ".join(f"{k} {v:.2f}s" for k, v in s.phases_s.items()),
             f"flows: {s.flows_complete}/{s.flows_planned} complete", ""]
    if s.collectives:
        lines.append(f"{'collective':<22}{'ranks':>6}{'size':>10}{'JCT s':>9}{'bound s':>9}"
                     f"{'algbw':>9}{'busbw':>9}{'eff':>7}{'ideal s':>9}{'x ideal':>8}  (Mbit/s)")
        for c in s.collectives:
            lines.append(f"{c.id:<22}{c.ranks:>6}{c.size_bytes / 1e6:>8.2f}MB{_f(c.jct_s):>9}"
                         f"{_f(c.lower_bound_s):>9}{_f(c.algbw_mbps, digits=2):>9}"
                         f"{_f(c.busbw_mbps, digits=2):>9}{_f(c.busbw_efficiency, 100, 1):>6}%"
                         f"{_f(c.ideal_jct_s):>9}{_f(c.jct_vs_ideal, digits=2):>8}")
        lines.append("")
    if s.fct_by_workload:
        lines.append(f"{'FCT (ms)':<22}{'n':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
        for name, d in list(s.fct_by_workload.items()) + ([("all", s.fct_s)] if s.fct_s else []):
            lines.append(f"{name:<22}{d.count:>6}{_f(d.p50, 1e3, 1):>9}{_f(d.p90, 1e3, 1):>9}"
                         f"{_f(d.p99, 1e3, 1):>9}{_f(d.max, 1e3, 1):>9}")
    if s.ideal is not None and s.ideal.fct_ratio.count:
        r, sd = s.ideal.fct_ratio, s.ideal.fct_slowdown
        lines.append(f"{'FCT vs ideal':<22}{r.count:>6}  measured/ideal p50 {_f(r.p50, digits=2)} "
                     f"p99 {_f(r.p99, digits=2)}; slowdown vs alone p50 {_f(sd.p50, digits=2)} "
                     f"p99 {_f(sd.p99, digits=2)}  (ideal: max-min fluid, {s.ideal.view} paths, "
                     f"goodput {s.ideal.goodput_factor:.3f} of wire)")
    from .workload_metrics import format_sections  # jobs, inference, slowdown, scale
    lines += format_sections(s)
    if s.tcp:
        lines.append(f"\ntcp: {s.tcp['Tcp.OutSegs']} segments, {s.tcp['Tcp.RetransSegs']} retransmitted "
                     f"({s.tcp['retransmit_ppm']} ppm), {s.tcp['reorder_events']} reorder events, "
                     f"{s.tcp['TcpExt.TCPOFOQueue']} queued out of order, "
                     f"{s.tcp['TcpExt.TCPTimeouts']} timeouts")
    for f in s.failures:
        when = (f"at t0+{f['applied_s']:.2f}s" if f.get("applied_s") is not None
                else f"NOT applied ({f.get('error')})")
        hit = ", ".join(f.get("collectives_hit") or []) or "no collective"
        lines.append(f"failure: {f['what']} down {when}; hit {hit}" + (
            f"; JCT {f['hit_jct_s']:.3f}s vs steady p50 {f['steady_jct_p50_s']:.3f}s "
            f"({f['jct_overhead'] * 100:+.1f}%, {'zero impact' if f['zero_impact'] else 'impact'})"
            if f.get("jct_overhead") is not None else ""))
    if s.fidelity is not None:
        from .fidelity import format_fidelity
        lines += [""] + format_fidelity(s.fidelity)
    lines.append(f"\nresults: {s.run_dir}")
    return "\n".join(lines)
