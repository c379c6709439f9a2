"""Paths, collisions, the live view's state and `fabric up`'s helpers, without root."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from fabric.analysis.live import LiveState
from fabric.analysis.paths import (FlowPath, collisions, ovs_sym_l4_hash, read_paths,
                                   trace_hash_mask, trace_output_port, write_paths)
from fabric.plan.experiment import parse_experiment
from fabric.plan.traffic import build_plan
from fabric.run.live import LiveServer
from fabric.run.paths import Tracer, trace_plan
from fabric.run.session import describe_switch, workload_plan

ROOT = Path(__file__).resolve().parent.parent

TRACE_BUCKET = """Flow: tcp,in_port=1,nw_src=10.0.0.1,nw_dst=10.0.0.3,tp_src=20001,tp_dst=5201

bridge("l1")
------------
 0. ip,nw_dst=10.0.0.3, priority 100
    group:1
     -> using bucket 1
    bucket 1
            output:4

Final flow: unchanged
Megaflow: recirc_id=0,dp_hash=0x4/0xf,eth,ip,in_port=1,nw_dst=10.0.0.3,nw_frag=no
Datapath actions: 10
"""
TRACE_EXACT = TRACE_BUCKET.replace("in_port=1,nw_dst", "in_port=1,nw_src=10.0.0.1,nw_dst")


def spec(policy: str = "ecmp", workloads: list | None = None):
    return parse_experiment({
        "name": "t", "seed": 2,
        "fabric": {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2,
                   "host_rate_mbps": 20, "fabric_rate_mbps": 20, "policy": policy},
        "workload": workloads or [
            {"kind": "allreduce", "name": "ar", "size_bytes": "1MB",
             "hosts": ["h1", "h3", "h2", "h4"]},
            {"kind": "flows", "name": "one", "flows": [{"src": "h1", "dst": "h4",
                                                         "size_bytes": "1MB"}]}]})


def test_ovs_hash_is_symmetric_and_depends_on_the_ports():
    a = ovs_sym_l4_hash("10.0.0.1", "10.0.0.3", 20001, 5201)
    assert a == ovs_sym_l4_hash("10.0.0.3", "10.0.0.1", 5201, 20001)
    assert a != ovs_sym_l4_hash("10.0.0.1", "10.0.0.3", 20002, 5201)
    assert 0 <= a < 2 ** 32


def test_trace_parsing():
    assert trace_output_port(TRACE_BUCKET) == 4
    assert trace_output_port("group:1\n -> no live bucket\n\nFinal flow: unchanged\n") is None
    assert trace_hash_mask(TRACE_BUCKET) == 0xF
    assert trace_hash_mask(TRACE_BUCKET.replace("dp_hash=0x4/0xf,", "")) == 0
    assert trace_hash_mask(TRACE_EXACT) is None      # depends on more than ECMP's fields


def test_tracer_asks_only_at_choices_and_caches_by_hash_bits():
    s = spec()
    g = s.fabric(None).build()
    calls = []

    def fake(switch, flow):
        calls.append((switch, flow))
        h = int(flow.rsplit("dp_hash=", 1)[1], 16)
        port = 3 + (h & 1)           # l1's uplinks: ports 3 (s1) and 4 (s2)
        return TRACE_BUCKET.replace("output:4", f"output:{port}").replace(
            "dp_hash=0x4/0xf", f"dp_hash={h & 1:#x}/0x1")
    plan = build_plan(s, g)
    paths = trace_plan(g, plan, "ecmp", run=fake)
    assert len(paths) == len(plan.transfers)
    for p in paths:
        assert p.path[0] == p.src and p.path[-1] == p.dst and len(p.path) == 5
        h = ovs_sym_l4_hash(g.nodes[p.src]["ip"], g.nodes[p.dst]["ip"], p.sport, p.dport)
        assert p.path[2] == ("s1" if h & 1 == 0 else "s2")
    # only source leaves choose (spines have one way down); at most 2 hash slots per route
    assert {c[0] for c in calls} <= {"l1", "l2"}
    assert len(calls) <= 2 * 2 * 4
    sprayed = trace_plan(g, plan, "spray", run=fake)
    assert all(p.via == "spray" and p.path == () for p in sprayed)


def test_tracer_rejects_names_that_are_not_switches():
    s = spec()
    g = s.fabric(None).build()
    t = Tracer(g, run=lambda sw, flow: "")
    with pytest.raises(ValueError):
        t._out_port("l1;rm", 1, "10.0.0.1", "10.0.0.3", 1, 2, 0)


def test_collisions_need_overlap_in_time_and_a_shared_fabric_direction():
    a = FlowPath(1, "h1", "h3", 20001, 5201, ("h1", "l1", "s1", "l2", "h3"))
    b = FlowPath(2, "h2", "h4", 20002, 5201, ("h2", "l1", "s1", "l2", "h4"))
    c = FlowPath(3, "h2", "h4", 20003, 5201, ("h2", "l1", "s2", "l2", "h4"))
    fabric = {"l1", "l2", "s1", "s2"}
    found = collisions([a, b, c], {1: (0.0, 2.0), 2: (1.0, 3.0), 3: (0.0, 3.0)}, fabric)
    assert {(x.src, x.dst) for x in found} == {("l1", "s1"), ("s1", "l2")}
    top = found[0]
    assert top.text().startswith("h1->h3 and h2->h4 collided on l1->s1")
    assert top.pairs == 1 and top.overlap_s == pytest.approx(1.0) and top.flows == (1, 2)
    assert collisions([a, b], {1: (0.0, 1.0), 2: (1.0, 2.0)}, fabric) == []   # one after other


def test_messages_of_one_connection_are_one_flow_not_a_collision():
    """A persistent connection carries messages that overlap in time (pipelined ring steps) on
    one 5-tuple: that is one TCP flow; a second channel (another source port) is another flow."""
    fabric = {"l1", "l2", "s1", "s2"}
    route = ("h2", "l1", "s1", "l2", "h3")
    first, second = FlowPath(1, "h2", "h3", 20001, 5201, route), FlowPath(2, "h2", "h3", 20001, 5201, route)
    assert collisions([first, second], {1: (0.0, 2.0), 2: (1.0, 3.0)}, fabric) == []
    channel = FlowPath(3, "h2", "h3", 20002, 5201, route)
    found = collisions([first, channel], {1: (0.0, 2.0), 3: (1.0, 3.0)}, fabric)
    assert found and found[0].flows == (1, 3)


def test_paths_csv_round_trip(tmp_path):
    ps = [FlowPath(1, "h1", "h3", 20001, 5201, ("h1", "l1", "s1", "l2", "h3")),
          FlowPath(2, "h1", "h3", 20002, 5201, (), "spray")]
    write_paths(ps, tmp_path / "paths.csv")
    assert read_paths(tmp_path / "paths.csv") == ps


def test_workload_plan_keeps_ids_and_its_collectives():
    s = spec()
    g = s.fabric(None).build()
    plan = build_plan(s, g)
    ar = workload_plan(plan, "ar")
    assert ar.transfers and all(t.workload == "ar" for t in ar.transfers)
    assert {c.id for c in ar.collectives} == {t.group for t in ar.transfers}
    # the connections its transfers ride on come along (an agent refuses a plan without them)
    assert {c.key for c in ar.connections} == {t.conn for t in ar.transfers} - {None}
    one = workload_plan(plan, "one")
    assert [t.id for t in one.transfers] == [t.id for t in plan.transfers if t.workload == "one"]
    assert one.collectives == ()


def _links_csv(path: Path, rows: list[tuple[float, str, str, int]]) -> None:
    with open(path, "w") as f:
        f.write("time,link,src,dst,tier,rate_mbps,tx_bytes,tx_dropped,intf\n")
        for t, src, dst, tx in rows:
            f.write(f"{t},{src}-{dst},{src},{dst},fabric,20,{tx},0,{src}-eth3\n")


def test_live_state_reads_utilisation_flows_collectives_and_events(tmp_path):
    s = spec()
    g = s.fabric(None).build()
    plan = workload_plan(build_plan(s, g), "ar")
    _links_csv(tmp_path / "links.csv", [(100.0, "l1", "s1", 0), (100.0, "l1", "s2", 0),
                                        (100.5, "l1", "s1", 1_250_000), (100.5, "l1", "s2", 0)])
    agents = tmp_path / "agents"
    agents.mkdir()
    first = plan.transfers[0]
    (agents / f"{first.dst}.recv.csv").write_text(
        f"id,src,dst,bytes,start,end\n{first.id},{first.src},{first.dst},{first.size_bytes},"
        "100.0,100.4\n")
    state = LiveState(g, tmp_path, "t", link_up=lambda intf: intf != "s2-eth1")
    paths = [FlowPath(t.id, t.src, t.dst, 1, 5201, (t.src, "l1", "s1", "l2", t.dst))
             for t in plan.transfers]
    state.watch(plan, agents, 100.0, paths)
    state.event("failed l1 s2", 100.2)
    snap = state.snapshot(now=100.6)
    json.dumps(snap)                                   # the page gets plain JSON
    dirs = {(d["src"], d["dst"]): d["util"] for l in snap["links"] for d in l["dirs"]}
    assert dirs[("l1", "s1")] == pytest.approx(1.0) and dirs[("l1", "s2")] == 0.0
    down = {l["link"] for l in snap["links"] if l["down"]}
    assert down == {"l1-s2"}        # s2-eth1 is s2's port to l1 in this model
    ids = {f["id"] for f in snap["flows"]}
    assert first.id not in ids and ids and all(
        all(a in {first.id} for a in plan.by_id()[i].after) for i in ids)
    (coll,) = snap["collectives"]
    assert coll["fraction"] == pytest.approx(first.size_bytes / sum(
        t.size_bytes for t in plan.transfers), abs=1e-3)
    assert snap["events"][0]["what"] == "failed l1 s2"
    assert snap["events"][0]["t_s"] == pytest.approx(0.2)
    # new rows are picked up incrementally; a torn last line waits for its end
    with open(tmp_path / "links.csv", "a") as f:
        f.write("101.0,l1-s1,l1,s1,fabric,20,1250000,0,l1-eth3\n101.0,l1-s2,l1,s2,fab")
    dirs = {(d["src"], d["dst"]): d["util"] for l in state.snapshot(101.1)["links"]
            for d in l["dirs"]}
    assert dirs[("l1", "s1")] == 0.0 and dirs[("l1", "s2")] == 0.0


def test_live_server_serves_page_and_state_on_loopback(tmp_path):
    s = spec()
    g = s.fabric(None).build()
    with LiveServer(LiveState(g, tmp_path, "title"), 0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        page = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert "<svg" in page and "state.json" in page
        state = json.loads(urllib.request.urlopen(server.url + "state.json", timeout=5).read())
        assert state["title"] == "title" and {n["name"] for n in state["nodes"]} >= {"h1", "s2"}
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(server.url + "etc/passwd", timeout=5)
    layers = {n["name"]: n["layer"] for n in state["nodes"]}
    assert (layers["s1"], layers["l1"], layers["h1"]) == (0, 1, 2)


def test_describe_switch_names_next_hops_and_bucket_counters():
    s = spec()
    g = s.fabric(None).build()
    flows = (" cookie=0xec4d, priority=100,ip,nw_dst=10.0.0.1 actions=output:1\n"
             " cookie=0xec4d, priority=100,ip,nw_dst=10.0.0.3 actions=group:1\n"
             " cookie=0x0, priority=0 actions=drop\n")
    groups = " group_id=1,type=select,bucket=bucket_id:0,actions=output:3,bucket=bucket_id:1,actions=output:4"
    stats = (" group_id=1,duration=1s,ref_count=1,packet_count=10,byte_count=1,"
             "bucket0:packet_count=4,byte_count=1,bucket1:packet_count=6,byte_count=1")
    text = describe_switch(g, "l1", flows, groups, stats)
    assert "to h1: -> h1" in text
    assert "to h3: ECMP group 1 [s1 4 pkts | s2 6 pkts]" in text


def test_demo_runs_every_step_pausing_and_reports_the_measured_figures(tmp_path):
    import io
    from fabric.analysis.summary import RunSummary
    from fabric.run.demo import STEPS, run_lesson
    calls, pauses = [], []

    def fake_run(spec, path, out, fabric, live_port=None):
        d = tmp_path / f"run-{len(calls)}"
        d.mkdir()
        calls.append((path.name, fabric, live_port))
        length = 2.0 if fabric == "single" else 3.0
        (d / "flows.csv").write_text("flow_id,start,end,complete\n"
                                     f"0,10.0,{10.0 + length},True\n1,10.5,11.0,True\n")
        if fabric == "adaptive":
            (d / "moves.csv").write_text("time,switch\n1.0,l1\n2.0,l2\n")
        s = RunSummary("lesson", fabric, "ecmp", 1, str(d), status="complete")
        if fabric == "ecmp":
            s.collisions = ["h1->h3 and h2->h4 collided on l1->s1 (1 flow pair, 1.00 s together)"]
        return s
    out = io.StringIO()
    code = run_lesson(tmp_path, pause=True, steps=STEPS, stdout=out, wait=pauses.append,
                      run=fake_run, live_port=7)
    text = out.getvalue()
    assert code == 0
    assert [c[1] for c in calls] == [s.fabric for s in STEPS]
    assert all(Path(ROOT / "examples" / c[0]).exists() and c[2] == 7 for c in calls)
    assert len(pauses) == 2 * len(STEPS) - 1          # before each run, between steps
    assert "job time 3.00 s (1.50x the one switch's 2.00 s)" in text
    assert "h1->h3 and h2->h4 collided on l1->s1" in text
    assert "moves: adaptive re-placed 2 flows" in text
    assert text.count("Look for:") == len(STEPS)


def test_every_lesson_step_names_a_fabric_of_its_file():
    from fabric.plan.experiment import load_experiment
    from fabric.run.demo import EXAMPLES, STEPS
    for step in STEPS:
        assert load_experiment(EXAMPLES / step.file).fabric(step.fabric).name == step.fabric


def test_fail_and_restore_arguments_are_checked_before_touching_links(tmp_path):
    from fabric.run import session as session_mod
    s = spec()
    g = s.fabric(None).build()
    touched = []

    class FakeNetwork:   # records what would be set instead of touching interfaces
        def set_links(self, intfs: list[str], up: bool) -> str:
            touched.append((intfs, up))
            return ""
    sess = session_mod.Session(s, s.fabric(None), g, build_plan(s, g), tmp_path, None,
                               FakeNetwork(), LiveState(g, tmp_path, "t"), None)
    for bad, msg in ((["l1", "h1"], "host link"), (["l1", "l2"], "no link"), (["h1"], "has hosts"),
                     (["l1"], "has hosts"), (["x;reboot"], "not a node"), ([], "give a link")):
        with pytest.raises(ValueError, match=msg):
            sess.set_links(bad, False)
    assert touched == []
    text = sess.set_links(["s1"], False)
    assert "partitioned" not in text and len(touched[0][0]) == 4 and touched[0][1] is False
    assert "partitioned" in sess.set_links(["s2"], False)
    sess.set_links(["l1", "s1"], True)
    assert touched[-1] == (["l1-eth3", "s1-eth1"], True)
    assert [e["what"] for e in sess.state.snapshot()["events"]][-1] == "restored l1 s1"


def test_capture_names_are_checked_against_the_fabric():
    from topologies.errors import SpecError
    from fabric.spec.experiment import capture_interfaces
    g = spec().fabric(None).build()
    assert capture_interfaces(("l1-s1", "s2-l1", "h3-l2"), g) == [
        ("l1-s1", "l1-eth3"), ("s2-l1", "s2-eth1"), ("h3-l2", "l2-eth1")]
    for bad in ("l1", "l1-l2", "l1-s1;x", "h1-h2"):
        with pytest.raises(SpecError, match=r"run\.capture\[0\]"):
            capture_interfaces((bad,), g)


def test_capture_analysis_spread_and_reordering(tmp_path):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap
    from fabric.analysis.capture import analyse

    def seg(seq, sport=20001):
        return Ether() / IP(src="10.0.0.1", dst="10.0.0.3") / TCP(sport=sport, dport=5201,
                                                                  seq=seq) / (b"x" * 100)
    # flow A sprayed: 1000, 1200 on up1; 1100, 1300 on up2 then 1150 late (out of order)
    wrpcap(str(tmp_path / "up1.pcap"), [seg(1000), seg(1200), seg(5000, 30000)])
    wrpcap(str(tmp_path / "up2.pcap"), [seg(1100), seg(1300), seg(1150)])
    rows = {(r.link, r.sport): r for r in analyse({"up1": tmp_path / "up1.pcap",
                                                   "up2": tmp_path / "up2.pcap"})}
    assert rows[("up1", 20001)].share == 0.4 and rows[("up2", 20001)].share == 0.6
    assert rows[("up2", 20001)].out_of_order == 1
    assert rows[("up2", 20001)].max_reorder_bytes == 1400 - 1250
    assert rows[("up1", 30000)].share == 1.0 and rows[("up1", 30000)].out_of_order == 0


def test_run_collisions_leave_out_other_source_ports_failures_and_adaptive(tmp_path):
    from traffic.records import FlowRecord
    from fabric.analysis.paths import run_collisions
    a = FlowPath(1, "h1", "h3", 20001, 5201, ("h1", "l1", "s1", "l2", "h3"))
    b = FlowPath(2, "h2", "h4", 20002, 5201, ("h2", "l1", "s1", "l2", "h4"))
    recs = [FlowRecord(1, "h1", "h3", 10, 0.0, 2.0, 2.0, "w", None, None, True),
            FlowRecord(2, "h2", "h4", 10, 1.0, 3.0, 2.0, "w", None, None, True)]
    fabric = {"l1", "l2", "s1", "s2"}
    (tmp_path / "h2.send.csv").write_text("id,src,dst,bytes,start,acked,error,sport\n"
                                          "2,h2,h4,10,1.0,3.0,,20002\n")
    assert len(run_collisions([a, b], recs, tmp_path, fabric)) == 2
    assert run_collisions([a, b], recs, tmp_path, fabric, "adaptive") == []
    assert run_collisions([a, b], recs, tmp_path, fabric, until=2.5) == []
    (tmp_path / "h2.send.csv").write_text("id,src,dst,bytes,start,acked,error,sport\n"
                                          "2,h2,h4,10,1.0,3.0,,41000\n")   # port was taken
    assert run_collisions([a, b], recs, tmp_path, fabric) == []


def test_live_state_shows_paths_over_a_failed_link_as_rerouted(tmp_path):
    s = spec()
    g = s.fabric(None).build()
    plan = workload_plan(build_plan(s, g), "one")
    (t,) = plan.transfers
    path = FlowPath(t.id, t.src, t.dst, 1, 5201, (t.src, "l1", "s1", "l2", t.dst))
    up = LiveState(g, tmp_path, "t")
    up.watch(plan, tmp_path, 0.0, [path])
    assert up.snapshot(now=1.0)["flows"][0]["path"] == list(path.path)
    failed = LiveState(g, tmp_path, "t", link_up=lambda intf: not intf.startswith("s1-"))
    failed.watch(plan, tmp_path, 0.0, [path])
    (flow,) = failed.snapshot(now=1.0)["flows"]
    assert flow["path"] == [] and flow["via"].startswith("re-routed")
