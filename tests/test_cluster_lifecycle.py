"""A cluster run's lifecycle, root-free: what is registered per server and how it is checked,
the removal script (only registered names; pkill patterns that never match their own shell; a
copied run directory removed only where the head's marker is absent), `fabric clean` keeping a
record whose server it could not reach, and the run lock's refusal text."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fabric.run import cleanup, registry, runlock
from fabric.run.cluster import lifecycle
from fabric.run.cluster.ssh import Server
from topologies.errors import RunError

RUN = "/tmp/x/runs/20261128-090000-cl-leafspine"


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lock = tmp_path / "run.lock"
    monkeypatch.setattr(runlock, "LOCK_PATH", lock)
    monkeypatch.setattr(registry, "LOCK_PATH", lock)
    monkeypatch.setattr(registry, "REGISTRY_DIR", tmp_path / "runs")
    monkeypatch.setattr(lifecycle, "_entries", {})
    return tmp_path / "runs"


def server(name: str = "tb1", ip: str = "10.250.0.11", cfg: str = "") -> Server:
    return Server(name, ip, "root", cfg, "/tmp/aifabric-ssh-test-%h")


def test_argv_pattern_matches_the_text_but_not_its_own_text() -> None:
    pat = lifecycle.argv_pattern(RUN)
    cmdline = f"python -m traffic.agent --plan {RUN}/plan.json"
    assert re.search(pat, cmdline) and not re.search(pat, f"pkill -f {pat}")
    # grep -E reads it as pkill does (POSIX extended regular expressions)
    res = subprocess.run(["grep", "-cE", pat], input=f"{cmdline}\npkill -f {pat}\n",
                         capture_output=True, text=True)
    assert res.stdout.strip() == "1"
    with pytest.raises(RunError):
        lifecycle.argv_pattern("/tmp/a]b")


def test_servers_and_their_names_are_recorded_before_anything_is_made(reg: Path) -> None:
    with runlock.exclusive_run():
        lifecycle.register_servers([server(), server("tb2", "10.250.0.12")], Path(RUN), "tok")
        lifecycle.register_on("tb1", bridges=["l1"], interfaces=["l1-eth1"], processes=[RUN],
                              nft_tables=[("netdev", "fabric_l1")])
        lifecycle.register_on("tb1", bridges=["l1"])   # twice: once
        ((_, data),) = registry.records()
        tb1 = data["servers"]["tb1"]
        assert (tb1["address"], tb1["bridges"], tb1["interfaces"], tb1["nft_tables"]) == \
            ("10.250.0.11", ["l1"], ["l1-eth1"], [["netdev", "fabric_l1"]])
        assert data["argv_marks"] == ["/tmp/aifabric-ssh-test-"]
        assert registry.present(data) == [
            "server tb1 (10.250.0.11): the run's names there (ssh)",
            "server tb2 (10.250.0.12): the run's names there (ssh)"]
        lifecycle.forget("tb1")
        lifecycle.forget("tb2")
    assert registry.records() == []   # nothing left: the record went with the lock


@pytest.mark.parametrize("kw", [
    {"bridges": ["l1; reboot"]}, {"interfaces": ["-x"]}, {"nft_tables": [("nope", "t")]},
    {"processes": ["traffic.agent"]},          # would match another run's agents
    {"dirs": ["/tmp"]},
])
def test_register_on_refuses_what_could_hit_something_not_ours(reg: Path, kw: dict) -> None:
    lifecycle.register_servers([server()], Path(RUN), "tok")
    with pytest.raises(RunError):
        lifecycle.register_on("tb1", **kw)
    with pytest.raises(RunError):
        lifecycle.register_on("tb9", bridges=["l1"])


def test_the_removal_script_names_only_the_registered_things() -> None:
    entry = {"marker": f"{RUN}/.head-tok", "bridges": ["l1", "s1"], "interfaces": ["l1-eth3"],
             "nft_tables": [["netdev", "fabric_l1"]], "processes": [RUN], "dirs": [RUN]}
    script = lifecycle.removal_script(entry)
    assert "mn -c" not in script and "killall" not in script
    assert "del-br l1" in script and "del-br s1" in script and "ip link del l1-eth3" in script
    assert "nft delete table netdev fabric_l1" in script
    assert f"pkill -TERM -f -- '{lifecycle.argv_pattern(RUN)}'" in script
    # the copy is removed only where the head's marker is not visible (not the head's own)
    assert f"test ! -e {RUN}/.head-tok && test -d {RUN} && rm -rf -- {RUN}" in script
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)


def test_clean_keeps_the_record_of_a_server_it_cannot_reach(reg: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host *\n  Port 1\n  ConnectTimeout 2\n")   # nothing listens: refused
    reg.mkdir(parents=True, exist_ok=True)
    record = reg / "999999-1.json"
    entry = {"address": "127.0.0.1", "user": "root", "ssh_config": str(cfg), "run_dir": RUN,
             "marker": f"{RUN}/.head-tok", "bridges": ["l1"], "interfaces": [],
             "nft_tables": [], "processes": [RUN], "dirs": []}
    record.write_text(json.dumps({"owner": 999999, "owner_start": None, "run_dir": RUN,
                                  "bridges": [], "interfaces": [], "nft_tables": [],
                                  "processes": [], "servers": {"lab1": entry}}))
    assert cleanup.clean(dry_run=True) == ["server lab1 (127.0.0.1): the run's names there (ssh)"]
    assert cleanup.clean(run_dir="/elsewhere") == []          # another run's record: untouched
    found = cleanup.clean(run_dir=RUN)
    assert any(line.startswith("server lab1: NOT cleaned") for line in found), found
    assert json.loads(record.read_text())["servers"] == {"lab1": entry}   # kept for next time
    assert cleanup.registered_leftovers() == []   # a killed run's servers do not block runs here


def test_a_busy_server_is_refused_naming_it_and_its_holder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock's answer as a server gives it (BUSY + the holder written in its lock file)."""
    locks = lifecycle.ServerLocks([server("lab2", "10.0.0.2")], "cluster run mine")
    script = "echo 'BUSY cluster run 20261128-other (pid 7 on head2)'"
    monkeypatch.setattr(Server, "ssh", lambda self, *extra: ["sh", "-c", script, "--"])
    with pytest.raises(RunError) as exc:
        locks.acquire()
    msg = str(exc.value)
    assert "server lab2 (10.0.0.2) is in use" in msg and "20261128-other (pid 7 on head2)" in msg
    assert locks.procs == []
    assert "flock -n /run/aifabric-emulator.lock" in locks.command()


LAB = Path(__file__).resolve().parents[1] / "lab" / "cluster"


@pytest.mark.parametrize("role", ["head", "server"])
def test_the_lab_provisioning_dry_run_writes_keys_sshd_and_clocks(tmp_path: Path, role: str) -> None:
    """lab/cluster/provision.sh with LAB_ROOT (files under it, nothing installed), twice: the
    same files (idempotent). Real VMs: untested here (no Vagrant, no hypervisor)."""
    project = tmp_path / "project"
    keys = project / "lab" / "cluster" / ".keys"
    keys.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id_ed25519")],
                   check=True)
    root = tmp_path / "root"
    for _ in range(2):
        res = subprocess.run(["bash", str(LAB / "provision.sh"), role, "192.168.56", str(project)],
                             env={"LAB_ROOT": str(root), "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    pub = (keys / "id_ed25519.pub").read_text()
    assert (root / "root/.ssh/authorized_keys").read_text() == pub
    assert (root / "root/.ssh/config").read_text().count("# aifabric lab") == 1
    assert "192.168.56.12 srv2" in (root / "etc/hosts").read_text().splitlines()
    assert "PermitTunnel yes" in (root / "etc/ssh/sshd_config.d/aifabric-lab.conf").read_text()
    chrony = (root / "etc/chrony/conf.d/aifabric-lab.conf").read_text()
    assert ("allow 192.168.56.0/24" in chrony) == (role == "head")
    assert ("server 192.168.56.10" in chrony) == (role == "server")
    bad = subprocess.run(["bash", str(LAB / "provision.sh"), "head", "192.168.56; reboot",
                          str(project)], env={"LAB_ROOT": str(root)}, capture_output=True)
    assert bad.returncode == 2


def test_the_lab_vagrantfile_parses() -> None:
    if shutil.which("ruby") is None:
        pytest.skip("no ruby here to check the Vagrantfile's syntax")
    res = subprocess.run(["ruby", "-c", str(LAB / "Vagrantfile")], capture_output=True, text=True)
    assert res.returncode == 0 and "Syntax OK" in res.stdout, res.stderr
