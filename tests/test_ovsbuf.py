"""OVS's shared send buffer: the charge per frame, queues against the buffer, readings of `ss`
and of ovs-vswitchd's log, and the summary's loss lines that carry OVS's own drops."""
from __future__ import annotations

import re
from pathlib import Path

from fabric.analysis import loss
from fabric.analysis.links import LinkSample
from fabric.analysis.ovsbuf import (KERNEL_DEFAULT_WMEM, RECOMMENDED_WMEM, SendFailures, fit,
                                    ovs_port_queues, send_failures, skb_truesize_bytes,
                                    ss_buffers)
from fabric.analysis.summary import RunSummary
from fabric.report.summary import format_summary
from topologies.leafspine import build_leaf_spine
from topologies.queues import QueueDepth, apply_link_settings
from topologies.single import build_single_switch

REPO = Path(__file__).resolve().parent.parent


def test_a_full_size_1500_frame_is_charged_2304_bytes_as_ss_shows():
    assert skb_truesize_bytes(1514) == 2304
    assert KERNEL_DEFAULT_WMEM // skb_truesize_bytes(1514) == 92   # "about 90 frames"
    jumbo = skb_truesize_bytes(9014)
    assert 9014 < jumbo < 2 * 9014
    assert skb_truesize_bytes(64) < skb_truesize_bytes(1514) < jumbo


def test_only_switch_ends_are_ovs_port_queues():
    g = build_single_switch(4, 10.0, queue_packets=50)
    queues = ovs_port_queues(g)
    assert len(queues) == 4 and all(q == 50 for _, q in queues)
    assert len({sw for sw, _ in queues}) == 1   # the one switch
    ls = build_leaf_spine(2, 2, 2, 10.0, 20.0, queue_packets=10)
    # 4 host links (leaf end only) + 4 leaf-spine links (both ends)
    assert len(ovs_port_queues(ls)) == 4 + 2 * 4


def test_fit_warns_when_all_queues_exceed_the_buffer_and_names_how_many_fit():
    g = apply_link_settings(build_leaf_spine(2, 2, 2, 10.0, 20.0), 1500, QueueDepth(packets=100))
    f = fit("ls", g, KERNEL_DEFAULT_WMEM)
    assert f.ports == 12 and f.largest_queue_bytes == 100 * 2304
    assert f.all_queues_bytes == 12 * 100 * 2304
    msg = f.message()
    assert "WARNING: one full queue does not fit" in msg     # 230 kB > 213 kB
    roomy = fit("ls", g, RECOMMENDED_WMEM)
    assert "WARNING" not in roomy.message() and "they fit" in roomy.message()
    some = fit("ls", g, 5 * 100 * 2304)
    assert some.ports_that_fit == 5 and "more than 5 of the deepest" in some.message()
    assert "unknown" in fit("ls", g, None).message()


def test_mtu_changes_the_charge_of_the_same_queue_in_packets():
    small = apply_link_settings(build_single_switch(2, 10.0), 1500, QueueDepth(packets=10))
    jumbo = apply_link_settings(build_single_switch(2, 10.0), 9000, QueueDepth(packets=10))
    assert fit("a", jumbo, 1).all_queues_bytes > 4 * fit("a", small, 1).all_queues_bytes


SS = """\
p_raw 0 0 [0]:* * users:(("ovs-vswitchd",pid=13688,fd=68)) skmem:(r0,rb212992,t2304,tb33554432,f0,w0,o0,bl0,d0)
p_raw 0 0 *:s1-eth2 * users:(("ovs-vswitchd",pid=13688,fd=38)) skmem:(r0,rb212992,t0,tb33554432,f0,w0,o176,bl0,d0)
p_raw 0 0 *:s1-eth1 * users:(("ovs-vswitchd",pid=13688,fd=39)) skmem:(r0,rb106496,t0,tb33554432,f0,w0,o176,bl0,d7)
p_raw 0 0 *:eth0 * users:(("dhclient",pid=1,fd=3)) skmem:(r0,rb1,t0,tb1,f0,w0,o0,bl0,d0)
"""


def test_ss_gives_the_send_sockets_buffer_and_the_smallest_receive_buffer():
    assert ss_buffers(SS) == {"send": 33554432, "recv": 106496}
    # before OVS's first send there is no unbound socket: unknown, not a port's value
    assert ss_buffers("\n".join(SS.splitlines()[1:]))["send"] is None
    assert ss_buffers("") == {"send": None, "recv": None}
    assert loss.ovs_socket_drops(SS) == {"s1-eth2": 0, "s1-eth1": 7}   # [0]:* is no port


_W = "2026-11-28T03:27:47.486Z|00092|netdev_linux|WARN|"
_EAGAIN = ": Resource temporarily unavailable"
LOG = "\n".join([
    f"{_W}error sending Ethernet packet on l1-eth3{_EAGAIN}",
    f"{_W}error sending Ethernet packet on l1-eth3{_EAGAIN}",
    f"{_W}error sending Ethernet packet on s1-eth1{_EAGAIN}",
    "2026-11-28T03:27:48.000Z|00097|bridge|INFO|bridge l1: added interface l1-eth3 on port 3",
    f"{_W}Dropped 511 log messages in last 12 seconds (most recently, 0 seconds ago) due to "
    "excessive rate",
    "2026-11-28T03:28:00.000Z|00256|ofproto|WARN|Dropped 3 log messages in last 1 seconds",
]) + "\n"


def test_the_log_gives_failed_sends_per_port_as_a_lower_bound():
    f = send_failures(LOG)
    assert f.by_interface == {"l1-eth3": 2, "s1-eth1": 1}
    assert f.total == 3 and f.rate_limited      # "Dropped 511": how many were sends is unknown
    assert send_failures("").total == 0
    # netdev_linux's rate limiter also drops its other messages (ioctl errors at teardown):
    # without a logged send failure, a "Dropped" line says nothing about sends
    quiet = send_failures(LOG.splitlines()[4])
    assert quiet.total == 0 and not quiet.rate_limited


def _sample(intf: str, tier: str, t: float) -> LinkSample:
    src = intf.split("-")[0]
    return LinkSample(t, f"{src}-x", src, "x", tier, 20.0, 0, 0, intf)


def test_send_failures_join_the_loss_of_their_port_tier():
    rows = [_sample("l1-eth3", "host", 0.0), _sample("l1-eth3", "host", 1.0),
            _sample("s1-eth1", "fabric", 0.0), _sample("s1-eth1", "fabric", 1.0)]
    tiers = {x.tier: x for x in loss.by_tier(rows, 0, SendFailures({"l1-eth3": 2, "s1-eth1": 1,
                                                                    "zz-eth9": 4}))}
    assert tiers["host"].ovs_send_failures == 2 and tiers["host"].total == 2
    assert tiers["fabric"].ovs_send_failures == 1
    assert tiers[loss.UNATTRIBUTED].ovs_send_failures == 4
    assert "ovs_send_failures" in loss.as_dict(tiers.values())["host"]
    # no failures: no extra tier and the old totals
    assert {x.tier for x in loss.by_tier(rows, 0, SendFailures({}))} == {"host", "fabric"}


def test_the_summary_shows_ovs_send_failures_only_when_there_are_some():
    s = RunSummary(experiment="e", fabric="f", policy="ecmp", seed=1, run_dir="/tmp/x")
    s.loss = {"fabric": {"queue_drops": 0, "host_nic_drops": 0, "ovs_drops": 0, "veth_drops": 0,
                         "ovs_send_failures": 3, "total": 3},
              "host": {"queue_drops": 1, "host_nic_drops": 0, "ovs_drops": 0, "veth_drops": 0,
                       "ovs_send_failures": 0, "total": 1}}
    line = next(ln for ln in format_summary(s).splitlines() if ln.startswith("packets lost:"))
    assert "fabric 3 (queues 0, OVS 0, veth 0, OVS send >= 3)" in line
    assert "host 1 (queues 1, host NICs 0, OVS 0, veth 0)" in line


def test_setup_script_sets_the_recommended_send_buffer():
    text = (REPO / "scripts" / "setup.sh").read_text()
    m = re.search(r"^wmem=(\d+)$", text, re.M)
    assert m and int(m.group(1)) == RECOMMENDED_WMEM
    assert "/etc/sysctl.d/" in text
    # it never restarts OVS itself: it says how
    assert re.search(r'^\s*say sendbuffer ".*ovs_ctl restart', text, re.M)
    assert not re.search(r'^\s*"\$ovs_ctl" restart', text, re.M)


def test_a_scheduled_ddcs_host_port_queues_count_as_transient_only():
    """Credits grant no more than a host port's rate towards it: its deep queue counts at the
    fabric queue depth; without credits (scheduler = "none") it counts in full."""
    from fabric.analysis.ovsbuf import ovs_port_queues
    from topologies.ddc import build_ddc
    g = build_ddc(2, 2, 2, host_rate_mbps=20)
    assert max(q for _, q in ovs_port_queues(g)) == 100
    none = build_ddc(2, 2, 2, host_rate_mbps=20, scheduler="none")
    assert max(q for _, q in ovs_port_queues(none)) == 1000
