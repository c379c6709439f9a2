"""The policy interface: what a forwarding policy gives the controller app.

Why a separate class: the os-ken app stays a thin event pump, and everything a policy decides
(the full state of a switch, periodic re-programming from statistics) is plain Python that unit
tests exercise against a fake flow table, without sockets or switches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import networkx as nx

from topologies.errors import SpecError
from topologies.model import HOST, port, switches

from controller import ofmsgs, statediff

Msg = Any  # an os-ken OpenFlow message object


@dataclass
class PortCounters:
    """One port's counters from the latest port-stats reply; `time` is when it arrived."""
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    rx_dropped: int
    tx_dropped: int
    time: float


@dataclass
class Stats:
    """Latest statistics the app has collected, by dpid. `flows` holds os-ken OFPFlowStats
    entries and is only filled for policies that set `wants_flow_stats`."""
    ports: dict[int, dict[int, PortCounters]] = field(default_factory=dict)
    flows: dict[int, list[Any]] = field(default_factory=dict)
    flow_times: dict[int, float] = field(default_factory=dict)  # dpid -> when `flows` arrived


class Policy:
    """Base policy: validates params, maps dpids to switch names, frames every switch's state.

    Subclasses set `PARAMS` (known parameter names -> defaults, also giving the expected type)
    and implement `switch_state`. `switch_up` always starts from a clean table so a switch that
    reconnects (or kept stale state in fail_mode=secure) gets back exactly the full state.
    """

    name: ClassVar[str] = "base"
    PARAMS: ClassVar[dict[str, Any]] = {}
    interval_s: float | None = None     # period of tick(); None = no periodic work
    wants_flow_stats: bool = False      # also poll flow stats before each tick
    REPORT_FILE: ClassVar[str | None] = None  # CSV in the run dir for take_reports() rows
    REPORT_ROW: ClassVar[type | None] = None  # the dataclass of those rows (the CSV columns)

    def __init__(self, graph: nx.Graph, params: dict[str, Any] | None = None):
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise SpecError("params", f"policy {self.name!r} params must be a table, "
                                      f"got {type(params).__name__}")
        for key, value in params.items():
            if key not in self.PARAMS:
                known = ", ".join(sorted(self.PARAMS)) or "none"
                raise SpecError(f"params.{key}", f"unknown parameter {key!r} for policy "
                                                 f"{self.name!r} (known: {known})")
            default = self.PARAMS[key]
            if default is not None and not _same_kind(value, default):
                raise SpecError(f"params.{key}", f"expected {type(default).__name__}, "
                                                 f"got {value!r}")
            bad = _bad_number(value, f"params.{key}")
            if bad is not None:
                raise SpecError(bad, "must be a finite number within +-1e9")
        self.graph = graph                     # the live fabric: full_graph minus failed links
        self.full_graph = graph
        self.down_ports: set[tuple[str, int]] = set()  # (switch, port) reported down
        self.params: dict[str, Any] = {**self.PARAMS, **params}
        self.dpid_to_switch: dict[int, str] = {graph.nodes[s]["dpid"]: s for s in switches(graph)}
        self.datapaths: dict[int, Any] = {}   # dpid -> connected datapath (for tick messages)
        self._reports: list[Any] = []

    def switch_name(self, dpid: int) -> str | None:
        """Name of the switch with this dpid, or None if the fabric has no such switch."""
        return self.dpid_to_switch.get(dpid)

    def host_ports(self, switch: str) -> dict[int, str]:
        """Port -> host of every host attached to `switch`, in neighbour order (host links
        never leave `self.graph`: port_status only drops fabric links)."""
        g = self.graph
        return {port(g, switch, h): h for h in g.neighbors(switch)
                if g.nodes[h]["role"] == HOST}

    def switch_up(self, dp: Any, now: float) -> list[Msg]:
        """Complete state for a (re)connected switch: wipe flows and groups, then the policy's
        state. Raises KeyError for a dpid the fabric does not know."""
        switch = self.dpid_to_switch[dp.id]
        self.datapaths[dp.id] = dp
        return [ofmsgs.delete_all_flows(dp), ofmsgs.delete_all_groups(dp), ofmsgs.barrier(dp),
                *self.switch_state(dp, switch, now)]

    def switch_down(self, dpid: int, now: float) -> None:
        """A switch disconnected: forget its datapath."""
        self.datapaths.pop(dpid, None)

    def switch_state(self, dp: Any, switch: str, now: float) -> list[Msg]:
        """The policy's groups and flows for one switch (after the wipe)."""
        raise NotImplementedError

    def tick(self, now: float, stats: Stats) -> list[tuple[int, Msg]]:
        """Periodic work every `interval_s`: (dpid, message) pairs to send. Default: none."""
        return []

    def packet_in(self, dpid: int, in_port: int, fields: dict[str, Any],
                  now: float) -> list[tuple[int, Msg]]:
        """A packet the policy's own rules sent to the controller (header fields as OXM names:
        ipv4_src, ipv4_dst, ip_proto, tcp_src, tcp_dst). Default: ignore it."""
        return []

    def take_reports(self) -> list[Any]:
        """Dataclass rows (e.g. flow moves) made since the last call, for REPORT_FILE and the
        log; taking them empties the list."""
        rows, self._reports = self._reports, []
        return rows

    def report(self, row: Any) -> None:
        """Queue one row for take_reports()."""
        self._reports.append(row)

    def recompute(self) -> None:
        """Recompute forwarding from `self.graph` after it changed (a link failed or came back).
        Policies that precompute routes override this; switch_state must then reflect it."""

    def nft_ruleset(self, switch: str) -> str | None:
        """The `nft -f` text the controller applies for this switch (controller.nftables), or
        None for no kernel state. Default: none."""
        return None

    def port_status(self, dpid: int, port_no: int, live: bool, now: float
                    ) -> list[tuple[int, Msg]]:
        """A fabric port went down (`live` False) or came back: drop its link from (or return
        it to) `self.graph`, recompute, and return the messages that move every connected
        switch to its new state without a wipe (controller.statediff). The app re-applies
        nft_ruleset() for switches whose ruleset changed. Other ports are ignored."""
        switch = self.switch_name(dpid)
        if switch is None or not any(
                d["ports"][switch] == port_no and d["tier"] == "fabric"
                for _, _, d in self.full_graph.edges(switch, data=True)):
            return []  # not a fabric link (host links only go down when the network is torn down)
        before = _failed_links(self.full_graph, self.down_ports)
        (self.down_ports.discard if live else self.down_ports.add)((switch, port_no))
        after = _failed_links(self.full_graph, self.down_ports)
        if after == before:
            return []
        old = {d: self.switch_state(dp, self.dpid_to_switch[d], now)
               for d, dp in self.datapaths.items()}
        live_graph = self.full_graph.copy()
        live_graph.remove_edges_from(tuple(e) for e in after)
        self.graph = live_graph
        self.recompute()
        return [(d, m) for d, dp in self.datapaths.items()
                for m in statediff.update(dp, old[d], self.switch_state(
                    dp, self.dpid_to_switch[d], now))]

    def queue_classes(self) -> Any:
        """The egress queue classes every shaped interface needs (topologies.shaping.QueueClasses),
        or None for the default shaping. Read by the engine before the network is built."""
        return None


def _failed_links(g: nx.Graph, down_ports: set[tuple[str, int]]) -> set[frozenset[str]]:
    """Links of `g` with at least one end among the (switch, port) pairs reported down."""
    return {frozenset((u, v)) for u, v, d in g.edges(data=True)
            if any((n, d["ports"][n]) in down_ports for n in (u, v))}


def _bad_number(value: Any, key: str) -> str | None:
    """The key path of a number (also inside lists) that is not finite within +-1e9."""
    if isinstance(value, list):
        return next((bad for i, v in enumerate(value)
                     if (bad := _bad_number(v, f"{key}[{i}]")) is not None), None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if -1e9 <= value <= 1e9 else key  # nan fails too; no float() of huge ints


def _same_kind(value: Any, default: Any) -> bool:
    """Whether a param value fits the type of its default (ints are fine for floats)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))
