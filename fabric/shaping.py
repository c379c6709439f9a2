"""tc commands that give an interface its line rate and queue (pure: returns `tc -batch` lines).

Each shaped interface gets an HTB root whose only class carries the link rate, with a FIFO of
`queue_packets` under it: a tail-drop egress queue of a switch port (or a host NIC) at line rate.
HTB and pfifo exist in every kernel the project targets; netem does not (see PLATFORM.md).
"""
from __future__ import annotations

import networkx as nx

from topologies.mininet_topo import intf_name


def shape_lines(intf: str, rate_mbps: float, queue_packets: int) -> list[str]:
    """`tc -batch` lines shaping `intf` to `rate_mbps`, with a `queue_packets`-deep FIFO.

    Two HTB classes share the line rate: 1:10 (priority 0) for pure TCP ACKs and 1:11 for
    everything else. Without it, every ACK waits behind a
    full data queue (tens of ms at emulated rates), which inflates RTTs far beyond what a scaled
    real fabric shows; RoCE fabrics likewise give ACK/CNP traffic its own high-priority class.
    """
    rate = f"{rate_mbps:g}mbit"
    small = f"{rate_mbps / 20:g}mbit"
    bulk = f"{rate_mbps * 19 / 20:g}mbit"
    # burst: at least one MTU, and ~1 ms of line rate so high rates are not starved by timer ticks
    burst = max(1600, int(rate_mbps * 1e6 / 8 / 1000))
    cls = f"burst {burst} cburst {burst} quantum 1514"
    return [
        f"qdisc replace dev {intf} root handle 1: htb default 11",
        f"class add dev {intf} parent 1: classid 1:1 htb rate {rate} ceil {rate} {cls}",
        f"class add dev {intf} parent 1:1 classid 1:10 htb rate {small} ceil {rate} prio 0 {cls}",
        f"class add dev {intf} parent 1:1 classid 1:11 htb rate {bulk} ceil {rate} prio 1 {cls}",
        f"qdisc add dev {intf} parent 1:10 handle 10: pfifo limit {queue_packets}",
        f"qdisc add dev {intf} parent 1:11 handle 11: pfifo limit {queue_packets}",
        # pure TCP ACKs: IP length < 128, protocol TCP, TCP flags exactly ACK (no PSH: a tiny
        # data segment must not overtake the data queued before it); assumes no IP options
        f"filter add dev {intf} parent 1: protocol ip prio 1 u32 match u16 0x0000 0xff80 at 2 "
        f"match u8 0x06 0xff at 9 match u8 0x10 0xff at 33 flowid 1:10",
    ]


def plan_shaping(graph: nx.Graph) -> dict[str, list[str]]:
    """tc batch lines per node: host nodes shape their NIC, switch ends go to key ''.

    Switch interfaces live in the root namespace (key ''); host interfaces in the host's.
    """
    out: dict[str, list[str]] = {"": []}
    for u, v, d in graph.edges(data=True):
        for node in (u, v):
            key = node if graph.nodes[node]["role"] == "host" else ""
            out.setdefault(key, []).extend(
                shape_lines(intf_name(node, d["ports"][node]), d["rate_mbps"], d["queue_packets"]))
    return out
