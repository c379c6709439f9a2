"""Comparisons a user can trust, without root: recorded run directories (summary.json, flows.csv,
ideal.csv) of three fabrics x four seeds, one of them judged UNFAITHFUL, read back and reported.

Every output must show the unfaithful run, the default means must leave it out, the head-to-head
ratios and intervals must be the paired t-interval computed here by hand, and the cost line must
follow its formula."""
from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest

from fabric.analysis.comparison import aggregate, read_run_dir
from fabric.analysis.cost import cost_line
from fabric.analysis.headtohead import paired_ratio, t975, verdict
from fabric.analysis.summary import RunSummary, write_json
from fabric.report.compare_files import write_report
from fabric.report.compare_text import format_comparison
from fabric.run.compare import progress_line
from fabric.spec.cost import CostSpec
from fabric.plan.experiment import parse_experiment
from topologies.errors import SpecError
from traffic.records import FlowRecord, write_csv

SEEDS = [1, 2, 3, 4]
FABRICS = [("leafspine", "leafspine", "ecmp"), ("ddc", "ddc", "ddc"), ("single", "single", "ecmp")]
# JCT (s) of the workload per fabric and seed; ddc seed 3 is the unfaithful run (a loaded CPU
# stretched it to 9.0 s)
JCT = {"leafspine": [7.0, 7.4, 6.8, 7.2], "ddc": [3.6, 3.8, 9.0, 3.7],
       "single": [3.6, 3.7, 3.5, 3.75]}
UNFAITHFUL = ("ddc", 3)
REASON = "CPU saturated (machine 99% busy over 1 s) while busy links carried less than 90%"
IDEAL_JCT = 3.45


def record_run(base: Path, fabric: str, kind: str, policy: str, seed: int) -> Path:
    """One recorded run directory as the engine writes it (the files a comparison reads)."""
    run_dir = base / "runs" / f"{fabric}-{seed}"
    run_dir.mkdir(parents=True)
    jct = JCT[fabric][seed - 1]
    t0 = 1000.0 * seed
    # a stride over 4 hosts: four flows; the last ends at t0 + jct
    records = [FlowRecord(i, f"h{i + 1}", f"h{(i + 2) % 4 + 1}", 8_000_000, t0, t0 + jct - 0.1 * i,
                          jct - 0.1 * i, "stride", None, 0, True) for i in range(4)]
    write_csv(records, run_dir / "flows.csv")
    with open(run_dir / "ideal.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["flow_id", "ideal_ready", "ideal_end", "ideal_fct_s", "alone_fct_s", "fct_s",
                    "fct_ratio", "fct_slowdown"])
        for r in records:
            w.writerow([r.flow_id, t0, t0 + IDEAL_JCT, IDEAL_JCT, 3.3, r.fct_s, "", ""])
    bad = (fabric, seed) == UNFAITHFUL
    s = RunSummary("trust", fabric, policy, seed, f"/elsewhere/{fabric}-{seed}", status="complete",
                   setup={"topology": kind, "hosts": 4, "policy": policy})
    s.flows_planned = s.flows_complete = 4
    s.fidelity = {"faithful": not bad, "reasons": [REASON] if bad else [], "warnings": []}
    write_json(run_dir / "summary.json", s.to_dict())
    return run_dir


@pytest.fixture
def report(tmp_path):
    dirs = [record_run(tmp_path, name, kind, policy, seed)
            for seed in SEEDS for name, kind, policy in FABRICS]
    runs = [read_run_dir(d) for d in dirs]

    def compare(include_unfaithful: bool = False):
        return aggregate("trust", FABRICS, runs, SEEDS, ["stride"], "single",
                         include_unfaithful=include_unfaithful, report_dir=str(tmp_path),
                         ecmp_penalty={("leafspine", "stride"): 1.6})
    return tmp_path, runs, compare


def test_recorded_runs_read_back_with_fidelity_and_ideal(report):
    _, runs, _ = report
    bad = [r for r in runs if r.faithful is False]
    assert [(r.fabric, r.seed) for r in bad] == [UNFAITHFUL]
    assert bad[0].fidelity_reasons == (REASON,) and bad[0].fidelity == "UNFAITHFUL"
    assert all(r.ideal_jct_s["stride"] == pytest.approx(IDEAL_JCT) for r in runs)
    assert runs[0].workloads["stride"].jct_s == pytest.approx(JCT["leafspine"][0])
    assert "UNFAITHFUL" in progress_line(bad[0], 8, 12) and REASON in progress_line(bad[0], 8, 12)
    assert "faithful" in progress_line(runs[0], 1, 12)


def test_unfaithful_run_shown_everywhere_and_left_out_of_means(report):
    base, _, compare = report
    comp = compare()
    ddc = next(f for f in comp.fabrics if f.name == "ddc")
    good = [3.6, 3.8, 3.7]
    assert (ddc.runs_complete, ddc.runs_faithful, ddc.runs_counted) == (4, 3, 3)
    assert ddc.workloads["stride"].jct_s.mean == pytest.approx(sum(good) / 3)
    assert ddc.workloads["stride"].x_ideal == pytest.approx(sum(good) / 3 / IDEAL_JCT)
    assert ddc.unfaithful == [{"seed": 3, "fidelity": "UNFAITHFUL", "reasons": [REASON],
                               "counted": False, "run_dir": str(base / "runs" / "ddc-3")}]
    write_report(comp, base)
    text = (base / "compare.txt").read_text()
    assert "WARNING: 1 of 12 complete runs not faithful" in text
    assert "ddc seed 3: UNFAITHFUL" in text and REASON in text
    page = (base / "index.html").read_text()
    assert "class=banner" in page and "UNFAITHFUL" in page and "not in means" not in page[:200]
    doc = json.loads((base / "compare.json").read_text())
    assert doc["runs_not_faithful"] == 1 and doc["include_unfaithful"] is False
    (bad,) = [r for r in doc["runs"] if r["faithful"] is False]
    assert (bad["fabric"], bad["seed"], bad["counted"]) == ("ddc", 3, False)
    assert bad["fidelity_reasons"] == [REASON] and bad["run_dir"] == "runs/ddc-3"  # relative
    fab = next(f for f in doc["fabrics"] if f["name"] == "ddc")
    assert (fab["runs_faithful"], fab["runs_counted"]) == (3, 3)
    with open(base / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    (row,) = [r for r in rows if r["row_type"] == "run" and r["faithful"] == "False"]
    assert (row["fabric"], row["seed"], row["counted"], row["run_dir"]) == (
        "ddc", "3", "False", "runs/ddc-3")
    agg = next(r for r in rows if r["row_type"] == "aggregate" and r["fabric"] == "ddc")
    assert float(agg["jct_s"]) == pytest.approx(sum(good) / 3) and agg["runs_faithful"] == "3"
    # the pair leaves seed 3 out: three seeds for every pair that involves ddc
    pair = next(p for p in comp.pairs if (p.a, p.b) == ("leafspine", "ddc"))
    assert pair.seeds == (1, 2, 4)


def test_include_unfaithful_counts_it_and_says_so(report):
    _, _, compare = report
    comp = compare(include_unfaithful=True)
    ddc = next(f for f in comp.fabrics if f.name == "ddc")
    assert ddc.runs_counted == 4 and ddc.runs_faithful == 3
    assert ddc.workloads["stride"].jct_s.mean == pytest.approx(sum(JCT["ddc"]) / 4)
    text = format_comparison(comp)
    assert "ARE counted" in text and "means over complete runs, faithful or not" in text


def test_verdict_and_interval_match_the_paired_t_interval(report):
    _, _, compare = report
    comp = compare()
    pair = next(p for p in comp.pairs if (p.a, p.b) == ("leafspine", "ddc"))
    seeds = [1, 2, 4]
    logs = [math.log(JCT["leafspine"][s - 1] / JCT["ddc"][s - 1]) for s in seeds]
    mean, sd = sum(logs) / 3, statistics.stdev(logs)
    half = 4.303 * sd / math.sqrt(3)  # t(0.975, 2 df)
    assert pair.ratio == pytest.approx(math.exp(mean))
    assert (pair.low, pair.high) == (pytest.approx(math.exp(mean - half)),
                                     pytest.approx(math.exp(mean + half)))
    assert pair.resolved
    lines = comp.verdicts()
    gain = 1 - math.exp(-mean)  # ddc needs this much less time
    lo, hi = 1 - math.exp(-mean + half), 1 - math.exp(-mean - half)
    pm = max(gain - lo, hi - gain)
    expected = (f"ddc (DDC) is {gain * 100:.0f}% +/- {pm * 100:.1f}% faster than leafspine "
                f"(leaf/spine+ecmp) on `stride` (3 seeds, 95% CI {lo * 100:.0f}%..{hi * 100:.0f}%")
    assert lines[0].startswith(expected), lines[0]
    # ddc vs single: ratios 1.0, 1.03, 0.99 -> the interval straddles 1
    ds = next(p for p in comp.pairs if (p.a, p.b) == ("ddc", "single"))
    assert not ds.resolved and ds.low < 1 < ds.high
    assert "no difference the seeds can resolve" in comp.verdicts()[2]


def test_t_quantiles_and_small_samples():
    assert [t975(d) for d in (1, 2, 4, 30)] == [12.706, 4.303, 2.776, 2.042]
    assert 2.021 > t975(50) > 2.000 and 1.96 < t975(1000) < 1.963
    one = paired_ratio("w", "a", "b", {1: 2.0}, {1: 4.0})
    assert one.ratio == 0.5 and one.low is None and not one.resolved
    assert "one seed gives no interval" in verdict(one)
    none = paired_ratio("w", "a", "b", {1: 2.0}, {2: 4.0})
    assert none.n == 0 and "no seed where both ran" in verdict(none)
    few = paired_ratio("w", "a", "b", {1: 5.0, 2: 5.2, 3: 4.9}, {1: 10.0, 2: 10.1, 3: 9.9})
    assert few.resolved and "only 3 seeds" in verdict(few)
    slow = paired_ratio("w", "a", "b", {s: 10.0 + s / 10 for s in range(6)},
                        {s: 5.0 + s / 20 for s in range(6)})
    assert slow.resolved and verdict(slow).startswith("b is 50%") and "only" not in verdict(slow)


def test_cost_line_follows_its_formula(report):
    _, _, compare = report
    comp = compare()
    pair = next(p for p in comp.pairs if (p.a, p.b) == ("leafspine", "ddc"))
    c = CostSpec(accelerators=1000, accelerator_hour_usd=2.0, network_share=0.1, job_hours=10.0,
                 measured_share=0.5)
    line = cost_line(pair, c)
    r = 1 / pair.ratio  # ddc / leafspine
    job = 1 - 0.5 * (1 - r)
    assert (line.fast, line.slow) == ("ddc", "leafspine")
    assert line.hours_slow == 10_000 and line.hours_fast == pytest.approx(10_000 * job)
    assert line.usd_slow - line.usd_fast == pytest.approx(20_000 * (1 - job))
    assert line.network_worth == pytest.approx((1 / job - 1) / 0.1)
    assert line.hours_saved_ci[0] < 10_000 * (1 - job) < line.hours_saved_ci[1]
    unresolved = next(p for p in comp.pairs if (p.a, p.b) == ("ddc", "single"))
    assert cost_line(unresolved, c) is None
    text = format_comparison(comp)  # pairs with the one-switch ideal get no cost line
    assert "cost per job" in text and "a job on ddc" in text and "single's network" not in text


def test_cost_table_in_the_spec():
    doc = {"name": "x", "fabric": {"kind": "single", "hosts": 2},
           "workload": {"kind": "flows", "flows": [{"src": "h1", "dst": "h2",
                                                    "size_bytes": "1MB"}]}}
    assert parse_experiment(doc).cost is None
    spec = parse_experiment({**doc, "cost": {"accelerators": 512, "network_share": 0.15}})
    assert spec.cost.accelerators == 512 and spec.cost.network_share == 0.15
    assert spec.cost.accelerator_hour_usd == 3.0  # the default
    with pytest.raises(SpecError) as err:
        parse_experiment({**doc, "cost": {"network_share": 1.5}})
    assert "cost.network_share: must be <= 0.999" in str(err.value)
    with pytest.raises(SpecError) as err:
        parse_experiment({**doc, "cost": {"gpus": 8}})
    assert "cost.gpus" in str(err.value)
