"""Workload kinds `permutation`, `bursts`, `hotspot` (fabric/workloads/): loaded, checked and
planned like every kind, seeded by the run."""
from __future__ import annotations

import pytest

from fabric.plan.experiment import parse_experiment
from fabric.plan.traffic import build_plan
from topologies.errors import SpecError
from topologies.model import attachment


def doc(workload, fabrics=None):
    return {"name": "pat", "seed": 1,
            "fabric": fabrics or [{"kind": "leafspine", "name": "ls", "spines": 2, "leaves": 4,
                                   "hosts_per_leaf": 2}],
            "workload": [workload]}


def plan_of(d, seed=None):
    spec = parse_experiment(d)
    return build_plan(spec, spec.fabrics[0].build(), seed)


def test_permutation_every_destination_on_another_leaf():
    d = doc({"kind": "permutation", "size_bytes": "1MB"})
    spec = parse_experiment(d)
    g = spec.fabrics[0].build()
    for seed in (1, 2, 3):
        plan = build_plan(spec, g, seed)
        assert len(plan.transfers) == 8
        assert sorted(t.dst for t in plan.transfers) == sorted(t.src for t in plan.transfers)
        assert all(attachment(g, t.src)[0] != attachment(g, t.dst)[0] for t in plan.transfers)
    def pairs(p):
        return [(t.src, t.dst) for t in p.transfers]
    assert pairs(build_plan(spec, g, 1)) == pairs(build_plan(spec, g, 1))
    assert len({tuple(pairs(build_plan(spec, g, s))) for s in range(1, 9)}) > 4


def test_permutation_fixed_by_its_own_seed():
    d = doc({"kind": "permutation", "size_bytes": "1MB", "seed": 7})
    assert [(t.src, t.dst) for t in plan_of(d, 1).transfers] == \
        [(t.src, t.dst) for t in plan_of(d, 2).transfers]


def test_permutation_same_plan_on_a_single_switch_with_hosts_per_leaf():
    fabrics = [{"kind": "leafspine", "name": "ls", "spines": 2, "leaves": 2, "hosts_per_leaf": 2},
               {"kind": "ddc", "name": "ddc", "ncps": 2, "ncfs": 2, "hosts_per_ncp": 2},
               {"kind": "single", "name": "one", "hosts": 4}]
    w = {"kind": "permutation", "size_bytes": "1MB"}
    with pytest.raises(SpecError) as info:
        parse_experiment(doc(w, fabrics))
    assert info.value.key == "workload[0].hosts_per_leaf"
    spec = parse_experiment(doc({**w, "hosts_per_leaf": 2}, fabrics))
    from fabric.analysis.comparison import check_comparable
    check_comparable(spec)  # the same plan on all three


def test_permutation_any_other_host():
    d = doc({"kind": "permutation", "size_bytes": "1MB", "exclude": "self",
             "hosts": ["h1", "h2", "h3"]})
    plan = plan_of(d)
    assert all(t.src != t.dst for t in plan.transfers) and len(plan.transfers) == 3


def test_bursts_and_hotspot_plan():
    b = plan_of(doc({"kind": "bursts", "size_bytes": "100kB", "bursts": 2, "interval_s": 0.5,
                     "hosts": ["h1", "h3", "h5"]}))
    assert len(b.transfers) == 2 * 3 * 2 and {t.start_s for t in b.transfers} == {0.0, 0.5}
    h = plan_of(doc({"kind": "hotspot", "size_bytes": "100kB", "flows": 40, "hot": ["h2"],
                     "hot_fraction": 1.0, "duration_s": 1.0}))
    assert len(h.transfers) == 40 and {t.dst for t in h.transfers} == {"h2"}


@pytest.mark.parametrize("workload, key", [
    ({"kind": "permutation", "size_bytes": "1MB", "exclude": "rack"}, "workload[0].exclude"),
    ({"kind": "permutation", "size_bytes": "1MB", "hosts": ["h1", "h2"]}, "workload[0].hosts"),
    ({"kind": "bursts", "size_bytes": "1MB", "fanout": 8}, "workload[0].fanout"),
    ({"kind": "bursts", "size_bytes": "1MB", "bursts": 0}, "workload[0].bursts"),
    ({"kind": "hotspot", "size_bytes": "1MB", "hot": ["h99"]}, "workload[0].hot[0]"),
    ({"kind": "hotspot", "size_bytes": "1MB", "hot_fraction": 1.5}, "workload[0].hot_fraction"),
    ({"kind": "hotspot", "size_bytes": "1MB", "hot_hosts": 8}, "workload[0].hot_hosts"),
])
def test_bad_pattern_tables_name_the_key(workload, key):
    with pytest.raises(SpecError) as info:
        parse_experiment(doc(workload))
    assert info.value.key == key
