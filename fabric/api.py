"""The Python API (docs/api.md): build an experiment in code or load a file, run it, compare
fabrics, sweep a parameter, and read results back as plain rows. The `fabric` command is a thin
layer on these functions.

    spec = api.load("examples/compare-stride.toml", set=["fabric[ddc].speedup=1.0"])
    comp = api.compare(spec, seeds=2)                   # needs root, like `fabric compare`
    api.load_comparison(comp.report_dir).mean("ddc", "stride")

An experiment built in code is the TOML document as a dict (`experiment`, `fabric`, `workload`
help write it), validated exactly like a file: same errors, same key paths.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fabric.analysis.comparison import Comparison, check_comparable
from fabric.analysis.results import (
    ComparisonResult,
    MetricRow,
    RunResult,
    load_comparison,
    load_run,
)
from fabric.analysis.summary import RunSummary
from fabric.analysis.sweep import Sweep
from fabric.plan.experiment import experiment_from_document
from fabric.spec import tomlwrite
from fabric.spec.experiment import ExperimentSpec
from topologies.errors import FabricError, SpecError

__all__ = [
    "ComparisonResult",
    "ExperimentSpec",
    "FabricError",
    "MetricRow",
    "RunResult",
    "SpecError",
    "compare",
    "experiment",
    "fabric",
    "load",
    "load_comparison",
    "load_run",
    "load_sweep",
    "resume_sweep",
    "run",
    "sweep",
    "to_toml",
    "workload",
]

DEFAULT_OUT = Path("runs")


def fabric(kind: str, **keys: Any) -> dict[str, Any]:
    """A `[[fabric]]` table, e.g. fabric("ddc", name="ddc", ncps=2, ncfs=2, hosts_per_ncp=2)."""
    return {"kind": kind, **keys}


def workload(kind: str, **keys: Any) -> dict[str, Any]:
    """A `[[workload]]` table, e.g. workload("stride", stride=2, size_bytes="1MB")."""
    return {"kind": kind, **keys}


def experiment(name: str, fabrics: Sequence[Mapping[str, Any]],
               workloads: Sequence[Mapping[str, Any]], **top: Any) -> dict[str, Any]:
    """An experiment document (top-level keys such as seed, reference, run={...} in `top`)."""
    return {"name": name, **top, "fabric": [dict(f) for f in fabrics],
            "workload": [dict(w) for w in workloads]}


def load(source: str | Path | Mapping[str, Any], set: Sequence[str] = ()) -> ExperimentSpec:
    """A validated experiment from a TOML file or a document, after `set` overrides
    ("KEY=VALUE", as `--set`); SpecError names the offending key as the file would."""
    if isinstance(source, Mapping):
        return experiment_from_document(dict(source), set)
    from fabric.plan import experiment as plan  # looked up per call (tests patch it)
    return plan.load_experiment(source, set) if set else plan.load_experiment(source)


def to_toml(doc: Mapping[str, Any]) -> str:
    """An experiment document as TOML text (what `fabric run` reads)."""
    return tomlwrite.dumps(dict(doc))


def _dir(path: str | Path) -> Path:
    """Absolute: the controller process runs in the project's directory, not the caller's."""
    return Path(path).resolve()


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise FabricError(f"{what} needs root (Mininet and Open vSwitch do): run it with sudo")


def run_summary(spec: ExperimentSpec, out: str | Path = DEFAULT_OUT, fabric: str | None = None,
                seed: int | None = None, spec_path: str | Path | None = None) -> RunSummary:
    """Run one fabric of `spec` (the first unless `fabric`) and return its RunSummary."""
    if fabric is not None:
        spec.fabric(fabric)  # bad name -> SpecError before anything is built
    _need_root("running an experiment")
    from fabric.run.engine import run_experiment
    return run_experiment(spec, None if spec_path is None else Path(spec_path), _dir(out),
                          fabric, seed)


def run(spec: ExperimentSpec, out: str | Path = DEFAULT_OUT, fabric: str | None = None,
        seed: int | None = None) -> RunResult:
    """Run one fabric of `spec`; its results as rows (load_run of the new run directory)."""
    return load_run(run_summary(spec, out, fabric, seed).run_dir)


def compare_runs(spec: ExperimentSpec, seeds: int = 3, out: str | Path = DEFAULT_OUT,
                 spec_path: str | Path | None = None,
                 progress: Callable[[str], None] | None = None) -> Comparison:
    """Every fabric of `spec` for `seeds` seeds (as `fabric compare`); the Comparison."""
    check_comparable(spec)  # bad input -> SpecError before anything is built
    _need_root("a comparison")
    from fabric.run.compare import run_comparison
    path = None if spec_path is None else Path(spec_path)
    if progress is None:
        return run_comparison(spec, path, _dir(out), seeds)
    return run_comparison(spec, path, _dir(out), seeds, progress)


def compare(spec: ExperimentSpec, seeds: int = 3, out: str | Path = DEFAULT_OUT) -> ComparisonResult:
    """Every fabric of `spec` for `seeds` seeds; the report as rows (load_comparison)."""
    comp = compare_runs(spec, seeds, out)
    return load_comparison(str(comp.report_dir))


def sweep(experiment_file: str | Path, vary: Sequence[str], set: Sequence[str] = (),
          zip: bool = False, seeds: int = 1, out: str | Path = DEFAULT_OUT,
          progress: Callable[[str], None] | None = None) -> Sweep:
    """`fabric sweep`: every point of `vary` ("KEY=V1,V2,...") as one comparison, one report
    directory; Sweep.rows() gives the table. Ctrl-C: see resume_sweep."""
    from fabric.run import sweep as sweeps
    sweeps.check_sweep(Path(experiment_file), vary, set, zip)  # every point valid before root
    _need_root("a sweep")
    return sweeps.start_sweep(Path(experiment_file), _dir(out), vary, set, zip, seeds, progress)


def resume_sweep(report_dir: str | Path, progress: Callable[[str], None] | None = None) -> Sweep:
    """Continue an interrupted sweep: the runs it finished are not run again."""
    from fabric.run import sweep as sweeps
    _need_root("a sweep")
    return sweeps.resume_sweep(_dir(report_dir), progress)


def load_sweep(report_dir: str | Path) -> list[MetricRow]:
    """A sweep report's rows (sweep.json): run and aggregate rows of every point, each with the
    point's settings in `params` (key path -> value as written)."""
    import json

    from fabric.analysis.results import comparison_rows
    path = Path(report_dir) / "sweep.json"
    if not path.exists():
        raise FabricError(f"{report_dir}: no sweep.json (not a sweep report)")
    doc = json.loads(path.read_text())
    return [row for p in doc["points"]
            for row in comparison_rows(p["comparison"], p["params"], p["index"])]
