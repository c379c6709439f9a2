"""MTU per fabric and queue depths in packets, bytes or time (topologies.queues, spec keys)."""
from __future__ import annotations

import pytest

from fabric.analysis.ideal import WireModel, ideal_plan
from fabric.plan.experiment import parse_experiment
from fabric.plan.traffic import build_plan
from topologies.errors import SpecError
from topologies.model import from_description, setup_table, to_description
from topologies.queues import QueueDepth, queue_time_s
from topologies.shaping import plan_shaping


def spec(**fabric):
    return parse_experiment({
        "name": "q", "fabric": {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2,
                                "host_rate_mbps": 10, "fabric_rate_mbps": 20, **fabric},
        "workload": {"kind": "stride", "stride": 2, "size_bytes": "1MB"}})


def test_queue_in_time_is_the_same_time_on_every_tier():
    g = spec(mtu=9000, queue="72ms").fabrics[0].build()
    qs = {d["tier"]: d["queue_packets"] for _, _, d in g.edges(data=True)}
    assert qs == {"host": 10, "fabric": 20}           # 72 ms of 10 / 20 Mbit/s in 9014 B frames
    assert setup_table(g)["queue_host"] == "10p=72.1ms"
    assert setup_table(g)["mtu"] == 9000


@pytest.mark.parametrize("queue, packets", [("100KB", 66), (50, 50), ("1ms", 2)])
def test_queue_in_bytes_packets_or_time(queue, packets):
    g = spec(queue=queue).fabrics[0].build()
    assert {d["queue_packets"] for _, _, d in g.edges(data=True) if d["tier"] == "host"} == {packets}


def test_queue_packets_keeps_working_and_both_are_refused():
    g = spec(queue_packets=40).fabrics[0].build()
    assert {d["queue_packets"] for _, _, d in g.edges(data=True)} == {40}
    with pytest.raises(SpecError, match=r"fabric\[0\]\.queue"):
        spec(queue_packets=40, queue="1ms")
    for bad in ("3 parsecs", 1, "0ms", True):
        with pytest.raises(SpecError, match=r"fabric\[0\]\.queue"):
            spec(queue=bad)


@pytest.mark.parametrize("mtu", [1000, 9001])
def test_mtu_bounds(mtu):
    with pytest.raises(SpecError, match=r"fabric\[0\]\.mtu"):
        spec(mtu=mtu)


def test_shaping_follows_the_mtu():
    g = spec(mtu=9000).fabrics[0].build()
    lines = [l for ls in plan_shaping(g).values() for l in ls]
    assert all("quantum 9014" in l for l in lines if "class add" in l)
    bursts = {int(l.split("burst ")[1].split()[0]) for l in lines if " burst " in l}
    assert min(bursts) >= 9014                          # HTB never holds a jumbo frame back
    g15 = spec().fabrics[0].build()
    assert all("quantum 1514" in l for ls in plan_shaping(g15).values() for l in ls if "class add" in l)


def test_mtu_survives_the_controller_description_and_feeds_the_ideal_model():
    s = spec(mtu=9000)
    g = s.fabrics[0].build()
    assert from_description(to_description(g)).graph["mtu"] == 9000
    assert WireModel.for_mtu(9000).goodput_factor == pytest.approx(8948 / 9014)
    res = ideal_plan(g, build_plan(s, g), "spread")
    assert res.wire.mss_bytes == 8948
    # one 1 MB flow per 10 Mbit/s host link: jumbo frames carry more payload per wire byte
    base = ideal_plan(spec().fabrics[0].build(), build_plan(spec(), spec().fabrics[0].build()),
                      "spread")
    assert res.makespan_s < base.makespan_s


def test_queue_time():
    assert queue_time_s(100, 20, 1500) == pytest.approx(100 * 1514 * 8 / 20e6)
    with pytest.raises(ValueError):
        QueueDepth(packets=3, seconds=1.0)
