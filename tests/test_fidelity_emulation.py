"""The fidelity monitor on real runs: the default example is faithful, an overloaded run is not."""
from __future__ import annotations

from pathlib import Path

import pytest

from fabric.run.engine import run_experiment
from fabric.analysis.fidelity import read_cpu_csv
from fabric.report.summary import format_summary
from fabric.plan.experiment import load_experiment, parse_experiment

pytestmark = pytest.mark.emulation
ROOT = Path(__file__).resolve().parent.parent


def test_default_example_is_faithful_and_beside_its_ideal(tmp_path):
    s = run_experiment(load_experiment(ROOT / "examples" / "default.toml"), None, tmp_path)
    assert s.status == "complete", s.error
    f = s.fidelity
    assert f.faithful, (f.reasons, f.warnings)
    assert f.busy_links and all(c.measured_util >= 0.9 * c.ideal_util for c in f.busy_links)
    assert f.cpu.samples >= 8 and f.cpu.ovs_vswitchd_cores_mean > 0 and f.cpu.agents_cores_mean > 0
    for c in s.collectives:  # ring crossing no shared uplink: close to the ideal fluid model
        # (not a hard lower bound: HTB's burst lets a flow run ahead of the fluid rate for a few
        # frames, measured up to 0.2% under the model with persistent connections)
        assert 0.98 <= c.jct_vs_ideal < 1.25 and c.ideal_jct_s > c.lower_bound_s
    assert s.ideal.fct_ratio.count == s.flows_planned
    run = Path(s.run_dir)
    assert len(read_cpu_csv(run / "cpu.csv")) >= 8 and (run / "ideal.csv").exists()
    assert "fidelity: FAITHFUL" in format_summary(s)


def test_overloaded_run_is_flagged_unfaithful(tmp_path):
    # 4 flows at 1000 Mbit/s through one switch: ~8x what the userspace datapath of a 2-core
    # machine forwards faithfully (bench.throughput); each lasts ~2.2 s on the ideal fabric
    hosts = ["h1", "h2", "h3", "h4"]
    spec = parse_experiment({
        "name": "overload", "run": {"deadline_s": 60},
        "fabric": {"kind": "single", "hosts": 4, "host_rate_mbps": 1000},
        "workload": [{"kind": "flows", "name": "bulk", "flows": [
            {"src": a, "dst": b, "size_bytes": "256MB"}
            for a, b in zip(hosts, hosts[1:] + hosts[:1])]}]})
    s = run_experiment(spec, None, tmp_path)
    assert s.status == "complete", s.error
    f = s.fidelity
    assert not f.faithful and any("CPU saturated" in r for r in f.reasons), f
    assert f.busy_links and min(c.measured_util for c in f.busy_links) < 0.9
    assert "fidelity: UNFAITHFUL" in format_summary(s)
