"""`fabric sweep`: run every point of a parameter sweep as one comparison, resumably.

    EXPERIMENT.toml + --set + --vary ──► points (fabric.analysis.sweep), each validated before
        anything runs (a bad value fails with the file's error, naming the file's key)
    <out>/<UTC time>-<experiment>-sweep/
        spec.toml           the experiment file as given
        sweep-plan.json     what to run: --set, --vary, --zip, --seeds (read back by --resume)
        runs.jsonl          the ledger: one line per finished run (point, fabric, seed, metrics),
                            flushed and synced as each run ends
        runs/               the run directories
        sweep.json/.csv/.txt, sweep_*.png   the report (fabric.report.sweep)
    for seed, for point, for fabric: engine.run_experiment, one at a time, skipping every
        (point, fabric, seed) the ledger already holds

Ctrl-C (or SIGTERM) stops after the current run's teardown; the report of what finished is
written and `fabric sweep --resume DIR` continues: finished runs are not rerun (a run that was
interrupted is not in the ledger and runs again; its partial directory stays in runs/).
Seeds go round the outside (seed 1 at every point, then seed 2, ...) so an interrupted sweep
has seen every point, and slow drifts of the shared machine hit every point alike.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fabric.analysis.comparison import (
    RunMetrics,
    aggregate,
    check_comparable,
    load_run,
    reference_fabric,
)
from fabric.analysis.results import metrics_from_json, metrics_to_json
from fabric.analysis.summary import RunSummary
from fabric.analysis.sweep import (
    Point,
    PointResult,
    Sweep,
    Vary,
    parse_vary,
    sweep_points,
)
from fabric.plan.experiment import experiment_from_document
from fabric.run.rundir import new_run_dir
from fabric.spec.experiment import ExperimentSpec, parse_toml, read_experiment_text
from topologies.errors import SpecError

PLAN_FILE = "sweep-plan.json"
LEDGER = "runs.jsonl"


def _say(msg: str) -> None:
    print(f"fabric sweep: {msg}", file=sys.stderr, flush=True)


def prepare(spec_text: str, doc: dict[str, Any], sets: Sequence[str], varies: Sequence[Vary],
            zipped: bool) -> list[tuple[Point, ExperimentSpec]]:
    """Every point's experiment, validated (SpecError: the file's message and key) and checked
    comparable (the same plan on every fabric), before anything runs."""
    out = []
    for point in sweep_points(varies, zipped):
        spec = experiment_from_document(doc, [*sets, *point.overrides()], spec_text)
        check_comparable(spec)
        out.append((point, spec))
    return out


def check_sweep(spec_path: Path, vary: Sequence[str], sets: Sequence[str] = (),
                zipped: bool = False) -> tuple[list[Vary], list[tuple[Point, ExperimentSpec]]]:
    """The varied parameters and every point's validated experiment (SpecError otherwise)."""
    varies = [parse_vary(v) for v in vary]
    text = read_experiment_text(spec_path)  # names the file when it is missing or too large
    return varies, prepare(text, parse_toml(text, str(spec_path)), sets, varies, zipped)


def start_sweep(spec_path: Path, out_base: Path, vary: Sequence[str], sets: Sequence[str] = (),
                zipped: bool = False, seeds: int = 1,
                progress: Callable[[str], None] | None = None,
                run: Callable[..., RunSummary] | None = None) -> Sweep:
    """Validate every point, create the report directory, run the sweep."""
    if seeds < 1:
        raise SpecError("--seeds", f"must be >= 1, got {seeds}")
    varies, points = check_sweep(spec_path, vary, sets, zipped)
    text = Path(spec_path).read_text()
    report_dir = new_run_dir(out_base, points[0][1].name, "sweep")
    (report_dir / "spec.toml").write_text(text)
    (report_dir / PLAN_FILE).write_text(json.dumps({
        "format": 1, "spec_path": str(spec_path), "set": list(sets), "vary": list(vary),
        "zip": zipped, "seeds": seeds}, indent=2) + "\n")
    return run_points(report_dir, points, varies, zipped, seeds, list(sets), str(spec_path),
                      progress, run)


def resume_sweep(report_dir: Path, progress: Callable[[str], None] | None = None,
                 run: Callable[..., RunSummary] | None = None) -> Sweep:
    """Continue an interrupted sweep from its directory: runs in the ledger are not rerun."""
    plan_path = Path(report_dir) / PLAN_FILE
    if not plan_path.exists():
        raise SpecError("--resume", f"{report_dir} has no {PLAN_FILE}: not a sweep directory")
    plan = json.loads(plan_path.read_text())
    varies = [parse_vary(v) for v in plan["vary"]]
    spec_file = Path(report_dir) / "spec.toml"
    text = read_experiment_text(spec_file)
    points = prepare(text, parse_toml(text, str(spec_file)), plan["set"], varies, plan["zip"])
    return run_points(Path(report_dir), points, varies, plan["zip"], plan["seeds"], plan["set"],
                      plan["spec_path"], progress, run)


def read_ledger(report_dir: Path) -> dict[tuple[int, str, int], RunMetrics]:
    """(point, fabric, seed) -> metrics of every run the ledger records (a torn last line,
    left by a kill in mid-write, is ignored)."""
    path = Path(report_dir) / LEDGER
    done: dict[tuple[int, str, int], RunMetrics] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[(entry["point"], entry["fabric"], entry["seed"])] = metrics_from_json(entry["metrics"])
    return done


def _record(report_dir: Path, point: int, m: RunMetrics) -> None:
    with open(Path(report_dir) / LEDGER, "a") as f:
        f.write(json.dumps({"point": point, "fabric": m.fabric, "seed": m.seed,
                            "metrics": metrics_to_json(m)}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run_points(report_dir: Path, points: list[tuple[Point, ExperimentSpec]], varies: list[Vary],
               zipped: bool, seeds: int, sets: list[str], spec_path: str | None,
               progress: Callable[[str], None] | None = None,
               run: Callable[..., RunSummary] | None = None) -> Sweep:
    """Run what the ledger lacks, seed by seed; write the report (also when interrupted)."""
    if run is None:
        from fabric.run.engine import run_experiment
        run = run_experiment
    if progress is None:
        progress = _say
    done = read_ledger(report_dir)
    todo = [(seed_i, point, spec, fab) for seed_i in range(seeds) for point, spec in points
            for fab in spec.fabrics]
    total = len(todo)
    if done:
        progress(f"resuming {report_dir}: {len(done)} of {total} runs already done")
    t0 = time.monotonic()
    interrupted = False
    try:
        for seed_i, point, spec, fab in todo:
            seed = spec.seed + seed_i
            if (point.index, fab.name, seed) in done:
                continue
            where = f"[{len(done) + 1}/{total}] {point.label()}: {fab.name} seed {seed}"
            progress(f"{where} ...")
            t = time.monotonic()
            summary = run(spec, None, report_dir / "runs", fab.name, seed)
            m = load_run(summary, fab.kind, time.monotonic() - t)
            _record(report_dir, point.index, m)
            done[(point.index, fab.name, seed)] = m
            progress(f"{where}: {m.status} in {m.elapsed_s:.1f} s"
                     + (f" ({m.error})" if m.error else ""))
    except KeyboardInterrupt:
        interrupted = True
    sweep = collect(points, done, varies, zipped, seeds, sets, str(report_dir), spec_path,
                    interrupted, time.monotonic() - t0, total)
    from fabric.report.sweep import write_report
    write_report(sweep, report_dir)
    if interrupted:
        progress(f"interrupted: {sweep.runs_done}/{total} runs done; continue with "
                 f"`fabric sweep --resume {report_dir}`")
        raise KeyboardInterrupt
    return sweep


def collect(points: list[tuple[Point, ExperimentSpec]], done: dict[tuple[int, str, int], RunMetrics],
            varies: list[Vary], zipped: bool, seeds: int, sets: list[str], report_dir: str | None,
            spec_path: str | None, interrupted: bool, elapsed_s: float, total: int) -> Sweep:
    """One comparison per point over the runs done so far (fabric.analysis.comparison.aggregate)."""
    results = []
    for point, spec in points:
        seed_list = [spec.seed + i for i in range(seeds)]
        mine = [done[(point.index, f.name, s)] for s in seed_list for f in spec.fabrics
                if (point.index, f.name, s) in done]
        comp = aggregate(spec.name, [(f.name, f.kind, f.policy) for f in spec.fabrics], mine,
                         seed_list, list(dict.fromkeys(w.name for w in spec.workloads)),
                         reference_fabric(spec), report_dir=report_dir,
                         interrupted=len(mine) < len(seed_list) * len(spec.fabrics))
        results.append(PointResult(point, comp))
    name = points[0][1].name if points else ""
    return Sweep(name, varies, zipped, seeds, sets, results, total, len(done), report_dir,
                 spec_path, interrupted, elapsed_s)

