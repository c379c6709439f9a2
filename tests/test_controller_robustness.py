"""Robustness on real parts: garbage and unexpected OpenFlow messages do not crash the
controller (it still serves real OVS switches afterwards), and a run whose controller dies is
failed by the engine within seconds, with the reason, and leaves nothing behind.

Needs root and a running Open vSwitch; holds the machine-wide emulation lock while it owns
bridges (named p5rb<N>, always deleted).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from controller.process import ControllerProcess
from fabric.run.cleanup import leftovers
from fabric.run.engine import run_experiment
from fabric.run.runlock import exclusive_run
from fabric.plan.experiment import parse_experiment
from topologies.leafspine import build_leaf_spine
from topologies.model import switches, to_description

from tests.test_controller_garbage import AFTER_HANDSHAKE, GARBAGE, handshake

pytestmark = pytest.mark.emulation

def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


def test_garbage_is_logged_and_the_controller_still_serves_switches(tmp_path):
    g = build_leaf_spine(1, 1, 2, host_rate_mbps=10, fabric_rate_mbps=10)
    fabric = tmp_path / "fabric.json"
    fabric.write_text(json.dumps(to_description(g)))
    bridges = {sw: f"p5rb{i + 1}" for i, sw in enumerate(switches(g))}
    with exclusive_run(), ControllerProcess(fabric, "ecmp", {}, tmp_path / "c.log") as ctl:
        try:
            ctl.wait_listening(10)
            for name, data in GARBAGE.items():
                with socket.create_connection(("127.0.0.1", ctl.port), timeout=5) as s:
                    s.sendall(data)
                    time.sleep(0.2)
                assert ctl.alive(), f"controller died on {name}"
            with handshake(ctl.port, 0xBAD) as s:
                for name, data in AFTER_HANDSHAKE.items():
                    s.sendall(data)
                    time.sleep(0.2)
                    assert ctl.alive(), f"controller died on {name}"
            for sw, br in bridges.items():
                sh("ovs-vsctl", "--may-exist", "add-br", br, "--", "set", "bridge", br,
                   "datapath_type=netdev", f"other-config:datapath-id={g.nodes[sw]['dpid']:016x}",
                   "protocols=OpenFlow13", "fail_mode=secure")
                sh("ovs-vsctl", "set-controller", br, f"tcp:127.0.0.1:{ctl.port}")
            ctl.wait_ready(20)
            flows = sh("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridges["l1"])
            assert "nw_dst=10.0.0.2 actions=output:2" in flows
        finally:
            for br in bridges.values():
                subprocess.run(["ovs-vsctl", "--if-exists", "del-br", br], capture_output=True,
                               timeout=30)
    log = (tmp_path / "c.log").read_text()
    assert "malformed OpenFlow packet" in log           # os-ken's parser logged the garbage
    assert "0000000000000bad" in log and "not in fabric" in log
    assert ctl.returncode == 0


def test_engine_fails_the_run_soon_after_the_controller_dies(tmp_path):
    # 40 MB per rank at 20 Mbit/s needs ~25 s: the controller is killed 1 s into the workload
    spec = parse_experiment({
        "name": "ctl-dies", "run": {"deadline_s": 90},
        "fabric": {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2},
        "workload": [{"kind": "allreduce", "size_bytes": "40MB", "hosts": ["h1", "h3", "h2", "h4"]}],
    })
    killed: dict[str, float] = {}

    def killer() -> None:
        deadline = time.monotonic() + 3600  # the run may first wait for others' runs (lock)
        while time.monotonic() < deadline:
            runs = [p for p in tmp_path.iterdir() if p.is_dir()]
            if runs and (runs[0] / "engine.log").exists() and deadline > time.monotonic() + 120:
                deadline = time.monotonic() + 120  # it holds the lock: now 120 s to start
            if runs and list(runs[0].glob("agents/*.recv.csv")):
                time.sleep(1.0)
                for pid in _controllers_of(runs[0]):
                    os.kill(pid, signal.SIGKILL)
                    killed["at"] = time.monotonic()
                return
            time.sleep(0.1)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    summary = run_experiment(spec, None, tmp_path)
    ended = time.monotonic()
    t.join(5)
    assert "at" in killed, "the workload never started"
    assert summary.status in ("failed", "partial")
    assert "controller died" in summary.error
    assert ended - killed["at"] < 15, "the engine took too long to notice"
    saved = json.loads((Path(summary.run_dir) / "summary.json").read_text())
    assert saved["status"] == summary.status and "controller died" in saved["error"]
    with exclusive_run():   # no other emulation may be running while we look
        deadline = time.monotonic() + 5
        while leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert leftovers() == []


def _controllers_of(run_dir: Path) -> list[int]:
    """Pids of controller processes started for this run directory (by their --log path)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "-m controller.main" in cmd and str(run_dir) in cmd:
                pids.append(int(entry.name))
    return pids
