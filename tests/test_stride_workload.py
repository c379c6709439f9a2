"""The `stride` workload: host i sends to host (i + stride) mod n, all at once."""
from __future__ import annotations

import pytest

from topologies.errors import SpecError
from fabric.plan.traffic import build_plan
from fabric.workloads.stride import StrideSpec
from fabric.plan.experiment import parse_experiment


def spec(**workload):
    return parse_experiment({
        "name": "s", "fabric": {"kind": "leafspine", "spines": 2, "leaves": 3, "hosts_per_leaf": 2},
        "workload": {"kind": "stride", "size_bytes": "1MB", **workload}})


def test_stride_permutation_over_all_hosts():
    s = spec(stride=2, name="perm", start_s=0.5)
    (w,) = s.workloads
    assert isinstance(w, StrideSpec)
    plan = build_plan(s, s.fabric().build())
    assert [(t.src, t.dst) for t in plan.transfers] == [
        ("h1", "h3"), ("h2", "h4"), ("h3", "h5"), ("h4", "h6"), ("h5", "h1"), ("h6", "h2")]
    assert all(t.size_bytes == 1_000_000 and t.start_s == 0.5 and t.after == ()
               and t.workload == "perm" for t in plan.transfers)
    # a permutation: every host sends once and receives once
    assert sorted(t.dst for t in plan.transfers) == sorted(t.src for t in plan.transfers)


def test_stride_over_named_hosts_in_given_order():
    s = spec(hosts=["h6", "h1", "h4"], stride=1)
    plan = build_plan(s, s.fabric().build())
    assert [(t.src, t.dst) for t in plan.transfers] == [("h6", "h1"), ("h1", "h4"), ("h4", "h6")]


@pytest.mark.parametrize("workload, key", [
    ({"stride": 6}, "workload[0].stride"),          # multiple of the 6 hosts
    ({"stride": 0}, "workload[0].stride"),          # below the minimum
    ({"hosts": ["h1", "h1", "h2"]}, "workload[0].hosts"),
    ({"hosts": ["h1"]}, "workload[0].hosts"),
    ({"hosts": ["h1", "h9"]}, "workload[0].hosts[1]"),
    ({"hosts": ["h1", "h2"], "stride": 4}, "workload[0].stride"),
])
def test_bad_stride_workloads_name_the_key(workload, key):
    with pytest.raises(SpecError) as err:
        spec(**workload)
    assert err.value.key == key
