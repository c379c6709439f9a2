"""`fabric up`: a fabric kept running for hands-on use, behind Mininet's CLI (fabric.run.console).

    fabric up EXPERIMENT.toml [--fabric NAME] [--live-port N]

The fabric is built exactly as `fabric run` builds it (fabric.run.engine.running_fabric: the
controller with the file's policy, the Mininet network, shaping), the link sampler runs for the
whole session (links.csv) and the live view serves it (fabric.run.live). Each `workload NAME`
runs that workload's part of the experiment's plan (same transfer ids, so the same TCP source
ports and ECMP hashes as `fabric run`) in its own directory workloads/<n>-<name>/ of the session's
run directory. The run lock is held while the fabric is up; everything is torn down on leaving.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import networkx as nx

from topologies import model
from topologies.errors import RunError
from traffic.plan import TrafficPlan
from traffic.records import collect, write_csv

from fabric.analysis import metrics
from fabric.analysis.live import LiveState
from fabric.analysis.paths import FlowPath, read_paths, run_collisions, write_paths
from fabric.analysis.summary import write_json
from fabric.plan.traffic import build_plan
from fabric.run.agents import AgentGroup
from fabric.run.cleanup import stray_nft_tables
from fabric.run.cluster import remote_agent_prefix
from fabric.run.cluster.record import fetch_outputs, push_inputs
from fabric.run.datapath import choose_datapath
from fabric.run.engine import log_to, running_fabric
from fabric.run.rundir import environment, new_run_dir
from fabric.run.runlock import exclusive_run
from fabric.run.live import LiveServer, link_up

log = logging.getLogger("fabric.run.session")


class Hangup(BaseException):
    """The terminal closed (SIGHUP) or SIGTERM arrived: leave the CLI, tear down."""


@contextmanager
def hangup_as_exit() -> Iterator[None]:
    """SIGHUP and SIGTERM raise Hangup (not KeyboardInterrupt, which Mininet's CLI swallows)."""
    def handler(signum: int, frame: Any) -> None:
        raise Hangup(f"signal {signum}")
    old = {s: signal.signal(s, handler) for s in (signal.SIGHUP, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def workload_plan(plan: TrafficPlan, name: str) -> TrafficPlan:
    """The transfers (and collectives, and the connections they use) of one workload, ids
    unchanged."""
    transfers = tuple(t for t in plan.transfers if t.workload == name)
    groups = {t.group for t in transfers}
    conns = {t.conn for t in transfers}
    return TrafficPlan(name, plan.seed, transfers,
                       tuple(c for c in plan.collectives if c.id in groups),
                       tuple(c for c in plan.connections if c.key in conns))


class Session:
    """The state behind the prompt: the running fabric, the workload in flight, the live view."""

    def __init__(self, spec: Any, fab: Any, graph: nx.Graph, plan: TrafficPlan, run_dir: Path,
                 ctl: Any, net: Any, state: LiveState, server: LiveServer | None,
                 out: Any = None):
        self.spec, self.fab, self.graph, self.plan = spec, fab, graph, plan
        self.run_dir = run_dir
        self.ctl, self.net = ctl, net
        self.state, self.server = state, server
        self.out = out or sys.stdout
        self.count = 0
        self.agents: AgentGroup | None = None
        self.current: tuple[str, Path, TrafficPlan, list[FlowPath]] | None = None
        self._watcher: threading.Thread | None = None
        self.down: set[frozenset[str]] = set()
        self.changed: dict[Path, float] = {}   # workload dir -> first fail/restore during it

    # ------------------------------------------------------------ workloads
    def workloads(self) -> str:
        names = [w.name for w in self.spec.workloads]
        running = self.running()
        lines = [f"workloads of {self.spec.name}: {', '.join(names)}  (start one: workload NAME)"]
        if running:
            lines.append(f"running: {running}")
        return "\n".join(lines)

    def running(self) -> str | None:
        return self.current[0] if self.current and self._watcher and \
            self._watcher.is_alive() else None

    def start_workload(self, name: str) -> str:
        if name not in {w.name for w in self.spec.workloads}:
            raise ValueError(f"no workload {name!r} (have: "
                             f"{', '.join(w.name for w in self.spec.workloads)})")
        if self.running():
            raise ValueError(f"workload {self.running()} is still running: wait for it")
        plan = workload_plan(self.plan, name)
        self.count += 1
        wdir = self.run_dir / "workloads" / f"{self.count}-{name}"
        (wdir / "agents").mkdir(parents=True)
        plan.save(wdir / "plan.json")
        hosts_file = self.run_dir / "hosts.json"
        paths = self.net.trace(plan, self.fab.policy)   # cluster mode: on the servers
        write_paths(paths, wdir / "paths.csv")
        names = sorted({t.src for t in plan.transfers} | {t.dst for t in plan.transfers})
        cluster = getattr(self.spec, "cluster", None)
        agents = AgentGroup({h: self.net.host(h) for h in names}, wdir / "plan.json",
                            hosts_file, wdir / "agents", self.spec.run.deadline_s,
                            self.spec.run.tcp_congestion_control,
                            prefix=remote_agent_prefix() if cluster else ())
        self.agents = agents
        try:
            push_inputs(self.net, wdir / "plan.json")   # servers apart from the run directory
            agents.start()
            agents.wait_ready(30, self._controller_alive)
        except BaseException:
            agents.stop()
            raise
        t0 = agents.go(self.spec.run.start_delay_s)
        self.current = (name, wdir, plan, paths)
        self.state.watch(plan, wdir / "agents", t0, paths)
        self.state.status = f"workload {name} running"
        self.state.event(f"workload {name} started ({len(plan.transfers)} flows)", t0)
        self._watcher = threading.Thread(target=self._finish, args=(name, wdir, plan, agents),
                                         name="workload", daemon=True)
        self._watcher.start()
        return (f"workload {name}: {len(plan.transfers)} flows started; results in {wdir}\n"
                f"(`paths` shows where ECMP hashed them; the prompt stays usable)")

    def _controller_alive(self) -> None:
        if not self.ctl.alive():
            raise RunError(f"the controller died (exit code {self.ctl.returncode})")

    def _finish(self, name: str, wdir: Path, plan: TrafficPlan, agents: AgentGroup) -> None:
        error = ""
        try:
            agents.wait_done(self.spec.run.deadline_s + self.spec.run.start_delay_s + 5,
                             self._controller_alive)
        except RunError as exc:
            error = str(exc)
        finally:
            agents.stop()
        try:
            fetch_outputs(self.net, wdir)   # what agents on servers apart from it wrote
        except RunError as exc:
            error = error or str(exc)
        text = self.workload_result(name, wdir, plan, error)
        self.state.status = f"workload {name} finished"
        self.state.event(text.splitlines()[0])
        try:
            self.out.write("\n" + text + "\n")
            self.out.flush()
        except OSError:   # the terminal went away
            pass

    def workload_result(self, name: str, wdir: Path, plan: TrafficPlan, error: str = "") -> str:
        """flows.csv of the workload and a few lines: completion, JCTs, FCTs, collisions."""
        records = collect(wdir / "agents", plan)
        write_csv(records, wdir / "flows.csv")
        done = sum(1 for r in records if r.complete)
        lines = [f"workload {name} {'finished' if not error else 'stopped'}: "
                 f"{done}/{len(records)} flows complete" + (f" ({error})" if error else "")]
        for coll in plan.collectives:
            rate = min(model.host_rate_mbps(self.graph, h) for h in coll.hosts)
            res = metrics.collective_result(coll, records, rate)
            if res.complete:
                lines.append(f"  {coll.id}: JCT {res.jct_s:.3f} s, busbw "
                             f"{res.busbw_mbps:.2f} Mbit/s")
        fct = metrics.fct_distribution(records)
        if fct.count:
            lines.append(f"  FCT p50 {fct.p50 * 1e3:.1f} ms, p99 {fct.p99 * 1e3:.1f} ms")
        for c in self._collisions(wdir, records)[:5]:
            lines.append(f"  {c.text()}")
        return "\n".join(lines)

    def _collisions(self, wdir: Path, records: list[Any]) -> list[Any]:
        return run_collisions(read_paths(wdir / "paths.csv"), records, wdir / "agents",
                              set(model.switches(self.graph)), self.fab.policy,
                              self.changed.get(wdir))

    def stop(self) -> None:
        """Stop the workload in flight (at teardown)."""
        if self.agents is not None:
            self.agents.stop()
        if self._watcher is not None:
            self._watcher.join(10)

    # ------------------------------------------------------------ links
    def set_links(self, args: list[str], up: bool) -> str:
        """fail/restore A B (a fabric link) or S (every link of a switch without hosts)."""
        pairs = self._links_of(args)
        intfs = [model.intf_name(n, model.port(self.graph, n, o)) for a, b in pairs
                 for n, o in ((a, b), (b, a))]
        error = self.net.set_links(intfs, up)   # cluster mode: on each owning server
        if error:
            raise ValueError(f"ip link failed: {error}")
        what = " ".join(args)
        for a, b in pairs:
            (self.down.discard if up else self.down.add)(frozenset((a, b)))
        self.state.event(f"{'restored' if up else 'failed'} {what}")
        if self.current is not None and self.running():  # its traced paths end here
            self.changed.setdefault(self.current[1], time.time())
        log.info("%s %s (%s)", "restored" if up else "failed", what, ", ".join(intfs))
        survivors = self.graph.copy()
        survivors.remove_edges_from(tuple(e) for e in self.down)
        hosts = model.hosts(self.graph)
        joined = nx.node_connected_component(survivors, hosts[0]) >= set(hosts)
        warn = ("" if joined else
                "\nwarning: the fabric is now partitioned; some hosts cannot reach others")
        return (f"{what}: {'up' if up else 'down'} ({len(intfs)} interfaces); the controller "
                f"re-routes on the port-status (see `controller`){warn}")

    def _links_of(self, args: list[str]) -> list[tuple[str, str]]:
        g = self.graph
        for name in args:
            if name not in g:
                raise ValueError(f"{name!r} is not a node of this fabric")
        if len(args) == 2:
            a, b = args
            if not g.has_edge(a, b):
                raise ValueError(f"no link {a}-{b} in this fabric")
            if g.edges[a, b]["tier"] != "fabric":
                raise ValueError(f"{a}-{b} is a host link: only fabric links fail here")
            return [(a, b)]
        if len(args) == 1:
            (s,) = args
            if g.nodes[s]["role"] == model.HOST or any(
                    g.nodes[n]["role"] == model.HOST for n in g.neighbors(s)):
                raise ValueError(f"{s} has hosts: only switches without hosts fail as a whole")
            return [(s, n) for n in g.neighbors(s)]
        raise ValueError("give a link (two switch names) or one switch")

    # ------------------------------------------------------------ views
    def controller_state(self) -> str:
        """Per switch: flow entries, groups and their buckets' packet counters (ovs-ofctl)."""
        c = self.ctl
        kinds: dict[str, int] = {}
        for _, kind, _ in list(c.events):
            kinds[kind] = kinds.get(kind, 0) + 1
        lines = [f"controller pid {c.pid}, policy {self.fab.policy}, "
                 f"{'READY' if c.is_ready() else 'not ready'} ({c.installed_count()}/"
                 f"{c.switch_count} switches installed); events: "
                 + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items()))]
        for sw in model.switches(self.graph):
            lines.append(switch_state(self.graph, sw))
        tables = [f"{family} {name}" for family, name in stray_nft_tables()]
        if tables:   # spray / ddc: per-packet spreading happens in nftables, not OpenFlow
            lines.append(f"nftables spraying tables: {', '.join(tables)} (nft list table ...)")
        tail = [l for l in c.log_tail(200) if "port" in l and ("status" in l or "re-routed" in l)]
        if tail:
            lines.append("recent port-status decisions:")
            lines += ["  " + l for l in tail[-6:]]
        return "\n".join(lines)

    def paths_text(self) -> str:
        if self.current is None:
            return "no workload yet (workload NAME)"
        name, wdir, plan, paths = self.current
        lines = [f"workload {name}: path of each flow (ECMP hash, traced on the switches)"]
        for p in paths[:40]:
            lines.append(f"  flow {p.flow_id:4d} {p.src}->{p.dst} sport {p.sport}: {p.text()}")
        if len(paths) > 40:
            lines.append(f"  ... {len(paths) - 40} more in {wdir / 'paths.csv'}")
        if (wdir / "flows.csv").exists() and not self.running():
            records = collect(wdir / "agents", plan)
            found = self._collisions(wdir, records)
            lines.append(f"collisions while both flows were in flight: {len(found)}")
            lines += [f"  {c.text()}" for c in found[:20]]
        else:
            lines += [f"  now: {c}" for c in self.state.snapshot()["collisions"]]
        return "\n".join(lines)

    def util_text(self) -> str:
        snap = self.state.snapshot()
        lines = [f"link utilisation over the last sample ({snap['status']})"]
        for link in snap["links"]:
            for d in link["dirs"]:
                u = d["util"]
                bar = "#" * min(20, round(u * 20))
                lines.append(f"  {d['src']:>5}->{d['dst']:<5} {bar:<20} {u * 100:5.1f}% of "
                             f"{link['rate_mbps']:g} Mbit/s{'  DOWN' if link['down'] else ''}")
        return "\n".join(lines)

    def live_text(self) -> str:
        if self.server is None:
            return "the live view is off"
        return (f"live view: {self.server.url}  (from another machine: "
                f"ssh -L {self.server.port}:127.0.0.1:{self.server.port} THIS-HOST)")


def switch_state(graph: nx.Graph, sw: str) -> str:
    """One switch's forwarding as the controller installed it (ovs-ofctl): per destination
    host the next hop, or the select group's buckets with their packet counters."""
    def ofctl(*args: str) -> str:
        res = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args, sw], capture_output=True,
                             text=True, timeout=10)
        return res.stdout if res.returncode == 0 else ""
    return describe_switch(graph, sw, ofctl("dump-flows"), ofctl("dump-groups"),
                           ofctl("dump-group-stats"))


def describe_switch(graph: nx.Graph, sw: str, flows: str, groups: str, group_stats: str) -> str:
    """The text of switch_state from ovs-ofctl's dumps (pure, for tests)."""
    peers = {model.port(graph, sw, n): n for n in graph.neighbors(sw)}
    by_ip = {d["ip"]: n for n, d in graph.nodes(data=True) if "ip" in d}
    counts: dict[str, list[int]] = {}
    for line in group_stats.splitlines():
        gid = _field(line, "group_id")
        if gid:
            counts[gid] = [int(x) for x in re.findall(r"bucket\d+:packet_count=(\d+)", line)]
    buckets: dict[str, str] = {}
    for line in groups.splitlines():
        gid = _field(line, "group_id")
        if gid:
            ports = [int(p) for p in re.findall(r"output:(\d+)", line)]
            n = counts.get(gid, [])
            buckets[gid] = " | ".join(f"{peers.get(p, p)} {n[i] if i < len(n) else '?'} pkts"
                                      for i, p in enumerate(ports))
    routes, other = [], 0
    for line in flows.splitlines():
        dst = _field(line, "nw_dst")
        actions = line.split("actions=", 1)[1].strip() if "actions=" in line else ""
        if not dst or not actions:
            other += 1 if actions else 0
            continue
        host = by_ip.get(dst, dst)
        out = [peers.get(int(p), p) for p in re.findall(r"output:(\d+)", actions)]
        group = re.search(r"group:(\d+)", actions)
        extra = " ".join(f"{k}={_field(line, k)}" for k in ("nw_src", "tp_src") if _field(line, k))
        how = (f"ECMP group {group.group(1)} [{buckets.get(group.group(1), '?')}]" if group else
               f"-> {', '.join(map(str, out))}" if out else actions)
        routes.append(f"    to {host}{' (' + extra + ')' if extra else ''}: {how}")
    head = f"  {sw}: {len(routes)} routes" + (f", {other} other entries" if other else "")
    return "\n".join([head, *sorted(routes)])


def _field(line: str, key: str) -> str:
    for part in line.replace(" ", ",").split(","):
        if part.startswith(key + "="):
            return part.split("=", 1)[1]
    return ""


def fabric_up(spec: Any, spec_path: Path | None, out_base: Path, fabric_name: str | None = None,
              live_port: int | None = 0, stdin: Any = None) -> Path:
    """Build the fabric, hand the terminal to the CLI, tear everything down when it returns
    (or on Ctrl-C at the prompt, SIGHUP, SIGTERM). Returns the session's run directory."""
    from fabric.run.console import FabricCLI   # Mininet's CLI: imported only when needed
    fab = spec.fabric(fabric_name)
    graph = fab.build()
    plan = build_plan(spec, graph, spec.seed)  # validates before anything is built
    datapath = choose_datapath(spec.run.datapath)
    run_dir = new_run_dir(out_base, spec.name, f"{fab.name}-up")
    if spec_path is not None:
        shutil.copy(spec_path, run_dir / "spec.toml")
    write_json(run_dir / "environment.json", environment(datapath))
    (run_dir / "fabric.json").write_text(json.dumps(model.to_description(graph), indent=1))
    write_json(run_dir / "hosts.json", {h: graph.nodes[h]["ip"] for h in model.hosts(graph)})
    phases: dict[str, float] = {}
    out = sys.stdout
    try:
        with hangup_as_exit(), exclusive_run(), log_to(run_dir / "engine.log"):
            try:
                with running_fabric(fab, graph, run_dir, datapath, phases,
                                    cluster=getattr(spec, "cluster", None)) as (ctl, net), \
                        net.link_sampler(run_dir, run_dir / "workloads"):
                    state = LiveState(graph, run_dir, f"{spec.name} on {fab.name} "
                                      f"({fab.policy}), fabric up", link_up)
                    state.status = "up"
                    server = LiveServer(state, live_port).start() if live_port is not None \
                        else None
                    session = Session(spec, fab, graph, plan, run_dir, ctl, net, state, server,
                                      out)
                    try:
                        out.write(banner(spec, fab, graph, run_dir, phases, server))
                        out.flush()
                        FabricCLI(net.net, session, **({"stdin": stdin} if stdin else {}))
                    finally:
                        log.info("tearing the fabric down")
                        _say(out, "fabric: tearing the fabric down")
                        session.stop()
                        if server is not None:
                            server.stop()
            except Hangup as exc:
                log.info("leaving on %s", exc)
    finally:
        own_by_invoker(run_dir)
    _say(out, f"fabric: everything removed; session files in {run_dir}")
    return run_dir


def _say(out: Any, text: str) -> None:
    try:
        out.write(text + "\n")
        out.flush()
    except (OSError, ValueError):   # the terminal is gone
        pass


def banner(spec: Any, fab: Any, graph: nx.Graph, run_dir: Path, phases: dict[str, float],
           server: LiveServer | None) -> str:
    hs = model.hosts(graph)
    lines = [f"fabric {fab.name} ({graph.graph['kind']}, policy {fab.policy}) is up: "
             f"{len(hs)} hosts {hs[0]}..{hs[-1]}, switches {' '.join(model.switches(graph))}; "
             f"built in {phases.get('build_s', 0):.1f} s, controller ready in "
             f"{phases.get('controller_ready_s', 0):.1f} s",
             f"session files: {run_dir}"]
    if server is not None:
        lines.append(f"live view: {server.url}")
    lines.append("Mininet's commands work (h1 ping h3, iperf h1 h3, links, dump, help); ours: "
                 "workload [NAME], fail A B, restore A B, controller, paths, util, live. "
                 "Leave with exit, Ctrl-D or Ctrl-C.")
    return "\n".join(lines) + "\n"


def own_by_invoker(path: Path) -> None:
    """Under sudo, give the files back to the user who ran sudo (the lab VM's default user)."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid or not gid or not uid.isdigit() or not gid.isdigit():
        return
    for p in [path, *path.rglob("*")]:
        try:
            os.chown(p, int(uid), int(gid), follow_symlinks=False)
        except OSError:
            pass
