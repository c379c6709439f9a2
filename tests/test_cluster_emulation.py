"""Cluster mode end to end on the namespace test bed (scripts/testbed.sh): a leaf/spine split over
two "servers" (own network, mount and PID namespaces, own OVS and sshd) completes like the same
fabric on one machine, and leaves nothing on any server after success or SIGTERM.

The engine runs in the test bed's head namespace (`ip netns exec <prefix>-head fabric run`), takes
the run lock itself; JCTs are printed, not asserted (one machine: function, not performance).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

pytestmark = pytest.mark.emulation

ROOT = Path(__file__).resolve().parents[1]
TESTBED = ROOT / "scripts" / "testbed.sh"

SPEC = """
name = "cl"
seed = {seed}
{cluster}
[fabric]
kind = "leafspine"
spines = {spines}
leaves = {leaves}
hosts_per_leaf = {hpl}
host_rate_mbps = 20
fabric_rate_mbps = 20
mtu = 1450

[[workload]]
kind = "allreduce"
name = "ring"
algorithm = "ring"
size_bytes = "{size}"
"""


class Bed:
    def __init__(self, tmp: Path, prefix: str):
        self.dir, self.prefix = tmp / "testbed", prefix
        self.env = {**os.environ, "TESTBED_DIR": str(self.dir), "TESTBED_PREFIX": prefix}

    def sh(self, *args: str) -> str:
        res = subprocess.run(["bash", str(TESTBED), *args], env=self.env, capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def ssh(self, server: str, command: str) -> str:
        res = subprocess.run(["ip", "netns", "exec", f"{self.prefix}-head", "ssh", "-F",
                              str(self.dir / "ssh_config"), server, command],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def leftovers(self, server: str) -> list[str]:
        """Bridges, fabric interfaces and agents on a server."""
        out = self.ssh(server, "ovs-vsctl list-br; ip -o link show | awk -F': ' '{print $2}' | "
                               "grep -v '^lo$' | grep -v '^eth0'; pgrep -af '[t]raffic[.]agent'; true")
        return [line for line in out.splitlines() if line.strip()]

    def spec(self, tmp: Path, name: str, servers: int = 2, spines: int = 2, leaves: int = 2,
             hpl: int = 2, size: str = "2MB", seed: int = 1) -> Path:
        cluster = ("[cluster]\nservers = [" + ", ".join(f'"tb{k + 1}"' for k in range(servers))
                   + f']\nssh_config = "{self.dir / "ssh_config"}"\n') if servers else ""
        path = tmp / f"{name}.toml"
        path.write_text(SPEC.format(cluster=cluster, spines=spines, leaves=leaves, hpl=hpl,
                                    size=size, seed=seed))
        return path

    def run(self, spec: Path, out: Path, in_head: bool = True, **kw: object) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "fabric", "run", str(spec), "--out", str(out), "--json"]
        if in_head:
            argv = ["ip", "netns", "exec", f"{self.prefix}-head", *argv]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, **kw)  # type: ignore[call-overload]


@contextmanager
def bed_up(tmp: Path, prefix: str, cls: type[Bed] = Bed) -> Iterator[Bed]:
    """A 2-server test bed under `prefix` (each test module its own), down afterwards."""
    if subprocess.run(["sh", "-c", "command -v sshd || test -x /usr/sbin/sshd"],
                      capture_output=True).returncode:
        pytest.fail("the cluster test bed needs openssh-server and sudo (.ci/run installs them)")
    bed = cls(tmp, prefix)
    bed.sh("up", "2")
    try:
        yield bed
    finally:
        bed.sh("down")
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{bed.prefix}-" not in left


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with bed_up(tmp_path_factory.mktemp("cluster"), f"aft{os.getpid() % 10000}") as bed:
        yield bed


def summary_of(proc: subprocess.Popen[str], timeout: float = 600) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out)


def jct(summary: dict) -> float:
    (c,) = summary["collectives"]
    assert c["complete"], c
    return float(c["jct_s"])


def test_leafspine_split_over_two_servers_matches_one_server(testbed: Bed, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    split = summary_of(testbed.run(testbed.spec(tmp_path, "split"), out))
    assert split["status"] == "complete", split["error"]
    assert split["flows_complete"] == split["flows_planned"] > 0
    assert (split["setup"]["servers"], split["setup"]["tunnel"]) == (2, "vxlan")
    record = json.loads((Path(split["run_dir"]) / "cluster.json").read_text())
    where = record["placement"]
    assert where["h1"] == where["l1"] != where["l2"] == where["h3"]   # hosts with their leaf
    assert {c["link"] for c in record["cut"]} and all(r["extra_rtt_ms"] is not None
                                                      for r in record["tunnel_rtt_ms"])
    for s in record["servers"]:
        assert abs(s["clock_offset_ms"]) < 10
    for server in ("tb1", "tb2"):
        assert testbed.leftovers(server) == [], server
    one = summary_of(testbed.run(testbed.spec(tmp_path, "one", servers=0), out, in_head=False))
    assert one["status"] == "complete"
    verdict = {True: "faithful", False: "unfaithful"}
    print(f"\ncluster JCT {jct(split):.3f} s ({verdict[split['fidelity']['faithful']]}) vs one "
          f"server {jct(one):.3f} s ({verdict[one['fidelity']['faithful']]}): ratio {jct(split) / jct(one):.3f}; "
          f"tunnel RTTs {[r['extra_rtt_ms'] for r in record['tunnel_rtt_ms']]} ms")


def test_sigterm_mid_run_leaves_nothing_on_the_servers(testbed: Bed, tmp_path: Path) -> None:
    """SIGTERM while the workload runs: the engine tears down every server; partial summary."""
    out = tmp_path / "runs"
    proc = testbed.run(testbed.spec(tmp_path, "long", size="40MB"), out)
    deadline = time.monotonic() + 300   # the run lock may be held by another run first
    while time.monotonic() < deadline:
        runs = list(out.glob("*/agents/*.stderr")) if out.exists() else []
        if runs:
            break
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the workload never started")
    time.sleep(2.0)   # agents started: connecting or sending
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    (run_dir,) = list(out.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] != "complete" and "interrupted" in summary["error"]
    for server in ("tb1", "tb2"):
        assert testbed.leftovers(server) == [], server
