"""Cluster mode's measurements without root: which server samples which direction, merging the
servers' rows onto the head's clock, the verdict per server, the summary lines, the refusals."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from topologies.errors import SpecError
from topologies.leafspine import build_leaf_spine
from topologies.placement import place

from fabric.analysis.fidelity import CpuSample
from fabric.analysis.links import LinkSample, directions
from fabric.analysis.ovsbuf import SendFailures
from fabric.analysis.servers import assess_servers, cluster_layout
from fabric.report.summary import format_fidelity
from fabric.run.cluster import measure
from fabric.spec.experiment import parse_spec

ROOT = Path(__file__).resolve().parents[1]


def test_each_direction_is_sampled_once_on_the_server_owning_its_switch():
    g = build_leaf_spine(spines=2, leaves=4, hosts_per_leaf=2, host_rate_mbps=20, fabric_rate_mbps=20)
    p = place(g, ["a", "b"])
    per = measure.server_directions(g, p.node_server)
    assert set(per) == {"a", "b"}
    got = sorted((d.src, d.dst) for ds in per.values() for d in ds)
    assert got == sorted((d.src, d.dst) for d in directions(g))
    for server, ds in per.items():
        assert all(p.node_server[d.src] == server and d.intf.startswith(d.src + "-") for d in ds)


def test_rows_move_onto_the_head_clock():
    assert measure.shifted_row("10.0,l1-s1,1", 0.5) == ["9.500000", "l1-s1", "1"]
    assert measure.shifted_row("10.4,l2-s1,7", -0.2) == ["10.600000", "l2-s1", "7"]
    assert measure.shifted_row("not-a-time,l2-s1,8", 0.0) is None
    assert measure.shifted_row("", 0.0) is None


def test_send_failures_of_the_servers_add_up():
    m = measure.merge_send_failures([SendFailures({"l1-eth1": 2}), None,
                                     SendFailures({"l1-eth1": 1, "s1-eth2": 4}, True)])
    assert m == SendFailures({"l1-eth1": 3, "s1-eth2": 4}, True)
    assert measure.merge_send_failures([None, None]) is None


def fake_net(node_server, outputs=None):
    calls = []

    class S:
        def __init__(self, name):
            self.name = name

        def run(self, command, input_text=None, timeout_s=20):
            calls.append((self.name, command, input_text))
            return SimpleNamespace(returncode=0, stdout=(outputs or {}).get(self.name, ""),
                                   stderr="")
    servers = {s: S(s) for s in set(node_server.values())}
    net = SimpleNamespace(placement=SimpleNamespace(node_server=node_server), servers=servers,
                          server_of=lambda n: servers[node_server[n]])
    return net, calls


def test_failures_go_down_on_the_server_owning_each_interface():
    net, calls = fake_net({"l1": "a", "s1": "b", "h1": "a"})
    assert measure.set_links_on_servers(net)(["l1-eth3", "s1-eth1", "h1-eth0"]) == ""
    assert sorted((s, text) for s, _, text in calls) == [
        ("a", "link set dev l1-eth3 down\nlink set dev h1-eth0 down\n"),
        ("b", "link set dev s1-eth1 down\n")]
    with pytest.raises(ValueError):
        measure.set_links_on_servers(net)(["l1-eth3; reboot"])
    calls.clear()
    assert measure.set_links_on_servers(net, up=True)(["s1-eth1"]) == ""
    assert calls == [("b", "ip -batch -", "link set dev s1-eth1 up\n")]


def test_paths_are_traced_on_the_server_owning_the_switch():
    net, calls = fake_net({"l1": "a", "s1": "b"}, {"b": "Datapath actions: 3"})
    run = measure.tracer_on_servers(net)
    assert run("s1", "in_port=1,tcp,nw_src=10.0.0.1") == "Datapath actions: 3"
    assert calls == [("b", "ovs-appctl ofproto/trace s1 in_port=1,tcp,nw_src=10.0.0.1", None)]


def cpu(ovs_cores, busy=0.5, seconds=4):
    return [CpuSample(t * 0.5, t * 0.5 * 2 * busy, t * 0.5 * 2, 0.0, t * 0.5 * ovs_cores, 0.0,
                      0.1 * t) for t in range(seconds * 2 + 1)]


def rows(src, dst, util, seconds=4, rate=8.0):
    out, tx = [], 0.0
    steps = [util] * (seconds * 4) + [0.0, 0.0]
    for i in range(len(steps) + 1):
        out.append(LinkSample(i * 0.25, f"{src}-{dst}", src, dst, "host", rate, round(tx), 0))
        if i < len(steps):
            tx += steps[i] * 0.25 * 1e6
    return out


PLACED = {"l1": "a", "h1": "a", "l2": "b", "h2": "b"}
BUSY = {("l1", "h1"): 1.0, ("l2", "h2"): 1.0}


def test_the_run_is_faithful_only_if_every_server_is():
    links = rows("l1", "h1", 1.0) + rows("l2", "h2", 0.6)
    # b's ovs-vswitchd saturated while its busy link fell short: b, and so the run, unfaithful
    f = assess_servers({"a": cpu(0.3), "b": cpu(0.95)}, links, PLACED, BUSY, {}, 1514,
                       {"a": 0, "b": None})
    by = {s.server: s for s in f.servers}
    assert by["a"].faithful and not by["b"].faithful and not f.faithful
    assert by["a"].busy_links == by["b"].busy_links == 1
    assert f.reasons and all(r.startswith("b: ") for r in f.reasons)
    assert by["a"].cpu.ovs_vswitchd_cores_mean == pytest.approx(0.3)
    text = "\n".join(format_fidelity(f))
    assert "not every one of 2 servers" in text and "server a: FAITHFUL" in text
    assert "server b: UNFAITHFUL" in text and "OVS send failures unknown" in text
    # the same shortfall on an idle server's CPU is TCP, not the machine: a warning only
    ok = assess_servers({"a": cpu(0.3), "b": cpu(0.3)}, links, PLACED, BUSY, {}, 1514)
    assert ok.faithful and any(w.startswith("b: ") for w in ok.warnings)
    assert "FAITHFUL  (every one of 2 servers" in format_fidelity(ok)[0]


def test_a_server_without_samples_is_not_faithful():
    f = assess_servers({"a": cpu(0.3), "b": []}, rows("l1", "h1", 1.0), PLACED, BUSY, {}, 1514)
    assert not f.faithful and any(r.startswith("b: not measured") for r in f.reasons)


def test_a_neighbour_at_its_rate_on_another_server_excuses_a_shortfall():
    links = rows("l1", "s1", 0.6) + rows("s1", "l2", 1.0)
    placed = {"l1": "a", "s1": "b", "l2": "b"}
    neighbours = {("l1", "s1"): {("l1", "s1"), ("s1", "l2")}}
    f = assess_servers({"a": cpu(0.95), "b": cpu(0.2)}, links, placed, {("l1", "s1"): 1.0},
                       neighbours, 1514)
    assert f.faithful, f.reasons


def test_cluster_layout_reads_the_placement(tmp_path):
    assert cluster_layout(tmp_path) is None
    (tmp_path / "cluster.json").write_text(json.dumps(
        {"servers": [{"server": "tb1"}, {"server": "tb2"}], "placement": {"l1": "tb1", "s1": "tb2"}}))
    assert cluster_layout(tmp_path) == (["tb1", "tb2"], {"l1": "tb1", "s1": "tb2"})


def test_capture_is_refused_in_cluster_mode_before_anything_is_built():
    doc = {"name": "c", "fabric": {"kind": "leafspine", "spines": 2, "leaves": 2,
                                   "hosts_per_leaf": 2, "mtu": 1450},
           "workload": [{"kind": "allreduce", "name": "r", "size_bytes": "1MB"}],
           "run": {"capture": ["l1-s1"]}}
    parse_spec(doc)   # one machine: fine
    with pytest.raises(SpecError) as exc:
        parse_spec({**doc, "cluster": {"servers": ["a", "b"]}})
    assert "run.capture" in str(exc.value) and "cluster mode" in str(exc.value)


def test_the_server_process_streams_its_samples_then_its_results():
    """serverd as a server runs it (here on this machine: /proc and /sys, no root needed)."""
    cfg = {"directions": [["a-b", "a", "b", "fabric", 10.0, "lo"],
                          ["a-c", "a", "c", "fabric", 10.0, "nosuch-eth9"]],
           "agents_match": "--plan /nonexistent/plan.json"}
    proc = subprocess.Popen([sys.executable, "-m", "fabric.run.cluster.serverd"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    proc.stdin.write(json.dumps(cfg) + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "READY"
    lines: list[str] = []
    while {x[:2] for x in lines} != {"L ", "C "}:     # both streamed before "stop"
        lines.append(proc.stdout.readline())
        assert lines[-1][:2] in ("L ", "C ") and len(lines) < 100, lines
    proc.stdin.write("stop\n")
    proc.stdin.close()
    lines += proc.stdout.read().splitlines()
    assert proc.wait(timeout=60) == 0
    assert lines[-1].startswith("R ")
    result = json.loads(lines[-1][2:])
    assert result["missing"] == ["nosuch-eth9"]
    links = [next(csv.reader([x[2:]])) for x in lines if x.startswith("L ")]
    cpu = [next(csv.reader([x[2:]])) for x in lines if x.startswith("C ")]
    assert len(links) >= 2 and {r[8] for r in links} == {"lo"} and len(links[0]) == 11
    assert len(cpu) >= 2 and len(cpu[0]) == 7, lines


def test_agents_are_found_by_their_command_line_and_kept_once_seen(tmp_path):
    from fabric.run.cluster import serverd
    for pid, words in ((11, [b"python", b"-m", b"traffic.agent", b"--plan", b"/r/plan.json"]),
                       (12, [b"python", b"-m", b"traffic.agent", b"--plan", b"/other/plan.json"]),
                       (13, [b"sshd"])):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(words) + b"\0")
    (tmp_path / "stat").write_text("cpu 1 2 3\n")
    assert serverd.pids_matching("--plan /r/plan.json", tmp_path) == [11]
    assert serverd.pids_matching("", tmp_path) == []
