"""What the captured packets say, per flow and link: how a flow's packets were spread over the
captured links, and how far out of order they passed (fabric.run.capture writes the pcaps).

capture.csv (one row per TCP flow direction carrying data, per captured link):

    link          the captured link ("l1-s1"), both directions of the cable
    src, sport, dst, dport    the flow direction (addresses as in hosts.json)
    packets, bytes            data segments (payload > 0) and payload bytes seen on this link
    share         this link's share of the flow's data packets over all captured links
    out_of_order  data segments that passed after a segment with a higher sequence number
                  (reordering, or a retransmission)
    max_reorder_bytes  the largest distance, in sequence space, by which one arrived late

Capturing both uplinks of a leaf shows ECMP (a flow's share is 1.0 on one uplink, 0.0 on the
other) against spraying (about 0.5 each); capturing a receiver's host link shows the reordering
its TCP had to absorb.
"""
from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Iterable



@dataclass(frozen=True)
class FlowOnLink:
    link: str
    src: str
    sport: int
    dst: str
    dport: int
    packets: int
    bytes: int
    share: float
    out_of_order: int
    max_reorder_bytes: int


def _segments(pcap: Path) -> Iterable[tuple[tuple[str, int, str, int], int, int]]:
    """(flow key, sequence number, payload length) of each TCP data segment in a pcap."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapReader
    with PcapReader(str(pcap)) as packets:
        for pkt in packets:
            if IP not in pkt or TCP not in pkt:
                continue
            ip, tcp = pkt[IP], pkt[TCP]
            length = ip.len - ip.ihl * 4 - tcp.dataofs * 4
            if length > 0:
                yield (ip.src, tcp.sport, ip.dst, tcp.dport), tcp.seq, length


def analyse(pcaps: dict[str, Path]) -> list[FlowOnLink]:
    """capture.csv rows from link name -> pcap file."""
    per: dict[tuple[str, tuple[str, int, str, int]], list[int]] = {}
    totals: dict[tuple[str, int, str, int], int] = {}
    for link, pcap in sorted(pcaps.items()):
        state: dict[tuple[str, int, str, int], list[int]] = {}
        for key, seq, length in _segments(pcap):
            # [packets, bytes, out_of_order, max_reorder, highest end seen]
            s = state.setdefault(key, [0, 0, 0, 0, seq + length])
            s[0] += 1
            s[1] += length
            end = seq + length
            if end < s[4]:
                s[2] += 1
                s[3] = max(s[3], s[4] - end)
            s[4] = max(s[4], end)
            totals[key] = totals.get(key, 0) + 1
        for key, s in state.items():
            per[(link, key)] = s
    return [FlowOnLink(link, key[0], key[1], key[2], key[3], s[0], s[1],
                       round(s[0] / totals[key], 4), s[2], s[3])
            for (link, key), s in sorted(per.items())]


def write_csv(rows: Iterable[FlowOnLink], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([x.name for x in fields(FlowOnLink)])
        for r in rows:
            w.writerow(astuple(r))
