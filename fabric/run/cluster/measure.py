"""Measurements of a cluster run taken on every server, merged on the head.

    head: ClusterSampling ──ssh──► server k: python -m fabric.run.cluster.serverd
          (config line, "stop")     samples ITS switch interfaces (links rows), its own
                                    ovs-vswitchd and agents (cpu rows), its OVS log
    ◄── rows every 0.5 s, then its send failures ──

The head writes what the servers measured into the run directory:
    links.csv                  every server's rows as they arrive (the one-machine format,
                               unchanged; on the head's clock (each server's clock_correction_ms,
                               as the flows); rows of different servers interleave)
    servers/<name>/cpu.csv     the server's cpu.csv (its machine, its ovs-vswitchd, its agents)
    servers/<name>/measure.json  its OVS send failures, ovs-vswitchd pids, unread interfaces
cpu.csv stays the head's own (the controller). fabric.analysis.servers judges each server.

Also here: what else must run on the server that owns a switch: `ovs-appctl ofproto/trace`
(paths.csv) and `ip link set down` ([[failure]]).
"""
from __future__ import annotations

import csv
import json
import logging
import threading
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import networkx as nx


from fabric.analysis.fidelity import COLUMNS as CPU_COLUMNS
from fabric.analysis.links import COLUMNS as LINK_COLUMNS
from fabric.analysis.links import Direction, directions
from fabric.analysis.ovsbuf import SendFailures
from fabric.analysis.servers import SERVERS_DIR
from fabric.run import registry
from fabric.run.cluster.ssh import ended_stderr, remote_python
from fabric.run.failures import link_batch

log = logging.getLogger("fabric.run.cluster")
READY_TIMEOUT_S = 60.0
RESULT_TIMEOUT_S = 60.0


# ------------------------------------------------------------------------------ pure parts

def owner(intf: str) -> str:
    """The node an interface belongs to ("l1-eth3" -> "l1")."""
    return intf.rsplit("-", 1)[0]


def server_directions(graph: nx.Graph, node_server: Mapping[str, str]
                      ) -> dict[str, list[Direction]]:
    """Every sampled direction (fabric.analysis.links.directions) under the server owning its
    interface (the switch at its source end)."""
    out: dict[str, list[Direction]] = {}
    for d in directions(graph):
        out.setdefault(node_server[d.src], []).append(d)
    return out


def shifted_row(line: str, offset_s: float) -> list[str] | None:
    """A CSV row whose first column is an epoch time, moved by -offset_s (a server's clock
    offset against the head's); None for a torn row."""
    try:
        row = next(csv.reader([line]))
        return [f"{float(row[0]) - offset_s:.6f}", *row[1:]]
    except (StopIteration, IndexError, ValueError, csv.Error):
        return None


def merge_send_failures(found: Iterable[SendFailures | None]) -> SendFailures | None:
    """The servers' send failures together (port names are unique in a fabric); None when no
    server's log could be read."""
    per: dict[str, int] = {}
    limited, any_read = False, False
    for f in found:
        if f is None:
            continue
        any_read = True
        limited |= f.rate_limited
        for intf, n in f.by_interface.items():
            per[intf] = per.get(intf, 0) + n
    return SendFailures(per, limited) if any_read else None


def by_server(interfaces: Sequence[str], node_server: Mapping[str, str]) -> dict[str, list[str]]:
    """Interfaces grouped by the server owning their node."""
    out: dict[str, list[str]] = {}
    for i in interfaces:
        out.setdefault(node_server[owner(i)], []).append(i)
    return out


# ------------------------------------------------------------------------------ the sampling

class ClusterSampling:
    """One serverd per server for the workload (a context manager, like the one-machine
    samplers). Their rows are appended to links.csv and servers/<name>/cpu.csv as they arrive
    (the live view tails links.csv; a failed run keeps what was sampled); stop() collects the
    last rows and each server's send failures (`send_failures`, all servers together)."""

    def __init__(self, net: Any, graph: nx.Graph, run_dir: Path, plan_file: Path):
        self.net, self.run_dir = net, run_dir
        self.dirs = server_directions(graph, net.placement.node_server)
        self.match = f"--plan {plan_file}"
        self.offsets_s = {c.server: c.clock_correction_ms / 1000 for c in net.checks}
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.readers: dict[str, threading.Thread] = {}
        self.ready: dict[str, threading.Event] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.started: set[str] = set()
        self.send_failures: SendFailures | None = None
        self._lock = threading.Lock()
        self._links: Any = None
        self._stopped = False

    def start(self) -> ClusterSampling:
        self._links = open(self.run_dir / "links.csv", "w", newline="")  # noqa: SIM115
        csv.writer(self._links).writerow(LINK_COLUMNS)
        self._links.flush()
        try:
            for name, server in self.net.servers.items():
                proc = server.popen(remote_python("fabric.run.cluster.serverd"))
                self.procs[name] = proc
                registry.register(pids=[proc.pid])
                cfg = {"directions": [[d.link, d.src, d.dst, d.tier, d.rate_mbps, d.intf]
                                      for d in self.dirs.get(name, [])],
                       "agents_match": self.match}
                proc.stdin.write(json.dumps(cfg) + "\n")
                proc.stdin.flush()
                self.ready[name] = threading.Event()
                self.readers[name] = threading.Thread(target=self._read, args=(name, proc),
                                                      name=f"measure-{name}", daemon=True)
                self.readers[name].start()
            deadline = time.monotonic() + READY_TIMEOUT_S
            for name, proc in self.procs.items():
                self.ready[name].wait(max(0.0, deadline - time.monotonic()))
                if name not in self.started:
                    from topologies.errors import RunError
                    raise RunError(f"cluster: the measuring process on {name} did not start: "
                                   f"{ended_stderr(proc).strip()[-400:]}")
        except BaseException:
            self._kill()
            self._close()
            raise
        return self

    def _read(self, name: str, proc: subprocess.Popen[str]) -> None:
        """One server's stream: rows into the run directory, then its results."""
        offset = self.offsets_s.get(name, 0.0)
        d = self.run_dir / SERVERS_DIR / name
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "cpu.csv", "w", newline="") as cpu_file:
            cpu = csv.writer(cpu_file)
            cpu.writerow(CPU_COLUMNS)
            for line in proc.stdout:  # type: ignore[union-attr]
                tag, _, rest = line.rstrip("\n").partition(" ")
                if tag == "READY":
                    self.started.add(name)
                    self.ready[name].set()
                elif tag in ("L", "C"):
                    row = shifted_row(rest, offset)
                    if row is None:
                        continue
                    if tag == "C":
                        cpu.writerow(row)
                        cpu_file.flush()
                    else:
                        with self._lock:
                            if self._links is not None:
                                csv.writer(self._links).writerow(row)
                                self._links.flush()
                elif tag == "R":
                    try:
                        self.results[name] = json.loads(rest)
                    except ValueError:
                        log.error("%s: unreadable measurement results", name)
        self.ready[name].set()   # ended: start() need not wait any longer

    def stop(self) -> SendFailures | None:
        """Every server's last rows and results (what a server did not deliver is missing,
        logged); safe to call twice."""
        if self._stopped:
            return self.send_failures
        self._stopped = True
        for proc in self.procs.values():
            try:
                proc.stdin.write("stop\n")  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        for name, reader in self.readers.items():
            reader.join(max(0.0, deadline - time.monotonic()))
            if reader.is_alive() or name not in self.results:
                log.error("no measurement results from %s: %s", name,
                          "no answer" if reader.is_alive() else ended_stderr(self.procs[name])[-300:])
        self._kill()
        self._close()
        found = []
        for name in self.procs:
            r = self.results.get(name, {})
            sf = r.get("send_failures")
            found.append(SendFailures(dict(sf["by_interface"]), bool(sf["rate_limited"]))
                         if sf else None)
            (self.run_dir / SERVERS_DIR / name / "measure.json").write_text(json.dumps({
                "send_failures": sf, "ovs_vswitchd_pids": r.get("ovs_pids", []),
                "unread_interfaces": r.get("missing", []),
                "clock_offset_s": self.offsets_s.get(name, 0.0)}, indent=1))
            if r.get("missing"):
                log.warning("%s: no counters for %s", name, ", ".join(r["missing"][:8]))
        self.send_failures = merge_send_failures(found)
        return self.send_failures

    def _close(self) -> None:
        with self._lock:
            if self._links is not None:
                self._links.close()
                self._links = None

    def _kill(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.error("the ssh of a measuring process (pid %d) did not end", proc.pid)

    def __enter__(self) -> ClusterSampling:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------ on the owner

def tracer_on_servers(net: Any) -> Any:
    """fabric.run.paths' `run(switch, flow)`: ofproto/trace on the server owning the switch."""
    def run(switch: str, flow: str) -> str:
        server = net.server_of(switch)
        res = server.run(f"ovs-appctl ofproto/trace {shlex.quote(switch)} {shlex.quote(flow)}",
                         timeout_s=20)
        return res.stdout if res.returncode == 0 else ""
    return run


def set_links_on_servers(net: Any, up: bool = False) -> Any:
    """fabric.run.failures' `set_down(interfaces)` (up=False; `fabric up`'s restore: True):
    `ip -batch` on each owning server (a link that crosses servers: its two tunnel devices);
    '' or the errors."""
    def set_links(interfaces: Sequence[str]) -> str:
        link_batch(interfaces, up)   # every name checked before any server is touched
        errors = []
        for server, intfs in by_server(interfaces, net.placement.node_server).items():
            res = net.servers[server].run("ip -batch -", input_text=link_batch(intfs, up))
            if res.returncode:
                errors.append(f"{server}: {res.stderr.strip()}")
        return "; ".join(errors)
    return set_links
