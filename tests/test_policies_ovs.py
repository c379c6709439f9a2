"""Every policy's messages are accepted by real userspace OVS bridges (a switch rejecting any
message fails wait_ready), and the installed rules read back as intended. Bridges p5pt<N>,
created under the machine-wide emulation lock and always deleted. Needs root and OVS."""
from __future__ import annotations

import json
import subprocess

import pytest

from controller.process import ControllerProcess
from fabric.run.runlock import exclusive_run
from topologies.leafspine import build_leaf_spine
from topologies.model import switches, to_description

pytestmark = pytest.mark.emulation


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


@pytest.mark.parametrize("policy, params, leaf_expect", [
    ("ecmp", {"hash_fields": ["ip_src", "ip_dst", "tcp_src", "tcp_dst"], "hash_basis": 3},
     ["bundle(symmetric_l3l4,3,hrw,ofport,members:3,4)"]),
    ("adaptive", {}, ["tcp_flags=+fin", "CONTROLLER:128", "goto_table:1", "table=1"]),
    ("priority", {"latency_hosts": ["h1"], "latency_tcp_ports": [[7000, 7099]],
                  "scheduling": "weighted"},
     ["set_field:46->ip_dscp", "tp_dst=0x1b58/0xfff8", "goto_table:1", "nw_dst=10.0.0.1"]),
])
def test_policy_installs_on_ovs(tmp_path, policy, params, leaf_expect):
    g = build_leaf_spine(2, 2, 2, host_rate_mbps=10, fabric_rate_mbps=10)
    fabric = tmp_path / "fabric.json"
    fabric.write_text(json.dumps(to_description(g)))
    bridges = {sw: f"p5pt{i + 1}" for i, sw in enumerate(switches(g))}
    with exclusive_run():
        try:
            with ControllerProcess(fabric, policy, params, tmp_path / "c.log",
                                   run_dir=tmp_path, stats_interval_s=0.2) as ctl:
                ctl.wait_listening(10)
                for sw, br in bridges.items():
                    sh("ovs-vsctl", "--may-exist", "add-br", br, "--", "set", "bridge", br,
                       "datapath_type=netdev",
                       f"other-config:datapath-id={g.nodes[sw]['dpid']:016x}",
                       "protocols=OpenFlow13", "fail_mode=secure")
                    sh("ovs-vsctl", "set-controller", br, f"tcp:127.0.0.1:{ctl.port}")
                ctl.wait_ready(30)          # strict: an OFPERROR from any bridge raises
                flows = sh("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridges["l1"])
                for want in leaf_expect:
                    assert want in flows, (want, flows)
                # the recorder polls every 0.2 s: rows for the bridges' (port-less) switches
                # need model ports, which these bridges lack; the file exists with its header
                assert (tmp_path / "port_stats.csv").read_text().startswith("time,switch,port")
            assert ctl.returncode == 0 and ctl.ofp_errors == []
        finally:
            for br in bridges.values():
                subprocess.run(["ovs-vsctl", "--if-exists", "del-br", br], capture_output=True,
                               timeout=30)
