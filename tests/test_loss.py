"""Loss accounting (fabric.analysis.loss): parsing tc/ss output, per-tier sums, the split of
retransmissions into real and spurious. Pure: no root."""
from __future__ import annotations

import json

from fabric.analysis import loss
from fabric.analysis.links import LinkSample
from fabric.analysis.tcp import total

TC = json.dumps([
    {"kind": "htb", "handle": "1:", "dev": "ncp1-eth5", "root": True, "drops": 7},
    {"kind": "pfifo", "handle": "11:", "dev": "ncp1-eth5", "parent": "1:11", "drops": 7},
    {"kind": "noqueue", "handle": "0:", "dev": "lo", "root": True, "drops": 0},
])
SS = """Netid Recv-Q Send-Q Local Address:Port Peer Address:PortProcess
p_raw 0 0 *:ncf1-eth2 * users:(("ovs-vswitchd",pid=3216,fd=40)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o176,bl0,d3)
p_raw 0 0 *:eth9 * users:(("tcpdump",pid=1,fd=3)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d9)
p_raw 0 0 [0]:* * users:(("ovs-vswitchd",pid=3216,fd=78)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d0)
"""


def test_root_qdisc_drops_only_so_htb_children_are_not_counted_twice():
    assert loss.qdisc_drops(TC) == {"ncp1-eth5": 7, "lo": 0}
    assert loss.qdisc_drops("not json") == {}


def test_ovs_socket_drops_by_interface_ignore_other_processes():
    assert loss.ovs_socket_drops(SS) == {"ncf1-eth2": 3}


def _s(t, src, dst, tier, q, o, v=0):
    return LinkSample(t, f"{src}-{dst}", src, dst, tier, 5.0, 0, v, "", q, o)


def test_by_tier_sums_deltas_of_every_direction():
    rows = [_s(0, "ncp1", "ncf1", "fabric", 2, 0), _s(1, "ncp1", "ncf1", "fabric", 5, 1),
            _s(0, "ncf1", "ncp1", "fabric", 0, 0), _s(1, "ncf1", "ncp1", "fabric", 1, 0, 2),
            _s(0, "ncp1", "h1", "host", 0, 4), _s(1, "ncp1", "h1", "host", 0, 4)]
    got = {x.tier: x for x in loss.by_tier(rows, host_nic_drops=3)}
    assert (got["fabric"].queue_drops, got["fabric"].ovs_drops, got["fabric"].veth_drops) == (4, 1, 2)
    assert got["fabric"].total == 7
    assert got["host"].host_nic_drops == 3 and got["host"].total == 3
    assert loss.as_dict(got.values())["fabric"]["total"] == 7


def test_retransmissions_split_into_real_and_spurious():
    t = total([{"Tcp.OutSegs": 10000, "Tcp.RetransSegs": 30, "TcpExt.TCPDSACKRecv": 12,
                "TcpExt.TCPOFOQueue": 250}])
    assert (t["retrans_real"], t["retrans_spurious"]) == (18, 12)
    assert (t["retrans_real_ppm"], t["retrans_spurious_ppm"]) == (1800, 1200)
    assert t["ofo_permille"] == 25.0
    # more DSACKs than retransmissions (a DSACK per duplicate) never makes `real` negative
    assert total([{"Tcp.OutSegs": 10, "Tcp.RetransSegs": 1,
                   "TcpExt.TCPDSACKRecv": 3}])["retrans_real"] == 0
