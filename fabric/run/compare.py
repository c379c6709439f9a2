"""`fabric compare` (the orchestration): one traffic plan on every fabric of an experiment, several seeds each.

    experiment.toml ──► check: same plan on every fabric, reference fabric resolved
        for seed in seed .. seed+N-1, for fabric in fabrics:  engine.run_experiment (one at a time)
            report/runs/<run dir>: summary.json + flows.csv + links.csv ──► RunMetrics
        aggregate per fabric over seeds (complete runs only) ──► Comparison
        ──► table (stdout) or --json, report directory (fabric.report.compare_files)

Seeds matter: traffic.plan.source_port(seed, id or connection key) picks each connection's TCP
source port (a persistent one keeps it for the whole job), so ECMP's
hash, and which flows collide, change from seed to seed; the plan itself does not.
Fabrics are interleaved per seed (seed 1 on every fabric, then seed 2, ...) so slow drifts of the
shared machine hit every fabric alike. What is measured and compared: fabric.analysis.comparison.
Each progress line says how the run went and whether the machine kept up (its fidelity).
"""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Callable


from topologies.errors import SpecError
from fabric.analysis.summary import RunSummary
from fabric.run.rundir import new_run_dir
from fabric.spec.experiment import ExperimentSpec
from fabric.analysis.comparison import (Comparison, RunMetrics, aggregate, check_comparable,
                                        expected_ecmp_penalty, load_run, reference_fabric)


# ---------------------------------------------------------------- running

def _say(msg: str) -> None:
    print(f"fabric compare: {msg}", file=sys.stderr, flush=True)


def progress_line(m: RunMetrics, done: int, total: int) -> str:
    """"[2/9] ddc seed 1: complete, faithful, 5.4 s" (+ why not, when not)."""
    why = "; ".join(([m.error] if m.error else []) + list(m.fidelity_reasons))
    return (f"[{done}/{total}] {m.fabric} seed {m.seed}: {m.status}, {m.fidelity}, "
            f"{m.elapsed_s:.1f} s" + (f" ({why})" if why else ""))


def ecmp_penalties(spec: ExperimentSpec) -> dict[tuple[str, str], float]:
    """(fabric, workload) -> the ideal model's expected ECMP penalty, for ECMP fabrics with
    more than one path (a model failure leaves the figure out, never the comparison)."""
    from fabric.plan.traffic import build_plan
    workloads = list(dict.fromkeys(w.name for w in spec.workloads))
    out: dict[tuple[str, str], float] = {}
    for fab in spec.fabrics:
        if fab.policy != "ecmp" or fab.kind == "single":
            continue
        try:
            graph = fab.build()
            pen = expected_ecmp_penalty(graph, build_plan(spec, graph, spec.seed), workloads)
        except Exception:
            continue
        out.update({(fab.name, w): v for w, v in pen.items()})
    return out


def run_comparison(spec: ExperimentSpec, spec_path: Path | None, out_base: Path, seeds: int,
                   progress: Callable[[str], None] = _say,
                   run: Callable[..., RunSummary] | None = None,
                   include_unfaithful: bool = False) -> Comparison:
    """Run every fabric for `seeds` seeds, write the report directory, return the comparison.

    On KeyboardInterrupt the report of the runs finished so far is written (interrupted=True)
    and the interrupt re-raised.
    """
    if seeds < 1:
        raise SpecError("--seeds", f"must be >= 1, got {seeds}")
    check_comparable(spec)
    if run is None:
        from fabric.run.engine import run_experiment
        run = run_experiment
    from fabric.report.compare_files import write_report
    reference = reference_fabric(spec)
    report_dir = new_run_dir(out_base, spec.name, "compare")
    if spec_path is not None:
        shutil.copy(spec_path, report_dir / "spec.toml")
    seed_list = [spec.seed + i for i in range(seeds)]
    total = len(seed_list) * len(spec.fabrics)
    metrics: list[RunMetrics] = []
    t0 = time.monotonic()
    interrupted: BaseException | None = None
    try:
        for seed in seed_list:
            for fab in spec.fabrics:
                progress(f"[{len(metrics) + 1}/{total}] {fab.name} seed {seed} ...")
                t = time.monotonic()
                summary = run(spec, spec_path, report_dir / "runs", fab.name, seed)
                m = load_run(summary, fab.kind, time.monotonic() - t)
                metrics.append(m)
                progress(progress_line(m, len(metrics), total))
    except KeyboardInterrupt as exc:
        interrupted = exc
    comp = aggregate(spec.name, [(f.name, f.kind, f.policy) for f in spec.fabrics], metrics,
                     seed_list, list(dict.fromkeys(w.name for w in spec.workloads)), reference,
                     spec_path=None if spec_path is None else str(spec_path),
                     report_dir=str(report_dir), interrupted=interrupted is not None,
                     elapsed_s=time.monotonic() - t0, include_unfaithful=include_unfaithful,
                     ecmp_penalty=ecmp_penalties(spec), cost=spec.cost)
    write_report(comp, report_dir)
    if interrupted is not None:
        raise interrupted
    return comp
