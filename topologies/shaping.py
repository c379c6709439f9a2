"""tc commands that give an interface its line rate and queue (pure: returns `tc -batch` lines).

Each shaped interface gets an HTB root class carrying the link rate, with tail-drop FIFOs of
`queue_packets` under its child classes: the egress queue of a switch port (or a host NIC).
HTB and pfifo exist in every kernel the project targets; netem does not (docs/benchmarks.md,
"Limits of this machine kind").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import networkx as nx

from topologies.model import egress_queue_packets, intf_name
from topologies.queues import DEFAULT_MTU, frame_bytes, graph_mtu


@dataclass(frozen=True)
class QueueClasses:
    """A latency class beside the bulk class on every shaped interface (policy `priority`).

    Packets whose IP DSCP is `dscp` (the ingress switch marks them) go to HTB class 1:12, all
    other data to 1:11, pure ACKs still to 1:10; each class has its own FIFO of the
    interface's queue depth. `strict`: 1:12 is guaranteed almost the whole line rate at HTB
    priority 0, bulk keeps a 1% floor at priority 1, so latency packets leave first whenever
    they wait (the kernel here has no prio qdisc; HTB priorities are the strict scheduler).
    `weighted`: both data classes at the same priority with rates (and HTB quanta) in the
    ratio latency_share : 1 - latency_share, each may borrow the other's idle share (WRR/DWRR).
    """
    scheduling: Literal["strict", "weighted"] = "strict"
    latency_share: float = 0.5
    dscp: int = 46

    def __post_init__(self) -> None:
        if self.scheduling not in ("strict", "weighted"):
            raise ValueError(f"scheduling must be strict or weighted, got {self.scheduling!r}")
        if not 0.0 < self.latency_share < 1.0:
            raise ValueError(f"latency_share must be in (0, 1), got {self.latency_share}")
        if not 0 <= self.dscp < 64:
            raise ValueError(f"dscp must be in 0..63, got {self.dscp}")


def _class_lines(intf: str, rate_mbps: float, queue_packets: int, classes: QueueClasses,
                 burst: int, frame: int) -> list[str]:
    """Data classes 1:11 (bulk) and 1:12 (latency, selected by DSCP) for `classes`."""
    data = rate_mbps * 19 / 20
    if classes.scheduling == "strict":
        shares = {11: (0.01 * rate_mbps, 1, 1.0), 12: (data - 0.01 * rate_mbps, 0, 1.0)}
    else:
        lat, bulk = classes.latency_share, 1.0 - classes.latency_share
        low = min(lat, bulk)
        shares = {11: (data * bulk, 1, bulk / low), 12: (data * lat, 1, lat / low)}
    lines = []
    for cid, (mbps, prio, weight) in sorted(shares.items()):
        lines.append(f"class add dev {intf} parent 1:1 classid 1:{cid} htb rate {mbps:g}mbit "
                     f"ceil {rate_mbps:g}mbit prio {prio} burst {burst} cburst {burst} "
                     f"quantum {round(frame * weight)}")
        lines.append(f"qdisc add dev {intf} parent 1:{cid} handle {cid}: pfifo "
                     f"limit {queue_packets}")
    # DS field = DSCP << 2 (ECN bits masked off); after the pure-ACK filter (prio 1)
    lines.append(f"filter add dev {intf} parent 1: protocol ip prio 2 u32 match u8 "
                 f"{classes.dscp << 2:#04x} 0xfc at 1 flowid 1:12")
    return lines


# TCP control packets served ahead of data (flags byte exactly this; IP length < 128):
# pure ACK, SYN, SYN-ACK. None carries data, so none can overtake data of its own connection.
CONTROL_TCP_FLAGS = (0x10, 0x02, 0x12)


def htb_burst_bytes(rate_mbps: float, mtu: int = DEFAULT_MTU) -> int:
    """HTB burst: at least one full frame (plus slack), four above MTU 1500, and ~1 ms of line
    rate so high rates are not starved by timer ticks. Measured (8 flows x 20 Mbit/s, one
    userspace switch, MTU 9000): a one-frame burst gave 84% of the line rate, four frames 99%;
    HTB loses the tokens a full bucket cannot hold, which at jumbo frames is a whole frame's
    time (3.6 ms at 20 Mbit/s). MTU 1500 keeps its one frame (99.9% measured)."""
    frames = 1 if mtu <= DEFAULT_MTU else 4
    return max(frames * (frame_bytes(mtu) + 86), int(rate_mbps * 1e6 / 8 / 1000))


def shape_lines(intf: str, rate_mbps: float, queue_packets: int,
                classes: QueueClasses | None = None, mtu: int = DEFAULT_MTU) -> list[str]:
    """`tc -batch` lines shaping `intf` to `rate_mbps`, with a `queue_packets`-deep FIFO.

    HTB classes share the line rate: 1:10 (priority 0) for TCP control packets (pure ACKs,
    SYN, SYN-ACK; CONTROL_TCP_FLAGS) and 1:11 for everything else. Without it every ACK and
    handshake waits behind a full data queue (tens of ms at emulated rates, and a dropped SYN
    costs a 1 s retry), which inflates RTTs far beyond what a scaled real fabric shows; RoCE
    fabrics likewise give ACK/CNP traffic its own high-priority class. With `classes`, data is
    split further into bulk 1:11 and latency 1:12 (QueueClasses).
    """
    rate = f"{rate_mbps:g}mbit"
    small = f"{rate_mbps / 20:g}mbit"
    bulk = f"{rate_mbps * 19 / 20:g}mbit"
    burst, frame = htb_burst_bytes(rate_mbps, mtu), frame_bytes(mtu)
    cls = f"burst {burst} cburst {burst} quantum {frame}"
    lines = [
        f"qdisc replace dev {intf} root handle 1: htb default 11",
        f"class add dev {intf} parent 1: classid 1:1 htb rate {rate} ceil {rate} {cls}",
        f"class add dev {intf} parent 1:1 classid 1:10 htb rate {small} ceil {rate} prio 0 {cls}",
        f"qdisc add dev {intf} parent 1:10 handle 10: pfifo limit {queue_packets}",
    ]
    # IP length < 128, protocol TCP, TCP flags byte exactly `flags` (assumes no IP options)
    lines += [f"filter add dev {intf} parent 1: protocol ip prio 1 u32 match u16 0x0000 0xff80 "
              f"at 2 match u8 0x06 0xff at 9 match u8 {flags:#04x} 0xff at 33 flowid 1:10"
              for flags in CONTROL_TCP_FLAGS]
    if classes is not None:
        return lines + _class_lines(intf, rate_mbps, queue_packets, classes, burst, frame)
    return lines + [
        f"class add dev {intf} parent 1:1 classid 1:11 htb rate {bulk} ceil {rate} prio 1 {cls}",
        f"qdisc add dev {intf} parent 1:11 handle 11: pfifo limit {queue_packets}",
    ]


def plan_shaping(graph: nx.Graph, classes: QueueClasses | None = None) -> dict[str, list[str]]:
    """tc batch lines per node: host nodes shape their NIC, switch ends go to key ''.

    Switch interfaces live in the root namespace (key ''); host interfaces in the host's.
    `classes` (from the fabric's policy) adds the latency class to every interface.
    """
    out: dict[str, list[str]] = {"": []}
    mtu = graph_mtu(graph)
    for u, v, d in graph.edges(data=True):
        for node, other in ((u, v), (v, u)):
            key = node if graph.nodes[node]["role"] == "host" else ""
            out.setdefault(key, []).extend(
                shape_lines(intf_name(node, d["ports"][node]), d["rate_mbps"],
                            egress_queue_packets(graph, node, other), classes, mtu))
    return out


def voq_class_minor(index: int) -> int:
    """HTB class minor of the `index`-th VOQ (0-based) on an NCP's VOQ device; its FIFO's
    handle is VOQ_QDISC_BASE + minor (distinct from the root's 1:)."""
    return index + 1


VOQ_QDISC_BASE = 0x100


def voq_lines(intf: str, dst_ips: list[str], rate_mbps: float, queue_packets: int,
              mtu: int = DEFAULT_MTU) -> list[str]:
    """`tc -batch` lines for an NCP's VOQs on `intf`: one HTB class per destination address
    (u32 on the IPv4 destination), each with rate = ceil = `rate_mbps` to start with (the
    credit allocator changes them) and a `queue_packets`-deep FIFO."""
    burst, frame = htb_burst_bytes(rate_mbps, mtu), frame_bytes(mtu)
    lines = [f"qdisc replace dev {intf} root handle 1: htb"]
    for i, ip in enumerate(dst_ips):
        minor = voq_class_minor(i)
        lines += [
            f"class add dev {intf} parent 1: classid 1:{minor:x} htb rate {rate_mbps:g}mbit "
            f"ceil {rate_mbps:g}mbit burst {burst} cburst {burst} quantum {frame}",
            f"qdisc add dev {intf} parent 1:{minor:x} handle {VOQ_QDISC_BASE + minor:x}: pfifo "
            f"limit {queue_packets}",
            f"filter add dev {intf} parent 1: protocol ip prio 1 u32 match ip dst {ip}/32 "
            f"flowid 1:{minor:x}",
        ]
    return lines
