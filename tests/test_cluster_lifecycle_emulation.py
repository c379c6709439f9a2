"""A cluster run's lifecycle on the namespace test bed (scripts/testbed.sh): Ctrl-C and SIGKILL +
`fabric clean` leave nothing on any server (bridges, interfaces, agents, shells, sshd sessions,
the run lock) nor on the head (ssh clients and masters, the run's record); a second run on a
locked server refuses naming the server and the holder; a run directory the servers do not
share is copied out and its results fetched back (also by `fabric clean` after a SIGKILL);
`fabric compare` and `fabric up` with [cluster]; the `ssh` tunnel kind.

What is left on a server is read inside its own namespaces (nsenter into its PID 1, the sshd),
not over ssh: an ssh session of the test itself would count as a leftover.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.test_cluster_emulation import Bed, bed_up

pytestmark = pytest.mark.emulation
ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
LOCK_WAIT_S = 1200   # another emulation may hold the machine's run lock first
SERVERS = ("tb1", "tb2")
# what a server runs when no run is on it: its sshd (PID 1) and its own OVS
BASE_PROCESSES = re.compile(r"^(sshd: /usr/sbin/sshd -D|ovsdb-server|ovs-vswitchd)")


class LifeBed(Bed):
    def init_pid(self, k: int) -> int:
        """PID (in the machine's namespace) of server k's PID 1."""
        unshare = (self.dir / f"server.{k}.pid").read_text().strip()
        return int(subprocess.run(["pgrep", "-P", unshare], capture_output=True, text=True,
                                  check=True).stdout.split()[0])

    def inside(self, server: str, command: str) -> str:
        k = int(server[2:])
        res = subprocess.run(["nsenter", "-t", str(self.init_pid(k)), "-m", "-n", "-p",
                              "sh", "-c", command], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def leftovers(self, server: str) -> list[str]:
        """Bridges, interfaces other than lo/eth0, processes other than sshd's listener and
        OVS (agents, node shells, sshd sessions, the run lock's flock), a held run lock."""
        out = self.inside(server, "ovs-vsctl list-br | sed 's/^/bridge /'; "
                                  "ip -o link show | awk -F': ' '{print \"interface \" $2}'; "
                                  "flock -n /run/aifabric-emulator.lock true || echo LOCK HELD")
        items = [line for line in out.splitlines() if line.strip()
                 and not re.match(r"interface (lo|eth0@\S+)$", line)]
        ps = self.inside(server, "ps -eo pid=,args=")
        for line in ps.splitlines():
            pid, _, args = line.strip().partition(" ")
            if pid == "1" or BASE_PROCESSES.match(args) or args.startswith(("ps ", "sh -c ps")):
                continue
            items.append(f"process {args[:120]}")
        return items

    def engine(self, argv: list[str], env: dict[str, str] | None = None,
               **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", f"{self.prefix}-head", PY, "-m", "fabric",
                                 *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                **(env or {})}, **kw)  # type: ignore[call-overload]

    def clean(self, run_dir: Path) -> str:
        proc = self.engine(["clean", "--run", str(run_dir), "--wait"])
        out, err = proc.communicate(timeout=LOCK_WAIT_S)
        assert proc.returncode == 0, err
        return out

    def apart(self, out: Path) -> None:
        """Give every server a run-output directory of its own (a tmpfs over `out` in its
        mount namespace): the run directory is then not shared, as on real machines."""
        out.mkdir(parents=True, exist_ok=True)
        for s in SERVERS:
            self.inside(s, f"mount -t tmpfs tmpfs {out}")

    def spec_with(self, tmp: Path, name: str, extra: str = "", **kw: object) -> Path:
        path = self.spec(tmp, name, **kw)   # type: ignore[arg-type]
        text = path.read_text().replace("[cluster]\n", f"[cluster]\n{extra}")
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifeBed]:
    with bed_up(tmp_path_factory.mktemp("life"), f"afl{os.getpid() % 100}", LifeBed) as b:
        assert isinstance(b, LifeBed)
        yield b


def wait_for_agents(proc: subprocess.Popen[str], out: Path) -> Path:
    """The run directory once its agents have started (the run lock may be held first)."""
    end = time.monotonic() + LOCK_WAIT_S
    while time.monotonic() < end:
        found = list(out.glob("*/agents/*.stderr")) if out.exists() else []
        if found:
            time.sleep(2.0)   # connecting or sending
            return found[0].parent.parent
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    proc.kill()
    pytest.fail("the workload never started")


def head_processes(mark: str) -> list[str]:
    res = subprocess.run(["pgrep", "-af", mark], capture_output=True, text=True)
    return [line for line in res.stdout.splitlines() if "pgrep" not in line]


def records_of(run_dir: Path) -> list[dict]:
    from fabric.run import registry
    return [d for _, d in registry.records() if d.get("run_dir") == str(run_dir)]


def assert_nothing_left(bed: LifeBed, run_dir: Path, mark: str) -> None:
    for s in SERVERS:
        assert bed.leftovers(s) == [], s
    assert head_processes(mark) == []
    assert records_of(run_dir) == []


def test_sigkill_then_fabric_clean_removes_everything_and_fetches_results(
        bed: LifeBed, tmp_path: Path) -> None:
    """SIGKILL: the engine's teardown never runs. The record names the servers; the servers
    stay locked; `fabric clean --run` ends the head's ssh processes, fetches what the agents
    wrote on servers that do not share the run directory, removes the rest there."""
    out = tmp_path / "runs"
    bed.apart(out)
    proc = bed.engine(["run", str(bed.spec(tmp_path, "kill", size="40MB")), "--out", str(out)])
    run_dir = wait_for_agents(proc, out)
    proc.kill()
    proc.wait()
    (rec,) = records_of(run_dir)
    assert set(rec["servers"]) == set(SERVERS)
    mark = rec["argv_marks"][0]
    for s in SERVERS:   # something of the run is there: the test below can fail
        left = bed.leftovers(s)
        assert "LOCK HELD" in left and any(x.startswith("bridge ") for x in left), left
    assert not list((run_dir / "agents").glob("*.csv"))   # written on the servers only
    said = bed.clean(run_dir)
    assert "tb1: ovs bridge" in said and "tb2: directory" in said, said
    assert_nothing_left(bed, run_dir, mark)
    assert list((run_dir / "agents").glob("*.send.csv"))   # partial results fetched back
    for s in SERVERS:   # the servers' copies are gone, the head's run directory is not
        assert bed.inside(s, f"ls -A {out}").strip() == ""
    assert (run_dir / "plan.json").exists()


def test_ctrl_c_leaves_nothing_on_the_servers_nor_the_head(bed: LifeBed, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = bed.engine(["run", str(bed.spec(tmp_path, "int", size="40MB")), "--out", str(out)])
    run_dir = wait_for_agents(proc, out)
    (rec,) = records_of(run_dir)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] != "complete" and "interrupted" in summary["error"]
    assert_nothing_left(bed, run_dir, rec["argv_marks"][0])


def test_a_second_run_on_a_locked_server_refuses_naming_it(bed: LifeBed, tmp_path: Path) -> None:
    """Run B from a second "head" (its own machine lock) while run A holds the servers: B
    refuses at once naming the server and A; A completes undisturbed."""
    out = tmp_path / "runs"
    a = bed.engine(["run", str(bed.spec(tmp_path, "first", size="20MB")), "--out", str(out),
                    "--json"])
    a_dir = wait_for_agents(a, out)
    b = bed.engine(["run", str(bed.spec(tmp_path, "second")), "--out", str(tmp_path / "b"),
                    "--json"], env={"FABRIC_LOCK": str(tmp_path / "second-head.lock")})
    b_out, _ = b.communicate(timeout=120)
    assert b.returncode == 1
    error = json.loads(b_out)["error"]
    assert "server tb1" in error and a_dir.name in error, error
    a_out, a_err = a.communicate(timeout=300)
    assert a.returncode == 0, a_err[-2000:]
    assert json.loads(a_out)["status"] == "complete"
    for s in SERVERS:
        assert bed.leftovers(s) == [], s


def test_a_run_directory_apart_is_copied_out_and_fetched_back(bed: LifeBed, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    bed.apart(out)
    proc = bed.engine(["run", str(bed.spec(tmp_path, "apart")), "--out", str(out), "--json"])
    stdout, err = proc.communicate(timeout=LOCK_WAIT_S)
    assert proc.returncode == 0, err[-2000:]
    summary = json.loads(stdout)
    assert summary["status"] == "complete"
    assert summary["flows_complete"] == summary["flows_planned"] > 0
    run_dir = Path(summary["run_dir"])
    record = json.loads((run_dir / "cluster.json").read_text())
    assert record["run_dir_shared"] == {"tb1": False, "tb2": False}
    for s in SERVERS:
        assert bed.inside(s, f"ls -A {out}").strip() == ""
        assert bed.leftovers(s) == [], s


def test_ssh_tunnels_carry_the_fabric(bed: LifeBed, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    spec = bed.spec_with(tmp_path, "sshtun", extra='tunnel = "ssh"\n')
    proc = bed.engine(["run", str(spec), "--out", str(out), "--json"])
    stdout, err = proc.communicate(timeout=LOCK_WAIT_S)
    assert proc.returncode == 0, err[-2000:]
    summary = json.loads(stdout)
    assert summary["status"] == "complete", summary["error"]
    assert summary["setup"]["tunnel"] == "ssh"
    record = json.loads((Path(summary["run_dir"]) / "cluster.json").read_text())
    print(f"\nssh tunnels: JCT {summary['collectives'][0]['jct_s']:.3f} s, tunnel RTTs "
          f"{[r['extra_rtt_ms'] for r in record['tunnel_rtt_ms']]} ms")
    for s in SERVERS:
        assert bed.leftovers(s) == [], s


COMPARE_SPEC = """
name = "clcmp"
seed = 1
reference = "ecmp"
[cluster]
servers = ["tb1", "tb2"]
ssh_config = "{ssh_config}"
{fabrics}
[[workload]]
kind = "allreduce"
name = "ring"
algorithm = "ring"
size_bytes = "1MB"
"""
FABRIC = """
[[fabric]]
kind = "leafspine"
name = "{policy}"
policy = "{policy}"
spines = 2
leaves = 2
hosts_per_leaf = 2
host_rate_mbps = 20
fabric_rate_mbps = 20
mtu = 1450
"""


def test_fabric_compare_splits_every_fabric_over_the_servers(bed: LifeBed, tmp_path: Path) -> None:
    spec = tmp_path / "cmp.toml"
    spec.write_text(COMPARE_SPEC.format(ssh_config=bed.dir / "ssh_config", fabrics="".join(
        FABRIC.format(policy=p) for p in ("ecmp", "adaptive"))))
    proc = bed.engine(["compare", str(spec), "--seeds", "1", "--out", str(tmp_path / "cmp"),
                       "--json", "--include-unfaithful"])
    _, err = proc.communicate(timeout=LOCK_WAIT_S)
    assert proc.returncode == 0, err[-2000:]
    runs = sorted((tmp_path / "cmp").glob("*/runs/*"))
    assert len(runs) == 2
    for run in runs:
        record = json.loads((run / "cluster.json").read_text())
        assert set(record["placement"].values()) == {"tb1", "tb2"}
        assert json.loads((run / "summary.json").read_text())["status"] == "complete"
    for s in SERVERS:
        assert bed.leftovers(s) == [], s


def test_fabric_up_on_the_servers_runs_a_workload_and_leaves_nothing(
        bed: LifeBed, tmp_path: Path) -> None:
    from tests.test_up_emulation import Terminal, _wait_gone
    bed.apart(tmp_path / "runs")     # the workload's plan copied out, its results fetched back
    spec = bed.spec(tmp_path, "up")
    term = Terminal(f"cd {ROOT} && PYTHONPATH={ROOT} exec ip netns exec {bed.prefix}-head "
                    f"{PY} -m fabric up {spec} --out {tmp_path / 'runs'} --no-live")
    try:
        term.wait_for("fabric> ", LOCK_WAIT_S)
        term.send("h1 ping -c 2 h3")                   # h1 on tb1, h3 on tb2: through a tunnel
        term.wait_for("2 received")
        term.send("workload ring")
        term.wait_for("workload ring finished: 24/24 flows complete", 120)
        term.send("util")                              # sampled on the servers
        term.wait_for("l1->s1")
        term.send("fail s1")                           # its links: on tb1, tunnels to tb2 too
        term.wait_for("s1: down (4 interfaces)")
        time.sleep(0.5)                                # the port-status reaches the controller
        term.send("h1 ping -c 2 h3")
        term.wait_for("2 received", count=2)           # re-routed through s2
        term.send("restore s1")
        term.wait_for("s1: up (4 interfaces)")
        term.send("exit")
        term.wait_for("everything removed", 60)
    finally:
        term.close()
        _wait_gone(term.pid, 120)   # torn down (SIGHUP) before the test bed goes
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "workloads" / "1-ring" / "flows.csv").exists()
    with open(run / "links.csv", newline="") as f:   # the servers' switch ports, with figures
        sampled = {r["link"] for r in csv.DictReader(f) if r.get("tx_bytes")}
    assert any("l1" in x for x in sampled) and any("l2" in x for x in sampled), sampled
    for s in SERVERS:
        assert bed.leftovers(s) == [], s
        assert bed.inside(s, f"ls -A {tmp_path / 'runs'}").strip() == ""
