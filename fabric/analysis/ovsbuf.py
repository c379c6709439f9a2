"""OVS's shared send buffer: how much of the configured queues it can hold, and its silent drops.

In the userspace datapath, ovs-vswitchd sends every packet, on every port, through ONE AF_PACKET
socket (OVS lib/netdev-linux.c, `af_packet_sock()`, created at the first send). Every packet
waiting in the egress qdisc of an OVS port (the emulated switch's egress queue) is charged to
that socket's send buffer until the qdisc hands it to the veth. The buffer is the kernel's
`net.core.wmem_default` when the socket is created (212,992 B unless raised). When it is full,
the send fails with EAGAIN and OVS drops the packet itself: no qdisc, veth or OpenFlow counter
sees it; only ovs-vswitchd's log says "error sending Ethernet packet on <port>: Resource
temporarily unavailable" (rate-limited: counted here as a lower bound).

What is charged is the packet's kernel allocation (`skb->truesize`), not its wire length:
`skb_truesize_bytes` estimates it from how AF_PACKET allocates (a 1,514-byte frame is 2,304 B,
as `ss -0 -m` shows; a 9,014-byte frame ~13 kB). Pure: the readings come from fabric.run.ovsbuf.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import networkx as nx

from topologies import model
from topologies.ddc import scheduled
from topologies.queues import frame_bytes, graph_mtu

KERNEL_DEFAULT_WMEM = 212_992       # net.core.wmem_default of a stock Linux kernel
# What scripts/setup.sh sets: every OVS-port queue of a 64-host leaf/spine (64 host ports + 64
# fabric ports) at the default 100 packets, all full at once, at MTU 1500: 128 x 100 x 2,304 B
# = 29.5 MB (in jumbo frames: ~2,600 of them, e.g. 2.6 of the DDC's 1000-packet egress queues).
RECOMMENDED_WMEM = 32 * 2**20
PAGE_BYTES = 4096
SKB_OVERHEAD_BYTES = 256            # struct sk_buff, cache-aligned
SHINFO_BYTES = 320                  # struct skb_shared_info at the end of the linear buffer


def skb_truesize_bytes(frame: int) -> int:
    """Estimated send-buffer charge of one `frame`-byte packet sent by AF_PACKET (kernel 6.x).

    Frames that fit a page are one linear kmalloc (a power of two holding headroom + data +
    shared info); larger ones are a small linear head plus page fragments (page-rounded)."""
    linear = frame + 64 + SHINFO_BYTES
    if linear <= PAGE_BYTES:
        size = 64
        while size < linear:
            size *= 2
        return size + SKB_OVERHEAD_BYTES
    pages = -(-frame // PAGE_BYTES) * PAGE_BYTES
    return 512 + pages + SKB_OVERHEAD_BYTES


def ovs_port_queues(g: nx.Graph) -> list[tuple[str, int]]:
    """(interface owner switch, egress queue packets) of every switch end of every link: the
    qdiscs whose packets OVS sent (host NIC queues are the hosts' own sockets')."""
    out = []
    switches = set(model.switches(g))
    # a scheduled DDC grants no more than a host port's rate towards it (controller.credits):
    # its NCP's deep queue towards the host only ever holds transients, so it counts at the
    # depth of the other queues; its excess waits in the VOQs, which are not OVS ports
    credits = scheduled(g)
    for a, b in g.edges():
        for node, other in ((a, b), (b, a)):
            if node in switches:
                q = model.egress_queue_packets(g, node, other)
                if credits and g.nodes[other]["role"] == model.HOST:
                    q = min(q, g.edges[a, b]["queue_packets"])
                out.append((node, q))
    return out


@dataclass(frozen=True)
class SendBufferFit:
    """A fabric's OVS-port queues, full, against ovs-vswitchd's send buffer."""
    fabric: str
    mtu: int
    ports: int
    largest_queue_bytes: int        # one port's queue, full (send-buffer charge)
    all_queues_bytes: int           # every OVS port's queue full at once
    send_buffer_bytes: int | None   # None: unknown (OVS not running, not root)

    @property
    def ports_that_fit(self) -> int | None:
        """How many of the deepest port queues can be full at once before OVS drops."""
        if not self.send_buffer_bytes or not self.largest_queue_bytes:
            return None
        return self.send_buffer_bytes // self.largest_queue_bytes

    def message(self) -> str:
        buf = self.send_buffer_bytes
        head = (f"ovs send buffer {self.fabric}: {self.ports} OVS-port queues hold "
                f"{_mb(self.all_queues_bytes)} when all full (deepest {_mb(self.largest_queue_bytes)})")
        if buf is None:
            return head + "; OVS's send buffer unknown (needs root and a running OVS)"
        head += f"; ovs-vswitchd's send buffer is {_mb(buf)}"
        fix = "raise net.core.wmem_default (scripts/setup.sh does) and restart OVS"
        if self.largest_queue_bytes > buf:
            return (head + f"; WARNING: one full queue does not fit: OVS drops packets itself "
                    f"beyond {_mb(buf)} queued (counted as OVS send failures); {fix}")
        if self.all_queues_bytes > buf:
            return (head + f"; WARNING: OVS drops packets itself when more than "
                    f"{self.ports_that_fit} of the deepest queues are full at once "
                    f"(counted as OVS send failures); {fix}")
        return head + "; they fit"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def fit(name: str, g: nx.Graph, send_buffer_bytes: int | None) -> SendBufferFit:
    """How `g`'s OVS-port queues compare with a send buffer of `send_buffer_bytes`."""
    mtu = graph_mtu(g)
    per_packet = skb_truesize_bytes(frame_bytes(mtu))
    queues = [q * per_packet for _, q in ovs_port_queues(g)]
    return SendBufferFit(name, mtu, len(queues), max(queues, default=0), sum(queues),
                         send_buffer_bytes)


# --- readings: `ss -0 -m -n -p` and ovs-vswitchd's log -------------------------------------------

_SS_SKMEM = re.compile(r"skmem:\((?P<body>[^)]*)\)")


def ss_buffers(text: str) -> dict[str, int | None]:
    """`ss -0 -m -n -p` output -> {"send": tb of ovs-vswitchd's unbound send socket (None until
    its first send), "recv": the smallest rb of its per-port receive sockets (None: none)}."""
    send: int | None = None
    recv: int | None = None
    for line in text.splitlines():
        if "\"ovs-vswitchd\"" not in line:
            continue
        m = _SS_SKMEM.search(line)
        if not m:
            continue
        fields = dict(re.findall(r"([a-z]+)(\d+)", m.group("body")))
        if "[0]:*" in line and "tb" in fields:
            send = int(fields["tb"])
        elif "rb" in fields:
            recv = int(fields["rb"]) if recv is None else min(recv, int(fields["rb"]))
    return {"send": send, "recv": recv}


_SEND_ERROR = re.compile(r"\|netdev_linux\|WARN\|error sending Ethernet packet on (?P<intf>\S+): "
                         r"(?P<why>.*)$")
_DROPPED = re.compile(r"\|netdev_linux\|WARN\|Dropped (?P<n>\d+) log messages")


@dataclass(frozen=True)
class SendFailures:
    """OVS's failed sends in a stretch of its log: each lost at least one packet. A lower bound:
    netdev_linux's log rate limit (a burst of 20, then 5 a minute, shared with its other
    messages) hides the rest; `rate_limited` says when it suppressed messages after a logged
    failure (its "Dropped N log messages" cannot say how many of those were failed sends)."""
    by_interface: dict[str, int]    # logged failures per port
    rate_limited: bool = False

    @property
    def total(self) -> int:
        return sum(self.by_interface.values())


def send_failures(log_text: str) -> SendFailures:
    """Count ovs-vswitchd's "error sending Ethernet packet" lines per port."""
    per: dict[str, int] = {}
    limited = False
    for line in log_text.splitlines():
        m = _SEND_ERROR.search(line)
        if m:
            per[m.group("intf")] = per.get(m.group("intf"), 0) + 1
        elif per and _DROPPED.search(line):
            limited = True
    return SendFailures(per, limited)
