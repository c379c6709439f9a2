"""`adaptive`: Hedera-like re-placement of large flows from flow and port statistics.

What it models: a centralised flow scheduler over a Clos (Hedera, Al-Fares et al., NSDI
2010): edge switches keep an exact-match entry per flow, the controller polls their counters,
flags flows above a fraction of the NIC rate as elephants (Hedera: 10%), estimates their
natural demands and places them with Global First Fit on paths with room, reporting every move.
Today's AI fabrics do the same job with switch-local adaptive routing or with host-side path
selection (multiple QPs, spraying); this is the centralised reference design.

How it is built here:

    first packet of a TCP connection at its ingress switch
      ── catch rule (in_port=host port, tcp, ipv4_dst with >1 next hop):
         copy to controller + forward by the ecmp group
    controller: packet_in -> exact 5-tuple entry on the ingress switch (and any further hop that
      has a choice), path chosen by a hash of the 5-tuple (so it starts out as ECMP would)
    every interval_s: flow stats (per-flow byte counters) + port stats
      -> rates -> elephants -> Hedera demand estimation -> Global First Fit over the shortest
         paths, recomputed from scratch each interval: a flow keeps its path while it has room,
         else takes the least-loaded path with room (reserved, then measured load)
      -> MODIFY_STRICT of the ingress entry (counters kept) for each flow that moves; a Move
         row goes to moves.csv in the run directory and to the controller log.

Everything else (ARP is static, non-TCP, the packets before a flow entry exists) follows the
`ecmp` rules underneath. Entries expire `flow_idle_timeout_s` after a flow ends and are then
forgotten. Known limits: a flow is seen as an elephant one to two intervals after it starts
(two counter samples); a flow that ended within the last interval still counts once, so for one
interval its sender's demand is split with it; only the 5-tuple's path is chosen (no splitting).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import networkx as nx

from topologies.errors import SpecError
from topologies.model import host_rate_mbps, hosts, port, switches

from controller import ofmsgs, placement
from controller.policies import register
from controller.policies.base import Msg, Stats
from controller.policies.ecmp import IPV4, ROUTE_PRIORITY, EcmpPolicy

TCP = 6
TCP_FIN = 0x001
FIN_TABLE = 0             # FIN copies, then on to
ROUTE_TABLE = 1           # per-flow entries, new-flow catch rules, ecmp routes
CATCH_PRIORITY = ROUTE_PRIORITY + 50
FLOW_PRIORITY = ROUTE_PRIORITY + 100
FLOW_COOKIE = 0xADA9
CATCH_COOKIE = 0xADA8
MIN_SAMPLE_S = 0.02       # shorter counter intervals give no usable rate
ACK_STREAM_BYTES = 256    # mean packet size below which a flow is a stream of ACKs

FlowKey = tuple[str, str, int, int]       # ipv4_src, ipv4_dst, tcp_src, tcp_dst
Path = tuple[str, ...]                    # switch names, ingress .. egress
Link = tuple[str, str]                    # directed fabric link (from switch, to switch)


@dataclass(frozen=True)
class Move:
    """One re-placement, as written to moves.csv (the app adds the wall-clock time)."""
    switch: str
    src: str
    dst: str
    flow: str              # "ip:port>ip:port"
    rate_mbps: float       # measured over the last interval
    demand_mbps: float     # Hedera's natural-demand estimate
    old_path: str          # "l1>s1>l2"
    new_path: str


@dataclass
class TrackedFlow:
    """A TCP flow the controller holds an exact-match entry for."""
    key: FlowKey
    src: str
    dst: str
    path: Path
    installed_at: float
    # (entry age on the switch's clock, bytes, packets) of its ingress entry, oldest first;
    # the install itself is (0, 0, 0)
    samples: list[tuple[float, int, int]] = field(default_factory=lambda: [(0.0, 0, 0)])
    rate_mbps: float = 0.0     # over the last rate window
    packet_bytes: float = 0.0  # mean packet size over that window

    @property
    def ingress(self) -> str:
        return self.path[0]

    def name(self) -> str:
        s, d, sp, dp = self.key
        return f"{s}:{sp}>{d}:{dp}"


def path_links(path: Path) -> list[Link]:
    return list(zip(path, path[1:]))


def flow_match(key: FlowKey) -> dict[str, Any]:
    s, d, sp, dp = key
    return {"eth_type": IPV4, "ip_proto": TCP, "ipv4_src": s, "ipv4_dst": d,
            "tcp_src": sp, "tcp_dst": dp}


@register("adaptive")
class AdaptivePolicy(EcmpPolicy):
    """ECMP underneath; per-flow entries at the ingress; elephants re-placed every interval."""

    PARAMS: ClassVar[dict[str, Any]] = {**EcmpPolicy.PARAMS, "interval_s": 0.1, "rate_window_s": 0.5,
                              "elephant_fraction": 0.1, "flow_idle_timeout_s": 5}
    wants_flow_stats = True
    REPORT_FILE = "moves.csv"
    REPORT_ROW = Move

    def __init__(self, graph: nx.Graph, params: dict[str, Any] | None = None):
        self.flows: dict[FlowKey, TrackedFlow] = {}
        self._paths: dict[tuple[str, str], list[Path]] = {}
        super().__init__(graph, params)
        p = self.params
        if not 0.05 <= p["interval_s"] <= 60:
            raise SpecError("params.interval_s", "must be between 0.05 and 60 seconds")
        if not p["interval_s"] <= p["rate_window_s"] <= 60:
            raise SpecError("params.rate_window_s", "must be between interval_s and 60 seconds")
        if not 0 < p["elephant_fraction"] <= 1:
            raise SpecError("params.elephant_fraction", "must be in (0, 1]")
        if not 1 <= p["flow_idle_timeout_s"] <= 3600:
            raise SpecError("params.flow_idle_timeout_s", "must be 1..3600 seconds")
        self.interval_s = self.period_s = float(p["interval_s"])  # period_s: never None here
        self.by_ip = {graph.nodes[h]["ip"]: h for h in hosts(graph)}
        self._port_samples: dict[tuple[int, int], tuple[int, float]] = {}
        self.util_mbps: dict[Link, float] = {}    # measured tx rate per fabric link
        self._flow_seen: dict[int, float] = {}    # dpid -> flow_times value already used

    # ------------------------------------------------------------------ routing state
    def recompute(self) -> None:
        """Routes on the live graph; flows whose path lost a link go back to a hashed path."""
        super().recompute()
        self.next_hop_sets = {sw: dict(routes) for sw, routes in self.routes.items()}
        self._paths = {}
        for f in self.flows.values():
            if any(not self.graph.has_edge(u, v) for u, v in path_links(f.path)):
                paths = self.paths(f.ingress, self.edge_switch(f.dst))
                if paths:
                    f.path = self.hashed_path(f.key, paths)

    def edge_switch(self, host: str) -> str | None:
        """The switch a host hangs off (None if its link is down)."""
        return next(iter(self.graph.neighbors(host)), None)

    def paths(self, ingress: str, egress: str | None) -> list[Path]:
        """Every shortest switch path between two edge switches, sorted."""
        if egress is None:
            return []
        if (ingress, egress) not in self._paths:
            fabric = self.graph.subgraph(switches(self.graph))
            try:
                found = sorted(tuple(p) for p in nx.all_shortest_paths(fabric, ingress, egress))
            except nx.NetworkXNoPath:
                found = []
            self._paths[ingress, egress] = found
        return self._paths[ingress, egress]

    def hashed_path(self, key: FlowKey, paths: list[Path]) -> Path:
        """Initial placement: a hash of the 5-tuple (and hash_basis) picks the path, as ECMP."""
        digest = hashlib.blake2b(f"{self.params['hash_basis']}|{key}".encode(),
                                 digest_size=8).digest()
        return paths[int.from_bytes(digest, "big") % len(paths)]

    def hops(self, f: TrackedFlow, path: Path | None = None) -> dict[str, int]:
        """Switch -> out port for every switch of the path that needs a per-flow entry: the
        ingress (its counters measure the flow) and any other switch with a choice."""
        path = path or f.path
        ip = self.graph.nodes[f.dst]["ip"]
        return {sw: port(self.graph, sw, nxt) for i, (sw, nxt) in enumerate(path_links(path))
                if i == 0 or len(self.next_hop_sets.get(sw, {}).get(ip, ())) > 1}

    # ------------------------------------------------------------------ switch state
    def catch_msgs(self, dp: Any, switch: str) -> list[Msg]:
        """At an edge switch. Table 0: a copy of every TCP FIN from a host to the controller
        (the flow has sent its last byte), everything on to table 1. Table 1: new TCP
        connections towards multi-path destinations are copied to the controller (and still
        forwarded by ecmp)."""
        groups = self.groups(switch)
        msgs = [ofmsgs.flow_add(dp, 0, {}, [], table_id=FIN_TABLE, cookie=CATCH_COOKIE,
                                goto_table=ROUTE_TABLE)]
        for hp in self.host_ports(switch):
            msgs.append(ofmsgs.flow_add(
                dp, CATCH_PRIORITY, {"in_port": hp, "eth_type": IPV4, "ip_proto": TCP,
                                     "tcp_flags": (TCP_FIN, TCP_FIN)},
                [ofmsgs.to_controller(dp)], table_id=FIN_TABLE, cookie=CATCH_COOKIE,
                goto_table=ROUTE_TABLE))
            for ip, ports in self.routes[switch]:
                if len(ports) > 1:
                    msgs.append(ofmsgs.flow_add(
                        dp, CATCH_PRIORITY,
                        {"in_port": hp, "eth_type": IPV4, "ip_proto": TCP, "ipv4_dst": ip},
                        [ofmsgs.to_controller(dp), self.next_hop_action(dp, ports, groups)],
                        table_id=ROUTE_TABLE, cookie=CATCH_COOKIE))
        return msgs

    def flow_entry(self, dp: Any, f: TrackedFlow, out_port: int) -> Msg:
        return ofmsgs.flow_add(dp, FLOW_PRIORITY, flow_match(f.key), [ofmsgs.output(dp, out_port)],
                               table_id=ROUTE_TABLE, cookie=FLOW_COOKIE,
                               idle_timeout=self.params["flow_idle_timeout_s"])

    def switch_state(self, dp: Any, switch: str, now: float) -> list[Msg]:
        """ecmp's table-miss and routes in table 1, the catch rules, and the entry of every
        known flow through this switch."""
        msgs = [ofmsgs.table_miss_drop(dp, ROUTE_TABLE), *self.route_msgs(dp, switch, ROUTE_TABLE),
                *self.catch_msgs(dp, switch)]
        for f in self.flows.values():
            out = self.hops(f).get(switch)
            if out is not None:
                msgs.append(self.flow_entry(dp, f, out))
        return msgs

    # ------------------------------------------------------------------ new flows
    def packet_in(self, dpid: int, in_port: int, fields: dict[str, Any],
                  now: float) -> list[tuple[int, Msg]]:
        """First packet of a TCP flow at its ingress: install its entries on a hashed path.
        A FIN: the flow has sent everything, it no longer counts (its entry stays until its
        idle timeout, so retransmissions keep the path)."""
        switch = self.switch_name(dpid)
        if switch is None or fields.get("ip_proto") != TCP:
            return []
        try:
            key: FlowKey = (fields["ipv4_src"], fields["ipv4_dst"], int(fields["tcp_src"]),
                            int(fields["tcp_dst"]))
        except (KeyError, TypeError, ValueError):
            return []
        if int(fields.get("tcp_flags", 0)) & TCP_FIN:
            self.flows.pop(key, None)
            return []
        src, dst = self.by_ip.get(key[0]), self.by_ip.get(key[1])
        if key in self.flows or src is None or dst is None:
            return []
        paths = self.paths(switch, self.edge_switch(dst))
        if not paths:
            return []
        f = TrackedFlow(key, src, dst, self.hashed_path(key, paths), installed_at=now)
        self.flows[key] = f
        return self._install(f, self.hops(f))

    def _datapath(self, switch: str) -> tuple[int, Any]:
        """(dpid, its connected datapath or None) of a switch."""
        dpid = self.graph.nodes[switch]["dpid"]
        return dpid, self.datapaths.get(dpid)

    def _install(self, f: TrackedFlow, hops: dict[str, int]) -> list[tuple[int, Msg]]:
        out = []
        for sw, p in hops.items():
            dpid, dp = self._datapath(sw)
            if dp is not None:
                out.append((dpid, self.flow_entry(dp, f, p)))
        return out

    # ------------------------------------------------------------------ statistics
    def _update_ports(self, stats: Stats) -> None:
        """Measured tx rate of every fabric link, from the ports' byte counters."""
        for dpid, ports in stats.ports.items():
            sw = self.switch_name(dpid)
            if sw is None:
                continue
            peers = {port(self.graph, sw, n): n for n in self.graph.neighbors(sw)}
            for p, c in ports.items():
                prev = self._port_samples.get((dpid, p))
                self._port_samples[dpid, p] = (c.tx_bytes, c.time)
                if prev is None or c.time <= prev[1] or p not in peers:
                    continue
                self.util_mbps[sw, peers[p]] = max(0, c.tx_bytes - prev[0]) * 8e-6 / (c.time - prev[1])

    def _update_flows(self, stats: Stats) -> None:
        """Per-flow rates from the ingress entries' counters, over the entry's age as the switch
        reports it (immune to when the reply reached us) and over at least rate_window_s: OVS
        moves datapath counters into its OpenFlow rules only when its revalidators run (every
        0.1-0.5 s measured here), so shorter windows see bursts and gaps, not rates.
        Entries that vanished (idle timeout) are forgotten."""
        grace = max(1.0, 2 * self.period_s)
        for dpid, entries in stats.flows.items():
            t = stats.flow_times.get(dpid)
            sw = self.switch_name(dpid)
            if t is None or sw is None or self._flow_seen.get(dpid) == t:
                continue
            self._flow_seen[dpid] = t
            counts: dict[FlowKey, Any] = {}
            for e in entries:
                if e.cookie != FLOW_COOKIE:
                    continue
                m = e.match
                try:
                    counts[(m["ipv4_src"], m["ipv4_dst"], m["tcp_src"], m["tcp_dst"])] = e
                except KeyError:
                    continue
            for key, f in list(self.flows.items()):
                if f.ingress != sw:
                    continue
                if key not in counts:
                    if t - f.installed_at > grace:
                        del self.flows[key]
                    continue
                e = counts[key]
                self._sample(f, e.duration_sec + e.duration_nsec * 1e-9, e.byte_count,
                             e.packet_count)

    def _sample(self, f: TrackedFlow, age: float, nbytes: int, npackets: int) -> None:
        """Add one counter sample; rate and mean packet size over the newest window of at
        least rate_window_s (or since the install, for a younger entry)."""
        last_age, last_bytes, _ = f.samples[-1]
        if age < last_age or nbytes < last_bytes:    # the entry was re-added: new baseline
            f.samples = [(age, nbytes, npackets)]
            return
        if age - last_age < MIN_SAMPLE_S:
            return
        f.samples.append((age, nbytes, npackets))
        window = self.params["rate_window_s"]
        while len(f.samples) > 2 and f.samples[1][0] <= age - window:
            f.samples.pop(0)
        a0, b0, p0 = f.samples[0]
        f.rate_mbps = (nbytes - b0) * 8e-6 / (age - a0)
        f.packet_bytes = (nbytes - b0) / (npackets - p0) if npackets > p0 else 0.0

    # ------------------------------------------------------------------ scheduling
    def tick(self, now: float, stats: Stats) -> list[tuple[int, Msg]]:
        self._update_ports(stats)
        self._update_flows(stats)
        return self.schedule()

    def elephants(self) -> list[TrackedFlow]:
        """Flows whose last measured rate is at least elephant_fraction of their NIC rate.
        Streams of pure ACKs (mean packet under ACK_STREAM_BYTES) never are: they follow the
        data flow they acknowledge, and with per-segment ACKs at emulated rates they reach
        5-10% of the line, near Hedera's 10% threshold."""
        frac = self.params["elephant_fraction"]
        return [f for f in self.flows.values()
                if f.rate_mbps >= frac * host_rate_mbps(self.graph, f.src)
                and f.packet_bytes >= ACK_STREAM_BYTES]

    def schedule(self) -> list[tuple[int, Msg]]:
        """Hedera every interval: estimate the elephants' natural demands, then Global First
        Fit from scratch, largest demand first (older flows first among equals). A flow keeps
        its path while that path has room; otherwise it takes the least-loaded path with room;
        with no room anywhere it stays (and is tried again at the next interval)."""
        big = self.elephants()
        if not big:
            return []
        cap = {h: host_rate_mbps(self.graph, h) for h in {f.src for f in big} | {f.dst for f in big}}
        demands = placement.estimate_demands([(f.src, f.dst) for f in big], cap)
        link_cap = {(u, v): d["rate_mbps"] for u, v, d in self.graph.edges(data=True)}
        link_cap.update({(v, u): r for (u, v), r in list(link_cap.items())})
        reserved: dict[Link, float] = {}
        out: list[tuple[int, Msg]] = []
        for f, d in sorted(zip(big, demands), key=lambda fd: (-fd[1], fd[0].installed_at)):
            others = [p for p in self.paths(f.ingress, self.edge_switch(f.dst)) if p != f.path]
            cands = [f.path] + sorted(others, key=lambda p: self._load(f, p, reserved))
            i = placement.first_fit(d, [path_links(p) for p in cands], reserved, link_cap)
            new = f.path if i is None else cands[i]
            placement.reserve(path_links(new), d, reserved)
            if new != f.path:
                out += self._move(f, new, d)
        return out

    def _load(self, f: TrackedFlow, path: Path, reserved: dict[Link, float]) -> tuple:
        """Sort key of an alternative path: reserved load of its busiest link, then measured
        load (port counters, without the flow's own rate), then the name."""
        own = set(path_links(f.path))
        links = path_links(path)
        measured = max((self.util_mbps.get(l, 0.0) - (f.rate_mbps if l in own else 0.0)
                        for l in links), default=0.0)
        return (max((reserved.get(l, 0.0) for l in links), default=0.0), measured, path)

    def _move(self, f: TrackedFlow, new: Path, demand: float) -> list[tuple[int, Msg]]:
        """Messages that re-route `f` onto `new`, and the Move report."""
        old_hops, new_hops = self.hops(f), self.hops(f, new)
        out: list[tuple[int, Msg]] = []
        for sw, p in new_hops.items():
            dpid, dp = self._datapath(sw)
            if dp is None:
                continue
            if sw in old_hops:   # keep the entry (and at the ingress its counters)
                out.append((dpid, ofmsgs.flow_modify_strict(
                    dp, FLOW_PRIORITY, flow_match(f.key), [ofmsgs.output(dp, p)],
                    table_id=ROUTE_TABLE, cookie=FLOW_COOKIE)))
            else:
                out.append((dpid, self.flow_entry(dp, f, p)))
        for sw in [s for s in old_hops if s not in new_hops]:   # path order, deterministic
            dpid, dp = self._datapath(sw)
            if dp is not None:
                out.append((dpid, ofmsgs.flow_delete_strict(dp, FLOW_PRIORITY,
                                                            flow_match(f.key), ROUTE_TABLE)))
        self.report(Move(f.ingress, f.src, f.dst, f.name(), round(f.rate_mbps, 3),
                         round(demand, 3), ">".join(f.path), ">".join(new)))
        f.path = new
        return out
