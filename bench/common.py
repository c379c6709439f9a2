"""What every benchmark shares: machine facts, fabric shapes, memory readings, plain tables."""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from fabric.run import datapath
from fabric.run.samplers import ovs_vswitchd_pids

# hosts -> (spines, leaves, hosts_per_leaf): the leaf/spine shapes the size sweeps use
SHAPES = {4: (2, 2, 2), 8: (2, 2, 4), 16: (2, 4, 4), 32: (4, 4, 8), 64: (4, 8, 8),
          128: (8, 8, 16)}


def datapaths() -> list[str]:
    """OVS datapath kinds usable here ('kernel' first when the kernel has it)."""
    out = []
    if datapath.kernel_ovs_available():
        out.append("kernel")
    if datapath.userspace_ovs_available():
        out.append("user")
    return out


def machine_facts() -> dict[str, Any]:
    """The machine a figure came from, printed above every table."""
    ovs = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True)
    return {"cpus": os.cpu_count(), "kernel": platform.release(),
            "ovs": (ovs.stdout.splitlines() or ["?"])[0].split()[-1],
            "datapaths": ",".join(datapaths()) or "none",
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def print_facts(title: str) -> None:
    print(f"# {title}")
    print("# machine: " + "  ".join(f"{k}={v}" for k, v in machine_facts().items()))
    print("# the machine may be shared: figures are one sample each, not a quiet-machine average")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain, aligned text table."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.3g}" if abs(v) >= 100 else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def rss_mb(pids: Iterable[int]) -> float:
    """Summed resident memory of processes (MiB); vanished ones count zero."""
    total_kb = 0
    for pid in set(pids):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total_kb / 1024


def used_memory_mb() -> float:
    """MemTotal - MemAvailable (MiB): the system-wide memory in use, kernel objects included."""
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        info[key] = int(value.split()[0])
    return (info["MemTotal"] - info["MemAvailable"]) / 1024


def ovs_pids() -> list[int]:
    """ovs-vswitchd and ovsdb-server."""
    out = list(ovs_vswitchd_pids())
    try:
        out.append(int(Path("/var/run/openvswitch/ovsdb-server.pid").read_text().strip()))
    except (OSError, ValueError):
        pass
    return out


def run_spec(doc: dict[str, Any], out: Path) -> Any:
    """One engine run of an experiment given as a TOML-like dict; returns its RunSummary."""
    from fabric.run.engine import run_experiment
    from fabric.plan.experiment import parse_experiment
    return run_experiment(parse_experiment(doc), None, out)


def leafspine(hosts: int, rate_mbps: float,
              fabric_rate_mbps: float | None = None) -> dict[str, Any]:
    """A leaf/spine [fabric] table of one of SHAPES."""
    spines, leaves, per_leaf = SHAPES[hosts]
    return {"kind": "leafspine", "spines": spines, "leaves": leaves, "hosts_per_leaf": per_leaf,
            "host_rate_mbps": rate_mbps, "fabric_rate_mbps": fabric_rate_mbps or rate_mbps}


def verdict(summary: Any) -> str:
    f = summary.fidelity
    if summary.status != "complete":
        return summary.status
    return "-" if f is None else "faithful" if f.faithful else "UNFAITHFUL"
