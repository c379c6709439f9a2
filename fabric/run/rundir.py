"""Run directories and the environment record.

A run directory is never overwritten: runs/<UTC time>-<experiment>-<fabric>[-N]/ holds
spec.toml, environment.json, fabric.json, plan.json, hosts.json, agents/ (raw per-host csv),
flows.csv, links.csv, cpu.csv, ideal.csv, summary.json, engine.log and controller.log.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any



def new_run_dir(base: Path, experiment: str, fabric: str) -> Path:
    """Create and return a fresh directory under `base`; never reuses an existing one."""
    base.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{experiment}-{fabric}"
    for n in range(1000):
        path = base / (stem if n == 0 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory under {base}")


def _command(argv: list[str], cwd: Path | None = None) -> str | None:
    """First line of a command's output, or None when it is missing or fails."""
    import subprocess
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5, cwd=cwd,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def project_commit(root: Path = Path(__file__).resolve().parents[2]) -> str | None:
    """The project's git commit ("<sha>" or "<sha>-dirty"), None outside a git checkout."""
    if not (root / ".git").exists():
        return None
    sha = _command(["git", "rev-parse", "HEAD"], root)
    if sha is None:
        return None
    dirty = _command(["git", "status", "--porcelain", "--untracked-files=no"], root)
    return sha + ("-dirty" if dirty else "")


def environment(datapath: str) -> dict[str, Any]:
    """Facts about the machine and software a run came from, stored beside its results."""
    import importlib.metadata as md

    def version(pkg: str) -> str | None:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    ovs = _command(["ovs-vswitchd", "--version"])  # "ovs-vswitchd (Open vSwitch) 3.1.0"
    return {
        "hostname": platform.node(), "kernel": platform.release(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "cpu_model": _cpu_model(), "datapath": datapath,
        "open_vswitch": ovs.split()[-1] if ovs else None,
        "project": version("aifabric-emulator"), "project_commit": project_commit(),
        "os_ken": version("os-ken"), "networkx": version("networkx"), "mininet": version("mininet"),
        "matplotlib": version("matplotlib"),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
