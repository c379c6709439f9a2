"""End-to-end runs on real Mininet + OVS: results on disk, and nothing left behind, whatever happens."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fabric.run import registry
from fabric.run.cleanup import leftovers
from fabric.run.engine import run_experiment
from fabric.run.runlock import exclusive_run
from fabric.plan.experiment import parse_experiment
from traffic.records import read_csv

pytestmark = pytest.mark.emulation
ROOT = Path(__file__).resolve().parent.parent
FABRIC = [sys.executable, "-m", "fabric"]


def small_spec(size="2MB", deadline_s=60.0, iterations=1):
    return parse_experiment({
        "name": "t", "seed": 3, "run": {"deadline_s": deadline_s},
        "fabric": {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2,
                   "host_rate_mbps": 20, "fabric_rate_mbps": 20},
        "workload": [{"kind": "allreduce", "size_bytes": size, "iterations": iterations,
                      "hosts": ["h1", "h2", "h3", "h4"]},
                     {"kind": "flows", "flows": [{"src": "h1", "dst": "h4", "size_bytes": "500kB"}]}],
    })


def wait_for_workload(proc: subprocess.Popen, out: Path) -> None:
    """Until the run's workload is running: first its run lock (engine.log appears once the run
    holds it; other runs on the machine may hold it for minutes), then 30 s for the agents."""
    for pattern, timeout_s in (("*/engine.log", 3600), ("*/agents/*.recv.csv", 30)):
        deadline = time.monotonic() + timeout_s
        while not list(out.glob(pattern)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)


def assert_clean():
    """Nothing of ours left; holding the run lock so no other emulation is mid-run."""
    with exclusive_run():
        deadline = time.monotonic() + 5  # processes may need a moment to be reaped
        while leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert leftovers() == []


def test_run_completes_with_results_on_disk(tmp_path):
    summary = run_experiment(small_spec(), None, tmp_path)
    assert summary.status == "complete", summary.error
    run = Path(summary.run_dir)
    for name in ("summary.json", "flows.csv", "plan.json", "fabric.json", "environment.json",
                 "controller.log", "engine.log"):
        assert (run / name).exists(), name
    records = read_csv(run / "flows.csv")
    assert len(records) == summary.flows_planned == 25 and all(r.complete for r in records)
    (coll,) = summary.collectives
    assert coll.complete and coll.jct_s > coll.lower_bound_s * 0.9
    assert 0 < coll.busbw_efficiency <= 1.05
    assert summary.tcp["Tcp.OutSegs"] > 0
    saved = json.loads((run / "summary.json").read_text())
    assert saved["status"] == "complete" and saved["collectives"][0]["ranks"] == 4
    assert_clean()


def test_failure_inside_workload_keeps_partial_results_and_cleans_up(tmp_path):
    # 20 MB per rank at 20 Mbit/s needs ~12 s: a 2 s deadline makes every agent give up mid-run
    summary = run_experiment(small_spec(size="20MB", deadline_s=2.0), None, tmp_path)
    assert summary.status in ("failed", "partial") and summary.error
    records = read_csv(Path(summary.run_dir) / "flows.csv")
    assert len(records) == summary.flows_planned
    assert any(r.complete for r in records) and not all(r.complete for r in records)
    assert json.loads((Path(summary.run_dir) / "summary.json").read_text())["status"] == summary.status
    assert_clean()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 130)])
def test_signal_during_run_cleans_up(tmp_path, sig, code):
    spec = tmp_path / "long.toml"
    spec.write_text((ROOT / "examples" / "default.toml").read_text()
                    .replace('size_bytes = "4MB"', 'size_bytes = "40MB"'))
    out = tmp_path / "runs"
    proc = subprocess.Popen(FABRIC + ["run", str(spec), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell's background job inherits SIGINT ignored: undo that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_workload(proc, out)
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    (run,) = out.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] in ("failed", "partial") and "interrupted" in summary["error"]
    assert (run / "flows.csv").exists()
    assert_clean()


@pytest.mark.parametrize("edit, key", [
    (("spines = 2", "spines = 0"), "fabric[0].spines"),
    (('"h4"]', '"h9"]'), "workload[0].hosts[3]"),
    (("queue_packets = 100", "queue_packet = 100"), "fabric[0].queue_packet"),
])
def test_bad_input_exits_2_and_builds_nothing(tmp_path, edit, key):
    spec = tmp_path / "bad.toml"
    spec.write_text((ROOT / "examples" / "default.toml").read_text().replace(*edit))
    out = tmp_path / "runs"
    res = subprocess.run(FABRIC + ["run", str(spec), "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert key in res.stderr and res.stderr.count("\n") == 1
    assert not out.exists()
    assert_clean()


def test_clean_removes_what_a_killed_run_left(tmp_path):
    """kill -9 of `fabric run` leaves the network up; `fabric clean` removes it."""
    spec = tmp_path / "long.toml"
    spec.write_text((ROOT / "examples" / "default.toml").read_text()
                    .replace('size_bytes = "4MB"', 'size_bytes = "40MB"'))
    out = tmp_path / "runs"
    proc = subprocess.Popen(FABRIC + ["run", str(spec), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_for_workload(proc, out)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert leftovers(), "a killed run should have left its network behind"
    dry = subprocess.run(FABRIC + ["clean", "--dry-run", "--wait"], cwd=ROOT,
                         capture_output=True, text=True, timeout=3600)
    assert dry.returncode == 0 and "would remove ovs bridge" in dry.stdout
    assert leftovers(), "--dry-run removed something"
    res = subprocess.run(FABRIC + ["clean", "--wait"], cwd=ROOT, capture_output=True, text=True,
                         timeout=3600)
    assert res.returncode == 0 and "removed" in res.stdout
    assert_clean()


def _add_bridge(name: str) -> None:
    subprocess.run(["ovs-vsctl", "add-br", name, "--", "set", "bridge", name,
                    "datapath_type=netdev"], check=True)


def test_run_refuses_to_build_over_a_dead_runs_leftovers(tmp_path):
    """A bridge a killed run registered is in the way: fail, pointing at `fabric clean`,
    which removes it (and only it)."""
    stale = registry.REGISTRY_DIR / "1-1.json"  # as a run killed with SIGKILL leaves it
    with exclusive_run():  # one hold: no other run sees our fake leftover
        _add_bridge("s99")
        stale.write_text(json.dumps({"owner": 1, "bridges": ["s99"], "processes": []}))
        try:
            summary = run_experiment(small_spec(), None, tmp_path)
            assert summary.status == "failed" and "fabric clean" in summary.error
            assert "s99" in summary.error
            # --force: we hold the lock ourselves (clean would otherwise wait for us)
            res = subprocess.run(FABRIC + ["clean", "--force"], cwd=ROOT, capture_output=True,
                                 text=True, timeout=60)
            assert res.returncode == 0 and "removed ovs bridge s99" in res.stdout
            assert not stale.exists()
        finally:
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", "s99"], check=True)
            stale.unlink(missing_ok=True)
    assert_clean()


def test_run_refuses_to_build_over_bridges_it_does_not_own(tmp_path):
    """A bridge with one of the fabric's names that no run registered (a Mininet session of
    the user's own): the run fails naming it, and `fabric clean` leaves it alone."""
    with exclusive_run():  # one hold: no other run sees our bridge
        _add_bridge("s1")
        try:
            summary = run_experiment(small_spec(), None, tmp_path)
            assert summary.status == "failed" and "no run of this project" in summary.error
            assert "s1" in summary.error
            res = subprocess.run(FABRIC + ["clean", "--dry-run", "--force"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
            assert res.returncode == 0 and "s1" not in res.stdout
        finally:
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", "s1"], check=True)
    assert_clean()
