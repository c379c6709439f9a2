"""A minimal NFQUEUE client over raw netlink (no libnetfilter_queue, no compiled dependency).

One socket per queue, opened inside a network namespace (setns through libc, since Python 3.11
has no os.setns): bind the queue, copy only the first `copy_range` bytes of each packet (the
IPv4 header is all the resequencer reads), fail open when the kernel queue is full (the packet
goes on rather than being dropped), then read packets and answer with verdicts, several
NFQNL_MSG_VERDICT messages per send(). The kernel reinjects packets in the order of the verdicts.
"""
from __future__ import annotations

import ctypes
import os
import socket
import struct
from dataclasses import dataclass
from typing import Iterator

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQA_CFG_MASK, NFQA_CFG_FLAGS = 4, 5
NFQA_CFG_F_FAIL_OPEN = 1
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_PACKET = 2
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
CLONE_NEWNET = 0x40000000

_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, portid
_NFGEN = struct.Struct("!BBH")  # family, version, res_id (queue number, big endian)
_NLA = struct.Struct("=HH")


class NfqueueError(OSError):
    """The kernel refused a configuration request (errno from its answer)."""


def _nla(kind: int, payload: bytes) -> bytes:
    n = _NLA.size + len(payload)
    return _NLA.pack(n, kind) + payload + b"\0" * (-n % 4)


def _msg(msg_type: int, flags: int, seq: int, queue: int, attrs: bytes, family: int) -> bytes:
    body = _NFGEN.pack(family, 0, queue) + attrs
    return _NLMSG.pack(_NLMSG.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type,
                       flags, seq, 0) + body


def verdict_prefix(queue: int, verdict: int = NF_ACCEPT) -> bytes:
    """The first 28 bytes of an NFQNL_MSG_VERDICT message for `queue`; the packet id (4 bytes,
    big endian) completes it."""
    body = _NFGEN.pack(socket.AF_UNSPEC, 0, queue) + _NLA.pack(12, NFQA_VERDICT_HDR) + \
        struct.pack("!I", verdict)
    return _NLMSG.pack(_NLMSG.size + len(body) + 4, (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT,
                       NLM_F_REQUEST, 0, 0) + body


def verdict_msg(queue: int, packet_id: int, verdict: int = NF_ACCEPT) -> bytes:
    """One NFQNL_MSG_VERDICT message (32 bytes) for packet `packet_id` of `queue`."""
    return verdict_prefix(queue, verdict) + packet_id.to_bytes(4, "big")


@dataclass(frozen=True)
class Packet:
    """A queued packet: its NFQUEUE id and the copied start of its payload (the IPv4 header)."""
    packet_id: int
    payload: bytes


def parse_packets(buf: bytes | memoryview) -> Iterator[Packet]:
    """Every NFQNL_MSG_PACKET in a netlink datagram (other messages are skipped)."""
    view = memoryview(buf)
    off, end = 0, len(view)
    packet_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET
    while off + _NLMSG.size <= end:
        length, mtype = struct.unpack_from("=IH", view, off)
        if length < _NLMSG.size or off + length > end:
            break
        if mtype == packet_type:
            pid, payload = None, b""
            a = off + _NLMSG.size + _NFGEN.size
            stop = off + length
            while a + 4 <= stop:
                alen, akind = _NLA.unpack_from(view, a)
                if alen < 4:
                    break
                akind &= 0x3FFF
                if akind == NFQA_PACKET_HDR:
                    pid = struct.unpack_from("!I", view, a + 4)[0]
                elif akind == NFQA_PAYLOAD:
                    payload = bytes(view[a + 4:a + alen])
                a += (alen + 3) & ~3
            if pid is not None:
                yield Packet(pid, payload)
        elif mtype == NLMSG_ERROR:
            err = -struct.unpack_from("=i", view, off + _NLMSG.size)[0]
            if err:
                raise NfqueueError(err, f"nfqueue: {os.strerror(err)}")
        off += (length + 3) & ~3


class Netns:
    """Enter a network namespace for the current thread, and come back."""
    _libc = None

    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> None:
        if Netns._libc is None:
            Netns._libc = ctypes.CDLL(None, use_errno=True)
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            self._setns(fd)
        except OSError:
            os.close(self._home)
            raise
        finally:
            os.close(fd)

    def __exit__(self, *exc: object) -> None:
        try:
            self._setns(self._home)
        finally:
            os.close(self._home)

    @classmethod
    def _setns(cls, fd: int) -> None:
        assert cls._libc is not None
        if cls._libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns: {os.strerror(err)}")


class NfQueue:
    """One bound NFQUEUE (`queue`) in the namespace at `netns_path` (None: this one)."""

    def __init__(self, queue: int, netns_path: str | None = None, copy_range: int = 40,
                 maxlen: int = 8192, rcvbuf_bytes: int = 16 << 20):
        if not 0 <= queue < 65536:
            raise ValueError(f"queue number must be in [0, 65535], got {queue}")
        self.queue = queue
        if netns_path:
            with Netns(netns_path):
                self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        else:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.bind((0, 0))
            self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
            for opt in (33, socket.SO_RCVBUF):  # SO_RCVBUFFORCE (root) beyond rmem_max
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, opt, rcvbuf_bytes)
                    break
                except OSError:
                    continue
            self._seq = 0
            self._config(_nla(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND,
                                                         socket.AF_INET)))
            self._config(_nla(NFQA_CFG_PARAMS, struct.pack("!IB", copy_range,
                                                            NFQNL_COPY_PACKET)) +
                         _nla(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen)) +
                         _nla(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)) +
                         _nla(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)))
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise
        self.buf = bytearray(1 << 18)
        self._prefix = verdict_prefix(queue)

    def _config(self, attrs: bytes) -> None:
        self._seq += 1
        self.sock.send(_msg(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, self._seq, self.queue,
                            attrs, socket.AF_UNSPEC))
        data = self.sock.recv(4096)
        _, mtype = struct.unpack_from("=IH", data, 0)
        if mtype == NLMSG_ERROR:
            err = -struct.unpack_from("=i", data, _NLMSG.size)[0]
            if err:
                raise NfqueueError(err, f"nfqueue config (queue {self.queue}): "
                                        f"{os.strerror(err)}")

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[Packet]:
        """The packets of one datagram ([] when nothing is waiting)."""
        try:
            n = self.sock.recv_into(self.buf)
        except BlockingIOError:
            return []
        return list(parse_packets(memoryview(self.buf)[:n]))

    def accept(self, packet_ids: list[int]) -> None:
        """Reinject these packets in this order (one send per ~400 verdicts)."""
        prefix = self._prefix
        for i in range(0, len(packet_ids), 400):
            self.sock.send(b"".join([prefix + pid.to_bytes(4, "big")
                                     for pid in packet_ids[i:i + 400]]))

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.send(_msg(NFQNL_MSG_CONFIG, NLM_F_REQUEST, 0, self.queue,
                                _nla(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND,
                                                               socket.AF_INET)),
                                socket.AF_UNSPEC))
        except OSError:
            pass
        self.sock.close()


def ipv4_fields(header: bytes) -> tuple[int, int, int] | None:
    """(IPv4 ID, source address, destination address as ints) of a copied header, or None."""
    if len(header) < 20 or header[0] >> 4 != 4:
        return None
    ident, = struct.unpack_from("!H", header, 4)
    src, dst = struct.unpack_from("!II", header, 12)
    return ident, src, dst
