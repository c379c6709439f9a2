"""Measurements of a cluster run taken on every server, merged on the head.

    head: ClusterSampling ──ssh──► server k: python -m fabric.run.cluster.serverd
          (config line, "stop")     samples ITS switch interfaces (links rows), its own
                                    ovs-vswitchd and agents (cpu rows), its OVS log
    ◄── one JSON line at the end ── (send failures)

The head writes what the servers measured into the run directory:
    links.csv                  every server's rows, merged (the one-machine format, unchanged;
                               times moved onto the head's clock by each server's measured offset)
    servers/<name>/cpu.csv     the server's cpu.csv (its machine, its ovs-vswitchd, its agents)
    servers/<name>/measure.json  its OVS send failures, ovs-vswitchd pids, unread interfaces
cpu.csv stays the head's own (the controller). fabric.analysis.servers judges each server.

Also here: what else must run on the server that owns a switch: `ovs-appctl ofproto/trace`
(paths.csv) and `ip link set down` ([[failure]]).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import select
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import networkx as nx

from topologies import model

from fabric.analysis.links import COLUMNS as LINK_COLUMNS
from fabric.analysis.links import Direction, directions
from fabric.analysis.ovsbuf import SendFailures
from fabric.analysis.servers import SERVERS_DIR
from fabric.run import registry
from fabric.run.cluster.ssh import remote_python

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


def shifted_rows(csv_text: str, offset_s: float) -> list[list[str]]:
    """The data rows of a CSV text whose first column is an epoch time, moved by -offset_s
    (a server's clock offset against the head's); a torn row is dropped."""
    rows = list(csv.reader(io.StringIO(csv_text)))
    out = []
    for row in rows[1:]:
        try:
            out.append([f"{float(row[0]) - offset_s:.6f}", *row[1:]])
        except (IndexError, ValueError):
            continue
    return out


def merge_links(per_server: Mapping[str, str], offsets_s: Mapping[str, float]
                ) -> list[list[str]]:
    """links.csv rows of every server (their CSV texts), on the head's clock, in time order."""
    rows = [r for name, text in per_server.items()
            for r in shifted_rows(text, offsets_s.get(name, 0.0))]
    rows.sort(key=lambda r: float(r[0]))
    return rows


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
    samplers); stop() writes links.csv and servers/<name>/ and sets `send_failures`."""

    def __init__(self, net: Any, graph: nx.Graph, run_dir: Path, plan_file: Path):
        self.net, self.run_dir = net, run_dir
        self.dirs = server_directions(graph, net.placement.node_server)
        self.match = f"--plan {plan_file}"
        self.offsets_s = {c.server: c.clock_offset_ms / 1000 for c in net.checks}
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.send_failures: SendFailures | None = None
        self._stopped = False

    def start(self) -> ClusterSampling:
        try:
            for name, server in self.net.servers.items():
                proc = server.popen(remote_python("fabric.run.cluster.serverd"))
                self.procs[name] = proc
                registry.register(pids=[proc.pid])
                cfg = {"directions": [[d.link, d.src, d.dst, d.tier, d.rate_mbps, d.intf]
                                      for d in self.dirs.get(name, [])],
                       "agents_match": self.match}
                proc.stdin.write(json.dumps(cfg) + "\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            for name, proc in self.procs.items():
                line = _readline(proc, READY_TIMEOUT_S)
                if line.strip() != "READY":
                    from topologies.errors import RunError
                    raise RunError(f"cluster: the measuring process on {name} did not start: "
                                   f"{(line + _stderr(proc)).strip()[-400:]}")
        except BaseException:
            self._kill()
            raise
        return self

    def stop(self) -> SendFailures | None:
        """Every server's last sample and results, merged into the run directory (what a
        server did not deliver is missing, logged); safe to call twice."""
        if self._stopped:
            return self.send_failures
        self._stopped = True
        results: dict[str, dict[str, Any]] = {}
        for proc in self.procs.values():
            try:   # communicate() below closes stdin
                proc.stdin.write("stop\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            except (OSError, ValueError):
                pass
        for name, proc in self.procs.items():
            try:
                out, err = proc.communicate(timeout=RESULT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.error("no measurements from %s: no answer in %g s", name, RESULT_TIMEOUT_S)
                continue
            try:
                results[name] = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                log.error("no measurements from %s: %s", name, (err or out).strip()[-300:])
        self._kill()
        self._write(results)
        return self.send_failures

    def _write(self, results: Mapping[str, Mapping[str, Any]]) -> None:
        rows = merge_links({n: str(r.get("links", "")) for n, r in results.items()},
                           self.offsets_s)
        with open(self.run_dir / "links.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(LINK_COLUMNS)
            w.writerows(rows)
        found = []
        for name, r in results.items():
            d = self.run_dir / SERVERS_DIR / name
            d.mkdir(parents=True, exist_ok=True)
            cpu = str(r.get("cpu", ""))
            head, _, _ = cpu.partition("\n")
            with open(d / "cpu.csv", "w", newline="") as f:
                f.write(head + "\n")
                csv.writer(f).writerows(shifted_rows(cpu, self.offsets_s.get(name, 0.0)))
            sf = r.get("send_failures")
            sends = SendFailures(dict(sf["by_interface"]), bool(sf["rate_limited"])) if sf else None
            found.append(sends)
            (d / "measure.json").write_text(json.dumps({
                "send_failures": sf, "ovs_vswitchd_pids": r.get("ovs_pids", []),
                "unread_interfaces": r.get("missing", []),
                "clock_offset_s": self.offsets_s.get(name, 0.0)}, indent=1))
            if r.get("missing"):
                log.warning("%s: no counters for %s", name, ", ".join(r["missing"][:8]))
        self.send_failures = merge_send_failures(found)

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


def _readline(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """A line of the process's stdout, '' on timeout or end."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.stdout is None:
            return ""
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            return proc.stdout.readline()
        if proc.poll() is not None:
            return ""
    return ""


def _stderr(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None or proc.stderr is None:
        return ""
    return proc.stderr.read()


# ------------------------------------------------------------------------------ on the owner

def tracer_on_servers(net: Any) -> Any:
    """fabric.run.paths' `run(switch, flow)`: ofproto/trace on the server owning the switch."""
    def run(switch: str, flow: str) -> str:
        server = net.server_of(switch)
        res = server.run(f"ovs-appctl ofproto/trace {shlex.quote(switch)} {shlex.quote(flow)}",
                         timeout_s=20)
        return res.stdout if res.returncode == 0 else ""
    return run


def set_down_on_servers(net: Any) -> Any:
    """fabric.run.failures' `set_down(interfaces)`: `ip -batch` on each owning server (both
    ends of a link that crosses servers: its two tunnel devices go down); '' or the errors."""
    def set_down(interfaces: Sequence[str]) -> str:
        for name in interfaces:
            if not model.INTF_NAME.match(name):
                raise ValueError(f"refusing to touch interface {name!r}")
        errors = []
        for server, intfs in by_server(interfaces, net.placement.node_server).items():
            lines = "".join(f"link set dev {i} down\n" for i in intfs)
            res = net.servers[server].run("ip -batch -", input_text=lines)
            if res.returncode:
                errors.append(f"{server}: {res.stderr.strip()}")
        return "; ".join(errors)
    return set_down
