"""The samplers an emulation runs beside the workload: CPU (cpu.csv) and link counters (links.csv).

Each is a background thread appending rows to a CSV file at a fixed interval (0.25 s); rows are
flushed per sample so a crashed run keeps what was sampled. The file formats (columns, meaning)
belong to the analysis that reads them: fabric.analysis.fidelity (cpu.csv) and
fabric.analysis.links (links.csv). This module only reads /proc and /sys and writes rows.
"""
from __future__ import annotations

import csv
import logging
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import networkx as nx

from fabric.analysis.fidelity import COLUMNS as CPU_COLUMNS
from fabric.analysis.fidelity import GROUPS, SAMPLE_INTERVAL_S
from fabric.analysis.links import COLUMNS as LINK_COLUMNS
from fabric.analysis.links import Direction, directions
from fabric.analysis import loss

log = logging.getLogger("fabric.samplers")
SYSFS = Path("/sys/class/net")


class CsvSampler:
    """start(): header + first sample + thread; stop(): last sample, close (safe to call twice)."""

    thread_name = "sampler"

    def __init__(self, path: Path, columns: Sequence[str], interval_s: float):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file: Any = None
        self._writer: Any = None

    def sample(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> CsvSampler:
        self._file = open(self.path, "w", newline="")  # noqa: SIM115 - closed by stop()
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.columns)
        self.sample()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        try:
            self.sample()
        finally:
            self._file.close()

    def __enter__(self) -> CsvSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------- CPU

OVS_PIDFILE = Path("/var/run/openvswitch/ovs-vswitchd.pid")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# ------------------------------------------------------------------------------- /proc readers

def read_machine(proc: Path = Path("/proc")) -> tuple[float, float, float]:
    """(busy, total, softirq) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open(proc / "stat") as f:
        fields = f.readline().split()
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    busy = user + nice + system + irq + softirq + steal
    return busy / CLK_TCK, (busy + idle + iowait) / CLK_TCK, softirq / CLK_TCK


def read_process(pid: int, proc: Path = Path("/proc")) -> float | None:
    """utime + stime (all threads) of a process in seconds, or None when it is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()  # comm may hold spaces and parentheses
    return (int(rest[11]) + int(rest[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def ovs_vswitchd_pids(proc: Path = Path("/proc"), pidfile: Path = OVS_PIDFILE) -> list[int]:
    """The ovs-vswitchd daemon: its pidfile, else every process named ovs-vswitchd."""
    try:
        pid = int(pidfile.read_text().strip())
        if (proc / str(pid)).exists():
            return [pid]
    except (OSError, ValueError):
        pass
    pids = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "ovs-vswitchd":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


# ------------------------------------------------------------------------------- the sampler

PidGroups = Callable[[], Mapping[str, Iterable[int]]]


class CpuSampler(CsvSampler):
    """A thread appending cumulative CPU seconds (machine and process groups) to cpu.csv.

    `groups()` names the pids of each group in GROUPS; it is called at every sample, so agents
    that start late are picked up. A process that exits keeps its last reading (sums stay
    monotonic). Use as a context manager around the workload.
    """

    thread_name = "cpustats"

    def __init__(self, path: Path, groups: PidGroups, interval_s: float = SAMPLE_INTERVAL_S,
                 proc: Path = Path("/proc")):
        super().__init__(path, CPU_COLUMNS, interval_s)
        self.groups = groups
        self.proc = proc
        self._last: dict[int, float] = {}      # pid -> last CPU seconds read
        self._base: tuple[float, ...] | None = None

    def read(self) -> tuple[float, ...]:
        """Absolute readings in COLUMNS order (time first)."""
        now = time.time()
        busy, total, softirq = read_machine(self.proc)
        pids = self.groups()
        out = [now, busy, total, softirq]
        for g in GROUPS:
            s = 0.0
            for pid in pids.get(g, ()):
                v = read_process(pid, self.proc)
                if v is not None:
                    self._last[pid] = v
                s += self._last.get(pid, 0.0)
            out.append(s)
        return tuple(out)

    def sample(self) -> None:
        r = self.read()
        if self._base is None:
            self._base = r
        row = [f"{r[0]:.6f}"] + [f"{x - b:.3f}" for x, b in zip(r[1:], self._base[1:])]
        self._writer.writerow(row)
        self._file.flush()


# ------------------------------------------------------------------------------- links

class LinkSampler(CsvSampler):
    """A thread that appends a sample of every direction's counters to links.csv every interval_s.

    Use as a context manager around the workload; rows are flushed per sample so a crashed run
    keeps what was sampled.
    """

    thread_name = "linkstats"

    # queue and OVS drop counters need a `tc` and an `ss` call each: read them every this many
    # samples (about once a second) and repeat the last values in between
    DROPS_EVERY = 4

    def __init__(self, graph: nx.Graph | None, path: Path, interval_s: float = 0.25,
                 sysfs: Path = SYSFS, drops: Callable[[], tuple[dict[str, int],
                                                               dict[str, int]]] | None = None,
                 dirs: Sequence[Direction] | None = None):
        """`dirs`: sample these directions instead of every one of `graph` (a cluster
        server samples its own switches' interfaces, fabric.run.cluster.serverd)."""
        super().__init__(path, LINK_COLUMNS, interval_s)
        self.dirs = list(dirs) if dirs is not None else directions(graph)
        self.sysfs = sysfs
        self.missing: set[str] = set()
        self._drops = drops if drops is not None else read_drops
        self._drop_values: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self._count = 0

    def _read(self, intf: str, counter: str) -> int | None:
        try:
            return int((self.sysfs / intf / "statistics" / counter).read_text())
        except (OSError, ValueError):
            if intf not in self.missing:
                self.missing.add(intf)
                log.warning("no counters for %s: it is left out of links.csv", intf)
            return None

    def sample(self) -> None:
        """Append one sample of every direction."""
        if self._count % self.DROPS_EVERY == 0 or self._stop.is_set():
            self._drop_values = self._drops()
        self._count += 1
        queues, ovs = self._drop_values
        now = time.time()
        for d in self.dirs:
            tx = self._read(d.intf, "tx_bytes")
            dropped = self._read(d.intf, "tx_dropped")
            if tx is None or dropped is None:
                continue
            self._writer.writerow((f"{now:.6f}", d.link, d.src, d.dst, d.tier, f"{d.rate_mbps:g}",
                                   tx, dropped, d.intf, queues.get(d.intf, 0),
                                   ovs.get(d.intf, 0)))
        self._file.flush()


def _output(argv: Sequence[str]) -> str:
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout if res.returncode == 0 else ""


def read_drops() -> tuple[dict[str, int], dict[str, int]]:
    """Root-namespace queue drops and OVS packet-socket drops per interface (fabric.analysis.loss)."""
    return (loss.qdisc_drops(_output(loss.QDISC_COMMAND)),
            loss.ovs_socket_drops(_output(loss.OVS_SOCKETS_COMMAND)))


# ---------------------------------------------------------------- pure analysis
