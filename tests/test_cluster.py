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


# ------------------------------------------------------------------------------ clocks

def test_flows_between_servers_are_timed_on_the_head_clock(tmp_path):
    """Sender's start and receiver's end each move by their own server's offset: a server
    clock 5 s ahead must not make a flow into it 5 s longer."""
    from traffic.plan import Transfer, TrafficPlan
    from traffic.records import collect
    plan = TrafficPlan("x", 1, (Transfer(0, "h1", "h2", 100), Transfer(1, "h2", "h1", 100)))
    (tmp_path / "h1.send.csv").write_text("id,src,dst,bytes,start,acked,error,sport,conn\n"
                                          "0,h1,h2,100,100.0,101.5,,1,\n")
    (tmp_path / "h2.recv.csv").write_text("id,src,dst,bytes,start,end\n0,h1,h2,100,100.0,106.0\n")
    (tmp_path / "h2.send.csv").write_text("id,src,dst,bytes,start,acked,error,sport,conn\n"
                                          "1,h2,h1,100,110.0,110.5,,1,\n")
    (tmp_path / "h1.recv.csv").write_text("id,src,dst,bytes,start,end\n1,h2,h1,100,110.0,105.5\n")
    one_clock = {r.flow_id: r.fct_s for r in collect(tmp_path, plan)}
    assert one_clock == {0: pytest.approx(6.0), 1: pytest.approx(-4.5)}
    fixed = {r.flow_id: r for r in collect(tmp_path, plan, {"h1": 0.0, "h2": 5.0})}
    assert fixed[0].fct_s == pytest.approx(1.0) and fixed[1].fct_s == pytest.approx(0.5)
    assert fixed[1].start == pytest.approx(105.0)   # on the head's clock


@pytest.mark.parametrize("offset_ms, rtt_ms, corrected", [
    (0.3, 1.0, 0.0),      # within half the round trip: not distinguishable from 0
    (-0.4, 1.0, 0.0),
    (2.0, 1.0, 2.0),
    (-7.5, 0.2, -7.5),
])
def test_clock_correction_only_beyond_the_measurement_noise(offset_ms, rtt_ms, corrected):
    from fabric.run.cluster.ssh import ServerCheck
    check = ServerCheck("tb1", "10.0.0.1", offset_ms, rtt_ms, True, True)
    assert check.clock_correction_ms == corrected


def test_host_offsets_come_from_cluster_json(tmp_path):
    import json
    from fabric.run.cluster import host_clock_offsets
    assert host_clock_offsets(tmp_path) == {}          # one machine: one clock
    (tmp_path / "cluster.json").write_text(json.dumps({
        "servers": [{"server": "a", "clock_correction_ms": 0.0},
                    {"server": "b", "clock_correction_ms": 3.0}],
        "placement": {"h1": "a", "h2": "b", "l1": "a"}}))
    assert host_clock_offsets(tmp_path) == {"h1": 0.0, "h2": 0.003, "l1": 0.0}
