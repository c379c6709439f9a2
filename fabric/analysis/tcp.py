"""Hosts' own TCP counters (/proc/net/snmp and /proc/net/netstat, per network namespace).

They show what the fabric did to TCP without a packet capture: retransmissions (loss), and the
reordering that per-packet spraying causes (SACK/DSACK reorder detections, out-of-order queueing).
"""
from __future__ import annotations

from typing import Iterable, Mapping

from fabric.analysis.loss import split_retransmissions

# counter -> what it means in a report
COUNTERS = {
    "Tcp.OutSegs": "segments sent",
    "Tcp.RetransSegs": "segments retransmitted",
    "TcpExt.TCPOFOQueue": "segments the receiver queued out of order",
    "TcpExt.TCPSACKReorder": "reordering detected through SACK",
    "TcpExt.TCPTSReorder": "reordering detected through timestamps",
    "TcpExt.TCPDSACKRecv": "duplicate SACKs received (spurious retransmits)",
    "TcpExt.TCPLostRetransmit": "retransmits lost again",
    "TcpExt.TCPTimeouts": "retransmission timeouts",
}
READ_COMMAND = "cat /proc/net/snmp /proc/net/netstat"


def parse(text: str) -> dict[str, int]:
    """'Proto: names' / 'Proto: values' line pairs -> {'Proto.name': value} (selected counters)."""
    out: dict[str, int] = {}
    lines = text.splitlines()
    for head, vals in zip(lines, lines[1:]):
        if ":" not in head or ":" not in vals:
            continue
        proto, names = head.split(":", 1)
        proto2, values = vals.split(":", 1)
        if proto != proto2 or not values.split() or not values.split()[0].lstrip("-").isdigit():
            continue
        for name, value in zip(names.split(), values.split()):
            key = f"{proto}.{name}"
            if key in COUNTERS:
                out[key] = int(value)
    return out


def delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in COUNTERS}


def total(deltas: Iterable[Mapping[str, int]]) -> dict[str, float]:
    """Sum of per-host deltas, plus derived rates (per million segments sent; ofo_permille is
    the one fraction, the rest are whole numbers)."""
    out: dict[str, float] = dict.fromkeys(COUNTERS, 0)
    for d in deltas:
        for k, v in d.items():
            out[k] += v
    sent = out["Tcp.OutSegs"]
    out["retransmit_ppm"] = round(1e6 * out["Tcp.RetransSegs"] / sent) if sent else 0
    out["reorder_events"] = out["TcpExt.TCPSACKReorder"] + out["TcpExt.TCPTSReorder"]
    out["ofo_permille"] = round(1e3 * out["TcpExt.TCPOFOQueue"] / sent, 1) if sent else 0.0
    out.update(split_retransmissions(out))
    return out
