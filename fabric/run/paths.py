"""Ask the switches which path each planned flow takes (`ovs-appctl ofproto/trace`).

For every transfer of a plan: start at the sender's leaf with the flow's 5-tuple and the
dp_hash Open vSwitch will compute for it (fabric.analysis.paths.ovs_sym_l4_hash), let the switch
trace it to an output port, step to the peer on that port, repeat until a host. Traces whose
result only depends on the destination, the input port and the hash bits are cached, so a plan
costs a few traces per (switch, destination, hash slot), not per flow. Policies that spray
packets over every path (`spray`, `ddc`: nftables, outside OpenFlow) get no single path.
Done before the agents start, so tracing never competes with the workload for the datapath.
"""
from __future__ import annotations

import logging
import subprocess
from typing import Any, Callable

import networkx as nx

from topologies import model
from traffic.plan import source_port

from fabric.analysis.paths import (FlowPath, ovs_sym_l4_hash, trace_hash_mask,
                                   trace_output_port)
from fabric.run.agents import AGENT_PORT

log = logging.getLogger("fabric.run.paths")
SPRAYING = frozenset({"spray", "ddc"})
MAX_HOPS = 8
MAX_TRACES = 200   # ~6 ms each here: bounds the set-up time a huge plan can add


def _appctl(switch: str, flow: str) -> str:
    res = subprocess.run(["ovs-appctl", "ofproto/trace", switch, flow], capture_output=True,
                         text=True, timeout=10)
    return res.stdout if res.returncode == 0 else ""


class Tracer:
    """Paths of flows through the running fabric; `run(switch, flow)` returns trace text."""

    def __init__(self, graph: nx.Graph, run: Callable[[str, str], str] = _appctl):
        self.graph = graph
        self.run = run
        self.peers = {(u, d["ports"][u]): v for u, v, d in graph.edges(data=True)} | \
            {(v, d["ports"][v]): u for u, v, d in graph.edges(data=True)}
        self._cache: dict[tuple[str, int, str], list[tuple[int, int, int | None]]] = {}
        self.traces = 0
        self._dist: dict[str, dict[str, int]] = {}

    def _out_port(self, sw: str, in_port: int, sip: str, dip: str, sport: int, dport: int,
                  h: int) -> int | None:
        for mask, value, port in self._cache.get((sw, in_port, dip), []):
            if h & mask == value:
                return port
        if self.traces >= MAX_TRACES:
            raise ValueError(f"more than {MAX_TRACES} traces needed: path left unknown")
        if not model.SWITCH_NAME.match(sw):
            raise ValueError(f"not a switch name: {sw!r}")
        flow = (f"in_port={in_port},tcp,nw_src={sip},nw_dst={dip},tp_src={sport},"
                f"tp_dst={dport},dp_hash={h:#x}")
        text = self.run(sw, flow)
        self.traces += 1
        found = trace_output_port(text)
        hash_mask = trace_hash_mask(text)
        if hash_mask is not None:
            self._cache.setdefault((sw, in_port, dip), []).append((hash_mask, h & hash_mask, found))
        return found

    def path(self, src: str, dst: str, sport: int, dport: int = AGENT_PORT) -> tuple[str, ...]:
        g = self.graph
        sip, dip = g.nodes[src]["ip"], g.nodes[dst]["ip"]
        h = ovs_sym_l4_hash(sip, dip, sport, dport)
        sw, in_port = model.attachment(g, src)
        path = [src, sw]
        dist = self._dist.setdefault(dst, model.switch_distances(g, dst))
        for _ in range(MAX_HOPS):
            choices = model.next_hops(g, sw, dst, dist)
            # one shortest next hop: every policy takes it; several: ask the switch
            out = choices[0] if len(choices) == 1 else \
                self._out_port(sw, in_port, sip, dip, sport, dport, h)
            nxt = self.peers.get((sw, out)) if out is not None else None
            if nxt is None:
                return tuple(path) + ("?",)   # dropped, or a port the model does not know
            path.append(nxt)
            if g.nodes[nxt]["role"] == model.HOST:
                return tuple(path)
            in_port, sw = model.port(g, nxt, sw), nxt
        return tuple(path) + ("?",)


def trace_plan(graph: nx.Graph, plan: Any, policy: str,
               run: Callable[[str, str], str] = _appctl) -> list[FlowPath]:
    """The path of every transfer of `plan` from its planned source port."""
    out = []
    failed = 0
    tracer = Tracer(graph, run)
    for t in plan.transfers:
        sport = source_port(plan.seed, t.conn if t.conn is not None else t.id)  # its connection
        if policy in SPRAYING:
            out.append(FlowPath(t.id, t.src, t.dst, sport, AGENT_PORT, (), "spray"))
            continue
        try:
            path = tracer.path(t.src, t.dst, sport)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            failed += 1
            if failed == 1:
                log.warning("tracing flow %d failed: %s", t.id, exc)
            path = ()
        out.append(FlowPath(t.id, t.src, t.dst, sport, AGENT_PORT, path,
                            "hash" if path else "unknown"))
    log.info("paths of %d flows from %d traces (%d unknown)", len(out), tracer.traces, failed)
    return out
