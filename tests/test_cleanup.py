"""`fabric clean` removes only what runs of this project registered, holds the run lock while it
works (refusing beside a live run unless told to wait or force), and can only list (dry run).

Root-free: the registry and the lock live in tmp_path, and the "leftovers" are `sleep`
processes registered the way a killed run's controller or agents are.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fabric.run import cleanup, registry, runlock
from topologies.errors import RunError


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lock = tmp_path / "run.lock"
    monkeypatch.setattr(runlock, "LOCK_PATH", lock)
    monkeypatch.setattr(registry, "LOCK_PATH", lock)
    monkeypatch.setattr(registry, "REGISTRY_DIR", tmp_path / "runs")
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


@pytest.fixture
def sleeper():
    procs = []

    def start() -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        procs.append(p)
        return p
    yield start
    for p in procs:
        p.kill()
        p.wait()


def _dead_run_record(directory: Path, pids: list[int], **extra: object) -> Path:
    path = directory / "12345-1.json"
    path.write_text(json.dumps({"owner": 999999, "owner_start": None, "run_dir": "r",
                                "bridges": [], "interfaces": [], "nft_tables": [],
                                "processes": [[p, registry.start_ticks(p)] for p in pids],
                                **extra}))
    return path


def test_clean_kills_registered_processes_only(reg: Path, sleeper) -> None:
    ours, other = sleeper(), sleeper()
    record = _dead_run_record(reg, [ours.pid])
    found = cleanup.clean()
    assert found == [f"process {ours.pid}"]
    assert ours.wait(timeout=5) is not None
    assert other.poll() is None          # not registered: untouched
    assert not record.exists()           # everything it named is gone


def test_dry_run_lists_and_touches_nothing(reg: Path, sleeper) -> None:
    ours = sleeper()
    record = _dead_run_record(reg, [ours.pid])
    assert cleanup.clean(dry_run=True) == [f"process {ours.pid}"]
    assert ours.poll() is None and record.exists()


def test_a_reused_pid_is_not_ours(reg: Path, sleeper) -> None:
    p = sleeper()
    path = reg / "old.json"
    path.write_text(json.dumps({"owner": 1, "processes": [[p.pid, registry.start_ticks(p.pid) - 1]]}))
    assert cleanup.clean() == []
    assert p.poll() is None


def test_clean_refuses_beside_a_live_run_unless_forced(reg: Path, sleeper, tmp_path: Path) -> None:
    ours = sleeper()
    _dead_run_record(reg, [ours.pid])
    holder = subprocess.Popen(["flock", str(tmp_path / "run.lock"), "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while runlock.holder() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(RunError, match="a run is live"):
            cleanup.clean()
        assert ours.poll() is None
        assert cleanup.clean(force=True) == [f"process {ours.pid}"]
    finally:
        holder.kill()
        holder.wait()


def test_a_run_record_lives_while_the_lock_is_held(reg: Path, sleeper) -> None:
    p = sleeper()
    with runlock.exclusive_run():
        registry.register(run_dir="somewhere", pids=[p.pid])
        rec = registry.current()
        assert rec is not None and json.loads(rec.path.read_text())["run_dir"] == "somewhere"
        path = rec.path
    assert path.exists()                 # the registered process is still there: kept for clean
    p.kill()
    p.wait()
    with runlock.exclusive_run():
        pass
    assert cleanup.clean() == []
    assert not path.exists()


def test_an_empty_record_is_dropped_when_the_lock_is_released(reg: Path) -> None:
    with runlock.exclusive_run():
        path = registry.current().path
        assert path.exists()
    assert not path.exists() and registry.current() is None


def test_the_run_lock_is_reentrant_within_a_process(reg: Path) -> None:
    with runlock.exclusive_run():
        outer = registry.current()
        with runlock.exclusive_run(timeout_s=0.1):   # would time out if it were not re-entrant
            assert registry.current() is outer
        assert runlock.holder() is not None          # still held after the inner block
    assert runlock.holder() is None
