"""The fabric model: one networkx graph that both the Mininet Topo and the controller read.

Conventions (every builder follows them, every consumer relies on them):

* node attributes
  - ``role``: ``"host"`` or a switch role (``"leaf"``, ``"spine"``, ``"ncp"``, ``"ncf"``, ``"switch"``)
  - switches: ``dpid`` (int, unique, > 0); hosts: ``ip`` (dotted quad), ``mac`` (colon hex)
* edge attributes
  - ``ports``: ``{node_name: port_number}`` for both ends (OpenFlow port numbers on switches,
    interface index on hosts, so host ``h1`` port 0 is ``h1-eth0``)
  - ``rate_mbps`` (float), ``queue_packets`` (int), ``tier`` (``"host"`` or ``"fabric"``)
  - optional ``queues``: ``{node_name: packets}``, the egress queue depth at that end where it
    differs from ``queue_packets`` (e.g. a DDC NCP's deep egress queue towards its hosts);
    read it with :func:`egress_queue_packets`
* graph attributes: ``name``, ``kind`` (builder name), ``params`` (the builder's arguments)

The graph is serialised with :func:`to_description` into plain JSON (the controller's input) and
read back with :func:`from_description`, so the engine and the controller share one model.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable

import networkx as nx

from topologies.queues import graph_mtu, tier_queues

HOST = "host"
SWITCH_ROLES = ("leaf", "spine", "ncp", "ncf", "switch")
# Every builder names switches <prefix><number> with these prefixes and hosts h<number>, so that
# `fabric clean` can recognise what an interrupted run left behind (and nothing else).
SWITCH_NAME = re.compile(r"^(l|s|sw|ncp|ncf)[0-9]+$")
# <node>-eth<port>: link ends; <ncp>-vq / <ncp>-vs: a DDC NCP's VOQ stage (topologies.ddc.voq_intfs)
INTF_NAME = re.compile(r"^(l|s|sw|ncp|ncf|h)[0-9]+-(eth[0-9]+|vq|vs)$")
HOST_SUBNET = ipaddress.ip_network("10.0.0.0/16")


def host_ip(index: int) -> str:
    """Address of the index-th host (1-based) inside HOST_SUBNET."""
    if not 1 <= index < HOST_SUBNET.num_addresses - 1:
        raise ValueError(f"host index {index} outside {HOST_SUBNET}")
    return str(HOST_SUBNET.network_address + index)


def host_mac(index: int) -> str:
    """Locally administered MAC of the index-th host (1-based)."""
    return f"02:00:00:{(index >> 16) & 0xFF:02x}:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}"


class PortAllocator:
    """Hands out port numbers per node: switches from 1 (OpenFlow), hosts from 0 (ethN)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, node: str, first: int) -> int:
        port = self._next.get(node, first)
        self._next[node] = port + 1
        return port


class ModelBuilder:
    """Small helper the topology builders use so every model follows the conventions above."""

    def __init__(self, name: str, kind: str, params: dict[str, Any]):
        self.graph = nx.Graph(name=name, kind=kind, params=dict(params))
        self._ports = PortAllocator()
        self._hosts = 0
        self._dpid = 0

    def switch(self, name: str, role: str) -> str:
        assert role in SWITCH_ROLES, role
        self._dpid += 1
        self.graph.add_node(name, role=role, dpid=self._dpid)
        return name

    def host(self, name: str) -> str:
        self._hosts += 1
        self.graph.add_node(name, role=HOST, ip=host_ip(self._hosts), mac=host_mac(self._hosts))
        return name

    def link(self, a: str, b: str, rate_mbps: float, queue_packets: int, tier: str,
             queues: dict[str, int] | None = None) -> None:
        """Link a and b; `queues` optionally overrides the egress queue depth at one end."""
        ports = {}
        for node in (a, b):
            first = 0 if self.graph.nodes[node]["role"] == HOST else 1
            ports[node] = self._ports.take(node, first)
        if queues and not set(queues) <= {a, b}:
            raise ValueError(f"queues {queues} name a node that is not an end of {a}-{b}")
        extra = {"queues": {n: int(q) for n, q in queues.items()}} if queues else {}
        self.graph.add_edge(a, b, ports=ports, rate_mbps=float(rate_mbps),
                            queue_packets=int(queue_packets), tier=tier, **extra)

    def two_tier(self, edge: tuple[str, str, int], core: tuple[str, str, int],
                 hosts_per_edge: int, host_rate_mbps: float, fabric_rate_mbps: float,
                 queue_packets: int, edge_queue_packets: int | None = None) -> None:
        """Edge switches `(prefix, role, count)` carrying hosts h1.. (numbered edge by edge, on
        the edge's first ports), each linked to every core switch `(prefix, role, count)`.
        `edge_queue_packets` sets the edge switch's queue towards its hosts (deep buffers)."""
        edges = [self.switch(f"{edge[0]}{i + 1}", edge[1]) for i in range(edge[2])]
        cores = [self.switch(f"{core[0]}{i + 1}", core[1]) for i in range(core[2])]
        for sw in edges:
            for _ in range(hosts_per_edge):
                host = self.host(f"h{self._hosts + 1}")
                queues = {sw: edge_queue_packets} if edge_queue_packets is not None else None
                self.link(host, sw, host_rate_mbps, queue_packets, "host", queues=queues)
        for sw in edges:
            for c in cores:
                self.link(sw, c, fabric_rate_mbps, queue_packets, "fabric")


# ---------------------------------------------------------------- queries

def hosts(g: nx.Graph) -> list[str]:
    """Host names in creation order."""
    return [n for n, d in g.nodes(data=True) if d["role"] == HOST]


def switches(g: nx.Graph, role: str | None = None) -> list[str]:
    """Switch names in creation order, optionally of one role."""
    return [n for n, d in g.nodes(data=True)
            if d["role"] != HOST and (role is None or d["role"] == role)]


def port(g: nx.Graph, node: str, neighbour: str) -> int:
    """Port number on `node` of its link to `neighbour`."""
    return int(g.edges[node, neighbour]["ports"][node])


def attachment(g: nx.Graph, host: str) -> tuple[str, int]:
    """(switch, switch port) a host hangs off."""
    (sw,) = list(g.neighbors(host))
    return sw, port(g, sw, host)


def intf_name(node: str, port: int) -> str:
    """Interface name of port `port` of `node` (as Mininet names it: `<node>-eth<port>`)."""
    return f"{node}-eth{port}"


def egress_queue_packets(g: nx.Graph, node: str, neighbour: str) -> int:
    """Depth (packets) of the egress queue of `node` on its link to `neighbour`."""
    d = g.edges[node, neighbour]
    return int(d.get("queues", {}).get(node, d["queue_packets"]))


def host_rate_mbps(g: nx.Graph, host: str) -> float:
    """Line rate of a host's NIC."""
    sw, _ = attachment(g, host)
    return float(g.edges[host, sw]["rate_mbps"])


def next_hops(g: nx.Graph, switch: str, dst_host: str,
              dist: dict[str, int] | None = None) -> list[int]:
    """Ports of `switch` that lie on a shortest path to `dst_host`, sorted.

    `dist` (hop counts to dst_host, from nx.single_source_shortest_path_length) may be passed
    in to avoid recomputing it per switch. Hosts never forward, so paths through them are ignored.
    """
    if dist is None:
        dist = switch_distances(g, dst_host)
    if switch not in dist:
        return []
    here = dist[switch]
    return sorted(port(g, switch, n) for n in g.neighbors(switch)
                  if n in dist and dist[n] == here - 1)


def next_hop_table(g: nx.Graph) -> dict[str, dict[str, tuple[int, ...]]]:
    """switch -> host -> next_hops(g, switch, host) (only non-empty ones), for every pair.

    Hosts never transit and hang off one switch, so every switch but a host's own reaches it
    through the same ports as its attachment switch: one search per attachment switch instead
    of one per host (64 x 64 x 64 leaf/spine: 0.2 s instead of 17 s).
    """
    sws = switches(g)
    swset = set(sws)
    nbrs = {s: [(n, d["ports"][s]) for n, d in g.adj[s].items() if n in swset] for s in sws}
    core = g.subgraph(sws)
    table: dict[str, dict[str, tuple[int, ...]]] = {s: {} for s in sws}
    by_switch: dict[str, list[str]] = {}
    for h in hosts(g):
        by_switch.setdefault(attachment(g, h)[0], []).append(h)
    for edge, hs in by_switch.items():
        dist = nx.single_source_shortest_path_length(core, edge)
        for sw, here in dist.items():
            if sw == edge:
                continue
            ports = tuple(sorted(p for n, p in nbrs[sw] if dist.get(n) == here - 1))
            for h in hs:
                table[sw][h] = ports
        for h in hs:
            table[edge][h] = (port(g, edge, h),)
    return table


def switch_distances(g: nx.Graph, dst_host: str) -> dict[str, int]:
    """Hop count from every switch to dst_host, over switches only (hosts never transit)."""
    fabric = g.subgraph(switches(g) + [dst_host])
    return dict(nx.single_source_shortest_path_length(fabric, dst_host))


def fabric_links(g: nx.Graph) -> list[tuple[str, str]]:
    """Switch-to-switch links, each once."""
    return [(u, v) for u, v, d in g.edges(data=True) if d["tier"] == "fabric"]


def oversubscription(g: nx.Graph, role: str) -> float:
    """Worst ratio, over switches of `role`, of host-facing to fabric-facing capacity."""
    worst = 0.0
    for sw in switches(g, role):
        down = sum(g.edges[sw, n]["rate_mbps"] for n in g.neighbors(sw)
                   if g.nodes[n]["role"] == HOST)
        up = sum(g.edges[sw, n]["rate_mbps"] for n in g.neighbors(sw)
                 if g.nodes[n]["role"] != HOST)
        if down and up:
            worst = max(worst, down / up)
    return worst


def bisection_mbps(g: nx.Graph) -> float:
    """Capacity across the worst even split of the hosts' edge switches (min cut, one direction).

    Hosts are grouped by edge switch; the edge switches are split into two halves in order and the
    max flow between the halves (unit: Mbit/s) is the bisection bandwidth. For symmetric Clos
    fabrics every such split is equivalent, so this is the textbook figure.
    """
    edges_sw = sorted({attachment(g, h)[0] for h in hosts(g)}, key=lambda s: g.nodes[s]["dpid"])
    if len(edges_sw) < 2:  # one big switch: limited by the hosts themselves
        hs = hosts(g)
        return sum(host_rate_mbps(g, h) for h in hs[: len(hs) // 2])
    half = len(edges_sw) // 2
    flow = nx.DiGraph()
    for u, v, d in g.edges(data=True):
        flow.add_edge(u, v, capacity=d["rate_mbps"])
        flow.add_edge(v, u, capacity=d["rate_mbps"])
    for s in edges_sw[:half]:
        flow.add_edge("_src", s, capacity=float("inf"))
    for s in edges_sw[half:]:
        flow.add_edge(s, "_dst", capacity=float("inf"))
    value, _ = nx.maximum_flow(flow, "_src", "_dst")
    hosts_left = sum(host_rate_mbps(g, h) for h in hosts(g) if attachment(g, h)[0] in edges_sw[:half])
    return float(min(value, hosts_left))


# ---------------------------------------------------------------- serialisation

def to_description(g: nx.Graph) -> dict[str, Any]:
    """Plain-JSON form of the model: the controller's input file."""
    return {
        "name": g.graph["name"],
        "kind": g.graph["kind"],
        "params": g.graph.get("params", {}),
        **({"mtu": g.graph["mtu"]} if "mtu" in g.graph else {}),
        "nodes": [{"name": n, **d} for n, d in g.nodes(data=True)],
        "links": [{"a": u, "b": v, "a_port": d["ports"][u], "b_port": d["ports"][v],
                   "rate_mbps": d["rate_mbps"], "queue_packets": d["queue_packets"],
                   "tier": d["tier"], **({"queues": d["queues"]} if "queues" in d else {})}
                  for u, v, d in g.edges(data=True)],
    }


def from_description(desc: dict[str, Any]) -> nx.Graph:
    """Inverse of to_description."""
    g = nx.Graph(name=desc["name"], kind=desc["kind"], params=desc.get("params", {}))
    if "mtu" in desc:
        g.graph["mtu"] = desc["mtu"]
    for node in desc["nodes"]:
        attrs = dict(node)
        g.add_node(attrs.pop("name"), **attrs)
    for link in desc["links"]:
        extra = {"queues": dict(link["queues"])} if "queues" in link else {}
        g.add_edge(link["a"], link["b"], ports={link["a"]: link["a_port"], link["b"]: link["b_port"]},
                   rate_mbps=link["rate_mbps"], queue_packets=link["queue_packets"], tier=link["tier"],
                   **extra)
    return g


def setup_table(g: nx.Graph) -> dict[str, Any]:
    """The setup facts printed with every result (docs/metrics.md, "setup table")."""
    hs = hosts(g)
    edge_role = g.nodes[attachment(g, hs[0])[0]]["role"] if hs else None
    return {
        "topology": g.graph["kind"],
        "name": g.graph["name"],
        "hosts": len(hs),
        "switches": len(switches(g)),
        "fabric_links": len(fabric_links(g)),
        "host_rate_mbps": host_rate_mbps(g, hs[0]) if hs else None,
        "bisection_mbps": round(bisection_mbps(g), 3),
        # one switch (no fabric link) is non-blocking: 1.0, not the 0.0 of "no uplink"
        "oversubscription": (round(oversubscription(g, edge_role), 3) if fabric_links(g) else 1.0)
        if edge_role else None,
        "mtu": graph_mtu(g),
        **{f"queue_{tier}": q for tier, q in tier_queues(g).items()},
        **_ddc_setup(g),
    }


def _ddc_setup(g: nx.Graph) -> dict[str, Any]:
    """A DDC's scheduling: VOQs under credits (and reassembly) or none (topologies.ddc)."""
    params = g.graph.get("params", {})
    if g.graph.get("kind") != "ddc" or "scheduler" not in params:
        return {}
    if params["scheduler"] != "credits":
        return {"scheduler": "none"}
    return {"scheduler": f"credits/{params['credit_interval_ms']:g}ms",
            "reassembly": "on" if params.get("reassembly") else "off"}


def iter_links(g: nx.Graph) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """Links in a stable order (creation order), with their attributes."""
    links: Iterable[tuple[str, str, dict[str, Any]]] = g.edges(data=True)
    return links
