"""Find and remove what an emulation run may leave behind (after a crash or a kill -9).

Only things this project creates are touched: OVS bridges and interfaces named like our switches
and hosts (topologies.model.SWITCH_NAME / INTF_NAME), nftables tables named ``fabric_*``, and
processes of our controller, our agents and Mininet's host shells.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from topologies.model import INTF_NAME, SWITCH_NAME

PROCESS_MARKERS = ("-m controller.main", "-m traffic.agent", "mininet:")
NFT_PREFIX = "fabric_"


def _run(argv: list[str]) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return ""
    return res.stdout if res.returncode == 0 else ""


def stray_processes() -> list[tuple[int, str]]:
    """(pid, command line) of our controller/agent processes and Mininet host shells."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmd for m in PROCESS_MARKERS):
            found.append((int(entry.name), cmd.strip()))
    return found


def stray_bridges() -> list[str]:
    return [b for b in _run(["ovs-vsctl", "--timeout=5", "list-br"]).split() if SWITCH_NAME.match(b)]


def stray_interfaces() -> list[str]:
    names = []
    for line in _run(["ip", "-o", "link", "show"]).splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if INTF_NAME.match(name):
                names.append(name)
    return names


def stray_nft_tables() -> list[tuple[str, str]]:
    """(family, name) of nftables tables named fabric_*."""
    out = []
    for line in _run(["nft", "list", "tables"]).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table" and parts[2].startswith(NFT_PREFIX):
            out.append((parts[1], parts[2]))
    return out


def remove_nft_tables() -> list[str]:
    """Delete every fabric_* nftables table (the controller's spraying state); return them."""
    gone = []
    for family, name in stray_nft_tables():
        _run(["nft", "delete", "table", family, name])
        gone.append(f"{family} {name}")
    return gone


def leftovers() -> list[str]:
    """Human-readable list of everything `clean` would remove; empty means clean."""
    items = [f"process {pid}: {cmd[:100]}" for pid, cmd in stray_processes()]
    items += [f"ovs bridge {b}" for b in stray_bridges()]
    items += [f"interface {i}" for i in stray_interfaces()]
    items += [f"nft table {f} {n}" for f, n in stray_nft_tables()]
    return items


def clean() -> list[str]:
    """Remove every leftover; return what was found before removal."""
    found = leftovers()
    procs = stray_processes()
    for pid, _ in procs:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 3
    while procs and time.monotonic() < deadline:
        procs = [(p, c) for p, c in procs if Path(f"/proc/{p}").exists()]
        time.sleep(0.1)
    for pid, _ in procs:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for bridge in stray_bridges():
        _run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge])
    for intf in stray_interfaces():
        _run(["ip", "link", "del", intf])
    remove_nft_tables()
    return found
