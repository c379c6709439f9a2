"""Run orchestration: spec -> model -> emulated network + controller -> agents -> records -> summary.

    spec ──► model (networkx) ──► fabric.json ──► controller process (127.0.0.1)
                   │                                  ▲ OpenFlow 1.3
                   └──► Mininet hosts + OVS switches ─┘
    plan.json ──► one agent per host (real TCP) ──► agents/*.csv ──► flows.csv ──► summary.json

Everything created is torn down in `finally` blocks, on success, on failure and on SIGINT/SIGTERM
(SIGTERM is turned into KeyboardInterrupt for the duration of a run). Whatever the agents wrote
before a failure is still collected, and the summary says `partial` or `failed`.
"""
from __future__ import annotations

import json
import logging
import shutil
import signal
import time
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import networkx as nx

from controller import nftables
from controller.process import ControllerProcess
from topologies import model
from topologies.errors import RunError
from traffic.plan import TrafficPlan
from traffic.records import collect, read_csv, write_csv

from fabric.analysis import loss
from fabric.analysis.ovsbuf import fit as ovsbuf_fit
from fabric.analysis import tcp as tcpstats
from fabric.analysis.analyse import analyse
from fabric.analysis.links import read_links_csv
from fabric.analysis.summary import RunSummary, write_json
from fabric.plan.failures import failure_actions
from fabric.plan.traffic import build_plan
from fabric.run import cleanup, ovsbuf, registry, reseqd, voq
from fabric.run.agents import AgentGroup
from fabric.run.datapath import choose_datapath
from fabric.analysis.paths import write_paths
from fabric.run.capture import PacketCapture
from fabric.run.failures import FailureInjector
from fabric.run.live import LiveServer, start_live
from fabric.run.rundir import environment, new_run_dir
from fabric.run.runlock import exclusive_run
from fabric.run.cluster import (cluster_network, host_clock_offsets, record_tunnels,
                                remote_agent_prefix)
from fabric.run.cluster import ddc as cluster_ddc
from fabric.run.cluster.record import fetch_outputs
from fabric.run.emulation import EmulatedNetwork
from fabric.run.startup import bring_up, make_fabric, ready_timeout_s
from fabric.run.samplers import CpuSampler, PidGroups, ovs_vswitchd_pids
from fabric.spec.cluster import ClusterSpec
from fabric.spec.experiment import ExperimentSpec, FabricSpec, capture_interfaces

log = logging.getLogger("fabric.run.engine")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt so every `finally` runs."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextmanager
def log_to(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def run_experiment(spec: ExperimentSpec, spec_path: Path | None, out_base: Path,
                   fabric_name: str | None = None, seed: int | None = None,
                   live_port: int | None = None) -> RunSummary:
    """Run one fabric of `spec` end to end; always returns a summary (status says how it went).

    KeyboardInterrupt (Ctrl-C, SIGTERM) is re-raised after teardown and after the partial
    summary is on disk. `live_port` (0: any free port) serves the live view during the
    workload (fabric.run.live); its URL is printed on stderr.
    """
    fab = spec.fabric(fabric_name)
    seed = spec.seed if seed is None else seed
    graph = fab.build()
    plan = build_plan(spec, graph, seed)  # validates before anything is built
    datapath = choose_datapath(spec.run.datapath)
    run_dir = new_run_dir(out_base, spec.name, fab.name)
    summary = RunSummary(spec.name, fab.name, fab.policy, seed, str(run_dir), datapath=datapath,
                         setup={**model.setup_table(graph),
                                # one switch: one path, the policy has nothing to choose
                                "policy": fab.policy if model.fabric_links(graph) else "none (one path)",
                                "tcp": spec.run.tcp_congestion_control,
                                **({"servers": len(spec.cluster.servers),
                                    "tunnel": spec.cluster.tunnel} if spec.cluster else {})})
    summary.flows_planned = len(plan.transfers)
    if spec.source_toml:  # the experiment as run (--set overrides applied)
        (run_dir / "spec.toml").write_text(spec.source_toml)
    elif spec_path is not None:
        shutil.copy(spec_path, run_dir / "spec.toml")
    write_json(run_dir / "environment.json", environment(datapath))
    (run_dir / "fabric.json").write_text(json.dumps(model.to_description(graph), indent=1))
    plan.save(run_dir / "plan.json")
    write_json(run_dir / "hosts.json", {h: graph.nodes[h]["ip"] for h in model.hosts(graph)})
    interrupted: BaseException | None = None
    with sigterm_as_interrupt(), exclusive_run(), log_to(run_dir / "engine.log"):
        try:
            _emulate(spec, fab, graph, plan, run_dir, datapath, summary, live_port)
            summary.status = "complete"
        except KeyboardInterrupt as exc:
            summary.error = f"interrupted ({exc or 'Ctrl-C'})"
            interrupted = exc
        except RunError as exc:
            summary.error = str(exc)
            log.error("run failed: %s", exc)
        except Exception as exc:
            summary.error = f"{type(exc).__name__}: {exc}"
            log.exception("run crashed")
        finally:
            _finish(plan, graph, run_dir, summary, spec)
    if interrupted is not None:
        raise interrupted
    return summary


@contextmanager
def running_fabric(fab: FabricSpec, graph: nx.Graph, run_dir: Path, datapath: str,
                   phases: dict[str, float], slow_start_after_idle: bool = False,
                   cluster: ClusterSpec | None = None
                   ) -> Iterator[tuple[ControllerProcess, Any]]:
    """The fabric built and fully installed: the controller (the fabric's policy) listening,
    the Mininet network up and shaped, every switch READY. Yields (controller, network); on
    leaving, however it happens, the network, the controller and its nft tables are removed.
    `phases` receives build_s, controller_ready_s and (added to) teardown_s. Used by `fabric
    run` (below) and `fabric up` (fabric.run.session). `cluster`: split over its servers
    (fabric.run.cluster; cluster.json records the servers' checks, placement, tunnel RTTs)."""
    _refuse_leftovers(graph)
    if datapath == "user":   # OVS drops silently what its send buffer cannot hold
        note = ovsbuf_fit(fab.name, graph, ovsbuf.send_buffer_bytes()).message()
        (log.warning if "WARNING" in note else log.info)("%s", note)
    registry.register(run_dir=str(run_dir), nft_tables=[
        ("netdev", nftables.table_name(s)) for s in model.switches(graph)])
    t = time.monotonic()
    network: Any = partial(cluster_network, cluster, run_dir) if cluster else EmulatedNetwork
    ctl, net = make_fabric(graph, fab.policy, fab.policy_params, datapath, run_dir, run_dir,
                           slow_start_after_idle=slow_start_after_idle, network=network)
    if cluster:   # each switch's nft ruleset goes to its server (fabric.run.cluster.ddc)
        ctl.nft_remote = cluster_ddc.write_nft_routes(net, run_dir)
        cluster_ddc.register_names(net)   # VOQ devices, nft tables: for `fabric clean`
    try:
        bring_up(ctl, net)
        phases["build_s"] = time.monotonic() - t
        if cluster:
            record_tunnels(net, run_dir)
        t = time.monotonic()
        ctl.wait_ready(timeout_s=ready_timeout_s(graph))
        phases["controller_ready_s"] = time.monotonic() - t
        # a scheduled DDC's credit loop, and its egress resequencer (reassembly); in cluster
        # mode the VOQs and the resequencers are on the servers
        schedule: AbstractContextManager[Any]
        reassemble: AbstractContextManager[Any]
        if cluster:
            schedule = voq.scheduling(graph, run_dir,
                                      partial(cluster_ddc.credit_devices, net, run_dir))
            reassemble = cluster_ddc.reassembly(net, graph, run_dir)
        else:
            schedule = voq.scheduling(graph, run_dir)
            reassemble = reseqd.reassembly(graph, {h: net.host(h).pid for h in
                                                   model.hosts(graph)}, run_dir)
        with schedule, reassemble:
            yield ctl, net
    finally:
        t = time.monotonic()
        # cluster: the controller first, so it cannot re-apply an nft table on a server
        # (a port going down while the network stops) after the servers were cleaned
        steps = (ctl.stop, net.stop) if cluster else (net.stop, ctl.stop)
        try:
            _teardown(partial(fetch_outputs, net) if cluster else None,  # servers' results
                      *steps, cleanup.remove_nft_tables)  # last: the nft tables
        finally:
            phases["teardown_s"] = phases.get("teardown_s", 0.0) + time.monotonic() - t


def _emulate(spec: ExperimentSpec, fab: Any, graph: nx.Graph, plan: Any, run_dir: Path,
             datapath: str, summary: RunSummary, live_port: int | None = None) -> None:
    phases = summary.phases_s
    with running_fabric(fab, graph, run_dir, datapath, phases,
                        spec.run.tcp_slow_start_after_idle, spec.cluster) as (ctl, net):
        agents: AgentGroup | None = None
        injector: FailureInjector | None = None
        live: LiveServer | None = None

        def controller_alive() -> None:
            if not ctl.alive():
                raise RunError(f"the controller died (exit code {ctl.returncode}); "
                               f"see {run_dir / 'controller.log'}")
        try:
            t = time.monotonic()
            names = sorted({x.src for x in plan.transfers} | {x.dst for x in plan.transfers})
            agents = AgentGroup({h: net.host(h) for h in names}, run_dir / "plan.json",
                                run_dir / "hosts.json", run_dir / "agents", spec.run.deadline_s,
                                spec.run.tcp_congestion_control,
                                prefix=remote_agent_prefix() if spec.cluster else ())
            agents.start()
            registry.register(pids=[p.pid for p in agents.procs.values()])
            # each flow's path from its 5-tuple, asked of the switches before any traffic flows
            paths = net.trace(plan, fab.policy)
            write_paths(paths, run_dir / "paths.csv")
            if live_port is not None:
                live = start_live(graph, run_dir, f"{spec.name} on {fab.name} ({fab.policy})",
                                  live_port)
            agents.wait_ready(30, controller_alive)
            tc = time.monotonic()
            agents.connect(30, controller_alive)   # persistent connections open before t0
            phases["connect_s"] = time.monotonic() - tc
            before = net.tcp_counters(names)
            nic_before = net.nic_queue_drops(names)
            cpu_groups = _cpu_groups(ctl, agents, local_ovs=not spec.cluster)
            # OVS's own drops (its log); cluster mode: each server's, read by its sampler
            send_watch = None if spec.cluster else ovsbuf.SendFailureWatch().start()
            sampler = net.link_sampler(run_dir, run_dir / "plan.json")
            with sampler, \
                    CpuSampler(run_dir / "cpu.csv", cpu_groups), \
                    PacketCapture(capture_interfaces(spec.run.capture, graph),
                                  run_dir / "capture"):  # links.csv, cpu.csv, capture/*.pcap
                t0 = agents.go(spec.run.start_delay_s, host_clock_offsets(run_dir))
                summary.t0 = t0
                injector = FailureInjector(  # [[failure]]: links down at t0 + at_s
                    failure_actions(spec.failures, graph, fab.name), t0,
                    partial(net.set_links, up=False)).start()
                if live is not None:
                    live.state.watch(plan, run_dir / "agents", t0, paths)
                    live.state.add_source(_failure_events(injector))
                    live.state.status = "running"
                agents.wait_done(spec.run.deadline_s + spec.run.start_delay_s + 5,
                                 controller_alive)
                if live is not None:
                    live.state.status = "workload done"
            phases["workload_s"] = time.monotonic() - t
            after = net.tcp_counters(names)
            summary.tcp = tcpstats.total(tcpstats.delta(before[n], after[n]) for n in names)
            summary.loss = loss.as_dict(loss.by_tier(read_links_csv(run_dir / "links.csv"),
                                                     net.nic_queue_drops(names) - nic_before,
                                                     send_watch.stop() if send_watch
                                                     else sampler.send_failures))
        finally:
            t = time.monotonic()

            def stop_injector() -> None:
                if injector is not None:
                    summary.failures = injector.stop()
            try:
                _teardown(stop_injector, agents.stop if agents is not None else None,
                          live.stop if live is not None else None)
            finally:
                phases["teardown_s"] = time.monotonic() - t


def _failure_events(injector: FailureInjector) -> Callable[[], list[tuple[float, str]]]:
    """The injector's applied failures as live-view events."""
    return lambda: [(e.time, f"failure: {e.what} down" + (f" ({e.error})" if e.error else ""))
                    for e in list(injector.events) if e.time is not None]


def _refuse_leftovers(graph: nx.Graph) -> None:
    """RunError if an earlier run's registered leftovers, or anything else using this fabric's
    switch names, is in the way (we hold the run lock: no run of ours is live)."""
    stale = cleanup.registered_leftovers()
    if stale:
        raise RunError(f"an earlier run left {', '.join(stale[:5])}"
                       f"{' ...' if len(stale) > 5 else ''} behind: run `fabric clean` first")
    clash = sorted(set(model.switches(graph)) & registry.existing_bridges())
    if clash:
        raise RunError(f"OVS bridge(s) {', '.join(clash[:5])} exist but no run of this project "
                       "registered them (a Mininet session of your own?): stop it, or remove "
                       "them with ovs-vsctl del-br")


def _teardown(*steps: Callable[[], Any] | None) -> None:
    """Run every step, even when an earlier one raised or a second Ctrl-C interrupted it (else
    bridges or the controller would stay behind); then re-raise the first such exception."""
    first: BaseException | None = None
    for step in steps:
        if step is None:
            continue
        try:
            step()
        except BaseException as exc:
            log.error("teardown step %s failed: %r", getattr(step, "__qualname__", step), exc)
            first = first or exc
    if first is not None:
        raise first


def _finish(plan: TrafficPlan, graph: nx.Graph, run_dir: Path, summary: RunSummary,
            spec: ExperimentSpec | None = None) -> None:
    """Collect whatever the agents wrote into flows.csv, then compute every metric from the run
    directory (fabric.analysis.analyse, the same as `fabric analyse`); write summary.json."""
    try:
        records = (collect(run_dir / "agents", plan, host_clock_offsets(run_dir))
                   if (run_dir / "agents").exists() else [])
        write_csv(records, run_dir / "flows.csv")
        # from flows.csv as written (its rounding too): `fabric analyse` gets the same numbers
        analyse(summary, spec, graph, plan, read_csv(run_dir / "flows.csv"), run_dir)
    finally:
        write_json(run_dir / "summary.json", summary.to_dict())


def _cpu_groups(ctl: ControllerProcess, agents: AgentGroup, local_ovs: bool = True) -> PidGroups:
    """The processes whose CPU the fidelity monitor follows (fabric.analysis.fidelity.GROUPS);
    `local_ovs` False (cluster mode): the switches' ovs-vswitchd are the servers' (measured
    there, fabric.run.cluster.measure), not this machine's."""
    ovs = ovs_vswitchd_pids() if local_ovs else []
    return lambda: {"ovs_vswitchd": ovs, "controller": [ctl.pid] if ctl.pid else [],
                    "agents": [p.pid for p in list(agents.procs.values())]}
