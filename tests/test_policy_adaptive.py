"""`adaptive` (Hedera-like) against FAKE switches, and the Hedera pieces in controller.placement.
No root, no OVS: fabric + policy + packets + counters -> entries, moves, output ports."""
from __future__ import annotations

import pytest

from controller import placement
from controller.policies import Stats, make_policy
from controller.policies.adaptive import FLOW_COOKIE, Move, flow_match
from topologies.errors import SpecError
from tests.fake_switch import FakeFabric
from topologies.leafspine import build_leaf_spine
from topologies.model import attachment

MBIT = 1e6 / 8   # bytes per Mbit


def tcp(src: str, dst: str, sport: int, dport: int = 5201) -> dict:
    return {"eth_type": 0x0800, "ip_proto": 6, "ipv4_src": src, "ipv4_dst": dst,
            "tcp_src": sport, "tcp_dst": dport, "ip_dscp": 0, "tcp_flags": 0x002}


class Run:
    """A 2x2 leaf/spine (h1,h2 on l1; h3,h4 on l2) under `adaptive`, on FAKE switches."""

    def __init__(self, **params):
        self.g = build_leaf_spine(2, 2, 2, host_rate_mbps=20, fabric_rate_mbps=20)
        self.policy = make_policy("adaptive", self.g, params)
        self.fab = FakeFabric(self.g, self.policy)
        self.now = 0.0
        self.stats = Stats()

    def ip(self, host: str) -> str:
        return self.g.nodes[host]["ip"]

    def start(self, src: str, dst: str, sport: int) -> dict:
        """The flow's first packet reaches the controller; its entries are installed."""
        pkt = tcp(self.ip(src), self.ip(dst), sport)
        sw, in_port = attachment(self.g, src)
        leaf = self.fab.tables[sw]
        fwd = leaf.process({**pkt, "in_port": in_port})
        assert fwd.to_controller, "the first packet of a new flow must reach the controller"
        self.fab.apply(self.policy.packet_in(leaf.dp.id, in_port, pkt, self.now))
        return pkt

    def advance(self, seconds: float, traffic: dict[tuple[str, int], float]) -> list:
        """Let time pass with each (src host, sport) flow sending at the given Mbit/s, then
        deliver the flow stats to the policy and apply what its tick sends back."""
        self.now += seconds
        self.fab.tick(seconds)
        for (src, sport), mbps in traffic.items():
            pkt = self.flows[(src, sport)]
            nbytes = int(mbps * MBIT * seconds)
            self.fab.send(src, pkt, nbytes, packets=max(1, nbytes // 1500))
        for sw in ("l1", "l2"):
            t = self.fab.tables[sw]
            self.stats.flows[t.dp.id] = t.flow_stats()
            self.stats.flow_times[t.dp.id] = self.now
        out = self.policy.tick(self.now, self.stats)
        self.fab.apply(out)
        return out

    def path(self, src: str, pkt: dict) -> tuple[str, ...]:
        (walk,) = self.fab.walks(src, pkt)
        return walk


def colliding_ports(run: Run) -> tuple[int, int]:
    """Source ports for h1->h3 and h2->h4 that the initial hash puts on the same spine."""
    paths = run.policy.paths("l1", "l2")
    first = run.policy.hashed_path((run.ip("h1"), run.ip("h3"), 30000, 5201), paths)
    for sport in range(30001, 31000):
        if run.policy.hashed_path((run.ip("h2"), run.ip("h4"), sport, 5201), paths) == first:
            return 30000, sport
    raise AssertionError("no collision found")


def separate_ports(run: Run) -> tuple[int, int]:
    paths = run.policy.paths("l1", "l2")
    first = run.policy.hashed_path((run.ip("h1"), run.ip("h3"), 30000, 5201), paths)
    for sport in range(30001, 31000):
        if run.policy.hashed_path((run.ip("h2"), run.ip("h4"), sport, 5201), paths) != first:
            return 30000, sport
    raise AssertionError("no separate placement found")


def two_flows(run: Run, ports: tuple[int, int]) -> None:
    run.flows = {("h1", ports[0]): run.start("h1", "h3", ports[0]),
                 ("h2", ports[1]): run.start("h2", "h4", ports[1])}


# ---------------------------------------------------------------- switch state

def test_catch_rules_copy_new_remote_tcp_flows_to_the_controller_and_forward_them():
    run = Run()
    l1 = run.fab.tables["l1"]
    remote = l1.process({**tcp(run.ip("h1"), run.ip("h3"), 40000), "in_port": 1})
    assert remote.to_controller and remote.ports == [3, 4]      # copy + ecmp group
    local = l1.process({**tcp(run.ip("h1"), run.ip("h2"), 40000), "in_port": 1})
    assert not local.to_controller and local.ports == [2]      # one path: nothing to place
    udp = l1.process({"in_port": 1, "eth_type": 0x0800, "ip_proto": 17,
                      "ipv4_src": run.ip("h1"), "ipv4_dst": run.ip("h3")})
    assert not udp.to_controller and udp.ports == [3, 4]
    for spine in ("s1", "s2"):   # no hosts, no catch rules
        assert not run.fab.tables[spine].process(
            {**tcp(run.ip("h1"), run.ip("h3"), 40000), "in_port": 1}).to_controller


def test_packet_in_pins_the_flow_to_one_hashed_path_and_only_once():
    run = Run()
    pkt = run.start("h1", "h3", 40000)
    (walk,) = run.fab.walks("h1", pkt)
    assert walk[0] == "l1" and walk[1] in ("s1", "s2") and walk[-1] == "h3"
    assert not run.fab.tables["l1"].process({**pkt, "in_port": 1}).to_controller
    entry = [f for f in run.fab.tables["l1"].flows if f.cookie == FLOW_COOKIE]
    assert len(entry) == 1 and entry[0].match == flow_match(
        (run.ip("h1"), run.ip("h3"), 40000, 5201)) and entry[0].idle_timeout == 5
    assert run.policy.packet_in(1, 1, pkt, 0.1) == []          # a duplicate packet-in
    other = tcp(run.ip("h1"), run.ip("h3"), 40001)
    assert len(run.fab.walks("h1", other)) == 2                 # other flows still hash


def test_a_fin_is_copied_to_the_controller_and_ends_the_flow():
    run = Run()
    pkt = run.start("h1", "h3", 40000)
    path = run.path("h1", pkt)
    fin = {**pkt, "tcp_flags": 0x011}                  # FIN+ACK
    fwd = run.fab.tables["l1"].process({**fin, "in_port": 1})
    assert fwd.to_controller and run.path("h1", fin) == path   # copied, same path
    data = {**pkt, "tcp_flags": 0x010}
    assert not run.fab.tables["l1"].process({**data, "in_port": 1}).to_controller
    assert run.policy.packet_in(1, 1, fin, 0.5) == []
    assert run.policy.flows == {}
    assert run.path("h1", pkt) == path                 # the entry stays until its timeout


def test_packet_in_ignores_what_it_cannot_place():
    run = Run()
    assert run.policy.packet_in(1, 1, {"ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.3",
                                       "ip_proto": 17}, 0.0) == []
    assert run.policy.packet_in(1, 1, tcp("10.0.9.9", run.ip("h3"), 1), 0.0) == []
    assert run.policy.packet_in(99, 1, tcp(run.ip("h1"), run.ip("h3"), 1), 0.0) == []
    assert run.policy.flows == {}


# ---------------------------------------------------------------- scheduling

def test_two_elephants_on_one_uplink_are_separated_and_the_move_reported():
    run = Run()
    ports = colliding_ports(run)
    two_flows(run, ports)
    pkts = list(run.flows.values())
    assert run.path("h1", pkts[0])[1] == run.path("h2", pkts[1])[1]   # collided
    traffic = {("h1", ports[0]): 10.0, ("h2", ports[1]): 10.0}  # sharing one 20 Mbit/s uplink
    out = run.advance(0.5, traffic)
    assert len(out) == 1
    assert run.path("h1", pkts[0])[1] != run.path("h2", pkts[1])[1]
    (move,) = run.policy.take_reports()
    assert isinstance(move, Move) and move.switch == "l1" and move.demand_mbps == 20.0
    assert move.rate_mbps == pytest.approx(10.0, rel=0.01)
    assert move.old_path.split(">")[1] != move.new_path.split(">")[1]
    assert run.policy.take_reports() == []
    # separated now: the next intervals move nothing
    for _ in range(3):
        assert run.advance(0.5, dict.fromkeys(traffic, 20.0)) == []


def test_flows_already_apart_and_mice_are_left_alone():
    run = Run()
    ports = separate_ports(run)
    two_flows(run, ports)
    assert run.advance(0.5, {("h1", ports[0]): 20.0, ("h2", ports[1]): 20.0}) == []
    run2 = Run()
    ports = colliding_ports(run2)
    two_flows(run2, ports)
    # 1 Mbit/s each: below 10% of 20 Mbit/s, not elephants, not moved despite the collision
    assert run2.advance(0.5, {("h1", ports[0]): 1.0, ("h2", ports[1]): 1.0}) == []
    assert run2.policy.take_reports() == []


def test_ack_streams_are_never_elephants():
    run = Run()
    ports = colliding_ports(run)
    two_flows(run, ports)
    run.now += 0.5
    run.fab.tick(0.5)
    for (src, _sport), pkt in run.flows.items():   # 5 Mbit/s of 66-byte packets
        run.fab.send(src, pkt, int(5 * MBIT * 0.5), packets=int(5 * MBIT * 0.5 / 66))
    for sw in ("l1", "l2"):
        t = run.fab.tables[sw]
        run.stats.flows[t.dp.id], run.stats.flow_times[t.dp.id] = t.flow_stats(), run.now
    assert run.policy.tick(run.now, run.stats) == []
    assert all(f.packet_bytes < 100 for f in run.policy.flows.values())


def test_rates_use_the_switch_clock_and_a_window():
    """Counter bursts (OVS updates rule counters in batches) average out over the window."""
    run = Run(rate_window_s=0.5, interval_s=0.1)
    run.flows = {("h1", 30000): run.start("h1", "h3", 30000)}
    f = next(iter(run.policy.flows.values()))
    for step in range(10):   # 10 Mbit/s, but counters only move every 5th interval
        run.now += 0.1
        run.fab.tick(0.1)
        if step % 5 == 4:
            run.fab.send("h1", run.flows[("h1", 30000)], int(10 * MBIT * 0.5), packets=400)
        t = run.fab.tables["l1"]
        run.stats.flows[1], run.stats.flow_times[1] = t.flow_stats(), run.now
        run.policy.tick(run.now, run.stats)
    assert f.rate_mbps == pytest.approx(10.0, rel=0.05)


def test_expired_entries_are_forgotten():
    run = Run()
    ports = colliding_ports(run)
    two_flows(run, ports)
    run.advance(0.5, {})
    t = run.fab.tables["l1"]
    t.flows = [f for f in t.flows if not (f.cookie == FLOW_COOKIE
                                          and f.match["tcp_src"] == ports[0])]  # idle timeout
    run.advance(1.5, {})
    assert [k[2] for k in run.policy.flows] == [ports[1]]


def test_reconnected_switch_gets_its_moved_flows_back():
    run = Run()
    ports = colliding_ports(run)
    two_flows(run, ports)
    run.advance(0.5, {("h1", ports[0]): 10.0, ("h2", ports[1]): 10.0})
    l1 = run.fab.tables["l1"]
    before = [(f.priority, f.match, [str(a) for a in f.actions]) for f in l1.flows
              if f.cookie == FLOW_COOKIE]
    l1.apply_all(run.policy.switch_up(l1.dp, run.now))
    after = [(f.priority, f.match, [str(a) for a in f.actions]) for f in l1.flows
             if f.cookie == FLOW_COOKIE]
    assert sorted(map(str, after)) == sorted(map(str, before)) and len(after) == 2
    pkts = list(run.flows.values())
    assert run.path("h1", pkts[0])[1] != run.path("h2", pkts[1])[1]


def test_a_failed_spine_link_moves_its_flows_to_the_live_path():
    run = Run()
    pkt = run.start("h1", "h3", 40000)
    spine = run.path("h1", pkt)[1]
    l1_port = run.g.edges["l1", spine]["ports"]["l1"]
    run.fab.apply(run.policy.port_status(1, l1_port, False, 1.0))
    assert run.path("h1", pkt)[1] != spine


def test_params_are_checked():
    g = build_leaf_spine(2, 2, 2, 20, 20)
    for bad in ({"interval_s": 0.0}, {"elephant_fraction": 0}, {"flow_idle_timeout_s": 0},
                {"rate_window_s": 0.01}, {"interval_s": "fast"}):
        with pytest.raises(SpecError) as err:
            make_policy("adaptive", g, bad)
        assert next(iter(bad)) in err.value.key


# ---------------------------------------------------------------- Hedera pieces

@pytest.mark.parametrize("flows, want", [
    ([("A", "X"), ("A", "Y")], [0.5, 0.5]),                       # one sender, two receivers
    ([("A", "X"), ("B", "X")], [0.5, 0.5]),                       # two senders, one receiver
    ([("A", "X"), ("A", "Y"), ("B", "Y")], [0.5, 0.5, 0.5]),
    ([("A", "X"), ("B", "X"), ("C", "X"), ("C", "Y")], [1 / 3, 1 / 3, 1 / 3, 2 / 3]),
    ([("A", "X"), ("B", "Y")], [1.0, 1.0]),
])
def test_hedera_demand_estimation(flows, want):
    cap = {h: 1.0 for f in flows for h in f}
    assert placement.estimate_demands(flows, cap) == pytest.approx(want)


def test_demands_scale_with_nic_rates():
    got = placement.estimate_demands([("A", "X"), ("B", "X")], {"A": 20, "B": 20, "X": 20})
    assert got == pytest.approx([10, 10])


def test_first_fit_takes_the_first_path_with_room():
    cap = {"a": 20.0, "b": 20.0, "c": 20.0}
    reserved = {"a": 15.0}
    assert placement.first_fit(10, [["a", "c"], ["b", "c"]], reserved, cap) == 1
    assert placement.first_fit(5, [["a", "c"], ["b", "c"]], reserved, cap) == 0
    assert placement.first_fit(25, [["a"], ["b"]], reserved, cap) is None
    placement.reserve(["b", "c"], 10, reserved)
    assert reserved == {"a": 15.0, "b": 10.0, "c": 10.0}
