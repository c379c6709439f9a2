"""Cluster mode's measurements end to end on the namespace test bed: every server's switch
interfaces are in links.csv, each server has its own CPU figures and verdict, paths are traced
and a [[failure]] is applied on the servers owning the link. One ~10 s run (the engine takes the
run lock); its own test-bed prefix, so it never meets tests/test_cluster_emulation.py's."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.test_cluster_emulation import Bed, bed_up, summary_of

pytestmark = pytest.mark.emulation

FAILURE = '\n[[failure]]\nat_s = 0.8\nlink = ["l1", "s1"]\n'


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with bed_up(tmp_path_factory.mktemp("clmeasure"), f"afm{os.getpid() % 10000}") as bed:
        yield bed


def test_every_server_is_measured_and_judged(testbed: Bed, tmp_path: Path) -> None:
    spec = testbed.spec(tmp_path, "measured", size="4MB")
    spec.write_text(spec.read_text() + FAILURE)
    s = summary_of(testbed.run(spec, tmp_path / "runs"))
    assert s["status"] == "complete", s["error"]
    run = Path(s["run_dir"])
    fabric = json.loads((run / "fabric.json").read_text())
    placement = json.loads((run / "cluster.json").read_text())["placement"]
    switches = {n for n, where in placement.items() if not n.startswith("h")}
    with open(run / "links.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    sampled = {r["intf"] for r in rows}
    # every switch end of every link, whichever server it is on, several samples each
    ends = {f"{link[end]}-eth{link[end + '_port']}" for link in fabric["links"]
            for end in ("a", "b") if link[end] in switches}
    assert sampled == ends
    assert {r["src"] for r in rows} == switches
    assert {placement[r["src"]] for r in rows} == {"tb1", "tb2"}
    assert min(sum(r["intf"] == i for r in rows) for i in sampled) >= 4
    f = s["fidelity"]
    servers = {v["server"]: v for v in f["servers"]}
    assert set(servers) == {"tb1", "tb2"}
    for name, v in servers.items():
        assert v["cpu"] is not None and v["cpu"]["ovs_vswitchd_cores_mean"] > 0, name
        assert v["send_failures"] is not None, name   # each server's OVS log was read
        assert (run / "servers" / name / "cpu.csv").exists()
    assert f["faithful"] == all(v["faithful"] for v in servers.values())
    assert s["tcp"]["Tcp.OutSegs"] > 0   # the hosts' counters, read over their remote shells
    with open(run / "paths.csv", newline="") as fh:
        assert {p["via"] for p in csv.DictReader(fh)} == {"hash"}   # traced on the servers
    (failure,) = s["failures"]
    assert failure["error"] == "" and failure["applied_s"] is not None
    assert "s1: port" in (run / "controller.log").read_text()   # the controller saw it go down
    for server in ("tb1", "tb2"):
        assert testbed.leftovers(server) == [], server
    print("\nservers: " + "; ".join(
        f"{n} {'FAITHFUL' if v['faithful'] else 'UNFAITHFUL'} ovs-vswitchd "
        f"{v['cpu']['ovs_vswitchd_cores_mean']:.2f} cores" for n, v in sorted(servers.items())))
