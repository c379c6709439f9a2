"""Read and change HTB classes over rtnetlink, without a `tc` process per call.

The DDC's credit allocator (fabric.run.voq) reads every VOQ class's counters and sets class
rates every few tens of milliseconds; spawning `tc` for that would cost more CPU than the
emulation can spare (a few ms per call). One NETLINK_ROUTE socket in the root namespace does it:
a class dump per device (RTM_GETTCLASS) and a class change (RTM_NEWTCLASS with TCA_HTB_PARMS).
Only what the allocator needs is parsed: bytes sent, backlog, drops and overlimits.
"""
from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

NETLINK_ROUTE = 0
RTM_NEWTCLASS, RTM_GETTCLASS = 40, 42
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCA_KIND, TCA_OPTIONS, TCA_STATS2 = 1, 2, 7
TCA_STATS_BASIC, TCA_STATS_QUEUE = 1, 3
TCA_HTB_PARMS = 1
TC_LINKLAYER_ETHERNET = 1
NLA_F_NESTED = 0x8000
PSCHED_SHIFT = 6  # the kernel's psched tick is 64 ns (PSCHED_NS2TICKS)

_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_TCMSG = struct.Struct("=BBHiIII")  # family, pad, pad, ifindex, handle, parent, info
_NLA = struct.Struct("=HH")
_RATESPEC = struct.Struct("=BBHhHI")  # cell_log, linklayer, overhead, cell_align, mpu, rate


class NetlinkError(OSError):
    """The kernel refused a request (errno from its NLMSG_ERROR answer)."""


@dataclass(frozen=True)
class ClassStats:
    """Counters of one traffic class."""
    handle: int
    sent_bytes: int
    sent_packets: int
    backlog_bytes: int
    qlen: int
    drops: int
    overlimits: int


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    return _NLA.pack(_NLA.size + len(payload), kind) + payload + b"\0" * (_align(len(payload)) - len(payload))


def _attrs(data: bytes) -> dict[int, bytes]:
    out = {}
    pos = 0
    while pos + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, pos)
        if length < _NLA.size:
            break
        out[kind & ~NLA_F_NESTED] = data[pos + _NLA.size:pos + length]
        pos += _align(length)
    return out


def htb_opt(rate_bps: float, ceil_bps: float, burst_bytes: int, quantum: int) -> bytes:
    """struct tc_htb_opt for a class of `rate_bps`/`ceil_bps` (bytes/s) and `burst_bytes`."""
    def spec(bps: float) -> bytes:
        return _RATESPEC.pack(0, TC_LINKLAYER_ETHERNET, 0, 0, 0, max(1, min(int(bps), 2**32 - 1)))

    def ticks(bps: float) -> int:
        return min(int(burst_bytes * 1e9 / max(bps, 1.0)) >> PSCHED_SHIFT, 2**32 - 1)
    return spec(rate_bps) + spec(ceil_bps) + struct.pack("=IIIII", ticks(rate_bps), ticks(ceil_bps),
                                                         quantum, 0, 0)


def parse_class(payload: bytes) -> ClassStats | None:
    """ClassStats from an RTM_NEWTCLASS message body (tcmsg + attributes)."""
    if len(payload) < _TCMSG.size:
        return None
    handle = _TCMSG.unpack_from(payload)[4]
    attrs = _attrs(payload[_TCMSG.size:])
    stats = _attrs(attrs.get(TCA_STATS2, b""))
    sent_bytes = sent_packets = backlog = qlen = drops = overlimits = 0
    basic = stats.get(TCA_STATS_BASIC, b"")
    if len(basic) >= 12:
        sent_bytes, sent_packets = struct.unpack_from("=QI", basic)
    queue = stats.get(TCA_STATS_QUEUE, b"")
    if len(queue) >= 20:
        qlen, backlog, drops, _requeues, overlimits = struct.unpack_from("=IIIII", queue)
    return ClassStats(handle, sent_bytes, sent_packets, backlog, qlen, drops, overlimits)


class TcNetlink:
    """One rtnetlink socket in the caller's network namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self.seq += 1
        self.sock.send(_NLMSG.pack(_NLMSG.size + len(body), kind, flags, self.seq, 0) + body)
        return self.seq

    def _replies(self, seq: int) -> list[tuple[int, bytes]]:
        """(type, body) of every answer to `seq` up to DONE (dump) or the ACK/error."""
        out: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(1 << 16)
            pos = 0
            while pos + _NLMSG.size <= len(data):
                length, kind, _flags, mseq, _pid = _NLMSG.unpack_from(data, pos)
                body = data[pos + _NLMSG.size:pos + length]
                pos += _align(length)
                if mseq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", body)[0]
                    if err:
                        raise NetlinkError(err, os.strerror(err))
                    return out
                out.append((kind, body))

    def classes(self, ifindex: int) -> list[ClassStats]:
        """Counters of every class on the device."""
        seq = self._send(RTM_GETTCLASS, NLM_F_REQUEST | NLM_F_DUMP,
                         _TCMSG.pack(socket.AF_UNSPEC, 0, 0, ifindex, 0, 0, 0))
        return [c for kind, body in self._replies(seq) if kind == RTM_NEWTCLASS
                for c in [parse_class(body)] if c is not None]

    def set_htb_rate(self, ifindex: int, handle: int, parent: int, rate_bps: float,
                     burst_bytes: int, quantum: int) -> None:
        """Change an existing HTB class to rate = ceil = `rate_bps` (bytes/s)."""
        opts = _attr(TCA_HTB_PARMS, htb_opt(rate_bps, rate_bps, burst_bytes, quantum))
        body = (_TCMSG.pack(socket.AF_UNSPEC, 0, 0, ifindex, handle, parent, 0)
                + _attr(TCA_KIND, b"htb\0") + _attr(TCA_OPTIONS | NLA_F_NESTED, opts))
        self._replies(self._send(RTM_NEWTCLASS, NLM_F_REQUEST | NLM_F_ACK, body))
