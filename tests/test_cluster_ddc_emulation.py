"""A scheduled DDC (credits + reassembly) split over two test-bed servers (scripts/testbed.sh):
it completes, its VOQs, credits and resequencers worked on the servers (ddc.json), and nothing
of it is left on any server afterwards (nft tables, VOQ veths, reseqd/voqd, iptables rules).

Its own test-bed prefix; the engine takes the run lock itself. Small (4 hosts, 1 MB ring) to
keep CI short.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.test_cluster_emulation import Bed, bed_up, summary_of

pytestmark = pytest.mark.emulation

SPEC = """
name = "clddc"
seed = 1
[cluster]
servers = ["tb1", "tb2"]
ssh_config = "{ssh_config}"
[fabric]
kind = "ddc"
ncps = 2
ncfs = 2
hosts_per_ncp = 2
host_rate_mbps = 10
mtu = 1450
policy = "ddc"
[[workload]]
kind = "allreduce"
name = "ring"
algorithm = "ring"
size_bytes = "1MB"
"""


@pytest.fixture(scope="module")
def ddc_bed(tmp_path_factory: pytest.TempPathFactory) -> Bed:
    with bed_up(tmp_path_factory.mktemp("clddc"), f"afd{os.getpid() % 10000}") as bed:
        yield bed


def server_state(bed: Bed, server: str) -> list[str]:
    """What a DDC run could leave on a server: bridges, fabric/VOQ interfaces, nft tables, our
    processes, NFQUEUE rules (iptables, any namespace left: the server's root one)."""
    out = bed.ssh(server, "ovs-vsctl list-br; ip -o link show | awk -F': ' '{print $2}' | "
                          "grep -v '^lo$' | grep -v '^eth0'; nft list tables; "
                          "pgrep -af '[r]eseqd|[v]oqd|[t]raffic[.]agent'; "
                          "(iptables-legacy -t raw -S 2>/dev/null || iptables -t raw -S) | "
                          "grep NFQUEUE; ip netns list; true")
    return [line for line in out.splitlines() if line.strip()]


def test_scheduled_ddc_split_over_two_servers(ddc_bed: Bed, tmp_path: Path) -> None:
    spec = tmp_path / "ddc.toml"
    spec.write_text(SPEC.format(ssh_config=ddc_bed.dir / "ssh_config"))
    summary = summary_of(ddc_bed.run(spec, tmp_path / "runs"))
    assert summary["status"] == "complete", summary["error"]
    assert summary["flows_complete"] == summary["flows_planned"] > 0
    run_dir = Path(summary["run_dir"])
    where = json.loads((run_dir / "cluster.json").read_text())["placement"]
    assert where["ncp1"] != where["ncp2"]        # one NCP (and its hosts) per server
    ddc = json.loads((run_dir / "ddc.json").read_text())
    credits = ddc["credits"]
    assert credits["voqs"] == 8 and credits["voq_sent_bytes"] > 1_000_000  # data went via VOQs
    assert credits["rate_changes"] > 0 and credits["netlink_errors"] == 0
    assert set(credits["servers"]) == {"tb1", "tb2"}
    for part in credits["servers"].values():     # each server's voqd answered every read
        assert part["reads"] > 10 and part["errors"] == 0
    reasm = ddc["reassembly"]
    assert set(reasm["servers"]) == {"tb1", "tb2"} and reasm["partial"] is False
    for part in reasm["servers"].values():       # each server resequenced its hosts' packets
        assert part["seen"] > 500 and part["unsequenced"] == 0
    assert reasm["seen"] == sum(p["seen"] for p in reasm["servers"].values())
    assert reasm["held"] >= 0 and reasm["user_dropped"] == 0
    routes = json.loads((run_dir / "nft_remote.json").read_text())
    assert set(routes) == {"ncp1", "ncp2", "ncf1", "ncf2"}
    assert summary["tcp"]["TcpExt.TCPTimeouts"] == 0   # no packet lost for good on the way
    for server in ("tb1", "tb2"):
        assert server_state(ddc_bed, server) == [], server
    (c,) = summary["collectives"]
    print(f"\nDDC over 2 servers: JCT {c['jct_s']:.3f} s, reassembly held {reasm['held']} of "
          f"{reasm['seen']}, credits {credits['rate_changes']} rate changes")
