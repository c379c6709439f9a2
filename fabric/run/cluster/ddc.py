"""The `spray` and `ddc` policies in cluster mode: each switch's kernel data path on its server.

    head: controller ──nft -f - over ssh──► the server owning each switch (its nft table)
          credit loop (fabric.run.voq.CreditLoop: decides for the whole fabric)
            │ one line per server and decision: "R" -> counters, "S ..." -> rate changes
            ▼
    server k: voqd (fabric.run.cluster.voqd): reads/sets the HTB classes of its NCPs' VOQs
              <ncp>-vq/<ncp>-vs veth pairs + HTB, made here before the switches connect
              reseqd --until-eof (fabric.run.reseqd): its own hosts' egress reassembly, host
              namespaces entered by the pids the server's shells report (RemoteHost.pid: the
              host shell's pid in the server's own PID namespace)

Every server process runs over the run's shared ssh connection and ends when its session's
stdin reaches EOF (the head stops it, or dies). Pure parts (which NCPs and hosts where, the nft
routes, the removal script) are functions of the model and the placement.
"""
from __future__ import annotations

import json
import logging
import select
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import networkx as nx

from controller.nftables import table_name
from topologies import model
from topologies.ddc import reassembling, scheduled, voq_intfs
from topologies.errors import RunError
from topologies.placement import Placement

from fabric.run import reseqd, voq
from fabric.run.cluster import lifecycle
from fabric.run.cluster.ssh import Server, ended_stderr, remote_python
from fabric.run.tcnl import ClassStats

log = logging.getLogger("fabric.run.cluster")
NFT_REMOTE_FILE = "nft_remote.json"   # the controller's --nft-remote (switch -> ssh argv)
READ_TIMEOUT_S = 2.0                  # a server's answer to one counter read


# ------------------------------------------------------------------ pure: what runs where

def ncps_by_server(graph: nx.Graph, placement: Placement) -> dict[str, list[str]]:
    """Server -> its NCPs (model order), for servers that hold any."""
    out: dict[str, list[str]] = {}
    for ncp in model.switches(graph, "ncp"):
        out.setdefault(placement.node_server[ncp], []).append(ncp)
    return out


def hosts_by_server(graph: nx.Graph, placement: Placement) -> dict[str, list[str]]:
    """Server -> its hosts (model order)."""
    out: dict[str, list[str]] = {}
    for h in model.hosts(graph):
        out.setdefault(placement.node_server[h], []).append(h)
    return out


def nft_argv(s: Server) -> list[str]:
    """The argv prefix that runs a command on `s` over the run's shared ssh connection, never
    becoming a master itself (one started by the controller would outlive the run)."""
    argv, out = s.ssh(), []
    for i, a in enumerate(argv):
        if a.startswith("ControlPersist=") or (a == "-o" and i + 1 < len(argv)
                                               and argv[i + 1].startswith("ControlPersist=")):
            continue
        out.append("ControlMaster=no" if a == "ControlMaster=auto" else a)
    return out


def nft_routes(graph: nx.Graph, placement: Placement,
               servers: Mapping[str, Server]) -> dict[str, list[str]]:
    """Switch -> argv prefix of its server: where the controller applies its nft ruleset."""
    return {sw: nft_argv(servers[placement.node_server[sw]]) for sw in model.switches(graph)}


def server_names(graph: nx.Graph, placement: Placement, server: str
                 ) -> tuple[list[str], list[tuple[str, str]]]:
    """(VOQ interfaces, nft tables) this run may create on `server` with a spraying policy:
    its NCPs' VOQ veth pairs (scheduled DDC) and a `fabric_<switch>` table per switch there."""
    sws = [s for s in model.switches(graph) if placement.node_server[s] == server]
    intfs = [i for s in sws if graph.nodes[s]["role"] == "ncp" and scheduled(graph)
             for i in voq_intfs(s)]
    return intfs, [("netdev", table_name(s)) for s in sws]


# ------------------------------------------------------------------ the network's part

def write_nft_routes(net: Any, run_dir: Path) -> Path:
    """The controller's --nft-remote file for a ClusterNetwork."""
    path = Path(run_dir) / NFT_REMOTE_FILE
    path.write_text(json.dumps(nft_routes(net.graph, net.placement, net.servers), indent=1))
    return path


def register_names(net: Any) -> None:
    """Record, before they exist, the VOQ devices and nft tables this run may make on each
    server, in the run's registry entry per server (lifecycle.register_on, where `fabric clean`
    finds them after a SIGKILL). The server processes (voqd, reseqd) need no entry: their
    command lines carry the run directory, which that cleanup matches."""
    for server in net.servers:
        intfs, tables = server_names(net.graph, net.placement, server)
        lifecycle.register_on(server, interfaces=intfs, nft_tables=tables)


def create_voqs(net: Any) -> None:
    """Each server's NCPs' VOQ devices and HTB (before the switches connect: the NCPs' nft
    tables name them). RunError naming the server if it fails."""
    if not scheduled(net.graph):
        return
    for server, ncps in ncps_by_server(net.graph, net.placement).items():
        s = net.servers[server]
        ip_lines, tc_lines = voq.voq_config(net.graph, ncps)
        names = [i for n in ncps for i in voq_intfs(n)]
        for cmd, text in (("ip -batch -", ip_lines), ("tc -batch -", tc_lines)):
            res = s.run(cmd, input_text="\n".join(text) + "\n", timeout_s=60)
            if res.returncode:
                raise RunError(f"creating the DDC's VOQs on {server} failed ({cmd}): "
                               f"{res.stderr.strip()[:300]}")
        # no IPv6 chatter (router solicitations) into the VOQs
        s.run("; ".join(f"echo 1 >/proc/sys/net/ipv6/conf/{n}/disable_ipv6" for n in names)
              + " 2>/dev/null; true")
        log.info("VOQs on %s: %s", server, ", ".join(ncps))


# ------------------------------------------------------------------ the credit loop's VOQs

class RemoteVoqs:
    """fabric.run.voq.VoqDevices over the servers: one voqd per server holding NCPs."""

    def __init__(self, servers: Mapping[str, Server], ncps: Mapping[str, list[str]],
                 run_dir: Path):
        self.servers = {k: servers[k] for k in ncps}
        self.ncps = dict(ncps)
        self.run_dir = Path(run_dir)
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.read_ms: dict[str, list[float]] = {k: [] for k in ncps}   # mean/max kept
        self.errors: dict[str, tuple[int, str]] = {}

    def open(self) -> None:
        try:
            for name, s in self.servers.items():
                self.procs[name] = s.popen(remote_python("fabric.run.cluster.voqd",
                                                         str(self.run_dir), *self.ncps[name]))
            for name, p in self.procs.items():
                line = _readline(p, 30.0)
                if line != "ready":
                    raise RunError(f"the VOQ agent on {name} did not start: "
                                   f"{line or ended_stderr(p) or 'no answer'}")
        except BaseException:
            self.close()
            raise

    def read(self) -> dict[str, list[ClassStats]]:
        t0 = time.monotonic()
        for p in self.procs.values():   # ask every server first, then collect: in parallel
            _send(p, "R\n")
        out: dict[str, list[ClassStats]] = {}
        for name, p in self.procs.items():
            line = _readline(p, READ_TIMEOUT_S)
            if not line:
                raise OSError(f"the VOQ agent on {name} did not answer")
            doc = json.loads(line)
            self.errors[name] = (int(doc.get("e", 0)), str(doc.get("m", "")))
            for ncp, rows in doc["c"].items():
                out[ncp] = [ClassStats(h, b, 0, q, 0, d, o) for h, b, o, d, q in rows]
            ms = (time.monotonic() - t0) * 1000
            acc = self.read_ms[name]
            if not acc:
                acc += [0.0, 0.0, 0.0]
            acc[0] += 1
            acc[1] += ms
            acc[2] = max(acc[2], ms)
        return out

    def set_rates(self, changes: list[voq.RateChange], burst: int, quantum: int) -> None:
        where = {n: k for k, ncps in self.ncps.items() for n in ncps}
        lines: dict[str, list[str]] = {}
        for ncp, handle, rate in changes:
            lines.setdefault(where[ncp], []).append(
                f"S {ncp} {int(handle)} {rate:.1f} {int(burst)} {int(quantum)}\n")
        for name, batch in lines.items():
            _send(self.procs[name], "".join(batch))

    def close(self) -> None:
        for p in self.procs.values():
            if p.stdin is not None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
        for name, p in self.procs.items():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            err = ended_stderr(p)
            if err:
                log.warning("VOQ agent on %s: %s", name, err[-300:])
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()
        self.procs.clear()

    def stats(self) -> dict[str, Any]:
        """Per server: its NCPs, how long a counter read took (ms), rate changes it refused."""
        out = {}
        for name, ncps in self.ncps.items():
            n, total, worst = (self.read_ms[name] or [0.0, 0.0, 0.0])
            errors, last = self.errors.get(name, (0, ""))
            out[name] = {"ncps": ncps, "reads": int(n),
                         "read_ms_mean": round(total / n, 3) if n else None,
                         "read_ms_max": round(worst, 3), "errors": errors,
                         **({"last_error": last} if last else {})}
        return {"servers": out}


def _send(p: subprocess.Popen[str], text: str) -> None:
    assert p.stdin is not None
    p.stdin.write(text)
    p.stdin.flush()


def _readline(p: subprocess.Popen[str], timeout_s: float) -> str:
    """One line of the process's stdout within timeout_s ('' if none, or it ended)."""
    assert p.stdout is not None
    ready, _, _ = select.select([p.stdout], [], [], timeout_s)
    return p.stdout.readline().strip() if ready else ""


def credit_devices(net: Any, run_dir: Path) -> RemoteVoqs:
    """The credit loop's VOQs on a ClusterNetwork's servers."""
    return RemoteVoqs(net.servers, ncps_by_server(net.graph, net.placement), run_dir)


# ------------------------------------------------------------------ egress reassembly

def merge_totals(parts: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Every server's resequencer totals as one: counts summed, maxima and percentiles the
    worst server's (a percentile of the union is not recoverable from the parts), per server
    under "servers"."""
    total: dict[str, Any] = {}
    for stats in parts.values():
        for k, v in stats.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if k.startswith("hold_ms") or k.endswith("_max") or k == "cpu_us_per_packet":
                total[k] = max(total.get(k, v), v)
            else:
                total[k] = round(total.get(k, 0) + v, 3)
    total["partial"] = any(p.get("partial", True) for p in parts.values()) if parts else True
    total["servers"] = dict(parts)
    return total


@contextmanager
def reassembly(net: Any, graph: nx.Graph, run_dir: Path) -> Iterator[list[Any]]:
    """The egress resequencer of a DDC with `reassembly`, one process per server for that
    server's hosts (their pids: the server's own), while the block runs; totals under
    "reassembly" in run_dir/ddc.json (fabric.run.voq.record_ddc) with each server's part,
    each server's statistics in reseq-<server>_stats.json. Nothing for other fabrics."""
    if not reassembling(graph):
        yield []
        return
    pids = {h: net.host(h).pid for h in model.hosts(graph)}
    hosts, sources = reseqd.hosts_from_model(graph, pids)
    params = reseqd.params_for(graph)
    procs: dict[str, reseqd.ResequencerProcess] = {}
    try:
        for server, names in hosts_by_server(graph, net.placement).items():
            s = net.servers[server]
            mine = [h for h in hosts if h.name in set(names)]

            def launch(args: list[str], _log: Path, s: Server = s) -> subprocess.Popen[str]:
                return s.popen(remote_python("fabric.run.reseqd", *args))
            procs[server] = reseqd.start_resequencer(Path(run_dir), mine, sources, params,
                                                     name=f"reseq-{server}", launch=launch)
        yield list(procs.values())
    finally:
        parts: dict[str, dict[str, Any]] = {}
        for server, proc in procs.items():
            stats = proc.stop()
            parts[server] = ({**stats["total"], "partial": stats["partial"],
                              "cpu_s": stats["cpu_s"],
                              "cpu_us_per_packet": stats["cpu_us_per_packet"]} if stats else
                             {"error": f"no statistics (see reseq-{server}.log)"})
        if procs:
            voq.record_ddc(run_dir, reseqd.REASSEMBLY_KEY, merge_totals(parts))

