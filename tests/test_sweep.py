"""`fabric sweep` without root: points, the ledger, Ctrl-C and --resume, the report (a fake
engine writes run directories; fabric/run/sweep.py)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fabric.analysis.metrics import Distribution
from fabric.analysis.results import load_run
from fabric.analysis.summary import RunSummary, write_json
from fabric.analysis.sweep import parse_vary, split_values, sweep_points
from fabric.api import load_sweep
from fabric.run import sweep as sweeps
from topologies.errors import SpecError
from traffic.records import FlowRecord, write_csv

SPEC = """
name = "tiny-sweep"
seed = 5

[[fabric]]
kind = "leafspine"
name = "ls"
spines = 2
leaves = 2
hosts_per_leaf = 2

[[fabric]]
kind = "ddc"
name = "ddc"
ncps = 2
ncfs = 2
hosts_per_ncp = 2

[[workload]]
kind = "stride"
name = "perm"
stride = 2
size_bytes = "1MB"
"""


class FakeEngine:
    """Stands in for engine.run_experiment: writes summary.json and flows.csv whose FCT
    depends on the DDC speed-up; raises KeyboardInterrupt on call number `stop_at`."""

    def __init__(self, stop_at: int | None = None):
        self.calls: list[tuple[str, int, float | None]] = []
        self.stop_at = stop_at

    def __call__(self, spec, spec_path, out_base, fabric_name, seed):
        fab = spec.fabric(fabric_name)
        speedup = getattr(fab, "speedup", None)
        point = spec.fabric("ddc").speedup  # identifies the sweep point
        if self.stop_at is not None and len(self.calls) + 1 == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append((fabric_name, seed, point))
        Path(out_base).mkdir(parents=True, exist_ok=True)
        run_dir = Path(out_base) / f"run{len(list(Path(out_base).iterdir()))}"
        run_dir.mkdir()
        (run_dir / "spec.toml").write_text(spec.source_toml)
        fct = 1.0 / (speedup or 0.8) + 0.01 * seed
        recs = [FlowRecord(i, f"h{i + 1}", f"h{(i + 2) % 4 + 1}", 10**6, 100.0, 100.0 + fct, fct,
                           "perm", None, None, True) for i in range(4)]
        write_csv(recs, run_dir / "flows.csv")
        s = RunSummary(spec.name, fabric_name, fab.policy, seed, str(run_dir), status="complete",
                       setup={"topology": fab.kind})
        s.flows_planned = s.flows_complete = 4
        s.fct_by_workload["perm"] = Distribution.of([fct] * 4)
        s.fidelity = {"faithful": True, "reasons": []}
        write_json(run_dir / "summary.json", s.to_dict())
        return s


def test_values_split_outside_quotes_and_brackets():
    assert split_values('1.0, 1.25,1.5') == ["1.0", "1.25", "1.5"]
    assert split_values('"a,b",[1, 2],{x = 1, y = 2},8MB') == ['"a,b"', "[1, 2]", "{x = 1, y = 2}", "8MB"]


def test_points_cross_product_and_zip():
    a, b = parse_vary("fabric.speedup=1,2"), parse_vary("seed=3,4")
    assert [p.params for p in sweep_points([a, b])] == [
        {"fabric.speedup": "1", "seed": "3"}, {"fabric.speedup": "1", "seed": "4"},
        {"fabric.speedup": "2", "seed": "3"}, {"fabric.speedup": "2", "seed": "4"}]
    assert [p.params for p in sweep_points([a, b], zipped=True)] == [
        {"fabric.speedup": "1", "seed": "3"}, {"fabric.speedup": "2", "seed": "4"}]
    with pytest.raises(SpecError, match="--zip"):
        sweep_points([a, parse_vary("seed=1,2,3")], zipped=True)


@pytest.mark.parametrize("text", ["speedup", "=1,2", "a..b=1", "seed=1,,2", "seed=1,1"])
def test_bad_vary_names_the_option(text):
    with pytest.raises(SpecError) as info:
        parse_vary(text)
    assert info.value.key == "--vary"


def test_a_bad_point_fails_before_anything_runs(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    engine = FakeEngine()
    with pytest.raises(SpecError) as info:
        sweeps.start_sweep(spec, tmp_path / "out", ["fabric[ddc].speedup=1.0,99"], run=engine)
    assert str(info.value) == "fabric[1].speedup: must be <= 16, got 99.0"  # the file's error
    assert engine.calls == [] and not (tmp_path / "out").exists()


def test_sweep_interrupted_then_resumed_reruns_nothing(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    vary = ["fabric[ddc].speedup=1.0,1.25,1.5"]
    first = FakeEngine(stop_at=6)  # Ctrl-C during the 6th of 3 x 2 x 2 = 12 runs
    with pytest.raises(KeyboardInterrupt):
        sweeps.start_sweep(spec, tmp_path / "out", vary, seeds=2, run=first,
                           progress=lambda m: None)
    (report,) = (tmp_path / "out").iterdir()
    assert len(first.calls) == 5
    assert len((report / "runs.jsonl").read_text().splitlines()) == 5
    partial = json.loads((report / "sweep.json").read_text())
    assert partial["interrupted"] and partial["runs_done"] == 5 and partial["runs_total"] == 12
    assert "--resume" in (report / "sweep.txt").read_text()
    # seeds go round the outside: the first 5 runs are seed 5 at every point
    assert {seed for _, seed, _ in first.calls} == {5}

    second = FakeEngine()
    sweep = sweeps.resume_sweep(report, run=second, progress=lambda m: None)
    assert len(second.calls) == 7 and sweep.complete
    done = {(f, s, u) for f, s, u in first.calls} | {(f, s, u) for f, s, u in second.calls}
    assert len(done) == 12  # every (fabric, seed, speed-up) exactly once over both invocations

    rows = load_sweep(report)
    agg = [r for r in rows if r.row_type == "aggregate"]
    assert len(agg) == 6 and all(r.n == 2 for r in agg)  # ledger runs keep their verdict
    ddc = {r.params["fabric[ddc].speedup"]: r.fct_p99_s for r in agg if r.fabric == "ddc"}
    assert ddc["1.0"] > ddc["1.25"] > ddc["1.5"]
    with open(report / "sweep.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 12 + 6 and "fabric[ddc].speedup" in table[0]
    assert (report / "sweep_jct_s.png").exists() and (report / "sweep_fct_p99_s.png").exists()
    assert not (report / "sweep_busbw_mbps.png").exists()  # no collective: nothing to plot
    # every run's spec copy records the point's override
    run_dir = report / next(r.run_dir for r in rows if r.row_type == "run" and r.fabric == "ddc")
    assert "fabric[ddc].speedup=" in (Path(run_dir) / "spec.toml").read_text()
    assert load_run(run_dir).workload("perm").fct_p99_s is not None


def test_resume_needs_a_sweep_directory(tmp_path):
    with pytest.raises(SpecError, match="not a sweep directory"):
        sweeps.resume_sweep(tmp_path, run=FakeEngine())


def test_load_comparison_gives_the_reports_rows(tmp_path):
    from fabric.api import load, load_comparison
    from fabric.run.compare import run_comparison
    spec_file = tmp_path / "s.toml"
    spec_file.write_text(SPEC)
    spec = load(spec_file, set=["fabric[ddc].speedup=1.25", "reference=\"ls\""])
    comp = run_comparison(spec, spec_file, tmp_path / "out", 2, progress=lambda m: None,
                          run=FakeEngine())
    back = load_comparison(comp.report_dir)
    assert back.seeds == [5, 6] and back.reference == "ls"
    assert len(back.runs) == 4 and len(back.aggregates) == 2
    ddc = next(f for f in comp.fabrics if f.name == "ddc").workloads["perm"]
    assert back.mean("ddc", "perm") == pytest.approx(ddc.jct_s.mean)
    assert back.mean("ddc", "perm", "jct_ratio") == pytest.approx(ddc.jct_ratio)
    assert "fabric[ddc].speedup=1.25" in (Path(comp.report_dir) / "spec.toml").read_text()
