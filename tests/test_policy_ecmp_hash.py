"""`ecmp` with configurable hash fields: the Nicira bundle action over OpenFlow 1.3, the select
group by default, and the field sets OVS can hash (FAKE switches, no OVS)."""
from __future__ import annotations

import pytest

from controller import ofmsgs
from controller.policies import make_policy
from controller.policies.ecmp import hash_field_set
from topologies.errors import SpecError
from fabric.plan.experiment import parse_experiment
from tests.fake_switch import FakeFabric
from topologies.leafspine import build_leaf_spine

FIVE_TUPLE = ["ip_src", "ip_dst", "tcp_src", "tcp_dst"]


@pytest.fixture
def g():
    return build_leaf_spine(2, 2, 2, host_rate_mbps=20, fabric_rate_mbps=20)


@pytest.mark.parametrize("fields, nx_set", [
    ([], None),
    (FIVE_TUPLE, "symmetric_l3l4"),
    (FIVE_TUPLE + ["ip_proto"], "symmetric_l3l4"),
    (FIVE_TUPLE + ["udp_src", "udp_dst"], "symmetric_l3l4+udp"),
    (["ip_dst", "ip_src"], "symmetric_l3"),
    (["ip_src"], "nw_src"),
    (["ip_dst"], "nw_dst"),
    (["eth_src"], "eth_src"),
    (["eth_src", "eth_dst", *FIVE_TUPLE, "eth_type"], "symmetric_l4"),
])
def test_field_lists_map_to_ovs_hash_sets(fields, nx_set):
    assert hash_field_set(fields) == nx_set


@pytest.mark.parametrize("fields", [["ip_dst", "tcp_dst"], ["tcp_src"], ["bogus"], [1, 2]])
def test_other_field_lists_are_rejected_with_the_supported_sets(g, fields):
    with pytest.raises(SpecError) as err:
        make_policy("ecmp", g, {"hash_fields": fields})
    assert err.value.key == "params.hash_fields"
    if all(isinstance(f, str) for f in fields):
        assert "OpenFlow 1.5" in str(err.value) and "ip_src" in str(err.value)


def test_hash_fields_use_a_bundle_action_instead_of_groups(g):
    fab = FakeFabric(g, make_policy("ecmp", g, {"hash_fields": FIVE_TUPLE, "hash_basis": 7}))
    l1 = fab.tables["l1"]
    assert l1.groups == {}
    (rule,) = [f for f in l1.flows if f.match.get("ipv4_dst") == "10.0.0.3"]
    (action,) = rule.actions
    assert isinstance(action, l1.dp.ofproto_parser.NXActionBundle)
    assert (action.fields, action.basis, action.slaves) == (
        ofmsgs.NX_HASH_FIELDS["symmetric_l3l4"], 7, [3, 4])
    pkt = {"eth_type": 0x0800, "ip_proto": 6, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.3",
           "tcp_src": 1, "tcp_dst": 2}
    assert fab.walks("h1", pkt) == {("l1", "s1", "l2", "h3"), ("l1", "s2", "l2", "h3")}
    # single next hops stay plain outputs
    assert [type(a).__name__ for f in fab.tables["s1"].flows for a in f.actions] == \
        ["OFPActionOutput"] * 4


def test_default_is_the_select_group(g):
    fab = FakeFabric(g, make_policy("ecmp", g, None))
    assert list(fab.tables["l1"].groups) == [1]


def test_hash_basis_range(g):
    with pytest.raises(SpecError, match="hash_basis"):
        make_policy("ecmp", g, {"hash_basis": 70000})


def test_spec_validates_policy_params_before_building():
    doc = {"name": "t",
           "fabric": {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2,
                      "policy": "ecmp", "policy_params": {"hash_fields": ["tcp_dst"]}},
           "workload": [{"kind": "flows", "flows": [{"src": "h1", "dst": "h3",
                                                     "size_bytes": 1000}]}]}
    with pytest.raises(SpecError) as err:
        parse_experiment(doc)
    assert err.value.key == "fabric[0].policy_params.hash_fields"
    doc["fabric"]["policy_params"] = {"nonsense": 1}
    with pytest.raises(SpecError) as err:
        parse_experiment(doc)
    assert err.value.key == "fabric[0].policy_params.nonsense"
    doc["fabric"].update(policy="hedra", policy_params={})
    with pytest.raises(SpecError) as err:
        parse_experiment(doc)
    assert err.value.key == "fabric[0].policy"
    doc["fabric"].update(policy="priority", policy_params={"latency_hosts": ["h1"]})
    assert parse_experiment(doc).fabrics[0].policy == "priority"
