"""The incast workload (fabric/workloads/incast.py): plan, checks, Jain's index. Pure: no root."""
from __future__ import annotations

import pytest

from topologies.errors import SpecError
from traffic.records import FlowRecord

from fabric.workloads.incast import IncastSpec, incast_result, jain


def rec(i: int, src: str, fct: float, complete: bool = True) -> FlowRecord:
    return FlowRecord(i, src, "h1", 1_000_000, 10.0, 10.0 + fct, fct, "incast", "incast", None,
                      complete)


def test_jain_index():
    assert jain([2.0, 2.0, 2.0]) == pytest.approx(1.0)
    assert jain([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain([]) is None and jain([0.0]) is None


def test_incast_result_goodput_and_fairness():
    res = incast_result([rec(0, "h2", 1.0), rec(1, "h3", 2.0)], 5.0)
    (r,) = res.rounds
    assert (r.senders, r.complete) == (2, 2)
    assert r.goodput_mbps_max == pytest.approx(8.0) and r.goodput_mbps_min == pytest.approx(4.0)
    assert r.jain == pytest.approx(144 / 160)
    assert r.jct_s == pytest.approx(2.0)
    assert "Jain" in res.lines("incast", None)[0]
    # an incomplete sender leaves fairness undefined rather than flattering
    assert incast_result([rec(0, "h2", 1.0), rec(1, "h3", 2.0, False)], 5.0).rounds[0].jain is None


def test_receiver_cannot_send():
    spec = IncastSpec(kind="incast", receiver="h1", size_bytes=10, senders=("h1", "h2"))
    with pytest.raises(SpecError) as e:
        spec.check_fabric(["h1", "h2", "h3"], "workload[0]", "fabric")
    assert e.value.key == "workload[0].senders"
