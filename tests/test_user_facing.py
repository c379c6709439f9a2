"""What a user sees outside the numbers: --version, environment.json, the setup row of one switch,
one time base in the run files, the model's ECMP penalty."""
from __future__ import annotations

import csv

import pytest

from fabric import cli
from fabric.analysis.comparison import expected_ecmp_penalty
from fabric.analysis.ideal import ideal_plan, write_csv
from fabric.plan.experiment import parse_experiment
from fabric.plan.traffic import build_plan
from fabric.run.rundir import environment
from topologies.model import setup_table
from topologies.single import build_single_switch


def test_version_exits_0_and_names_the_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("fabric ") and len(out.split()) == 2


def test_environment_names_the_software_and_the_commit():
    env = environment("user")
    for key in ("open_vswitch", "matplotlib", "project", "project_commit", "os_ken", "networkx",
                "mininet", "kernel", "cpus", "cpu_model", "datapath", "python", "time_utc"):
        assert key in env
    assert env["matplotlib"]  # a dependency: always installed


def test_one_switch_is_non_blocking_in_the_setup_table():
    row = setup_table(build_single_switch(4, 20.0))
    assert row["oversubscription"] == 1.0 and row["fabric_links"] == 0


STRIDE = {"name": "s", "fabric": [{"kind": "leafspine", "spines": 2, "leaves": 3,
                                   "hosts_per_leaf": 2}, {"kind": "single", "hosts": 6}],
          "workload": {"kind": "stride", "name": "stride", "stride": 2, "size_bytes": "1MB"}}


def test_ideal_csv_times_are_epoch_seconds(tmp_path):
    spec = parse_experiment(STRIDE)
    graph = spec.fabrics[0].build()
    plan = build_plan(spec, graph)
    res = ideal_plan(graph, plan)
    write_csv(res, [], tmp_path / "a.csv")
    write_csv(res, [], tmp_path / "b.csv", t0=1_000_000.0)
    def read(p):
        with open(p) as f:
            return list(csv.DictReader(f))
    a, b = read(tmp_path / "a.csv"), read(tmp_path / "b.csv")
    assert list(a[0])[:3] == ["flow_id", "ideal_ready", "ideal_end"]
    for x, y in zip(a, b):
        assert float(y["ideal_ready"]) == pytest.approx(float(x["ideal_ready"]) + 1e6)
        assert float(y["ideal_end"]) == pytest.approx(float(x["ideal_end"]) + 1e6)
        assert y["ideal_fct_s"] == x["ideal_fct_s"]  # durations do not move


def test_expected_ecmp_penalty_on_a_stride_and_on_one_switch():
    spec = parse_experiment(STRIDE)
    ls, single = (f.build() for f in spec.fabrics)
    pen = expected_ecmp_penalty(ls, build_plan(spec, ls), ["stride"])["stride"]
    # every leaf sends two flows over two uplinks: a random choice collides half the time,
    # and the permutation ends with its slowest flow
    assert 1.2 < pen < 2.1
    assert expected_ecmp_penalty(single, build_plan(spec, single), ["stride"])["stride"] == \
        pytest.approx(1.0)
