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


def environment(datapath: str) -> dict[str, Any]:
    """Facts about the machine a run came from, stored beside its results."""
    import importlib.metadata as md

    def version(pkg: str) -> str | None:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    return {
        "hostname": platform.node(), "kernel": platform.release(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "datapath": datapath,
        "os_ken": version("os-ken"), "networkx": version("networkx"), "mininet": version("mininet"),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
