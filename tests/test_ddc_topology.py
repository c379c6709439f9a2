"""The DDC builder, its spec, per-end queues and shaping. Pure: no root."""
from __future__ import annotations

import pytest

from topologies.errors import SpecError
from topologies.shaping import plan_shaping
from fabric.spec.experiment import DDCSpec
from fabric.plan.experiment import parse_experiment
from topologies.ddc import DEFAULT_SPEEDUP, build_ddc, ddc_fabric_rate_mbps
from topologies.model import (attachment, egress_queue_packets, fabric_links, from_description,
                              hosts, oversubscription, port, setup_table, switches,
                              to_description)


def test_counts_names_and_roles():
    g = build_ddc(3, 2, 4, host_rate_mbps=20)
    assert switches(g, "ncp") == ["ncp1", "ncp2", "ncp3"]
    assert switches(g, "ncf") == ["ncf1", "ncf2"]
    assert hosts(g) == [f"h{i}" for i in range(1, 13)]
    assert len(fabric_links(g)) == 3 * 2
    assert g.graph["kind"] == "ddc"
    dpids = [g.nodes[s]["dpid"] for s in switches(g)]
    assert len(set(dpids)) == len(dpids) and min(dpids) > 0


def test_hosts_numbered_ncp_by_ncp_on_first_ports():
    g = build_ddc(2, 2, 2, host_rate_mbps=20)
    assert [attachment(g, h) for h in hosts(g)] == [("ncp1", 1), ("ncp1", 2),
                                                   ("ncp2", 1), ("ncp2", 2)]
    # uplinks follow the host ports in NCF order; an NCF's port i goes to NCP i
    assert port(g, "ncp1", "ncf1") == 3 and port(g, "ncp1", "ncf2") == 4
    assert port(g, "ncf2", "ncp1") == 1 and port(g, "ncf2", "ncp2") == 2
    assert all(g.has_edge(a, b) for a in ("ncp1", "ncp2") for b in ("ncf1", "ncf2"))


def test_fabric_rate_from_speedup():
    # 4 hosts x 25 Mbit/s per NCP, speed-up 1.5, 3 NCFs -> 50 Mbit/s per fabric link
    assert ddc_fabric_rate_mbps(25, 4, 3, 1.5) == pytest.approx(50.0)
    g = build_ddc(2, 3, 4, host_rate_mbps=25, speedup=1.5)
    assert {g.edges[e]["rate_mbps"] for e in fabric_links(g)} == {50.0}
    assert g.graph["params"]["speedup"] == pytest.approx(1.5)
    # an NCP's uplink capacity is speed-up x its host capacity: oversubscription 1/speed-up
    assert oversubscription(g, "ncp") == pytest.approx(1 / 1.5)


def test_default_speedup_and_explicit_fabric_rate():
    g = build_ddc(2, 2, 2, host_rate_mbps=20)
    assert g.edges["ncp1", "ncf1"]["rate_mbps"] == pytest.approx(20 * 2 * DEFAULT_SPEEDUP / 2)
    g = build_ddc(2, 2, 2, host_rate_mbps=20, fabric_rate_mbps=10)
    assert g.edges["ncp1", "ncf1"]["rate_mbps"] == 10
    assert g.graph["params"]["speedup"] == pytest.approx(0.5)  # effective, recorded honestly


def test_deep_egress_queue_only_at_ncp_host_ports():
    g = build_ddc(2, 2, 2, host_rate_mbps=20, egress_queue_packets=5000, queue_packets=80)
    assert egress_queue_packets(g, "ncp1", "h1") == 5000   # NCP -> host: deep
    assert egress_queue_packets(g, "h1", "ncp1") == 80     # host NIC
    assert egress_queue_packets(g, "ncp1", "ncf1") == 80
    assert egress_queue_packets(g, "ncf1", "ncp1") == 80
    tc = plan_shaping(g)
    assert any("dev ncp1-eth1 parent 1:11 handle 11: pfifo limit 5000" in line for line in tc[""])
    assert any("dev ncp1-eth3 parent 1:11 handle 11: pfifo limit 80" in line for line in tc[""])
    assert any("dev h1-eth0 parent 1:11 handle 11: pfifo limit 80" in line for line in tc["h1"])


def test_description_round_trip_keeps_per_end_queues():
    g = build_ddc(2, 2, 1, host_rate_mbps=20, egress_queue_packets=777)
    back = from_description(to_description(g))
    assert egress_queue_packets(back, "ncp2", "h2") == 777
    assert to_description(back) == to_description(g)
    assert setup_table(back)["topology"] == "ddc"


@pytest.mark.parametrize("kw", [dict(ncps=0), dict(ncfs=0), dict(hosts_per_ncp=0),
                                dict(speedup=0), dict(egress_queue_packets=0)])
def test_bad_builder_arguments(kw):
    args = dict(ncps=2, ncfs=2, hosts_per_ncp=2, host_rate_mbps=20) | kw
    with pytest.raises(ValueError):
        build_ddc(**args)


def experiment(fabric: dict, **extra) -> dict:
    return {"name": "x", "fabric": {"kind": "ddc", "ncps": 2, "ncfs": 2, "hosts_per_ncp": 2,
                                    **fabric},
            "workload": {"kind": "allreduce", "size_bytes": "1MB"}, **extra}


def test_spec_builds_ddc_with_ddc_policy_by_default():
    spec = parse_experiment(experiment({"speedup": 2.0, "egress_queue_packets": 3000}))
    fab = spec.fabric()
    assert isinstance(fab, DDCSpec) and fab.policy == "ddc"
    g = fab.build()
    assert g.edges["ncp1", "ncf1"]["rate_mbps"] == pytest.approx(40.0)
    assert egress_queue_packets(g, "ncp2", "h4") == 3000


@pytest.mark.parametrize("fabric, key", [
    ({"speedup": 1.5, "fabric_rate_mbps": 30}, "fabric[0].speedup"),
    ({"speedup": -1.0}, "fabric[0].speedup"),
    ({"ncfs": 0}, "fabric[0].ncfs"),
    ({"egress_queue_packets": 1}, "fabric[0].egress_queue_packets"),
    ({"fabric_rate_mbps": 0}, "fabric[0].fabric_rate_mbps"),
    ({"bogus": 1}, "fabric[0].bogus"),
])
def test_spec_errors_name_the_key(fabric, key):
    with pytest.raises(SpecError) as err:
        parse_experiment(experiment(fabric))
    assert err.value.key == key
