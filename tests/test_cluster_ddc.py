"""Cluster mode's DDC/spraying parts that need no root or test bed: where each switch's nft
ruleset goes, what runs on which server, the removal script, the merged reassembly totals, and
the controller's and voqd's input checks."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from controller.main import load_nft_remote
from controller.nftables import NftTables, delete_ruleset
from topologies.ddc import build_ddc
from topologies.leafspine import build_leaf_spine
from topologies.placement import place

from fabric.run.cluster import ddc, lifecycle, voqd
from fabric.run.cluster.ssh import Server

SERVERS = {k: Server(k, ip, "root", "/cfg", "/tmp/aifabric-ssh-x-%h")
           for k, ip in (("tb1", "10.250.0.11"), ("tb2", "10.250.0.12"))}


def test_nft_tables_go_to_each_switchs_prefix_and_the_rest_stays_here() -> None:
    local: list[str] = []
    remote: list[tuple[str, tuple[str, ...]]] = []
    nft = NftTables(runner=local.append, prefixes={"ncp1": ["ssh", "tb1"]},
                    remote=lambda text, prefix: remote.append((text, tuple(prefix))))
    assert nft.sync("ncp1", "A") and nft.sync("ncp2", "B")
    assert not nft.sync("ncp1", "A")           # unchanged: not applied again
    assert nft.sync("ncp1", None)
    assert remote == [("A", ("ssh", "tb1")), (delete_ruleset("ncp1"), ("ssh", "tb1"))]
    assert local == ["B"]


def test_nft_argv_shares_the_master_but_never_becomes_one() -> None:
    argv = ddc.nft_argv(SERVERS["tb1"])
    assert argv[0] == "ssh" and argv[-1] == "root@10.250.0.11"
    assert "ControlMaster=no" in argv and "ControlMaster=auto" not in argv
    assert not any(a.startswith("ControlPersist") for a in argv)
    assert all(argv[i + 1] != "root@10.250.0.11" for i, a in enumerate(argv) if a == "-o")


def test_each_switch_routed_to_the_server_placement_gives_it() -> None:
    g = build_ddc(ncps=4, ncfs=2, hosts_per_ncp=4, host_rate_mbps=8)
    p = place(g, ["tb1", "tb2"])
    routes = ddc.nft_routes(g, p, SERVERS)
    assert set(routes) == {"ncp1", "ncp2", "ncp3", "ncp4", "ncf1", "ncf2"}
    for sw, argv in routes.items():
        assert argv[-1] == f"root@{SERVERS[p.node_server[sw]].ip}"
    ncps = ddc.ncps_by_server(g, p)
    hosts = ddc.hosts_by_server(g, p)
    assert sorted(n for v in ncps.values() for n in v) == ["ncp1", "ncp2", "ncp3", "ncp4"]
    for server, names in hosts.items():     # a host's resequencer runs where its NCP is
        for h in names:
            ncp = next(iter(g.neighbors(h)))
            assert ncp in ncps[server]


def test_server_names_and_their_removal() -> None:
    g = build_ddc(ncps=2, ncfs=2, hosts_per_ncp=2, host_rate_mbps=10)
    p = place(g, ["tb1", "tb2"])
    server = p.node_server["ncp1"]
    intfs, tables = ddc.server_names(g, p, server)
    assert intfs == ["ncp1-vq", "ncp1-vs"]
    assert ("netdev", "fabric_ncp1") in tables
    # registered with the run's record, removed by its removal script at teardown and by
    # `fabric clean` (fabric.run.cluster.lifecycle)
    script = lifecycle.removal_script({"interfaces": intfs, "nft_tables": tables})
    assert "ip link del ncp1-vq" in script and "nft delete table netdev fabric_ncp1" in script
    # anything not named like a device or table never reaches the script
    bad = lifecycle.removal_script({"interfaces": ["x; reboot"],
                                    "nft_tables": [("netdev", "x; reboot"), ("rm", "fabric_l1")]})
    assert bad.strip() == "true"
    unscheduled = build_ddc(ncps=2, ncfs=2, hosts_per_ncp=2, host_rate_mbps=10, scheduler="none")
    assert ddc.server_names(unscheduled, place(unscheduled, ["tb1", "tb2"]), server)[0] == []
    ls = build_leaf_spine(spines=2, leaves=2, hosts_per_leaf=2, host_rate_mbps=10,
                          fabric_rate_mbps=10)
    pl = place(ls, ["tb1", "tb2"])
    assert ddc.server_names(ls, pl, pl.node_server["l1"])[0] == []   # spray: tables only


def test_merged_reassembly_totals() -> None:
    a = {"seen": 10, "held": 2, "hold_ms_max": 3.0, "hold_ms_p99": 2.0, "cpu_s": 0.5,
         "cpu_us_per_packet": 40.0, "partial": False}
    b = {"seen": 5, "held": 1, "hold_ms_max": 1.0, "hold_ms_p99": 4.0, "cpu_s": 0.25,
         "cpu_us_per_packet": 50.0, "partial": False}
    t = ddc.merge_totals({"tb1": a, "tb2": b})
    assert (t["seen"], t["held"], t["cpu_s"]) == (15, 3, 0.75)
    assert (t["hold_ms_max"], t["hold_ms_p99"], t["cpu_us_per_packet"]) == (3.0, 4.0, 50.0)
    assert t["partial"] is False and t["servers"] == {"tb1": a, "tb2": b}
    assert ddc.merge_totals({"tb1": a, "tb2": {"error": "x"}})["partial"] is True


def test_controller_checks_its_nft_remote_map(tmp_path: Path) -> None:
    g = build_ddc(ncps=2, ncfs=2, hosts_per_ncp=2, host_rate_mbps=10)
    f = tmp_path / "r.json"
    assert load_nft_remote(None, g) == {}
    f.write_text(json.dumps({"ncp1": ["ssh", "tb1"]}))
    assert load_nft_remote(str(f), g) == {"ncp1": ["ssh", "tb1"]}
    for bad in ({"h1": ["ssh"]}, {"nope": ["ssh"]}, {"ncp1": []}, {"ncp1": "ssh tb1"}, ["x"]):
        f.write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            load_nft_remote(str(f), g)


def test_voqd_refuses_bad_arguments_and_missing_devices() -> None:
    assert voqd.main(["/run/x"]) == 2
    assert voqd.main(["/run/x", "ncp1; reboot"]) == 2
    out = io.StringIO()
    assert voqd.serve(["ncp99"], io.StringIO(""), out) == 1    # no ncp99-vq here
    assert out.getvalue().startswith("error: ")
