"""Where each node of a fabric runs when the fabric is split over several servers (cluster mode).

Rules (docs/cluster.md):

* a *unit* is one switch, plus all its hosts when it has any: a leaf/NCP always sits on the same
  server as its hosts (a host link never crosses servers, so NIC shaping and the agents stay local);
* a unit's *load* is the sum of the shaped rates (Mbit/s) of all its links: what its server's
  ovs-vswitchd forwards at most, the proxy for per-server forwarding work;
* a *cut* link joins two units on different servers: it becomes a tunnel (extra RTT, a smaller
  MTU, CPU on both ends). The cut weight is the sum of the cut links' rates.

Algorithm (small and deterministic, same input -> same placement):

1. edge units (switches with hosts) in dpid order are dealt out to servers as contiguous,
   load-balanced blocks (a block boundary is placed where the running load crosses k/n of the
   total), so neighbouring leaves share a server;
2. the remaining switches (spines, NCFs), heaviest first, each go to the server with the most
   rate towards its already-placed neighbours among the servers whose load stays within the bound
   (avg x (1 + SLACK), at least the heaviest unit); ties: the least loaded, then the lowest index;
3. local improvement: move one unit, or swap two units of different servers, whenever that
   lowers (cut weight, max server load) lexicographically and keeps every load within the bound;
   repeat until nothing improves (at most MAX_ROUNDS passes).

Pure: no Mininet, no root; `fabric check` prints the result.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topologies.model import HOST, switches

SLACK = 0.25          # a server may carry up to 25 % more than an even share of the load
MAX_ROUNDS = 50       # local-improvement passes (each pass is O(units^2))
EPS = 1e-9


@dataclass(frozen=True)
class CutLink:
    """A fabric link whose ends run on different servers (it becomes a tunnel)."""
    a: str
    b: str
    server_a: str
    server_b: str
    rate_mbps: float


@dataclass(frozen=True)
class Placement:
    """node -> server, and what the split costs."""
    servers: tuple[str, ...]
    node_server: dict[str, str]
    cut: tuple[CutLink, ...]
    load_mbps: dict[str, float]        # per server: sum of its units' link rates
    hosts: frozenset[str] = frozenset()

    @property
    def cut_mbps(self) -> float:
        return sum(c.rate_mbps for c in self.cut)

    def nodes_on(self, server: str) -> list[str]:
        return [n for n, s in self.node_server.items() if s == server]

    def lines(self) -> list[str]:
        """What `fabric check` prints."""
        out = []
        for s in self.servers:
            sws = [n for n in self.nodes_on(s) if n not in self.hosts]
            hs = [n for n in self.nodes_on(s) if n in self.hosts]
            out.append(f"  {s}: switches {', '.join(sws) or '-'}; {len(hs)} host(s); "
                       f"load {self.load_mbps[s]:g} Mbit/s")
        out.append(f"  cut links ({len(self.cut)}, {self.cut_mbps:g} Mbit/s): " + (", ".join(
            f"{c.a}-{c.b} ({c.server_a}<->{c.server_b})" for c in self.cut) or "none"))
        return out


def _units(g: nx.Graph) -> tuple[list[str], dict[str, list[str]], dict[str, float]]:
    """Switches in creation order, each switch's hosts, each unit's load (Mbit/s)."""
    sws = switches(g)
    members = {s: [n for n in g.neighbors(s) if g.nodes[n]["role"] == HOST] for s in sws}
    load = {s: sum(float(d["rate_mbps"]) for _, _, d in g.edges(s, data=True)) for s in sws}
    return sws, members, load


def place(g: nx.Graph, servers: tuple[str, ...] | list[str]) -> Placement:
    """Split the fabric `g` over `servers` (names, in order); see the module docstring."""
    servers = tuple(servers)
    if not servers:
        raise ValueError("no servers to place on")
    sws, members, load = _units(g)
    n = len(servers)
    total = sum(load.values())
    bound = max(total / n * (1 + SLACK), max(load.values(), default=0.0))
    where: dict[str, int] = {}
    srv_load = [0.0] * n
    # 1. edge units as contiguous balanced blocks
    edges = sorted((s for s in sws if members[s]), key=lambda s: g.nodes[s]["dpid"])
    edge_total = sum(load[s] for s in edges)
    run = 0.0
    for s in edges:
        k = min(n - 1, int((run + load[s] / 2) * n / edge_total)) if edge_total else 0
        where[s] = k
        srv_load[k] += load[s]
        run += load[s]
    # 2. the other switches, heaviest first, greedily next to their neighbours
    rest = sorted((s for s in sws if not members[s]), key=lambda s: (-load[s], g.nodes[s]["dpid"]))
    for s in rest:
        def score(k: int, s: str = s) -> tuple[bool, float, float, int]:
            near = sum(float(d["rate_mbps"]) for _, o, d in g.edges(s, data=True)
                       if where.get(o) == k)
            fits = srv_load[k] + load[s] <= bound + EPS
            return (not fits, -near, srv_load[k], k)
        k = min(range(n), key=score)
        where[s] = k
        srv_load[k] += load[s]
    # 3. local improvement: moves and swaps lowering (cut, max load)
    def cost() -> tuple[float, float]:
        cut = sum(float(d["rate_mbps"]) for a, b, d in g.edges(data=True)
                  if a in where and b in where and where[a] != where[b])
        return round(cut, 6), round(max(srv_load), 6)

    def ok() -> bool:
        return max(srv_load) <= bound + EPS

    best = cost()
    for _ in range(MAX_ROUNDS):
        improved = False
        for s in sws:
            for k in range(n):
                old = where[s]
                if k == old:
                    continue
                where[s], srv_load[old], srv_load[k] = k, srv_load[old] - load[s], srv_load[k] + load[s]
                c = cost()
                if ok() and c < best:
                    best, improved = c, True
                    continue
                where[s], srv_load[old], srv_load[k] = old, srv_load[old] + load[s], srv_load[k] - load[s]
        for i, s in enumerate(sws):
            for t in sws[i + 1:]:
                ks, kt = where[s], where[t]
                if ks == kt:
                    continue
                delta = load[t] - load[s]
                where[s], where[t] = kt, ks
                srv_load[ks] += delta
                srv_load[kt] -= delta
                c = cost()
                if ok() and c < best:
                    best, improved = c, True
                    continue
                where[s], where[t] = ks, kt
                srv_load[ks] -= delta
                srv_load[kt] += delta
        if not improved:
            break
    node_server = {}
    for s in sws:
        node_server[s] = servers[where[s]]
        for h in members[s]:
            node_server[h] = servers[where[s]]
    cut = tuple(CutLink(a, b, node_server[a], node_server[b], float(d["rate_mbps"]))
                for a, b, d in g.edges(data=True) if node_server[a] != node_server[b])
    return Placement(servers, node_server, cut,
                     {servers[k]: round(srv_load[k], 6) for k in range(n)},
                     frozenset(h for s in sws for h in members[s]))


# ---------------------------------------------------------------- the underlay

# Bytes a tunnel adds to each frame on the underlay: VXLAN 50 (outer IPv4 20 + UDP 8 + VXLAN 8 +
# inner Ethernet 14), GRETAP 42 (outer IPv4 20 + GRE with key 8 + inner Ethernet 14); SSH carries
# frames in a TCP stream (no per-frame limit, the slowest and most CPU-hungry of the three).
TUNNEL_OVERHEAD_BYTES = {"vxlan": 50, "gretap": 42, "ssh": 0}


def tunnel_mtu(tunnel: str, underlay_mtu: int) -> int:
    """The largest fabric MTU a tunnel of this kind carries on an underlay of `underlay_mtu`."""
    return underlay_mtu - TUNNEL_OVERHEAD_BYTES[tunnel]
