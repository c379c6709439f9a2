"""Will this run fit the machine? A prediction from the plan, before anything is built.

The userspace OVS datapath pays per packet, not per byte (bench.capacity; docs/benchmarks.md, "Capacity"): the
thread that forwards also runs the kernel's veth and TCP receive work of every frame it sends, so
what this machine keeps faithful is a number of full-size frames per second of switch egress,
summed over all switches (about the same at MTU 1500 and 9000: FRAME_COST_S). The prediction converts
the plan's peak switch forwarding (the ideal model's `peak_forwarding_bps`, or for plans too large
to replay quickly an upper bound: every sending host at line rate over its longest path) into
frames per second at the fabric's MTU and compares it with the measured budget. The fidelity
verdict after the run stays the authority; this is the warning before it.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topologies import model
from topologies.queues import frame_bytes, graph_mtu
from traffic.plan import TrafficPlan

# What one full-size frame of switch egress costs the datapath, per OVS datapath and per kind of
# egress: a frame delivered to a host costs the receiving host's veth and TCP work too (the
# forwarding thread runs it), a frame sent to another switch only the next switch's receive;
# each (seconds per frame, seconds per byte). Fitted to bench.capacity on this machine kind (2
# cores, userspace datapath, OVS's send buffer at 32 MiB: fabric.analysis.ovsbuf), 2-3 seeds,
# 16 hosts: leaf/spine at MTU 9000 faithful at 55 Mbit/s per host (12.2k frames/s to hosts +
# 24.4k between switches), not at 60; at MTU 1500 faithful at 7.5 (9.9k + 19.8k), not at 10;
# one switch at MTU 9000 faithful at 80 (17.8k to hosts), not at 120. (Before the send buffer
# was raised, jumbo frames looked much dearer: OVS dropped them silently once ~16 waited in all
# queues together.) No figure for the kernel datapath (not available here).
FRAME_COST_S = {"user": {"host": (38.0e-6, 0.8e-9), "fabric": (17.5e-6, 0.0)}}
LEAFSPINE_HOST_SHARE = 1 / 3   # a flow across the spines: 1 of its 3 switch egresses is to a host


def frame_cost_s(datapath: str, mtu: int, to_host: bool) -> float | None:
    """Datapath seconds one full-size frame of switch egress costs (None: unknown datapath)."""
    if datapath not in FRAME_COST_S:
        return None
    fixed, per_byte = FRAME_COST_S[datapath]["host" if to_host else "fabric"]
    return fixed + per_byte * frame_bytes(mtu)


def frame_budget_per_s(datapath: str, mtu: int,
                       host_share: float = LEAFSPINE_HOST_SHARE) -> float | None:
    """Full-size frames/s of switch egress this machine keeps faithful at `mtu` when
    `host_share` of them are delivered to hosts (None: unknown datapath)."""
    host, fabric = frame_cost_s(datapath, mtu, True), frame_cost_s(datapath, mtu, False)
    if host is None or fabric is None:
        return None
    return 1.0 / (host_share * host + (1.0 - host_share) * fabric)


IDEAL_MAX_TRANSFERS = 5_000   # above this, a bound instead of the ideal replay (fabric check < 2 s)


@dataclass(frozen=True)
class CapacityPrediction:
    """The plan's peak switch forwarding against the machine's budget."""
    fabric: str
    mtu: int
    peak_forwarding_mbps: float
    peak_frames_per_s: float
    budget_frames_per_s: float | None   # None: no measured budget for this datapath
    method: str                         # "ideal" (max-min replay) or "bound" (line rate)
    peak_host_frames_per_s: float = 0.0  # of which delivered to hosts (at its own peak)

    @property
    def share(self) -> float | None:
        """Peak frames/s as a fraction of the budget (> 1: expect an UNFAITHFUL verdict)."""
        return None if not self.budget_frames_per_s else self.peak_frames_per_s / self.budget_frames_per_s

    @property
    def fits(self) -> bool:
        return self.share is None or self.share <= 1.0

    def message(self) -> str:
        head = (f"capacity {self.fabric}: peak switch forwarding {self.peak_forwarding_mbps:.0f} "
                f"Mbit/s = {self.peak_frames_per_s / 1e3:.1f}k frames/s "
                f"({self.peak_host_frames_per_s / 1e3:.1f}k to hosts) at MTU {self.mtu} "
                f"({'ideal model' if self.method == 'ideal' else 'upper bound: hosts at line rate'})")
        if self.share is None or self.budget_frames_per_s is None:
            return head + "; no measured budget for this datapath"
        budget = f"{self.budget_frames_per_s / 1e3:.0f}k frames/s of this mix"
        if self.fits:
            return head + f"; {self.share:.0%} of the ~{budget} this machine keeps faithful"
        return (head + f"; WARNING: {self.share:.1f}x the ~{budget} this machine keeps faithful: "
                "expect an UNFAITHFUL run; lower the link rates or raise the fabric's mtu")


def frames_per_s(forwarding_bps: float, mtu: int) -> float:
    """Full-size frames per second carrying `forwarding_bps` of wire bits at `mtu`."""
    return forwarding_bps / (8 * frame_bytes(mtu))


def line_rate_bound_bps(graph: nx.Graph, plan: TrafficPlan) -> float:
    """Every host that sends, at its line rate, over the most switches any of its transfers
    crosses, plus 5% for the ACKs coming back: an upper bound on switch egress."""
    core = graph.subgraph(model.switches(graph))
    attach = {h: model.attachment(graph, h)[0] for h in model.hosts(graph)}
    dist: dict[str, dict[str, int]] = {}
    hops: dict[str, int] = {}
    for t in plan.transfers:
        a, b = attach[t.src], attach[t.dst]
        if a not in dist:
            dist[a] = nx.single_source_shortest_path_length(core, a)
        hops[t.src] = max(hops.get(t.src, 0), dist[a].get(b, 0) + 1)
    return 1.05 * sum(model.host_rate_mbps(graph, h) * 1e6 * n for h, n in hops.items())


def delivery_bound_bps(graph: nx.Graph, plan: TrafficPlan) -> float:
    """Every receiving host's link full, plus 5% for ACKs: an upper bound on delivery."""
    return 1.05 * sum(model.host_rate_mbps(graph, h) * 1e6 for h in {t.dst for t in plan.transfers})


def predict(name: str, graph: nx.Graph, plan: TrafficPlan, datapath: str = "user",
            peak_forwarding_bps: float | None = None,
            peak_delivery_bps: float | None = None) -> CapacityPrediction:
    """Prediction for `plan` on `graph`; pass the ideal model's peaks if they were computed
    (without the delivery peak, all forwarding is counted as delivered to hosts: the dearer)."""
    mtu = graph_mtu(graph)
    method = "ideal"
    if peak_forwarding_bps is None:
        if len(plan.transfers) <= IDEAL_MAX_TRANSFERS:
            from fabric.analysis.ideal import SUMMARY_VIEW, ideal_plan
            res = ideal_plan(graph, plan, SUMMARY_VIEW)
            peak_forwarding_bps, peak_delivery_bps = res.peak_forwarding_bps, res.peak_delivery_bps
        else:
            peak_forwarding_bps, method = line_rate_bound_bps(graph, plan), "bound"
            peak_delivery_bps = min(peak_forwarding_bps, delivery_bound_bps(graph, plan))
    if peak_delivery_bps is None:
        peak_delivery_bps = peak_forwarding_bps
    frames = frames_per_s(peak_forwarding_bps, mtu)
    host_frames = min(frames, frames_per_s(peak_delivery_bps, mtu))
    share = host_frames / frames if frames > 0 else LEAFSPINE_HOST_SHARE
    return CapacityPrediction(name, mtu, peak_forwarding_bps / 1e6, frames,
                              frame_budget_per_s(datapath, mtu, share), method, host_frames)
