"""The fidelity verdict of a cluster run, per server (docs/cluster.md, "Measurement and
fidelity per server").

Each server forwards its own switches' traffic with its own ovs-vswitchd on its own CPU, so each
is judged on its own by fabric.analysis.fidelity.assess: its cpu.csv (servers/<name>/cpu.csv:
its machine, its ovs-vswitchd, its agents) and the links.csv rows of directions leaving its
switches (the placement in cluster.json says whose they are). A shortfall is excused by a
neighbour at its rate on any server. The run is FAITHFUL only if every server is; its reasons
and warnings are the servers', prefixed with the server's name.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import networkx as nx

from traffic.plan import TrafficPlan

from fabric.analysis.fidelity import (CpuSample, Fidelity, ServerFidelity, assess,
                                      checked_directions, ovs_rx_drops, read_cpu_csv)
from fabric.analysis.links import LinkSample, read_links_csv

SERVERS_DIR = "servers"   # servers/<name>/cpu.csv, servers/<name>/measure.json


def cluster_layout(run_dir: Path) -> tuple[list[str], dict[str, str]] | None:
    """(server names, node -> server) from a run's cluster.json; None for a one-machine run."""
    path = run_dir / "cluster.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    placement = {str(k): str(v) for k, v in doc.get("placement", {}).items()}
    names = [str(s["server"]) for s in doc.get("servers", [])] or sorted(set(placement.values()))
    return names, placement


def assess_servers(cpu: Mapping[str, Sequence[CpuSample]], links: Sequence[LinkSample],
                   node_server: Mapping[str, str], busy: Mapping[tuple[str, str], float],
                   neighbours: Mapping[tuple[str, str], set[tuple[str, str]]],
                   frame_bytes: int, send_failures: Mapping[str, int | None] | None = None
                   ) -> Fidelity:
    """Each server's verdict (assess() over its samples) and the run's: FAITHFUL only if every
    server of `cpu` is (a server without CPU samples is not: it was not measured)."""
    per = []
    for name in cpu:
        mine = [r for r in links if node_server.get(r.src) == name]
        v = assess(cpu[name], mine, {d: u for d, u in busy.items() if node_server.get(d[0]) == name},
                   neighbours, frame_bytes, context=links)
        per.append((v, ServerFidelity(name, v.faithful, v.reasons, v.warnings, v.cpu,
                                      len(v.busy_links), v.kernel_dropped, ovs_rx_drops(mine),
                                      (send_failures or {}).get(name))))
    out = Fidelity(all(s.faithful for _, s in per),
                   [f"{s.server}: {r}" for _, s in per for r in s.reasons],
                   [f"{s.server}: {w}" for _, s in per for w in s.warnings])
    out.busy_links = [c for v, _ in per for c in v.busy_links]
    out.kernel_dropped = sum(s.kernel_dropped for _, s in per)
    out.servers = [s for _, s in per]
    if not per:
        out.faithful, out.reasons = False, ["not measured: no server's samples"]
    return out


def assess_run(run_dir: Path, graph: nx.Graph, plan: TrafficPlan, policy: str,
               busy: Mapping[tuple[str, str], float]) -> Fidelity | None:
    """assess_servers() over a cluster run's directory; None for a one-machine run."""
    layout = cluster_layout(run_dir)
    if layout is None:
        return None
    names, node_server = layout
    cpu, sends = {}, {}
    for name in names:
        d = run_dir / SERVERS_DIR / name
        cpu[name] = read_cpu_csv(d / "cpu.csv") if (d / "cpu.csv").exists() else []
        sends[name] = _send_failures(d / "measure.json")
    links = read_links_csv(run_dir / "links.csv") if (run_dir / "links.csv").exists() else []
    checked, neighbours = checked_directions(graph, plan, policy, busy)
    from topologies.queues import frame_bytes, graph_mtu
    return assess_servers(cpu, links, node_server, checked, neighbours,
                          frame_bytes(graph_mtu(graph)), sends)


def _send_failures(path: Path) -> int | None:
    try:
        sf = json.loads(path.read_text()).get("send_failures")
    except (OSError, ValueError):
        return None
    return sum(int(n) for n in sf["by_interface"].values()) if sf else None
