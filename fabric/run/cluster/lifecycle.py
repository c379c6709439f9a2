"""A cluster run's lifecycle on every server: what it registers there, the run lock it holds on
each server, the removal of exactly its names (at teardown and by `fabric clean` after a
SIGKILL), and its run directory on servers that do not share the head's file system.

Registry (fabric.run.registry): the head's run record gets, before anything is built,

    "argv_marks": ["/tmp/aifabric-ssh-<token>-"]   every ssh client/master of the run has it
    "servers": {"tb1": {"address": "10.250.0.11", "user": "root", "ssh_config": "...",
                        "run_dir": "/abs/run", "marker": "/abs/run/.head-<token>",
                        "bridges": [...], "interfaces": [...], "nft_tables": [[fam, name]],
                        "processes": ["<argv substring containing run_dir>"], "dirs": [...]}}

Other parts of a cluster run add their own names with `register_on(server, ...)` before they
create them (e.g. a DDC's VOQ veths and nft tables, a per-server sampler's process). Every
server-side process of a run must carry the run directory's path in its command line: the
removal kills what matches it (pkill -f) on that server, so nothing of another run is touched.

Run lock per server: one ssh session per server holds `flock` on the server's own run lock
(/run/aifabric-emulator.lock, the same file the project's one-machine runs lock there) for the
run's whole life; a second run refuses with the server's name and the holder. A SIGKILLed
engine's session lives on (so the server stays locked) until `fabric clean` ends it.

Run directory: the head writes a marker file into the run directory; a server that does not see
it does not share the file system, and gets the run's inputs copied out (push) and its outputs
fetched back (pull, also after a failure) over ssh with tar; its copy is removed at the end.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import select
import shlex
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable

import networkx as nx

from topologies import model
from topologies.errors import RunError
from topologies.placement import Placement

from fabric.run import registry
from fabric.run.cluster.ssh import Server, end_processes

log = logging.getLogger("fabric.run.cluster")
SERVER_LOCK = "/run/aifabric-emulator.lock"   # fabric.run.registry's default LOCK_PATH
LIST_KEYS = ("bridges", "interfaces", "nft_tables", "processes", "dirs")
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:-]{0,63}")   # never an option
NFT_FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
LOCK_WAIT_S = 20.0

# this process's entries (mirrored into the registry record while the run lock is held)
_entries: dict[str, dict[str, Any]] = {}


def run_token(run_dir: Path) -> str:
    """A short id unique to this run (its control path and marker carry it)."""
    return hashlib.sha1(f"{os.getpid()}:{run_dir}".encode()).hexdigest()[:12]


def control_path(token: str) -> str:
    """The ssh ControlPath of the run's connections (%h: the server's address)."""
    return f"/tmp/aifabric-ssh-{token}-%h"


# ------------------------------------------------------------------ registry

def register_servers(servers: Iterable[Server], run_dir: Path, token: str) -> None:
    """Record every server and how it is reached, before anything is created on it."""
    rec = registry.current()
    servers = list(servers)
    for s in servers:
        _entries[s.name] = {"address": s.ip, "user": s.user, "ssh_config": s.ssh_config,
                            "run_dir": str(run_dir), "marker": str(run_dir / f".head-{token}"),
                            **{k: [] for k in LIST_KEYS}}
    _entries_to_record()
    if rec is not None and servers:
        rec.add("argv_marks", [servers[0].control_path.rsplit("%h", 1)[0]])


def register_on(server: str, bridges: Iterable[str] = (), interfaces: Iterable[str] = (),
                nft_tables: Iterable[tuple[str, str]] = (), processes: Iterable[str] = (),
                dirs: Iterable[str] = ()) -> None:
    """Record names this run is about to create on `server` (call it BEFORE creating them).

    processes: substrings of the command lines of the run's processes there, each containing
    the run directory's path (e.g. the path of a file the process reads); dirs: directories
    the run made there (removed only while the head's marker is not visible there, so the
    head's own run directory is never removed through a shared file system)."""
    entry = _entries.get(server)
    if entry is None:
        raise RunError(f"cluster: {server!r} is not a server of this run")
    new: dict[str, list[Any]] = {
        "bridges": list(bridges), "interfaces": list(interfaces),
        "nft_tables": [list(t) for t in nft_tables], "processes": list(processes),
        "dirs": list(dirs)}
    for name in new["bridges"] + new["interfaces"]:
        if not NAME.fullmatch(name):
            raise RunError(f"cluster: {name!r} is not a device name")
    for fam, name in new["nft_tables"]:
        if fam not in NFT_FAMILIES or not NAME.fullmatch(name):
            raise RunError(f"cluster: nft table {fam!r} {name!r} is not a table name")
    for p in new["processes"] + new["dirs"]:
        if entry["run_dir"] not in p:
            raise RunError(f"cluster: {p!r} does not contain the run directory "
                           f"{entry['run_dir']}: it could match another run's")
    for key, items in new.items():
        for item in items:
            if item not in entry[key]:
                entry[key].append(item)
    _entries_to_record()


def entry(server: str) -> dict[str, Any] | None:
    return _entries.get(server)


def forget(server: str) -> None:
    """The server holds nothing of this run any more: drop its entry."""
    _entries.pop(server, None)
    _entries_to_record()


def _entries_to_record() -> None:
    rec = registry.current()
    if rec is not None:
        rec.data["servers"] = {k: dict(v) for k, v in _entries.items()}
        rec.save()


def fabric_names(graph: nx.Graph, placement: Placement, server: str) -> tuple[list[str], list[str]]:
    """(bridges, switch-port interfaces) of the fabric on `server` (VXLAN/gretap/tap devices
    carry the switch port's name)."""
    bridges = [n for n in placement.nodes_on(server) if n not in placement.hosts]
    intfs = sorted({model.intf_name(n, d["ports"][n]) for a, b, d in graph.edges(data=True)
                    for n in (a, b) if placement.node_server[n] == server
                    and graph.nodes[n]["role"] != model.HOST})
    return bridges, intfs


# ------------------------------------------------------------------ removal

def argv_pattern(text: str) -> str:
    """An extended regex matching `text` literally whose own text does not match it (its first
    character in brackets), so pkill -f never hits the shell that runs it."""
    out = []
    for i, c in enumerate(text):
        if c in "]\\^\n":
            raise RunError(f"cluster: cannot match {text!r} in command lines")
        out.append(f"[{c}]" if i == 0 or not (c.isalnum() or c in "/_-") else c)
    return "".join(out)


def removal_script(entry: dict[str, Any]) -> str:
    """Shell script removing what `entry` names on its server; prints one line per removal."""
    q = shlex.quote
    lines = []
    for p in entry.get("processes", []):
        pat = q(argv_pattern(p))
        lines.append(f"pkill -TERM -f -- {pat} && echo processes of the run")
    if entry.get("processes"):
        lines.append("sleep 0.5")
        lines += [f"pkill -KILL -f -- {q(argv_pattern(p))}" for p in entry["processes"]]
    lines += [f"ovs-vsctl --timeout=5 br-exists {b} && ovs-vsctl --timeout=5 del-br {b} && "
              f"echo ovs bridge {b}" for b in entry.get("bridges", []) if NAME.fullmatch(b)]
    lines += [f"ip link del {i} 2>/dev/null && echo interface {i}" for i in entry.get("interfaces", [])
              if NAME.fullmatch(i)]
    lines += [f"nft delete table {f} {n} 2>/dev/null && echo nft table {f} {n}"
              for f, n in entry.get("nft_tables", []) if f in NFT_FAMILIES and NAME.fullmatch(n)]
    marker = q(entry.get("marker", "/nonexistent"))
    lines += [f"test ! -e {marker} && test -d {q(d)} && rm -rf -- {q(d)} && echo directory {q(d)}"
              for d in entry.get("dirs", []) if d.startswith("/") and len(d) > 4]
    return "\n".join([*lines, "true"])


def remove_on(s: Server, entry: dict[str, Any], timeout_s: float = 60) -> list[str]:
    """Run removal_script on the server (read from stdin: the shell's own command line then
    holds none of the run's names); the lines removed. RunError if it is unreachable."""
    try:
        res = s.run("sh -s", input_text=removal_script(entry) + "\n", timeout_s=timeout_s)
    except (subprocess.TimeoutExpired, OSError) as exc:
        raise RunError(f"cluster: cleaning {s.name} failed: {exc}") from None
    if res.returncode == 255:   # ssh's own failure
        raise RunError(f"cluster: cleaning {s.name} failed: {res.stderr.strip()[:300]}")
    return [f"{s.name}: {line}" for line in res.stdout.split("\n") if line.strip()]


def server_of(name: str, entry: dict[str, Any], token: str) -> Server:
    return Server(name, entry["address"], entry["user"], entry.get("ssh_config", ""),
                  control_path(token))


def clean_servers(data: dict[str, Any], dry_run: bool = False) -> list[str]:
    """`fabric clean`'s part for a record's servers (after its local ssh processes are gone):
    on each server, under that server's run lock, fetch what the run wrote there (copy mode),
    then remove its names; cleaned servers leave data["servers"]."""
    found = []
    servers = data.get("servers", {})
    for name, entry in list(servers.items()):
        s = server_of(name, entry, f"clean{os.getpid()}")
        if dry_run:
            found.append(f"server {name} ({s.ip}): {_count(entry)}")
            continue
        # the holder names the run by its directory's last part only: the removal matches
        # the whole path in command lines, and this lock's session must survive it
        locks = ServerLocks([s], f"fabric clean of {Path(entry.get('run_dir', '?')).name}",
                            wait_s=15)   # the killed run's lock session may take a moment
        try:
            locks.acquire()
            if entry.get("dirs"):
                RunDirSync.pull_from(s, Path(entry["run_dir"]), entry["marker"])
            found += remove_on(s, entry)
            del servers[name]
        except RunError as exc:
            log.error("%s", exc)
            found.append(f"server {name}: NOT cleaned ({exc})")
        finally:
            locks.release()
            close_master(s)
    return found


def _count(entry: dict[str, Any]) -> str:
    return ", ".join(f"{len(entry.get(k, []))} {k}" for k in LIST_KEYS if entry.get(k))


def close_master(s: Server) -> None:
    try:
        subprocess.run(s.ssh("-O", "exit"), capture_output=True, timeout=10)
    except (subprocess.TimeoutExpired, OSError):
        pass


def check_names_free(servers: Iterable[Server], graph: nx.Graph, placement: Placement) -> None:
    """RunError when a server already has an OVS bridge with one of this run's switch names
    (not ours: another run's, or the user's own Mininet): we would take it over."""
    for s in servers:
        bridges, _ = fabric_names(graph, placement, s.name)
        res = s.run("ovs-vsctl --timeout=5 list-br")
        clash = sorted(set(bridges) & set(res.stdout.split()))
        if clash:
            raise RunError(f"cluster: {s.name} already has OVS bridge(s) {', '.join(clash[:5])} "
                           "that this run did not make (another run's, or a Mininet session of "
                           "its own): remove them there (ovs-vsctl del-br) or wait for that run")


# ------------------------------------------------------------------ run lock per server

class ServerLocks:
    """Each server's run lock, held by an ssh session (flock on SERVER_LOCK) for the run."""

    def __init__(self, servers: Iterable[Server], holder: str, wait_s: float = 0.0):
        """`wait_s`: how long a busy server's lock is retried (0: refuse at once)."""
        self.servers = list(servers)
        self.wait_s = wait_s
        self.holder = f"{holder} (pid {os.getpid()} on {socket.gethostname()})"
        self.procs: list[subprocess.Popen[str]] = []

    def command(self) -> str:
        """flock held by a sleep on the session's terminal: it ends (SIGHUP) when the head's
        ssh client ends, released or killed, and not before (a SIGKILLed engine's client lives
        on until `fabric clean` ends it: the server stays locked while it holds leftovers)."""
        lock, holder = shlex.quote(SERVER_LOCK), shlex.quote(self.holder)
        body = f'printf "%s\\n" "$0" >{lock}; echo LOCKED; exec sleep 2147483647'
        return (f"flock -n {lock} sh -c {shlex.quote(body)} {holder} || "
                f"echo BUSY \"$(head -c 300 {lock})\"")

    def acquire(self) -> None:
        """Every server's lock, or RunError naming the first server held by another run (and
        its holder); locks already taken are released then."""
        try:
            for s in self.servers:
                end = time.monotonic() + self.wait_s
                while True:
                    proc = subprocess.Popen([*s.ssh("-tt"), self.command()],
                                            stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True, bufsize=1)
                    self.procs.append(proc)
                    line = _read_line(proc, LOCK_WAIT_S)
                    if not line.startswith("BUSY") or time.monotonic() > end:
                        break
                    proc.wait()
                    self.procs.remove(proc)
                    time.sleep(0.5)
                if line.startswith("BUSY"):
                    held = line[4:].strip() or "another run"
                    raise RunError(f"cluster: server {s.name} ({s.ip}) is in use: its run lock "
                                   f"{SERVER_LOCK} is held by {held}. Wait for that run to end "
                                   "(if it was killed, run `fabric clean` on its head)")
                if line != "LOCKED":
                    err = proc.stderr.read() if proc.poll() is not None else ""  # type: ignore[union-attr]
                    raise RunError(f"cluster: could not take the run lock on {s.name} ({s.ip}): "
                                   f"{(line or err).strip()[:300] or 'no answer'} (flock missing?)")
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        end_processes(self.procs)


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    end = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            return proc.stdout.readline().strip()
        if proc.poll() is not None:
            return proc.stdout.readline().strip()
    return ""


# ------------------------------------------------------------------ run directory

class RunDirSync:
    """The run directory on servers that do not share the head's file system (see the module
    docstring). Servers that share it are left alone: push and pull do nothing there."""

    def __init__(self, run_dir: Path, servers: Iterable[Server], token: str):
        self.run_dir = run_dir
        self.servers = list(servers)
        self.marker = run_dir / f".head-{token}"
        self.copied: list[Server] = []

    def detect(self) -> dict[str, bool]:
        """Which servers see the head's run directory (server name -> shared); the others
        get the directory made and registered (so it is removed at the end)."""
        self.marker.write_text(secrets.token_hex(8))
        q = shlex.quote
        shared = {}
        for s in self.servers:
            res = s.run(f"test -e {q(str(self.marker))} && echo SHARED || echo APART")
            if "SHARED" not in res.stdout and "APART" not in res.stdout:
                raise RunError(f"cluster: {s.name} did not answer: {res.stderr.strip()[:200]}")
            shared[s.name] = "SHARED" in res.stdout
            if not shared[s.name]:
                register_on(s.name, dirs=[str(self.run_dir)])
                mk = s.run(f"mkdir -p {q(str(self.run_dir))}")
                if mk.returncode:
                    raise RunError(f"cluster: cannot make {self.run_dir} on {s.name}: "
                                   f"{mk.stderr.strip()[:200]}")
                self.copied.append(s)
        if self.copied:
            log.info("run directory copied to/from %s (not shared with the head)",
                     ", ".join(s.name for s in self.copied))
        return shared

    def push(self, *paths: Path) -> None:
        """Copy these files/directories (under the run directory) to every copying server."""
        rel = [str(p.relative_to(self.run_dir)) for p in paths if p.exists()]
        if not rel or not self.copied:
            return
        q = shlex.quote
        for s in self.copied:
            pack = subprocess.Popen(["tar", "-C", str(self.run_dir), "-cf", "-", "--", *rel],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            res = subprocess.run([*s.ssh(), f"tar -C {q(str(self.run_dir))} -xf -"],
                                 stdin=pack.stdout, capture_output=True, text=True,
                                 timeout=120)
            assert pack.stdout is not None
            pack.stdout.close()
            pack.wait()
            if res.returncode or pack.returncode:
                raise RunError(f"cluster: copying {', '.join(rel)} to {s.name} failed: "
                               f"{res.stderr.strip()[:200]}")

    def pull(self, sub: Path | None = None) -> list[str]:
        """Fetch what the servers wrote (all of the run directory, or `sub`) into the head's
        run directory, never overwriting a head file; returns the servers that failed."""
        failed = []
        for s in self.copied:
            try:
                self.pull_from(s, self.run_dir, str(self.marker), sub)
            except RunError as exc:
                log.error("%s", exc)
                failed.append(s.name)
        return failed

    @staticmethod
    def pull_from(s: Server, run_dir: Path, marker: str, sub: Path | None = None) -> None:
        q = shlex.quote
        rel = str(sub.relative_to(run_dir)) if sub is not None else "."
        run_dir.mkdir(parents=True, exist_ok=True)
        # only where the head's marker is absent: a shared directory is the head's own
        remote = (f"test ! -e {q(marker)} && cd {q(str(run_dir))} && "
                  f"if test -e {q(rel)}; then tar -cf - -- {q(rel)}; fi")
        pack = subprocess.Popen([*s.ssh(), remote], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        res = subprocess.run(["tar", "-C", str(run_dir), "--skip-old-files", "-xf", "-"],
                             stdin=pack.stdout, capture_output=True, text=True, timeout=300)
        assert pack.stdout is not None and pack.stderr is not None
        pack.stdout.close()
        err = pack.stderr.read().decode(errors="replace")
        pack.wait()
        if pack.returncode == 255 or (res.returncode and "does not look like a tar" not in
                                      res.stderr and res.stderr.strip()):
            raise RunError(f"cluster: fetching {rel} of {run_dir.name} from {s.name} failed: "
                           f"{(err or res.stderr).strip()[:200]}")
