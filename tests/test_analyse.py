"""`fabric analyse RUN_DIR`: every computed number of a run again, from the files it wrote (no root).

tests/data/recorded-run is a real run of its spec.toml (8 hosts, an all-reduce beside three
inference requests), trimmed to the files the analysis reads plus what it writes.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from fabric.analysis.analyse import reanalyse
from fabric.cli import main
from topologies.errors import SpecError

RECORDED = Path(__file__).resolve().parent / "data" / "recorded-run"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(RECORDED, d)
    return d


def _summary(d: Path) -> dict:
    s = json.loads((d / "summary.json").read_text())
    s.pop("run_dir")
    return s


def test_analyse_reproduces_the_recorded_summary(run_dir: Path) -> None:
    (run_dir / "ideal.csv").unlink()
    (run_dir / "requests.csv").unlink()
    summary = reanalyse(run_dir)
    assert summary.run_dir == str(run_dir)
    assert _summary(run_dir) == _summary(RECORDED)
    for name in ("ideal.csv", "requests.csv"):
        assert (run_dir / name).read_text() == (RECORDED / name).read_text()
    again = _summary(run_dir)
    reanalyse(run_dir)                       # idempotent: analysing twice changes nothing
    assert _summary(run_dir) == again


def test_recorded_facts_are_kept_and_computed_ones_follow_the_files(run_dir: Path) -> None:
    """Status, phases and TCP counters come from the run; metrics from flows.csv."""
    rows = list(csv.DictReader((run_dir / "flows.csv").open()))
    kv = next(r for r in rows if r["workload"] == "inference" and r["step"] == "1")
    kv.update(end="", fct_s="", complete="false")
    with (run_dir / "flows.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    before = _summary(RECORDED)
    after = reanalyse(run_dir).to_dict()
    assert after["phases_s"] == before["phases_s"] and after["tcp"] == before["tcp"]
    assert after["flows_complete"] == before["flows_complete"] - 1
    assert after["status"] == "partial" and after["error"] == "1 flows did not complete"
    assert after["inference"]["inference"]["complete"] == 2
    assert after["inference"]["inference"]["kv_transfer_s"]["count"] == 2
    assert after["collectives"] == before["collectives"]   # the all-reduce is untouched


def test_the_cli_prints_the_summary_and_names_missing_files(run_dir: Path, capsys) -> None:
    assert main(["analyse", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "experiment recorded" in out and "inference inference: 3/3" in out
    assert main(["analyse", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["flows_complete"] == 66
    (run_dir / "plan.json").unlink()
    assert main(["analyse", str(run_dir)]) == 2
    assert "plan.json" in capsys.readouterr().err
    with pytest.raises(SpecError, match=r"summary\.json"):
        reanalyse(run_dir.parent / "nowhere")
