"""Cluster mode's pure core: the [cluster] table, the placement, the tunnel MTU check."""
from __future__ import annotations

import pytest

from topologies.ddc import build_ddc
from topologies.errors import SpecError
from topologies.leafspine import build_leaf_spine
from topologies.placement import place, tunnel_mtu

from fabric.spec.experiment import parse_spec

BASE = {"name": "c", "fabric": {"kind": "leafspine", "spines": 2, "leaves": 2,
                                "hosts_per_leaf": 2, "mtu": 1450},
        "workload": [{"kind": "allreduce", "name": "r", "size_bytes": "1MB"}]}


def spec_with(cluster, **fabric):
    doc = {**BASE, "cluster": cluster, "fabric": {**BASE["fabric"], **fabric}}
    return parse_spec(doc)


def error_keys(exc):
    return [e.key for e in exc.value.errors]


def test_cluster_table_is_typed_with_defaults():
    spec = spec_with({"servers": ["10.250.0.11", "lab-2.example"]})
    c = spec.cluster
    assert c.servers == ("10.250.0.11", "lab-2.example")
    assert (c.user, c.tunnel, c.underlay_mtu, c.max_clock_skew_ms) == ("root", "vxlan", 1500, 10.0)
    assert parse_spec(BASE).cluster is None


@pytest.mark.parametrize("cluster, key", [
    ({"servers": ["a"], "colour": 1}, "cluster.colour"),
    ({"servers": "a b"}, "cluster.servers[0]"),        # a space: not a host name
    ({"servers": [1]}, "cluster.servers[0]"),
    ({"servers": ["-oProxyCommand=x"]}, "cluster.servers[0]"),
    ({"servers": ["a", "a"]}, "cluster.servers[1]"),
    ({"servers": []}, "cluster.servers"),
    ({"servers": ["a"], "tunnel": "ipip"}, "cluster.tunnel"),
    ({"servers": ["a"], "user": "r oot"}, "cluster.user"),
    ({"servers": ["a"], "underlay_mtu": 100}, "cluster.underlay_mtu"),
    ({"servers": ["a"], "max_clock_skew_ms": -1}, "cluster.max_clock_skew_ms"),
    ({"user": "root"}, "cluster.servers"),
])
def test_bad_cluster_tables_name_the_key(cluster, key):
    with pytest.raises(SpecError) as exc:
        spec_with(cluster)
    assert key in error_keys(exc), error_keys(exc)


def test_fabric_mtu_must_fit_the_tunnel():
    with pytest.raises(SpecError) as exc:
        spec_with({"servers": ["a", "b"]}, mtu=1500)
    assert error_keys(exc) == ["fabric[0].mtu"]
    assert "1450" in str(exc.value)
    spec_with({"servers": ["a", "b"], "tunnel": "ssh"}, mtu=1500)          # a stream: no limit
    spec_with({"servers": ["a"]}, mtu=1500)                                # one server: no tunnel
    spec_with({"servers": ["a", "b"], "underlay_mtu": 9000}, mtu=8950)     # jumbo underlay
    assert (tunnel_mtu("vxlan", 1500), tunnel_mtu("gretap", 1500)) == (1450, 1458)


def hosts_with_their_switch(g, p):
    return all(p.node_server[h] == p.node_server[next(iter(g.neighbors(h)))]
               for h in p.hosts)


@pytest.mark.parametrize("spines, leaves, n", [(2, 2, 2), (4, 4, 2), (2, 6, 3), (3, 8, 4)])
def test_leafspine_placement_keeps_hosts_home_and_balances(spines, leaves, n):
    g = build_leaf_spine(spines, leaves, 2, 20, 20)
    servers = [f"s{i}" for i in range(n)]
    p = place(g, servers)
    assert set(p.node_server) == set(g.nodes)
    assert hosts_with_their_switch(g, p)
    avg = sum(p.load_mbps.values()) / n
    assert max(p.load_mbps.values()) <= avg * 1.25 + 1e-6
    # every cut link joins two servers and is a link of the fabric
    assert all(g.has_edge(c.a, c.b) and c.server_a != c.server_b for c in p.cut)
    assert p == place(g, list(reversed(list(reversed(servers)))))   # deterministic


def test_placement_cuts_the_cheap_links():
    """Each spine talks mostly to one leaf: each goes with that leaf, the thin links are cut."""
    g = build_leaf_spine(2, 2, 2, 20, 20)
    for (leaf, spine), rate in {("l1", "s2"): 100.0, ("l2", "s1"): 100.0,
                                ("l1", "s1"): 1.0, ("l2", "s2"): 1.0}.items():
        g.edges[leaf, spine]["rate_mbps"] = rate
    p = place(g, ["a", "b"])
    assert p.node_server["s2"] == p.node_server["l1"] != p.node_server["l2"] == p.node_server["s1"]
    assert sorted(tuple(sorted((c.a, c.b))) for c in p.cut) == [("l1", "s1"), ("l2", "s2")]
    assert p.cut_mbps == 2.0


def test_one_server_cuts_nothing_and_ddc_places():
    g = build_ddc(4, 2, 4, 20, None, 1.0, 100, 100, name="ddc")
    assert place(g, ["only"]).cut == ()
    p = place(g, ["a", "b"])
    assert hosts_with_their_switch(g, p)
    ncps = [n for n, d in g.nodes(data=True) if d["role"] == "ncp"]
    assert sorted(p.node_server[n] for n in ncps) == ["a", "a", "b", "b"]
    assert any("cut links" in line for line in p.lines())
