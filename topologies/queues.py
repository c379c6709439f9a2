"""Link MTU and egress queue depth sized the way real fabrics size them: in bytes or in time.

A switch's buffer is specified in bytes (or as microseconds of line rate), not in packets; a
packet count means a different buffer at every MTU and every rate. `QueueDepth` holds one of
packets, bytes or seconds; `packets(rate_mbps, mtu)` turns it into the tail-drop FIFO length the
emulator configures (full-size frames of that MTU), so a `"2ms"` queue is 2 ms deep on every
tier whatever its rate. Frames are counted as Linux counts them on an interface: MTU + 14 bytes
of Ethernet header (no preamble, no FCS).
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

DEFAULT_MTU = 1500
MIN_MTU, MAX_MTU = 1280, 9000     # IPv6 minimum; the largest jumbo frame veth + OVS accept here
ETHERNET_HEADER_BYTES = 14
MIN_QUEUE_PACKETS = 2


def frame_bytes(mtu: int) -> int:
    """Wire bytes of a full-size frame at `mtu` (as HTB and interface counters count them)."""
    return mtu + ETHERNET_HEADER_BYTES


@dataclass(frozen=True)
class QueueDepth:
    """An egress queue depth: exactly one of packets, bytes or seconds at the link's rate."""
    packets: int | None = None
    bytes: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.packets, self.bytes, self.seconds) if v is not None]
        if len(given) != 1 or not given[0] > 0:
            raise ValueError(f"a queue depth is one positive number of packets, bytes or "
                             f"seconds, got {self}")

    def packets_at(self, rate_mbps: float, mtu: int) -> int:
        """FIFO length in full-size frames on a link of `rate_mbps` at `mtu` (at least 2)."""
        if self.packets is not None:
            return self.packets
        seconds = self.seconds if self.seconds is not None else 0.0
        size = self.bytes if self.bytes is not None else rate_mbps * 1e6 / 8 * seconds
        return max(MIN_QUEUE_PACKETS, round(size / frame_bytes(mtu)))

    def __str__(self) -> str:
        if self.packets is not None:
            return f"{self.packets} packets"
        if self.bytes is not None:
            return f"{self.bytes} B"
        return f"{(self.seconds or 0.0) * 1e3:g} ms"


def queue_time_s(packets: int, rate_mbps: float, mtu: int) -> float:
    """How long a full queue of `packets` full-size frames takes to drain at `rate_mbps`."""
    return packets * frame_bytes(mtu) * 8 / (rate_mbps * 1e6)


def apply_link_settings(g: nx.Graph, mtu: int, depth: QueueDepth | None) -> nx.Graph:
    """Record the fabric's MTU on `g` and, for a depth in bytes or time, size every link's
    default egress queue from its own rate. Per-end overrides (`queues`, e.g. a DDC NCP's deep
    egress queue) are left as the builder set them."""
    g.graph["mtu"] = int(mtu)
    if depth is not None:
        for _, _, d in g.edges(data=True):
            d["queue_packets"] = depth.packets_at(d["rate_mbps"], mtu)
    return g


def graph_mtu(g: nx.Graph) -> int:
    """The fabric's MTU (every host and switch interface), 1500 for models made before MTUs."""
    return int(g.graph.get("mtu", DEFAULT_MTU))


def tier_queues(g: nx.Graph) -> dict[str, str]:
    """Per tier, the default egress queue in packets and in time at that tier's rate,
    e.g. {"host": "100p=60.6ms", "fabric": "100p=30.3ms"} (first link of each tier)."""
    mtu, out = graph_mtu(g), {}
    for _, _, d in g.edges(data=True):
        if d["tier"] not in out:
            q = d["queue_packets"]
            out[d["tier"]] = f"{q}p={queue_time_s(q, d['rate_mbps'], mtu) * 1e3:.3g}ms"
    return out
