"""Experiment spec loading: good files load, bad input names the offending key."""
from pathlib import Path

import pytest

from topologies.errors import SpecError
from fabric.spec.experiment import LeafSpineSpec
from fabric.workloads.allreduce import AllReduceSpec
from fabric.plan.experiment import load_experiment, parse_experiment
from fabric.spec.units import parse_size

EXAMPLES = sorted(Path(__file__).resolve().parent.parent.joinpath("examples").glob("*.toml"))


def base_doc(**fabric_changes):
    fabric = {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2,
              "host_rate_mbps": 20, "fabric_rate_mbps": 20}
    fabric.update(fabric_changes)
    return {"name": "t", "fabric": fabric,
            "workload": [{"kind": "allreduce", "size_bytes": "1MB", "hosts": "all"}]}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(path):
    spec = load_experiment(path)
    assert spec.fabrics and spec.workloads


def test_defaults_and_types():
    spec = parse_experiment(base_doc())
    fab = spec.fabrics[0]
    assert isinstance(fab, LeafSpineSpec) and fab.host_rate_mbps == 20.0
    assert isinstance(spec.workloads[0], AllReduceSpec)
    assert spec.workloads[0].size_bytes == 1_000_000 and spec.workloads[0].hosts == ("all",)


@pytest.mark.parametrize("doc_change, key", [
    (dict(spines=0), "fabric[0].spines"),
    (dict(host_rate_mbps=-5), "fabric[0].host_rate_mbps"),
    (dict(spines="two"), "fabric[0].spines"),
    (dict(spinez=2), "fabric[0].spinez"),
    (dict(kind="torus"), "fabric[0].kind"),
    (dict(name="bad name; rm -rf /"), "fabric[0].name"),
    (dict(queue_packets=True), "fabric[0].queue_packets"),
])
def test_bad_fabric_values_name_the_key(doc_change, key):
    with pytest.raises(SpecError) as info:
        parse_experiment(base_doc(**doc_change))
    assert info.value.key == key


@pytest.mark.parametrize("workload, key", [
    ({"kind": "allreduce", "size_bytes": "lots"}, "workload[0].size_bytes"),
    ({"kind": "allreduce", "size_bytes": "4XB"}, "workload[0].size_bytes"),
    ({"kind": "allreduce", "size_bytes": -1}, "workload[0].size_bytes"),
    ({"kind": "allreduce", "size_bytes": "1MB", "hosts": ["h1", "h99"]}, "workload[0].hosts[1]"),
    ({"kind": "allreduce", "size_bytes": "1MB", "hosts": ["h1", "$(reboot)"]}, "workload[0].hosts[1]"),
    ({"kind": "allreduce"}, "workload[0].size_bytes"),
    ({"kind": "flows", "flows": [{"src": "h1", "dst": "h9", "size_bytes": 10}]},
     "workload[0].flows[0].dst"),
    ({"kind": "flows", "flows": [{"src": "h1", "dst": "h2", "size_bytes": 10, "colour": 1}]},
     "workload[0].flows[0].colour"),
])
def test_bad_workloads_name_the_key(workload, key):
    doc = base_doc()
    doc["workload"] = [workload]
    with pytest.raises(SpecError) as info:
        parse_experiment(doc)
    assert info.value.key == key


def test_unknown_top_level_key_and_missing_sections():
    doc = base_doc()
    doc["sead"] = 3
    with pytest.raises(SpecError, match="sead"):
        parse_experiment(doc)
    with pytest.raises(SpecError, match="workload"):
        parse_experiment({"name": "x", "fabric": base_doc()["fabric"]})


def test_several_fabrics_need_distinct_names():
    doc = base_doc()
    doc["fabric"] = [doc["fabric"], dict(doc["fabric"])]
    with pytest.raises(SpecError, match="differ"):
        parse_experiment(doc)


def test_not_toml(tmp_path):
    p = tmp_path / "x.toml"
    p.write_text("name = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_experiment(p)


@pytest.mark.parametrize("text, expected", [
    (4_000_000, 4_000_000), ("4MB", 4_000_000), ("4 MiB", 4 * 2**20), ("1.5kB", 1500),
    ("512KiB", 524_288), ("10", 10)])
def test_sizes(text, expected):
    assert parse_size(text, "k") == expected


@pytest.mark.parametrize("text", ["", "MB", "1.5", "-3", "3 parsecs", True, 0, "0.5B"])
def test_bad_sizes(text):
    with pytest.raises(SpecError):
        parse_size(text, "k")
