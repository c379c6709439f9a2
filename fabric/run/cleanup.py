"""Find and remove what an emulation run left behind (after a crash, a kill -9, a failed teardown).

`clean()` touches only what runs of this project registered by name (fabric.run.registry): the
OVS bridges, root-namespace interfaces, nftables tables and processes (with their start times)
of each run whose record is still there. It holds the run lock while it works, so it never pulls
a live run's network away: by default it refuses while a run is live, `wait=True` waits for it,
`force=True` cleans anyway (that run then fails). `leftovers()` is the wider view the tests and
the soak script use: anything named like our switches and interfaces, `fabric_*` nft tables, our
controller/agent processes and Mininet shells, registered or not.

A cluster run's record also names its servers (fabric.run.cluster.lifecycle): its ssh clients
and masters on this machine are ended first (they carry the run's ControlPath), then each server
is reached over ssh and exactly the run's names there are removed.
"""
from __future__ import annotations

import json
import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path

from topologies.errors import RunError
from topologies.model import INTF_NAME, SWITCH_NAME

from fabric.run import registry
from fabric.run.registry import _out as _run
from fabric.run.runlock import exclusive_run, holder

NFT_PREFIX = "fabric_"
# our processes, matched on argv words (not substrings of any command line)
PROCESS_MODULES = ("controller.main", "traffic.agent")


def _argv(pid: str) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").rstrip("\0").split("\0")


def stray_processes() -> list[tuple[int, str]]:
    """(pid, command line) of controller/agent processes (`python -m controller.main`, ...)
    and Mininet node shells (argv[0] = 'bash' with a 'mininet:<node>' word)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = _argv(entry.name)
        ours = any(argv[i] == "-m" and argv[i + 1] in PROCESS_MODULES
                   for i in range(len(argv) - 1))
        ours = ours or any(a.startswith("mininet:") for a in argv[:4])
        if ours:
            found.append((int(entry.name), " ".join(argv)))
    return found


def stray_bridges() -> list[str]:
    return sorted(b for b in registry.existing_bridges() if SWITCH_NAME.match(b))


def stray_interfaces() -> list[str]:
    return sorted(i for i in registry.existing_interfaces() if INTF_NAME.match(i))


def stray_nft_tables() -> list[tuple[str, str]]:
    """(family, name) of nftables tables named fabric_*."""
    return sorted(t for t in registry.existing_nft_tables() if t[1].startswith(NFT_PREFIX))


def remove_nft_tables(tables: list[tuple[str, str]] | None = None) -> list[str]:
    """Delete these nft tables (default: the current run's registered ones); return them."""
    if tables is None:
        rec = registry.current()
        tables = [tuple(t) for t in rec.data["nft_tables"]] if rec is not None else []
    have = registry.existing_nft_tables()
    gone = []
    for family, name in tables:
        if (family, name) in have and name.startswith(NFT_PREFIX):
            _run(["nft", "delete", "table", family, name])
            gone.append(f"{family} {name}")
    return gone


def leftovers() -> list[str]:
    """Everything named like ours (registered or not), as readable lines; empty means clean."""
    items = [f"process {pid}: {cmd[:100]}" for pid, cmd in stray_processes()]
    items += [f"ovs bridge {b}" for b in stray_bridges()]
    items += [f"interface {i}" for i in stray_interfaces()]
    items += [f"nft table {f} {n}" for f, n in stray_nft_tables()]
    return items


def registered_leftovers() -> list[str]:
    """What the records of other runs name and is still present on this machine (call it
    holding the lock: then every other record is stale). A killed cluster run's servers are
    not in the way of a run here: they stay locked until `fabric clean` reaches them."""
    own = getattr(registry.current(), "path", None)
    return [item for path, data in registry.records() if path != own
            for item in registry.present(data) if not item.startswith("server ")]


def _kill(processes: list[list[int]]) -> None:
    alive = [(p, t) for p, t in processes if registry.process_alive(p, t)]
    for pid, _ in alive:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 3
    while alive and time.monotonic() < deadline:
        alive = [(p, t) for p, t in alive if registry.process_alive(p, t)]
        time.sleep(0.1)
    for pid, _ in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _remove(data: dict) -> list[str]:
    """Remove what one record names (processes first: they hold the interfaces); a cluster
    run's servers last (their entries leave `data` once cleaned). Returns the servers' lines."""
    _kill(data.get("processes", []))
    _kill([[pid, t] for pid, _ in registry.marked_processes(data.get("argv_marks", []))
           if (t := registry.start_ticks(pid)) is not None])
    have = registry.existing_bridges()
    for bridge in data.get("bridges", []):
        if bridge in have and SWITCH_NAME.match(bridge):
            _run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge])
    have_intf = registry.existing_interfaces()
    for intf in data.get("interfaces", []):
        if intf in have_intf and INTF_NAME.match(intf):
            _run(["ip", "link", "del", intf])
    remove_nft_tables([tuple(t) for t in data.get("nft_tables", [])])
    if data.get("servers"):
        from fabric.run.cluster.lifecycle import clean_servers
        return clean_servers(data)
    return []


def clean(dry_run: bool = False, wait: bool = False, force: bool = False,
          run_dir: str | None = None) -> list[str]:
    """Remove what runs of this project registered and left behind; return what was found.

    Holds the run lock (so no run starts meanwhile). A live run: RunError, unless `wait`
    (take the lock when it ends) or `force` (go ahead without the lock). `run_dir`: only the
    record of the run with that run directory (others' leftovers are not touched)."""
    with ExitStack() as stack:
        live = holder()
        if live is not None and not force and not wait:
            raise RunError(f"a run is live (pid {live} holds {registry.LOCK_PATH}): "
                           "fabric clean would pull its network away; wait for it, or use "
                           "--wait, or --force to clean anyway")
        if live is None or not force:
            stack.enter_context(exclusive_run())
        found: list[str] = []
        for path, data in registry.records():
            if path == getattr(registry.current(), "path", None):
                continue  # our own (empty) record, opened by the lock we just took
            if run_dir is not None and os.path.abspath(str(data.get("run_dir", ""))) != \
                    os.path.abspath(run_dir):
                continue
            items = registry.present(data)
            found += items
            if not dry_run:
                found += _remove(data)
                if not registry.present(data):
                    path.unlink(missing_ok=True)
                elif data.get("servers") is not None:   # some servers not reached: kept
                    path.write_text(json.dumps(data))
        return found
