"""The controller process against real userspace OVS bridges (ctlt<N>), on 127.0.0.1 only.

Needs root and a running Open vSwitch; bridges are created here, under the machine-wide
emulation lock, and always deleted.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from controller.process import ControllerProcess
from topologies.errors import RunError
from fabric.run.runlock import exclusive_run
from topologies.leafspine import build_leaf_spine
from topologies.model import switches, to_description

# conftest skips these without root or OVS (or, in CI, fails the session): no gate of our own
pytestmark = pytest.mark.emulation


@pytest.fixture(autouse=True)
def _emulation_lock():
    """Hold the machine-wide emulation lock: these tests own OVS bridges and controller
    processes that an engine run's leftover check would otherwise see."""
    with exclusive_run():
        yield


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


def of13(cmd: str, bridge: str) -> str:
    return sh("ovs-ofctl", "-O", "OpenFlow13", cmd, bridge)


def write_fabric(tmp_path, spines: int, leaves: int):
    g = build_leaf_spine(spines, leaves, 2, host_rate_mbps=10, fabric_rate_mbps=10)
    path = tmp_path / "fabric.json"
    path.write_text(json.dumps(to_description(g)))
    return g, path


class Bridges:
    """ctlt<N> bridges, one per fabric switch (bridge N gets the dpid of switch N)."""

    def __init__(self, g):
        self.by_switch = {sw: f"ctlt{i + 1}" for i, sw in enumerate(switches(g))}
        self.dpid = {sw: g.nodes[sw]["dpid"] for sw in switches(g)}

    def create(self, port: int) -> None:
        for sw, br in self.by_switch.items():
            sh("ovs-vsctl", "--may-exist", "add-br", br, "--", "set", "bridge", br,
               "datapath_type=netdev", f"other-config:datapath-id={self.dpid[sw]:016x}",
               "protocols=OpenFlow13", "fail_mode=secure")
            self.connect(br, port)

    @staticmethod
    def connect(br: str, port: int) -> None:
        sh("ovs-vsctl", "set-controller", br, f"tcp:127.0.0.1:{port}")

    def delete(self) -> None:
        for br in self.by_switch.values():
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", br], capture_output=True,
                           timeout=30)


@pytest.fixture
def leaf_spine(tmp_path):
    """One leaf + one spine (dpids 1, 2) on bridges ctlt1, ctlt2, and a controller for them."""
    g, path = write_fabric(tmp_path, 1, 1)
    bridges = Bridges(g)
    ctl = ControllerProcess(path, "ecmp", {}, tmp_path / "controller.log")
    try:
        yield g, bridges, ctl
    finally:
        ctl.stop()
        bridges.delete()


def listeners(pid: int) -> list[str]:
    out = sh("ss", "-ltnpH")
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]


def test_installs_reinstalls_and_stops(leaf_spine):
    _, bridges, ctl = leaf_spine
    ctl.start()
    ctl.wait_listening(10)
    assert listeners(ctl.pid) == [f"127.0.0.1:{ctl.port}"]   # nothing beyond loopback
    bridges.create(ctl.port)
    ctl.wait_ready(20)
    assert ctl.installed() == {"l1", "s1"} and ctl.installed_count() == 2

    flows = of13("dump-flows", "ctlt1")
    assert "nw_dst=10.0.0.1 actions=output:1" in flows
    assert "nw_dst=10.0.0.2 actions=output:2" in flows
    assert "priority=0 actions=drop" in flows
    assert "nw_dst=10.0.0.1 actions=output:1" in of13("dump-flows", "ctlt2")

    # Reconnection: stale extra state is wiped and the full state comes back.
    sh("ovs-ofctl", "-O", "OpenFlow13", "add-flow", "ctlt1", "priority=7,arp,actions=drop")
    mark = ctl.ready_count()
    sh("ovs-vsctl", "del-controller", "ctlt1")
    deadline = time.monotonic() + 5
    while "l1" in ctl.installed() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "l1" not in ctl.installed(), "disconnect not noticed"
    assert not ctl.is_ready()
    bridges.connect("ctlt1", ctl.port)
    ctl.wait_ready(20, after=mark)
    kinds = [(k, a) for _, k, a in ctl.events]
    assert kinds.count(("INSTALLED", "l1")) == 2 and kinds.count(("READY", "")) == 2
    assert ("DISCONNECTED", "l1") in kinds
    flows = of13("dump-flows", "ctlt1")
    assert "priority=7" not in flows and "nw_dst=10.0.0.2 actions=output:2" in flows

    t0 = time.monotonic()
    os.kill(ctl.pid, signal.SIGTERM)
    while ctl.alive() and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert not ctl.alive() and ctl.returncode == 0
    assert "stopping" in "\n".join(ctl.log_tail())
    assert ctl.stop() == 0   # idempotent after the fact


def test_select_groups_on_real_ovs(tmp_path):
    """2 spines x 2 leaves: leaves get a select group over both uplinks, accepted by OVS."""
    g, path = write_fabric(tmp_path, 2, 2)
    bridges = Bridges(g)
    try:
        with ControllerProcess(path, "ecmp", None, tmp_path / "c.log") as ctl:
            bridges.create(ctl.port)
            ctl.wait_ready(20)          # strict: any OFPERROR would raise here
            leaf = bridges.by_switch["l1"]
            groups = of13("dump-groups", leaf)
            assert "type=select" in groups
            assert "watch_port:3" in groups and "watch_port:4" in groups
            assert "nw_dst=10.0.0.3 actions=group:1" in of13("dump-flows", leaf)
            assert "nw_dst=10.0.0.3 actions=output:2" in of13("dump-flows", bridges.by_switch["s2"])
            assert ctl.ofp_errors == []
        assert ctl.returncode == 0
    finally:
        bridges.delete()


def test_bad_policy_fails_fast(tmp_path):
    _, path = write_fabric(tmp_path, 1, 1)
    ctl = ControllerProcess(path, "no-such-policy", {}, tmp_path / "c.log")
    t0 = time.monotonic()
    with ctl, pytest.raises(RunError, match="no-such-policy"):
        ctl.wait_ready(20)
    assert time.monotonic() - t0 < 10
    assert ctl.returncode == 2


def test_bad_params_fail_fast(tmp_path):
    _, path = write_fabric(tmp_path, 1, 1)
    with ControllerProcess(path, "ecmp", {"bogus": 1}, tmp_path / "c.log") as ctl, \
            pytest.raises(RunError, match="bogus"):
        ctl.wait_ready(20)
    assert ctl.returncode == 2


def test_busy_port_is_an_error(tmp_path):
    import socket
    _, path = write_fabric(tmp_path, 1, 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with ControllerProcess(path, "ecmp", {}, tmp_path / "c.log",
                               port=s.getsockname()[1]) as ctl, pytest.raises(RunError, match="in use"):
            ctl.wait_listening(10)


def test_sigkill_is_noticed(tmp_path):
    _, path = write_fabric(tmp_path, 1, 1)
    with ControllerProcess(path, "ecmp", {}, tmp_path / "c.log") as ctl:
        ctl.wait_listening(10)
        assert ctl.alive()
        os.kill(ctl.pid, signal.SIGKILL)
        t0 = time.monotonic()
        while ctl.alive() and time.monotonic() - t0 < 2:
            time.sleep(0.02)
        assert not ctl.alive() and ctl.returncode == -signal.SIGKILL
        with pytest.raises(RunError, match="exited"):
            ctl.wait_ready(5)
    assert ctl.stop() == -signal.SIGKILL


def test_wait_ready_times_out_without_switches(tmp_path):
    _, path = write_fabric(tmp_path, 1, 1)
    with ControllerProcess(path, "ecmp", {}, tmp_path / "c.log") as ctl:
        with pytest.raises(RunError, match=r"not ready after 0.5 s \(0/2"):
            ctl.wait_ready(0.5)
        assert ctl.alive()
    assert ctl.returncode == 0


def test_controller_exits_when_parent_closes_stdin(tmp_path):
    """--watch-stdin: an engine that dies (its pipe closes) takes the controller with it."""
    _, path = write_fabric(tmp_path, 1, 1)
    ctl = ControllerProcess(path, "ecmp", {}, tmp_path / "c.log").start()
    try:
        ctl.wait_listening(10)
        ctl._proc.stdin.close()   # what the kernel does when the parent dies
        t0 = time.monotonic()
        while ctl.alive() and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        assert not ctl.alive() and ctl.returncode == 0
    finally:
        ctl.stop()
