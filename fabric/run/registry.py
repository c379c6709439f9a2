"""What each emulation run created, recorded by name while it runs, so `fabric clean` removes
exactly that and nothing else (not another checkout's processes, not a Mininet session of the
user's own that happens to use the same switch names).

One JSON file per run under REGISTRY_DIR (beside the run lock), written while the run lock is
held (fabric.run.runlock.exclusive_run opens it):

    {"owner": pid, "owner_start": ticks, "run_dir": "...", "bridges": [...],
     "interfaces": [...], "nft_tables": [["netdev", "fabric_l1"]], "processes": [[pid, ticks]],
     "argv_marks": ["/tmp/aifabric-ssh-<run>-"], "servers": {"tb1": {...}}}

`argv_marks`: strings unique to this run found in the command lines of its processes on this
machine (a cluster run's ssh clients and masters carry its ssh ControlPath). `servers`: a cluster
run's servers, each with its address and this run's names on it (fabric.run.cluster.lifecycle
writes and removes them); an entry stays until that server was cleaned.

Names are registered *before* they are created (a kill between the two leaves a harmless name
of something absent). The file is removed when the lock is released and everything it names is
gone; a run killed with SIGKILL, or a teardown that failed, leaves it for `fabric clean`.
Processes are recorded with their start time (/proc/<pid>/stat field 22), so a reused pid is
never mistaken for ours.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable

LOCK_PATH = Path(os.environ.get("FABRIC_LOCK", "/run/aifabric-emulator.lock"))  # fabric.run.runlock
REGISTRY_DIR = LOCK_PATH.parent / (LOCK_PATH.stem + ".runs")
LIST_KEYS = ("bridges", "interfaces", "nft_tables", "processes", "argv_marks")

_current: RunRecord | None = None


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it does not exist (or
    is a zombie: it has exited, only its exit status is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def process_alive(pid: int, ticks: int | None) -> bool:
    """Whether `pid` still is the process that started at `ticks`."""
    now = start_ticks(pid)
    return now is not None and (ticks is None or now == ticks)


class RunRecord:
    """The registry file of one live run (this process's)."""

    def __init__(self, directory: Path = REGISTRY_DIR):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}-{time.time_ns()}.json"
        self.data: dict[str, Any] = {"owner": os.getpid(), "owner_start": start_ticks(os.getpid()),
                                     "run_dir": "", **{k: [] for k in LIST_KEYS}, "servers": {}}
        self._write()

    def add(self, key: str, items: Iterable[Any]) -> None:
        have = self.data[key]
        for item in items:
            item = list(item) if isinstance(item, tuple) else item
            if item not in have:
                have.append(item)
        self._write()

    def save(self) -> None:
        """Write the record now (after changing `data` in place, e.g. its servers)."""
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)

    def close(self, remaining: list[str]) -> None:
        """Drop the file unless something it names is still there (`remaining`)."""
        if not remaining:
            self.path.unlink(missing_ok=True)


def open_record(directory: Path | None = None) -> RunRecord:
    global _current
    _current = RunRecord(directory or REGISTRY_DIR)
    return _current


def close_record(remaining: list[str]) -> None:
    global _current
    if _current is not None:
        _current.close(remaining)
    _current = None


def current() -> RunRecord | None:
    return _current


def register(run_dir: str | None = None, bridges: Iterable[str] = (),
             interfaces: Iterable[str] = (), nft_tables: Iterable[tuple[str, str]] = (),
             pids: Iterable[int | None] = ()) -> None:
    """Record what the current run is about to create (no-op outside a run)."""
    rec = _current
    if rec is None:
        return
    if run_dir is not None:
        rec.data["run_dir"] = run_dir
    rec.add("bridges", bridges)
    rec.add("interfaces", interfaces)
    rec.add("nft_tables", nft_tables)
    rec.add("processes", [(p, start_ticks(p)) for p in pids if p])


def records(directory: Path | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Every registry file and its content (unreadable files are skipped)."""
    out = []
    d = directory or REGISTRY_DIR
    for path in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out.append((path, data))
    return out


def _out(argv: list[str]) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return ""
    return res.stdout if res.returncode == 0 else ""


def existing_bridges() -> set[str]:
    return set(_out(["ovs-vsctl", "--timeout=5", "list-br"]).split())


def existing_interfaces() -> set[str]:
    names = set()
    for line in _out(["ip", "-o", "link", "show"]).splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            names.add(parts[1].strip().split("@")[0])
    return names


def existing_nft_tables() -> set[tuple[str, str]]:
    out = set()
    for line in _out(["nft", "list", "tables"]).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table":
            out.add((parts[1], parts[2]))
    return out


def marked_processes(marks: Iterable[str]) -> list[tuple[int, str]]:
    """(pid, command line) of this machine's processes whose command line contains a mark."""
    marks = [m for m in marks if m]
    found: list[tuple[int, str]] = []
    if not marks:
        return found
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
        except OSError:
            continue
        if any(m in cmd for m in marks):
            found.append((int(entry.name), cmd.strip()))
    return found


def present(data: dict[str, Any]) -> list[str]:
    """What a record names that exists now, as 'process 12', 'ovs bridge l1', ... lines (a
    cluster run's servers, not asked over ssh here: 'server tb1 ...' while not cleaned)."""
    items = [f"process {p}" for p, t in data.get("processes", []) if process_alive(p, t)]
    items += [f"process {p} ({cmd[:60]})" for p, cmd in marked_processes(data.get("argv_marks", []))]
    items += [f"server {name} ({entry.get('address', '?')}): the run's names there (ssh)"
              for name, entry in sorted(data.get("servers", {}).items())]
    if data.get("bridges"):
        have = existing_bridges()
        items += [f"ovs bridge {b}" for b in data["bridges"] if b in have]
    if data.get("interfaces"):
        have = existing_interfaces()
        items += [f"interface {i}" for i in data["interfaces"] if i in have]
    if data.get("nft_tables"):
        tables = existing_nft_tables()
        items += [f"nft table {f} {n}" for f, n in data["nft_tables"] if (f, n) in tables]
    return items
