"""A gate in front of os-ken's OpenFlow parser: incoming messages that a switch never sends to
this controller, or whose nested length fields would make os-ken's parsers loop forever, are
dropped with a log line instead of being parsed.

Why: os-ken parses every incoming message in the connection's receive thread, before any app
handler (and so before `controller.app._guarded`) runs. Parse errors it catches itself (it
logs "malformed OpenFlow packet" and drops the message), but its parsers trust embedded
lengths: a zero-length flow-stats entry, instruction, action or hello element, or a FLOW_MOD
full of zeros (which no switch sends), makes `while offset < end: offset += length` spin at
100% CPU forever. Measured here: one such message left a thread burning a full core after the
connection closed, starving the whole controller (one GIL). The gate checks exactly those
lengths, for the OpenFlow 1.3 messages the controller accepts; everything else is refused.
"""
from __future__ import annotations

import logging
import struct
from typing import Any, Callable

LOG = logging.getLogger("controller.ofguard")

OFP13 = 4
HEADER = 8
# switch -> controller message types the app and os-ken's handshake use (OpenFlow 1.3)
HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY, FEATURES_REPLY, GET_CONFIG_REPLY = 0, 1, 2, 3, 6, 8
PACKET_IN, FLOW_REMOVED, PORT_STATUS, MULTIPART_REPLY, BARRIER_REPLY = 10, 11, 12, 19, 21
ROLE_REPLY, GET_ASYNC_REPLY = 25, 27
ACCEPTED = {HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY, FEATURES_REPLY, GET_CONFIG_REPLY, PACKET_IN,
            FLOW_REMOVED, PORT_STATUS, MULTIPART_REPLY, BARRIER_REPLY, ROLE_REPLY,
            GET_ASYNC_REPLY}
# multipart replies the controller asks for: type -> fixed entry size (None: flow stats)
MP_FLOW, MP_PORT_STATS, MP_PORT_DESC = 1, 4, 13
MULTIPART = {MP_FLOW: None, MP_PORT_STATS: 112, MP_PORT_DESC: 64}
FLOW_STATS_FIXED = 48       # ofp_flow_stats up to its match
APPLY_ACTIONS, WRITE_ACTIONS = 4, 3


def _u16(buf: bytes, offset: int) -> int:
    value: int = struct.unpack_from("!H", buf, offset)[0]
    return value


def _tlvs(buf: bytes, start: int, end: int, minimum: int, what: str, align: int = 1,
          length_at: int = 2) -> list[tuple[int, int]]:
    """(offset, length) of the type-length records between start and end; ValueError when a
    length is too small, unaligned or overruns `end` (what would make os-ken loop or misread)."""
    out = []
    offset = start
    while offset < end:
        if offset + length_at + 2 > end:
            raise ValueError(f"truncated {what} header")
        length = _u16(buf, offset + length_at)
        if length < minimum or length % align or offset + length > end:
            raise ValueError(f"{what} length {length} at byte {offset}")
        out.append((offset, length))
        offset += length
    return out


def _flow_stats(buf: bytes, start: int, end: int) -> None:
    for entry, length in _tlvs(buf, start, end, FLOW_STATS_FIXED + 8, "flow stats entry",
                               length_at=0):
        match = entry + FLOW_STATS_FIXED
        mlen = _u16(buf, match + 2)
        mspan = (mlen + 7) // 8 * 8
        if mlen < 4 or match + mspan > entry + length:
            raise ValueError(f"flow stats match length {mlen}")
        for inst, ilen in _tlvs(buf, match + mspan, entry + length, 8, "instruction", 8):
            if _u16(buf, inst) in (APPLY_ACTIONS, WRITE_ACTIONS):
                _tlvs(buf, inst + 8, inst + ilen, 8, "action", 8)


def reject_reason(version: int, msg_type: int, buf: bytes) -> str | None:
    """Why the message must not reach os-ken's parser, or None to let it through."""
    msg_len = len(buf)
    try:
        if msg_type == HELLO:   # any version: the elements are what negotiation parses
            _tlvs(buf, HEADER, msg_len, 4, "hello element")
            return None
        if version != OFP13:
            return f"OpenFlow version {version} after the handshake (the controller speaks 1.3)"
        if msg_type not in ACCEPTED:
            return f"message type {msg_type} is not one a switch sends to this controller"
        if msg_type == MULTIPART_REPLY:
            if msg_len < 16:
                raise ValueError("truncated multipart reply")
            mp_type = _u16(buf, HEADER)
            if mp_type not in MULTIPART:
                return f"multipart reply type {mp_type} was never requested"
            size = MULTIPART[mp_type]
            if size is None:
                _flow_stats(buf, 16, msg_len)
            elif (msg_len - 16) % size:
                raise ValueError(f"multipart body of {msg_len - 16} bytes for {size}-byte entries")
        elif msg_type in (PACKET_IN, FLOW_REMOVED):
            match = {PACKET_IN: 24, FLOW_REMOVED: 48}[msg_type]
            if msg_len < match + 4 or _u16(buf, match + 2) < 4 \
                    or match + _u16(buf, match + 2) > msg_len:
                raise ValueError("bad match length")
    except (ValueError, struct.error) as exc:
        return f"malformed: {exc}"
    return None


def guard(parse: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap os-ken's `ofproto_parser.msg` with reject_reason()."""
    def guarded(datapath: Any, version: int, msg_type: int, msg_len: int, xid: int,
                buf: bytes) -> Any:
        reason = reject_reason(version, msg_type, bytes(buf[:msg_len]))
        if reason is not None:
            LOG.warning("dropped OpenFlow message from %s (version %d, type %d, %d bytes): %s",
                        getattr(datapath, "address", "?"), version, msg_type, msg_len, reason)
            return None
        return parse(datapath, version, msg_type, msg_len, xid, buf)
    guarded.__wrapped__ = parse  # type: ignore[attr-defined]
    return guarded


def install() -> None:
    """Put the gate in front of os-ken's parser (os_ken.controller.controller calls
    `ofproto_parser.msg` through the module, so replacing the attribute is enough)."""
    from os_ken.ofproto import ofproto_parser
    if not hasattr(ofproto_parser.msg, "__wrapped__"):
        ofproto_parser.msg = guard(ofproto_parser.msg)
