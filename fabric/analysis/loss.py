"""Where packets were lost: queue drops of every link end, OVS receive drops, and TCP's view.

Three places can lose a packet in the emulation, and each keeps its own counter:

* an egress queue (the qdiscs under a link end's HTB shaper) that is full: counted by the root
  qdisc of the interface (`tc -s qdisc`: HTB adds every drop of its child FIFOs to its own), in
  the root namespace for switch ends and in each host's namespace for host NICs;
* Open vSwitch's userspace datapath, which reads every port through an AF_PACKET socket: when
  ovs-vswitchd falls behind, the socket's receive buffer overflows and the kernel drops the
  packet (`ss -0 -m`: the socket's `d` counter);
* the veth itself (`tx_dropped` in /sys/class/net: the peer was down or its backlog full);
* ovs-vswitchd's shared send socket, whose buffer was full (fabric.analysis.ovsbuf): OVS drops
  the packet itself and only its log says so; counted per tier from the log's lines naming a
  port (`ovs_send_failures`, each lost >= 1 packet; a lower bound, the log is rate-limited).

The run's links.csv carries the first two per switch end (columns `qdisc_dropped` and
`ovs_rx_dropped`; the latter counts packets *arriving* on that interface, i.e. the reverse
direction dst -> src); host NICs are read in their namespaces when the workload starts and ends.
`by_tier` sums all of it per tier for the summary.

TCP's own counters split retransmissions into those a duplicate SACK later showed to be
spurious (the original had arrived: reordering, not loss) and the rest (`split_retransmissions`).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

from fabric.analysis.links import LinkSample, first_last
from fabric.analysis.ovsbuf import SendFailures

UNATTRIBUTED = "unattributed"   # OVS send failures on ports that are no link end of the fabric

QDISC_COMMAND = ("tc", "-s", "-j", "qdisc", "show")
OVS_SOCKETS_COMMAND = ("ss", "-0", "-m", "-n", "-p")
_SS_LINE = re.compile(r"\*:(?P<intf>\S+)\s.*\"ovs-vswitchd\".*\bd(?P<drops>\d+)\)")


def qdisc_drops(text: str) -> dict[str, int]:
    """`tc -s -j qdisc show` output -> {interface: drops of its root qdisc}.

    Only root qdiscs count: HTB already adds its children's drops to its own counter, so adding
    the child FIFOs as well would count each drop twice. Unparsable output gives {}."""
    try:
        rows = json.loads(text or "[]")
    except ValueError:
        return {}
    out: dict[str, int] = {}
    for q in rows if isinstance(rows, list) else []:
        if isinstance(q, dict) and q.get("root") and isinstance(q.get("dev"), str):
            out[q["dev"]] = int(q.get("drops", 0) or 0)
    return out


def ovs_socket_drops(text: str) -> dict[str, int]:
    """`ss -0 -m -n -p` output -> {interface: receive drops of ovs-vswitchd's packet socket}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = _SS_LINE.search(line)
        if m:
            out[m.group("intf")] = out.get(m.group("intf"), 0) + int(m.group("drops"))
    return out


@dataclass(frozen=True)
class TierLoss:
    """Packets lost in one tier during the run (counter deltas, summed over link ends)."""
    tier: str
    queue_drops: int = 0      # egress queues of switch ends (root namespace)
    host_nic_drops: int = 0   # host NIC queues (host namespaces; host tier only)
    ovs_drops: int = 0        # OVS packet sockets that overflowed on receive
    veth_drops: int = 0       # tx_dropped of switch ends
    ovs_send_failures: int = 0  # OVS's failed sends (its log; send buffer full)

    @property
    def total(self) -> int:
        return (self.queue_drops + self.host_nic_drops + self.ovs_drops + self.veth_drops
                + self.ovs_send_failures)


def _counter_deltas(samples: Iterable[LinkSample], field: str) -> dict[str, int]:
    """Per tier: sum over directions of (last - first) of a cumulative counter in links.csv."""
    ends = first_last(samples)
    out: dict[str, int] = {}
    for a, b in ends.values():
        out[a.tier] = out.get(a.tier, 0) + max(0, getattr(b, field) - getattr(a, field))
    return out


def by_tier(samples: Iterable[LinkSample], host_nic_drops: int = 0,
            send_failures: SendFailures | None = None) -> list[TierLoss]:
    """Loss per tier from links.csv samples (fabric.analysis.links.LinkSample) plus the host
    NICs' queue drops (a delta, summed over hosts) and OVS's send failures of the run."""
    rows = list(samples)
    queue = _counter_deltas(rows, "qdisc_dropped")
    ovs = _counter_deltas(rows, "ovs_rx_dropped")
    veth = _counter_deltas(rows, "tx_dropped")
    sends = send_failures_by_tier(rows, send_failures) if send_failures else {}
    tiers = sorted(set(queue) | set(ovs) | set(veth) | set(sends)
                   | ({"host"} if host_nic_drops else set()))
    return [TierLoss(t, queue.get(t, 0), host_nic_drops if t == "host" else 0, ovs.get(t, 0),
                     veth.get(t, 0), sends.get(t, 0)) for t in tiers]


def send_failures_by_tier(samples: Iterable[LinkSample], failures: SendFailures) -> dict[str, int]:
    """{tier: OVS send failures} from the ports the log names (links.csv says each port's
    tier); failures on ports of no link of this fabric: `unattributed`."""
    tier_of = {s.intf: s.tier for s in samples if s.intf}
    out: dict[str, int] = {}
    for intf, n in failures.by_interface.items():
        t = tier_of.get(intf, UNATTRIBUTED)
        out[t] = out.get(t, 0) + n
    return {t: n for t, n in out.items() if n}


def as_dict(losses: Iterable[TierLoss]) -> dict[str, dict[str, int]]:
    """{tier: {queue_drops, host_nic_drops, ovs_drops, veth_drops, total}} for summary.json."""
    return {x.tier: {**asdict(x), "total": x.total} for x in losses}


def split_retransmissions(tcp: Mapping[str, float]) -> dict[str, int]:
    """Retransmitted segments split by what TCP learnt afterwards: `spurious` = duplicate SACKs
    received (the receiver already had the data: reordering or a premature timeout), `real` =
    the rest (lost, or never shown to be spurious). Both in segments and per million sent."""
    retrans = int(tcp.get("Tcp.RetransSegs", 0))
    spurious = min(retrans, int(tcp.get("TcpExt.TCPDSACKRecv", 0)))
    real = retrans - spurious
    sent = int(tcp.get("Tcp.OutSegs", 0))

    def ppm(n: int) -> int:
        return round(1e6 * n / sent) if sent else 0
    return {"retrans_real": real, "retrans_spurious": spurious,
            "retrans_real_ppm": ppm(real), "retrans_spurious_ppm": ppm(spurious)}
