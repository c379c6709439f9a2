"""`fabric compare` without root: aggregation over fabricated runs, the report writer, the runner
(with a fake engine), and argument errors."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fabric import cli
from fabric.analysis.comparison import (Comparison, RunMetrics, Stat, WorkloadRun, aggregate, check_comparable,
                                        measure_run, reference_fabric)
from fabric.report.compare_text import format_comparison
from fabric.run.compare import run_comparison
from fabric.report.compare_files import CSV_COLUMNS, PLOTS, write_report
from topologies.errors import SpecError
from fabric.analysis.links import LinkSample
from fabric.analysis.metrics import CollectiveResult, Distribution
from fabric.analysis.summary import RunSummary
from fabric.plan.experiment import parse_experiment
from traffic.records import FlowRecord, write_csv

FABRICS = [("leafspine", "leafspine", "ecmp"), ("single", "single", "ecmp")]


def summary(fabric, seed, status="complete", colls=(), fct=None, run_dir="/nonexistent"):
    s = RunSummary("exp", fabric, "ecmp", seed, run_dir, status=status,
                   error=None if status == "complete" else "2 flows did not complete",
                   setup={"topology": fabric, "hosts": 4})
    s.collectives = [CollectiveResult(cid, "allreduce", "ring", 4, 4_000_000, 6, True, jct, 0, busbw,
                                      2.4, busbw / 20) for cid, jct, busbw in colls]
    s.fct_by_workload = {"ar": fct or Distribution.of([1.0, 2.0, 3.0])}
    s.fidelity = {"faithful": True, "reasons": []}
    return s


def record(i, start, end, workload="ar", group="ar/it0", complete=True):
    return FlowRecord(i, "h1", "h2", 1000, start, end if complete else None,
                      end - start if complete else None, workload, group, 0, complete)


def run(fabric, seed, jct, status="complete", busbw=10.0, p99=0.5, mmr=None, faithful=True):
    """A fabricated RunMetrics: one workload 'ar' with the given JCT (faithful unless told)."""
    from fabric.analysis.links import TierBalance
    bal = None if mmr is None else TierBalance("fabric", 8, 0.5, 0.5 * mmr, mmr, 0.9)
    return RunMetrics(fabric, fabric, "ecmp", seed, status, None if status == "complete" else "x",
                      f"/runs/{fabric}-{seed}", 10.0, {"topology": fabric},
                      {"ar": WorkloadRun(jct, jct / 2, busbw, p99 / 2, p99, 6, 6)},
                      fct_s=(0.1, 0.2, p99), link_balance=bal, faithful=faithful)


# ---------------------------------------------------------------- pure parts

def test_stat_spread():
    s = Stat.of([2.0, 4.0, None, float("nan")])
    assert (s.n, s.mean, s.min, s.max) == (2, 3.0, 2.0, 4.0)
    assert s.stdev == pytest.approx(2 ** 0.5) and s.cv == pytest.approx(2 ** 0.5 / 3)
    one = Stat.of([5.0])
    assert one.n == 1 and one.mean == 5.0 and one.stdev is None and one.cv is None
    assert Stat.of([]) == Stat(0, None, None, None, None, None)


def test_measure_run_workload_jct_collectives_fct_and_links():
    records = [record(0, 100.0, 101.0), record(1, 100.5, 103.0, group="ar/it1"),
               record(2, 100.2, 100.4, workload="bg", group=None)]
    s = summary("leafspine", 1, colls=[("ar/it0", 1.0, 12.0), ("ar/it1", 2.0, 6.0)])
    samples = [LinkSample(t, "l1-s1", "l1", "s1", "fabric", 8, int((t - 99) * 1e6), 0)
               for t in (99.0, 100.0, 101.0, 102.0, 103.0, 104.0)]
    m = measure_run(s, "leafspine", records, samples, elapsed_s=7.0)
    ar = m.workloads["ar"]
    assert ar.jct_s == pytest.approx(3.0)  # 100.0 -> 103.0
    assert ar.iteration_jct_s == pytest.approx(1.5) and ar.busbw_mbps == pytest.approx(9.0)
    assert ar.fct_p50_s == 2.0 and ar.flows_complete == ar.flows_planned == 2
    assert m.workloads["bg"].jct_s == pytest.approx(0.2) and m.workloads["bg"].busbw_mbps is None
    assert m.window == (100.0, 103.0) and m.elapsed_s == 7.0 and m.complete
    assert sorted(m.fct_s) == pytest.approx([0.2, 1.0, 2.5])
    assert m.link_balance.links == 1 and m.link_balance.util_mean == pytest.approx(1.0)
    assert m.links[0].duration_s == pytest.approx(3.0)  # the workload window, not the whole file


def test_measure_run_incomplete_workload_has_no_jct():
    records = [record(0, 100.0, 101.0), record(1, 100.0, 0, complete=False)]
    m = measure_run(summary("leafspine", 1, status="partial"), "leafspine", records)
    assert m.workloads["ar"].jct_s is None and m.workloads["ar"].flows_complete == 1
    assert not m.complete and m.link_balance is None


def test_aggregate_ratios_spread_and_exclusion():
    runs = [run("leafspine", 1, 12.0, mmr=1.5), run("single", 1, 8.0),
            run("leafspine", 2, 16.0, busbw=6.0, p99=1.5, mmr=2.5), run("single", 2, 8.0),
            run("leafspine", 3, 100.0, status="partial", mmr=9.0),  # must not count
            run("single", 3, 8.0)]
    c = aggregate("exp", FABRICS, runs, [1, 2, 3], ["ar"], "single")
    ls, single = c.fabrics
    assert (ls.runs, ls.runs_complete, single.runs_complete) == (3, 2, 3)
    assert ls.excluded == [{"seed": 3, "status": "partial", "error": "x",
                            "run_dir": "/runs/leafspine-3"}]
    a = ls.workloads["ar"]
    assert a.jct_s.n == 2 and a.jct_s.mean == 14.0 and (a.jct_s.min, a.jct_s.max) == (12.0, 16.0)
    assert a.jct_s.stdev == pytest.approx(8 ** 0.5) and a.jct_s.cv == pytest.approx(8 ** 0.5 / 14)
    assert a.jct_ratio == pytest.approx(14 / 8) and a.iteration_jct_ratio == pytest.approx(14 / 8)
    assert a.busbw_ratio == pytest.approx(8 / 10) and a.fct_p99_ratio == pytest.approx(1.0 / 0.5)
    assert single.reference and single.workloads["ar"].jct_ratio == 1.0
    assert single.workloads["ar"].jct_s.stdev == 0.0
    assert ls.links.mmr.mean == pytest.approx(2.0) and ls.links.links == 8
    assert single.links is None
    assert not c.all_complete
    text = format_comparison(c)
    assert "leafspine seed 3: partial" in text and "single (ref)" in text and "1.75" in text


def test_aggregate_without_reference_or_with_failed_reference():
    runs = [run("leafspine", 1, 12.0), run("single", 1, 8.0, status="failed")]
    c = aggregate("exp", FABRICS, runs, [1], ["ar"], None)
    assert all(f.workloads["ar"].jct_ratio is None for f in c.fabrics)
    assert not any(f.reference for f in c.fabrics)
    c = aggregate("exp", FABRICS, runs, [1], ["ar"], "single")
    assert c.fabrics[0].workloads["ar"].jct_ratio is None  # reference has no complete run
    assert c.fabrics[1].workloads["ar"].jct_s.n == 0
    with pytest.raises(ValueError):
        aggregate("exp", FABRICS, runs, [1], ["ar"], "nosuch")


def test_json_document_is_plain_and_stable():
    c = aggregate("exp", FABRICS, [run("leafspine", 1, 12.0, mmr=1.2), run("single", 1, 8.0)],
                  [1], ["ar"], "single", report_dir="/r")
    d = json.loads(json.dumps(c.to_dict()))
    assert set(d) == {"format", "experiment", "spec_path", "report_dir", "seeds", "reference",
                      "workloads", "all_complete", "interrupted", "elapsed_s", "fabrics", "runs",
                      "include_unfaithful", "runs_not_faithful", "head_to_head"}
    assert d["format"] == 2
    f = d["fabrics"][0]
    assert set(f) == {"name", "kind", "policy", "reference", "setup", "runs", "runs_complete",
                      "runs_faithful", "runs_counted", "excluded", "unfaithful", "workloads",
                      "links"}
    assert set(f["workloads"]["ar"]) == {"jct_s", "iteration_jct_s", "busbw_mbps", "fct_p50_s",
                                         "fct_p99_s", "jct_ratio", "iteration_jct_ratio",
                                         "busbw_ratio", "fct_p99_ratio", "ideal_jct_s", "x_ideal",
                                         "ecmp_penalty"}
    assert set(f["workloads"]["ar"]["jct_s"]) == {"n", "mean", "stdev", "cv", "min", "max"}
    assert set(f["links"]) == {"links", "util_mean", "util_max", "mmr", "jain", "per_link",
                               "per_seed"}
    assert set(d["runs"][0]) == {"fabric", "seed", "status", "error", "faithful",
                                 "fidelity_reasons", "counted", "run_dir", "elapsed_s",
                                 "workloads", "ideal_jct_s", "links"}
    assert set(d["head_to_head"][0]) == {"workload", "a", "b", "seeds", "jct_ratios", "jct_ratio",
                                         "ci_low", "ci_high", "level", "resolved", "verdict"}
    assert d["fabrics"][1]["links"] is None and d["runs"][1]["links"] is None


# ---------------------------------------------------------------- spec checks

def spec_doc(**extra):
    doc = {"name": "exp", "seed": 4,
           "fabric": [{"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2},
                      {"kind": "single", "hosts": 4}],
           "workload": [{"kind": "allreduce", "size_bytes": "1MB", "name": "ar"}]}
    doc.update(extra)
    return doc


def test_reference_resolution_and_validation():
    assert reference_fabric(parse_experiment(spec_doc())) == "single"  # default: the single switch
    assert reference_fabric(parse_experiment(spec_doc(reference="leafspine"))) == "leafspine"
    doc = spec_doc()
    doc["fabric"] = doc["fabric"][:1]
    assert reference_fabric(parse_experiment(doc)) is None
    with pytest.raises(SpecError) as err:
        parse_experiment(spec_doc(reference="ideal"))
    assert err.value.key == "reference"


def test_fabrics_must_get_the_same_plan():
    check_comparable(parse_experiment(spec_doc()))
    doc = spec_doc()
    doc["fabric"][1]["hosts"] = 6  # "all" hosts: 6 on one fabric, 4 on the other
    with pytest.raises(SpecError) as err:
        check_comparable(parse_experiment(doc))
    assert err.value.key == "fabric[1]"


# ---------------------------------------------------------------- report writer

def test_report_files_csv_rows_and_html(tmp_path):
    runs = [run("leafspine", 1, 12.0, mmr=1.5), run("single", 1, 8.0),
            run("leafspine", 2, 14.0, status="partial"), run("single", 2, 8.2)]
    # per-link utilisation for the bar plot comes from RunMetrics.links
    from fabric.analysis.links import LinkUtilisation
    links = tuple(LinkUtilisation(f"l1-s{i}", "l1", f"s{i}", "fabric", 20, 3, 1e6, 0, u, u, u)
                  for i, u in ((1, 0.9), (2, 0.3)))
    runs[0] = RunMetrics(**{**runs[0].__dict__, "links": links})
    c = aggregate("exp", FABRICS, runs, [1, 2], ["ar"], "single", report_dir=str(tmp_path))
    written = write_report(c, tmp_path)
    names = {p.name for p in written}
    # link_heatmap.png needs the runs' links.csv, which fabricated runs do not have
    assert {"compare.json", "compare.csv", "compare.txt", "index.html", "fct_cdf.png",
            "jct_per_seed.png", "link_util.png"} <= names
    for p in written:
        assert p.exists() and p.stat().st_size > 0
    for png in names & set(PLOTS):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "index.html").read_text()
    for png in names & set(PLOTS):
        assert f"src='{png}'" in page
    assert "excluded" in page and "leafspine" in page and "<h2>setup</h2>" in page
    with open(tmp_path / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["row_type"] for r in rows] == ["run"] * 4 + ["aggregate"] * 2 + ["pair"]
    agg = {r["fabric"]: r for r in rows if r["row_type"] == "aggregate"}
    assert float(agg["leafspine"]["jct_s"]) == 12.0 and agg["leafspine"]["runs_complete"] == "1"
    assert float(agg["leafspine"]["jct_ratio"]) == pytest.approx(12.0 / 8.1)
    assert json.loads((tmp_path / "compare.json").read_text())["reference"] == "single"


def test_html_escapes_names(tmp_path):
    c = aggregate("<b>x</b>", FABRICS, [run("single", 1, 8.0)], [1], ["ar"], "single")
    write_report(c, tmp_path)
    assert "<b>x</b>" not in (tmp_path / "index.html").read_text()


# ---------------------------------------------------------------- runner (fake engine)

class FakeEngine:
    """Stands in for engine.run_experiment: writes flows.csv and returns a summary."""

    def __init__(self, interrupt_at: int | None = None):
        self.calls: list[tuple[str, int]] = []
        self.interrupt_at = interrupt_at

    def __call__(self, spec, spec_path, out_base, fabric, seed):
        self.calls.append((fabric, seed))
        if len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        run_dir = Path(out_base) / f"{fabric}-{seed}"
        run_dir.mkdir(parents=True)
        jct = 8.0 if fabric == "single" else 10.0 + seed
        write_csv([record(0, 1000.0, 1000.0 + jct)], run_dir / "flows.csv")
        return summary(fabric, seed, run_dir=str(run_dir))


def test_runner_interleaves_fabrics_per_seed_and_writes_the_report(tmp_path):
    spec = parse_experiment(spec_doc())
    engine = FakeEngine()
    comp = run_comparison(spec, None, tmp_path, 2, progress=lambda msg: None, run=engine)
    assert engine.calls == [("leafspine", 4), ("single", 4), ("leafspine", 5), ("single", 5)]
    report = Path(comp.report_dir)
    assert report.parent == tmp_path and (report / "runs" / "single-5" / "flows.csv").exists()
    assert (report / "index.html").exists() and comp.all_complete
    assert comp.fabrics[0].workloads["ar"].jct_s.mean == pytest.approx(14.5)
    assert comp.fabrics[0].workloads["ar"].jct_ratio == pytest.approx(14.5 / 8)
    again = run_comparison(spec, None, tmp_path, 1, progress=lambda msg: None, run=FakeEngine())
    assert again.report_dir != comp.report_dir  # never overwritten


def test_runner_writes_a_partial_report_when_interrupted(tmp_path):
    spec = parse_experiment(spec_doc())
    with pytest.raises(KeyboardInterrupt):
        run_comparison(spec, None, tmp_path, 3, progress=lambda msg: None,
                       run=FakeEngine(interrupt_at=3))
    (report,) = tmp_path.iterdir()
    data = json.loads((report / "compare.json").read_text())
    assert data["interrupted"] and not data["all_complete"] and len(data["runs"]) == 2


# ---------------------------------------------------------------- CLI errors

@pytest.mark.parametrize("argv", [["--seeds", "0"], ["--seeds", "x"], ["--seeds", "101"]])
def test_cli_bad_seeds_exit_2(tmp_path, argv, capsys):
    spec = tmp_path / "e.toml"
    spec.write_text('name = "e"\n')
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", str(spec), *argv])
    assert exc.value.code == 2 and "--seeds" in capsys.readouterr().err


@pytest.mark.parametrize("extra, key", [
    ('reference = "nosuch"\n', "reference"),
    ('', "fabric[1]"),  # hosts = "all": 4 vs 6 hosts, different plans
])
def test_cli_bad_experiment_exits_2_before_building(tmp_path, extra, key, capsys):
    spec = tmp_path / "e.toml"
    spec.write_text(extra + 'name = "e"\n'
                    '[[fabric]]\nkind = "leafspine"\nspines = 2\nleaves = 2\nhosts_per_leaf = 2\n'
                    '[[fabric]]\nkind = "single"\nhosts = 6\n'
                    '[[workload]]\nkind = "allreduce"\nsize_bytes = "1MB"\n')
    out = tmp_path / "out"
    assert cli.main(["compare", str(spec), "--out", str(out)]) == 2
    assert key in capsys.readouterr().err and not out.exists()


def test_cli_missing_file_exits_2(tmp_path, capsys):
    assert cli.main(["compare", str(tmp_path / "none.toml")]) == 2
    assert "no such experiment file" in capsys.readouterr().err


def test_comparison_dataclass_defaults():
    c = Comparison("e", [1], None, [], [], [])
    assert c.all_complete and c.report_dir is None
