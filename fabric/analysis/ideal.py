"""The ideal fabric: what a plan's transfers would achieve under max-min fair sharing (fluid model).

Used to put every measured figure beside its ideal (models predict and explain, they
never stand in for a measured result) and to compute FCT slowdown.

Model
-----
* Links are directed: edge (u, v) of the topology model gives u->v and v->u, each with capacity
  ``rate_mbps`` (HTB shapes every direction separately).
* A transfer becomes *ready* at max(start_s, arrival of every id in `after`) + gap_s (the agent's
  rule, traffic.agent). On a connection of its own it then spends one handshake (SYN / SYN-ACK)
  before data flows; on a persistent connection (`conn`) it spends none, but waits until the
  messages offered to that connection before it have left (one stream, FIFO). Its last byte
  reaches the receiver one store-and-forward pipeline after the fluid part ends.
* Between events (a flow starts or ends) rates are the max-min fair allocation, computed by
  progressive filling (water-filling): all unfrozen flows grow at the same rate until a link fills;
  flows crossing a full link freeze. A flow with goodput ``x`` loads each forward link by
  ``x * frame/mss * share`` and each reverse link (its ACKs) by ``x * ack/(segments_per_ack*mss)
  * share``, where ``share`` is the fraction of the flow on that link.
* Paths (all shortest paths over switches, the controller's equal-cost set):
  - ``spread``: every switch splits a flow evenly over its equal-cost next hops. Exact for
    per-packet spraying ('spray', 'ddc'); for ECMP it is the ideal load balancer (no hash
    collisions), the bound a perfect hash would reach. The run summary uses this view.
  - ``pinned``: each flow on one path picked by ``choose(transfer, paths)``. ECMP's real choice is
    the switch's hash, which we do not know; pass a chooser that mimics it, or use
    :func:`ecmp_average` (mean over seeded uniform random choices: the expected ECMP outcome).
  A single switch has one path, so every view agrees there.

TCP/IP overhead (:class:`WireModel`)
-----------------------------------
HTB and /sys/class/net count Ethernet frames without preamble/FCS. With MTU 1500 and TCP
timestamps (Linux default) a full segment carries MSS = 1500 - 20 (IP) - 20 (TCP) - 12 (timestamp
option) = 1448 payload bytes in 1448 + 66 = 1514 wire bytes: goodput factor 1448/1514 = 0.9564.
The receiver acknowledges every second segment (delayed ACK) with a 66-byte frame on the reverse
direction: 33 wire bytes per 1448 payload bytes (~2.2%), which matters when a link carries data
one way and ACKs of another flow the other way (every ring all-reduce link). Each transfer also
carries the agent's JSON header (~100 bytes). Per-segment rounding is ignored (fluid).
:meth:`WireModel.none` drops all of it (textbook fluid: size / rate) for nccl-tests bounds.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import heapq
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Mapping, Sequence

import networkx as nx

from topologies import model
from topologies.queues import graph_mtu
from traffic.plan import Transfer, TrafficPlan
from traffic.records import FlowRecord

from fabric.analysis.metrics import CollectiveResult, Distribution

Link = tuple[str, str]                 # directed (from node, to node)
Route = tuple[str, ...]                # src host, switches..., dst host
Chooser = Callable[[Transfer, Sequence[Route]], int]
View = Literal["spread", "pinned"]
# The view run summaries use for every policy: exact for per-packet spraying, the no-collision
# bound for per-flow hashing (whose real choice, the switch hash, is unknown here).
SUMMARY_VIEW: View = "spread"
EPS = 1e-9


@dataclass(frozen=True)
class WireModel:
    """How many wire bytes a TCP transfer costs, and the fixed latencies of a connection."""
    mss_bytes: int = 1448            # MTU 1500 - IP 20 - TCP 20 - TCP timestamp option 12
    frame_bytes: int = 1514          # mss + Ethernet 14 + IP 20 + TCP 20 + timestamps 12
    ack_frame_bytes: int = 66        # a pure ACK with timestamps
    segments_per_ack: float = 2.0    # delayed ACK: one ACK per two full segments
    syn_frame_bytes: int = 74        # SYN / SYN-ACK with MSS, SACK-permitted, TS, WS options
    header_bytes: int = 100          # the traffic agent's JSON header line (traffic.agent)
    switch_latency_s: float = 0.0    # per switch traversal (processing), added to every packet
    store_and_forward: bool = True   # the last frame crosses every link after the bottleneck

    @classmethod
    def for_mtu(cls, mtu: int) -> WireModel:
        """Full segments at `mtu`: MSS = MTU - 52 (IP, TCP, timestamps), frame = MTU + 14
        (9000: 8948 payload bytes in 9014 wire bytes, goodput factor 0.993)."""
        return cls(mss_bytes=mtu - 52, frame_bytes=mtu + 14)

    @classmethod
    def none(cls) -> WireModel:
        """No overhead and no latency: the textbook fluid model (size / rate)."""
        return cls(frame_bytes=1448, ack_frame_bytes=0, syn_frame_bytes=0, header_bytes=0,
                   store_and_forward=False)

    @property
    def goodput_factor(self) -> float:
        """Payload bytes per wire byte of a full segment (1448/1514 for MTU 1500 + timestamps)."""
        return self.mss_bytes / self.frame_bytes

    @property
    def forward_cost(self) -> float:
        """Wire bytes on the data direction per payload byte."""
        return self.frame_bytes / self.mss_bytes

    @property
    def reverse_cost(self) -> float:
        """Wire bytes of ACKs on the reverse direction per payload byte."""
        return self.ack_frame_bytes / (self.segments_per_ack * self.mss_bytes)


# ------------------------------------------------------------------------------- paths

def equal_cost_paths(graph: nx.Graph, src: str, dst: str) -> list[Route]:
    """Every shortest src -> dst path whose inner nodes are switches, in a stable order."""
    dist = model.switch_distances(graph, dst)
    first = model.attachment(graph, src)[0]
    out: list[Route] = []

    def walk(node: str, acc: list[str]) -> None:
        if node == dst:
            out.append(tuple(acc))
            return
        for nxt in _next_nodes(graph, node, dst, dist):
            walk(nxt, acc + [nxt])
    if first not in dist:
        raise ValueError(f"no path from {src} to {dst}")
    walk(first, [src, first])
    return out


def _next_nodes(graph: nx.Graph, switch: str, dst: str, dist: Mapping[str, int]) -> list[str]:
    """Neighbours of `switch` one hop closer to dst (switches or dst itself), by port order."""
    here = dist[switch]
    return sorted((n for n in graph.neighbors(switch)
                   if n in dist and dist[n] == here - 1
                   and (n == dst or graph.nodes[n]["role"] != model.HOST)),
                  key=lambda n: model.port(graph, switch, n))


def spread_shares(paths: Sequence[Route]) -> dict[Link, float]:
    """Fraction of a flow on each directed link when every switch splits evenly over next hops.

    All paths are shortest paths, so a node sits at the same depth on every path through it;
    walking nodes by depth pushes each node's whole inflow on before it is split."""
    depth = {n: i for p in paths for i, n in enumerate(p)}
    succ: dict[str, set[str]] = {}
    for p in paths:
        for a, b in zip(p, p[1:]):
            succ.setdefault(a, set()).add(b)
    share: dict[Link, float] = {}
    inflow: dict[str, float] = {paths[0][0]: 1.0}
    for node in sorted(depth, key=lambda n: (depth[n], n)):
        nxt = sorted(succ.get(node, ()))
        for b in nxt:
            f = inflow.get(node, 0.0) / len(nxt)
            share[(node, b)] = share.get((node, b), 0.0) + f
            inflow[b] = inflow.get(b, 0.0) + f
    return share


def path_shares(path: Route) -> dict[Link, float]:
    """A flow pinned to one path: share 1 on each of its links."""
    return dict.fromkeys(zip(path, path[1:]), 1.0)


def hash_chooser(seed: int) -> Chooser:
    """A deterministic stand-in for a switch hash: uniform over paths, fixed per (seed, id)."""
    def choose(t: Transfer, paths: Sequence[Route]) -> int:
        digest = hashlib.blake2b(f"{seed}:{t.id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % len(paths)
    return choose


# ------------------------------------------------------------------------------- max-min sharing

def max_min_rates(demands: Mapping[int, Mapping[Link, float]],
                  capacity: Mapping[Link, float]) -> dict[int, float]:
    """Max-min fair rates by progressive filling (see _fill)."""
    return _fill(demands, capacity)[0]


def _fill(demands: Mapping[int, Mapping[Link, float]],
          capacity: Mapping[Link, float]) -> tuple[dict[int, float], dict[Link, float]]:
    """Max-min fair rates by progressive filling, and the resulting load of every used link.

    demands[f][l] = load flow f puts on link l per unit of its rate; capacity[l] in the same unit.
    Every unfrozen flow sits at the same water level; link l fills when the level reaches
    (capacity - load of frozen flows) / (summed demand of unfrozen flows); the flows on the
    first link to fill freeze at that level. Fill levels only rise as flows freeze, so a heap
    with lazily refreshed entries finds the next link to fill.
    """
    rate: dict[int, float] = {}
    on_link: dict[Link, list[int]] = {}
    coef: dict[Link, float] = {}
    for f, d in demands.items():
        if not d:
            rate[f] = 0.0
        for l, a in d.items():
            if a > 0:
                on_link.setdefault(l, []).append(f)
                coef[l] = coef.get(l, 0.0) + a
    used = dict.fromkeys(coef, 0.0)
    heap = [(capacity[l] / a, l) for l, a in coef.items()]
    heapq.heapify(heap)
    while heap:
        level, l = heapq.heappop(heap)
        if coef[l] <= EPS:
            continue  # every flow on l froze elsewhere
        now = (capacity[l] - used[l]) / coef[l]
        if now > level * (1 + EPS) + EPS:  # levels only rise: re-queue at the current one
            heapq.heappush(heap, (now, l))
            continue
        level = max(level, now)
        for f in on_link[l]:
            if f in rate:
                continue
            rate[f] = level
            for m, a in demands[f].items():
                if a <= 0:
                    continue
                used[m] += a * level
                coef[m] -= a
        coef[l] = 0.0
    for f in demands:
        rate.setdefault(f, 0.0)
    return rate, used


# ------------------------------------------------------------------------------- results

@dataclass(frozen=True)
class IdealFlow:
    """One transfer in the ideal fabric; times relative to the plan's t0, in seconds."""
    id: int
    ready_s: float       # the sender starts it (FCT clock starts)
    end_s: float         # last byte at the receiver
    fct_s: float         # end_s - ready_s, sharing the fabric with the rest of the plan
    alone_fct_s: float   # the same transfer alone on the fabric (FCT slowdown's denominator)


@dataclass
class IdealResult:
    """The ideal outcome of a plan on a fabric under one path view."""
    view: str
    wire: WireModel
    flows: dict[int, IdealFlow]
    jct_s: dict[str, float]                                  # collective id -> ideal JCT
    saturated: dict[Link, list[tuple[float, float]]] = field(default_factory=dict)
    # peak over time of the wire bits/s leaving switch ports: the forwarding work the plan asks
    # of the switch datapath (fabric.analysis.fidelity compares it with what this machine kept up with)
    peak_forwarding_bps: float = 0.0
    # the part of it delivered to hosts (switch -> host ports), at its own peak: each of those
    # frames also costs the datapath the receiving host's TCP work (fabric.analysis.capacity)
    peak_delivery_bps: float = 0.0
    # per link: (seconds it carried anything, bits it carried) -> its utilisation while active
    active: dict[Link, tuple[float, float]] = field(default_factory=dict)
    capacity_bps: dict[Link, float] = field(default_factory=dict)

    def active_utilisation(self, link: Link) -> float:
        """Bits carried / (seconds active x capacity): 1.0 for a link that is full whenever it
        carries anything (the figure fabric.analysis.fidelity compares with the measured one)."""
        secs, bits = self.active.get(link, (0.0, 0.0))
        return bits / (secs * self.capacity_bps[link]) if secs > 0 else math.nan

    @property
    def makespan_s(self) -> float:
        return max((f.end_s for f in self.flows.values()), default=0.0)

    def busy_links(self, min_s: float, max_gap_s: float = 0.05) -> dict[Link, float]:
        """Links the ideal fabric keeps full for at least `min_s` in one stretch (gaps up to
        `max_gap_s`, e.g. a handshake between two ring steps, do not break a stretch):
        link -> longest stretch in seconds."""
        out = {}
        for l, spans in self.saturated.items():
            longest, start, last = 0.0, -math.inf, -math.inf
            for a, b in spans:
                if a - last > max_gap_s:
                    start = a
                last = b
                longest = max(longest, b - start)
            if longest >= min_s:
                out[l] = longest
        return out


# ------------------------------------------------------------------------------- the simulation

class _Routing:
    """Per (src, dst): the link shares of a flow and its fixed latencies (cached)."""

    def __init__(self, graph: nx.Graph, wire: WireModel, view: View, choose: Chooser | None):
        if view not in ("spread", "pinned"):
            raise ValueError(f"unknown path view {view!r} (spread or pinned)")
        if view == "pinned" and choose is None:
            raise ValueError("the pinned view needs a path chooser")
        self.graph, self.wire, self.view, self.choose = graph, wire, view, choose
        self._paths: dict[tuple[str, str], list[Route]] = {}

    def paths(self, src: str, dst: str) -> list[Route]:
        key = (src, dst)
        if key not in self._paths:
            self._paths[key] = equal_cost_paths(self.graph, src, dst)
        return self._paths[key]

    def shares(self, t: Transfer) -> dict[Link, float]:
        paths = self.paths(t.src, t.dst)
        if self.view == "pinned":
            assert self.choose is not None
            return path_shares(paths[self.choose(t, paths) % len(paths)])
        return spread_shares(paths)

    def demand(self, shares: Mapping[Link, float]) -> dict[Link, float]:
        """Wire bits per payload bit on each link: data forward, ACKs on the reverse links."""
        w = self.wire
        d: dict[Link, float] = {}
        for (a, b), s in shares.items():
            d[(a, b)] = d.get((a, b), 0.0) + s * w.forward_cost
            if w.reverse_cost:
                d[(b, a)] = d.get((b, a), 0.0) + s * w.reverse_cost
        return d

    def latencies(self, t: Transfer) -> tuple[float, float]:
        """(handshake before data flows, store-and-forward tail after the fluid part ends)."""
        w, g = self.wire, self.graph
        setup = tail = 0.0
        paths = self.paths(t.src, t.dst)
        for p in paths:
            rates = [g.edges[a, b]["rate_mbps"] * 1e6 for a, b in zip(p, p[1:])]
            hops = w.switch_latency_s * (len(p) - 2)
            setup += 2 * (sum(w.syn_frame_bytes * 8 / r for r in rates) + hops)
            frame = [w.frame_bytes * 8 / r for r in rates]
            tail += (sum(frame) - max(frame) if w.store_and_forward else 0.0) + hops
        return setup / len(paths), tail / len(paths)


def ideal_plan(graph: nx.Graph, plan: TrafficPlan, view: View = "spread",
               choose: Chooser | None = None, wire: WireModel | None = None) -> IdealResult:
    """Simulate `plan` on `graph` as fluid flows under max-min fair sharing (see module doc)."""
    return _FluidSim(graph, plan, _Routing(graph, wire or WireModel.for_mtu(graph_mtu(graph)), view,
                                        choose)).run()


class _FluidSim:
    """One event-driven run of the fluid model: flows become ready (start time, dependencies,
    gap), activate after their handshake, share links max-min fairly, arrive after their
    store-and-forward tail; link load is accounted between events."""

    def __init__(self, graph: nx.Graph, plan: TrafficPlan, routing: _Routing):
        self.plan, self.routing, wire = plan, routing, routing.wire
        self.capacity: dict[Link, float] = {}
        for u, v, d in graph.edges(data=True):
            self.capacity[(u, v)] = self.capacity[(v, u)] = d["rate_mbps"] * 1e6
        self.by_id = plan.by_id()
        ts = plan.transfers
        self.demand = {t.id: routing.demand(routing.shares(t)) for t in ts}
        self.lat = {t.id: routing.latencies(t) for t in ts}
        for t in ts:                 # a persistent connection is open already: no handshake
            if t.conn is not None:
                self.lat[t.id] = (0.0, self.lat[t.id][1])
        self.conn_busy: dict[str, int] = {}           # connection -> transfer on the wire
        self.conn_queue: dict[str, list[int]] = {}    # connection -> offered, waiting (FIFO)
        self.work = {t.id: (t.size_bytes + wire.header_bytes) * 8.0 for t in ts}
        self.waiting = {t.id: len(set(t.after)) for t in ts}
        self.dependents: dict[int, list[int]] = {}
        for t in ts:
            for a in set(t.after):
                self.dependents.setdefault(a, []).append(t.id)
        self.dep_end: dict[int, float] = {}
        self.ready: dict[int, float] = {}
        self.end: dict[int, float] = {}
        self.heap: list[tuple[float, int, int]] = []   # (time, kind 0=activate 1=arrive, id)
        self.active: dict[int, float] = {}            # id -> remaining payload bits
        self.rates: dict[int, float] = {}
        self.load: dict[Link, float] = {}
        self.switch_nodes = set(model.switches(graph))
        self.peak_fwd = 0.0
        self.peak_dlv = 0.0
        self.active_bits: dict[Link, tuple[float, float]] = {}
        self.saturated: dict[Link, list[tuple[float, float]]] = {}
        self.now = 0.0

    def run(self) -> IdealResult:
        for t in self.plan.transfers:
            if not self.waiting[t.id]:
                self._make_ready(t.id)
        while self.heap or self.active:
            t_next = self._next_event()
            self._advance(t_next)
            changed = self._finish_fluid()
            changed = self._pop_events() or changed
            if changed:
                self.rates, self.load = _fill({f: self.demand[f] for f in self.active},
                                              self.capacity)
        return self._result()

    def _make_ready(self, tid: int) -> None:
        t = self.by_id[tid]
        self.ready[tid] = max(t.start_s, self.dep_end.get(tid, 0.0)) + t.gap_s
        heapq.heappush(self.heap, (self.ready[tid] + self.lat[tid][0], 0, tid))

    def _next_event(self) -> float:
        t_next = self.heap[0][0] if self.heap else math.inf
        for f, rem in self.active.items():
            if self.rates[f] > 0:
                t_next = min(t_next, self.now + rem / self.rates[f])
        if t_next == math.inf:
            raise RuntimeError("ideal model stalled: a flow has no capacity")
        return t_next

    def _advance(self, t_next: float) -> None:
        """Move the clock to t_next: drain the active flows, account link load and saturation."""
        dt = t_next - self.now
        if dt > 0 and self.active:
            self.peak_fwd = max(self.peak_fwd, sum(x for link, x in self.load.items()
                                                   if link[0] in self.switch_nodes))
            self.peak_dlv = max(self.peak_dlv, sum(
                x for link, x in self.load.items()
                if link[0] in self.switch_nodes and link[1] not in self.switch_nodes))
            for link, x in self.load.items():
                if x > 0:
                    secs, bits = self.active_bits.get(link, (0.0, 0.0))
                    self.active_bits[link] = (secs + dt, bits + x * dt)
            for link, x in self.load.items():
                if x >= self.capacity[link] * (1 - 1e-6):
                    self.saturated.setdefault(link, []).append((self.now, t_next))
        for f in self.active:
            self.active[f] -= self.rates[f] * dt
        self.now = t_next

    def _finish_fluid(self) -> bool:
        """Flows whose last bit left: their arrival follows after the tail latency."""
        done = [f for f, rem in self.active.items() if rem <= EPS * self.work[f] + 1e-6]
        for f in done:
            del self.active[f]
            heapq.heappush(self.heap, (self.now + self.lat[f][1], 1, f))
            key = self.by_id[f].conn
            if key is not None:      # the connection's next message starts flowing now
                del self.conn_busy[key]
                if self.conn_queue.get(key):
                    nxt = self.conn_queue[key].pop(0)
                    self.conn_busy[key] = nxt
                    self.active[nxt] = self.work[nxt]
        return bool(done)

    def _pop_events(self) -> bool:
        """Activations and arrivals due now; an arrival may make its dependents ready."""
        changed = False
        while self.heap and self.heap[0][0] <= self.now * (1 + EPS) + EPS:
            _, kind, tid = heapq.heappop(self.heap)
            if kind == 0:
                key = self.by_id[tid].conn
                if key is not None:
                    if key in self.conn_busy:        # behind the connection's earlier messages
                        self.conn_queue.setdefault(key, []).append(tid)
                        continue
                    self.conn_busy[key] = tid
                self.active[tid] = self.work[tid]
                changed = True
                continue
            self.end[tid] = self.now
            for dep in self.dependents.get(tid, ()):
                self.dep_end[dep] = max(self.dep_end.get(dep, 0.0), self.now)
                self.waiting[dep] -= 1
                if not self.waiting[dep]:
                    self._make_ready(dep)
        return changed

    def _result(self) -> IdealResult:
        flows = {}
        for t in self.plan.transfers:
            alone = _alone_fct(t, self.demand[t.id], self.lat[t.id], self.work[t.id],
                               self.capacity)
            flows[t.id] = IdealFlow(t.id, self.ready[t.id], self.end[t.id],
                                    self.end[t.id] - self.ready[t.id], alone)
        return IdealResult(self.routing.view, self.routing.wire, flows,
                           collective_jcts(self.plan, flows), _merge(self.saturated),
                           self.peak_fwd, self.peak_dlv, self.active_bits, self.capacity)


def _alone_fct(t: Transfer, demand: Mapping[Link, float], lat: tuple[float, float], work: float,
               capacity: Mapping[Link, float]) -> float:
    rate = min(capacity[l] / a for l, a in demand.items() if a > 0)
    return lat[0] + work / rate + lat[1]


Spans = dict[Link, list[tuple[float, float]]]


def _merge(saturated: Spans) -> Spans:
    out = {}
    for l, spans in saturated.items():
        merged: list[tuple[float, float]] = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1] + 1e-9:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        out[l] = merged
    return out


def collective_jcts(plan: TrafficPlan, flows: Mapping[int, IdealFlow]) -> dict[str, float]:
    """Ideal JCT per collective: last arrival - first start of its transfers (as measured)."""
    out = {}
    for c in plan.collectives:
        mine = [flows[t.id] for t in plan.transfers if t.group == c.id]
        if mine:
            out[c.id] = max(f.end_s for f in mine) - min(f.ready_s for f in mine)
    return out


def ecmp_average(graph: nx.Graph, plan: TrafficPlan, samples: int = 16, seed: int = 0,
                 wire: WireModel | None = None) -> IdealResult:
    """Expected ECMP outcome: per-flow FCT and JCT averaged over `samples` seeded uniform random
    path choices (a hash we cannot predict, modelled as uniform). `saturated` is left empty."""
    if samples < 1:
        raise ValueError("samples must be >= 1")
    rng = random.Random(seed)
    runs = [ideal_plan(graph, plan, "pinned", hash_chooser(rng.randrange(2**32)), wire)
            for _ in range(samples)]
    flows = {}
    for tid, f in runs[0].flows.items():
        fs = [r.flows[tid] for r in runs]
        flows[tid] = IdealFlow(tid, sum(x.ready_s for x in fs) / samples,
                               sum(x.end_s for x in fs) / samples,
                               sum(x.fct_s for x in fs) / samples, f.alone_fct_s)
    jct = {c: sum(r.jct_s[c] for r in runs) / samples for c in runs[0].jct_s}
    return IdealResult("ecmp-average", runs[0].wire, flows, jct)


def fct_slowdown(measured_fct_s: float, alone_fct_s: float) -> float:
    """FCT / ideal FCT of the flow alone, clamped at 1 (HPCC's definition, docs/metrics.md)."""
    return max(1.0, measured_fct_s / alone_fct_s) if alone_fct_s > 0 else math.nan


# ------------------------------------------------------------------------------- measured vs ideal

@dataclass(frozen=True)
class IdealSummary:
    """The ideal model beside a run's measurements (the summary's `ideal` field).

    fct_ratio = measured FCT / ideal FCT of the same flow sharing the fabric as planned;
    fct_slowdown = measured FCT / ideal FCT of the flow alone, clamped at 1 (docs/metrics.md).
    Both over complete flows only.
    """
    view: str
    goodput_factor: float
    makespan_s: float
    fct_s: Distribution
    fct_ratio: Distribution
    fct_slowdown: Distribution


def summarize(result: IdealResult, records: Iterable[FlowRecord]) -> IdealSummary:
    """Measured flows against the ideal result of the same plan."""
    done = [(r.fct_s, result.flows[r.flow_id]) for r in records
            if r.complete and r.fct_s is not None and r.flow_id in result.flows]
    return IdealSummary(
        result.view, result.wire.goodput_factor, result.makespan_s,
        Distribution.of(f.fct_s for f in result.flows.values()),
        Distribution.of(fct / f.fct_s for fct, f in done if f.fct_s > 0),
        Distribution.of(fct_slowdown(fct, f.alone_fct_s) for fct, f in done
                        if f.alone_fct_s > 0))


def with_ideal(c: CollectiveResult, result: IdealResult) -> CollectiveResult:
    """A measured collective with its ideal JCT and measured/ideal ratio filled in."""
    ideal = result.jct_s.get(c.id, math.nan)
    ratio = c.jct_s / ideal if ideal and ideal > 0 else math.nan
    return dataclasses.replace(c, ideal_jct_s=ideal, jct_vs_ideal=ratio)


IDEAL_CSV_COLUMNS = ("flow_id", "ideal_ready", "ideal_end", "ideal_fct_s", "alone_fct_s",
                     "fct_s", "fct_ratio", "fct_slowdown")


def write_csv(result: IdealResult, records: Iterable[FlowRecord], path: Path,
              t0: float = 0.0) -> None:
    """ideal.csv: one row per planned flow, ideal times beside the measured FCT.

    ideal_ready / ideal_end are epoch seconds (t0 + the model's time since the start), the clock
    of flows.csv, links.csv and cpu.csv; durations end in _s."""
    measured = {r.flow_id: r.fct_s for r in records if r.complete}
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(IDEAL_CSV_COLUMNS)
        for tid, x in result.flows.items():
            m = measured.get(tid)
            w.writerow([tid, f"{t0 + x.ready_s:.6f}", f"{t0 + x.end_s:.6f}", f"{x.fct_s:.6f}",
                        f"{x.alone_fct_s:.6f}", "" if m is None else f"{m:.6f}",
                        "" if m is None or x.fct_s <= 0 else f"{m / x.fct_s:.4f}",
                        "" if m is None else f"{fct_slowdown(m, x.alone_fct_s):.4f}"])
