"""The controller's run-directory records (port_stats.csv, the policy's report CSV) and the
app's packet-in path, driven by real os-ken event objects around FAKE datapaths (no sockets)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from os_ken.controller import ofp_event
from os_ken.lib.packet import ethernet, ipv4, packet, tcp

from controller import app as app_mod
from controller.policies import Policy, make_policy
from controller.recorder import PORT_COLUMNS, RunRecorder
from tests.fake_switch import FakeDatapath, FakeFlowTable
from topologies.leafspine import build_leaf_spine


def port_stats(port_no: int, rx: int, tx: int, rx_drop: int = 0, tx_drop: int = 0):
    return FakeDatapath(1).ofproto_parser.OFPPortStats(
        port_no, 1, 1, rx, tx, rx_drop, tx_drop, 0, 0, 0, 0, 0, 0, 0, 0)


def rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_port_rows_name_the_peer_and_skip_unknown_ports(tmp_path):
    g = build_leaf_spine(2, 2, 2, 20, 20)
    rec = RunRecorder(g, tmp_path, 0.5)
    local = FakeDatapath(1).ofproto.OFPP_LOCAL
    n = rec.port_rows("l1", [port_stats(4, 10, 20, 1, 2), port_stats(1, 5, 6),
                             port_stats(local, 9, 9)], now=100.0)
    rec.close()
    got = rows(tmp_path / "port_stats.csv")
    assert n == 2 and list(got[0]) == list(PORT_COLUMNS)
    assert [(r["switch"], r["port"], r["peer"], r["rx_bytes"], r["tx_dropped"]) for r in got] == \
        [("l1", "1", "h1", "5", "0"), ("l1", "4", "s2", "10", "2")]
    assert got[0]["time"] == "100.000000"


@dataclass(frozen=True)
class Row:
    what: str
    value: float


class Reporting(Policy):
    """A test policy: ecmp-free, installs nothing, reports one Row per tick."""
    interval_s = 1.0
    REPORT_FILE = "things.csv"
    REPORT_ROW = Row

    def switch_state(self, dp, switch, now):
        return []

    def tick(self, now, stats):
        self.report(Row("tick", now))
        return []


class App:
    def __init__(self, tmp_path, policy_name="ecmp", policy=None, params=None):
        self.graph = build_leaf_spine(2, 2, 2, host_rate_mbps=20, fabric_rate_mbps=20)
        self.policy = policy or make_policy(policy_name, self.graph, params or {})
        self.rec = RunRecorder(self.graph, tmp_path, 1.0)
        app_mod.configure(self.graph, self.policy, io.StringIO(), self.rec)
        self.app = app_mod.FabricController()
        self.dps = {}
        for dpid in (1, 2, 3, 4):
            dp = FakeDatapath(dpid)
            dp.address = ("127.0.0.1", 40000 + dpid)
            self.app._switch_features(ofp_event.EventOFPSwitchFeatures(
                dp.ofproto_parser.OFPSwitchFeatures(dp, datapath_id=dpid)))
            reply = dp.ofproto_parser.OFPBarrierReply(dp)
            reply.xid = dp.sent[-1].xid
            self.app._barrier_reply(ofp_event.EventOFPBarrierReply(reply))
            self.dps[dpid] = dp


def test_app_records_only_its_own_port_stats_requests(tmp_path):
    a = App(tmp_path)
    a.app._request_records()
    dp = a.dps[1]
    req = dp.sent[-1]
    assert isinstance(req, dp.ofproto_parser.OFPPortStatsRequest)
    for xid, flags in ((req.xid, 0), (req.xid + 1000, 0)):   # ours, then a policy poll's
        reply = dp.ofproto_parser.OFPPortStatsReply(dp, flags=flags,
                                                    body=[port_stats(3, 111, 222)])
        reply.xid = xid
        a.app._port_stats(ofp_event.EventOFPPortStatsReply(reply))
    got = rows(tmp_path / "port_stats.csv")
    assert [(r["switch"], r["peer"], r["tx_bytes"]) for r in got] == [("l1", "s1", "222")]
    assert (1, req.xid) not in a.rec.pending
    assert a.app.stats.ports[1][3].tx_bytes == 222   # the policy's view is updated either way


def test_app_writes_policy_reports_with_a_header_from_the_start(tmp_path):
    a = App(tmp_path, policy=Reporting(build_leaf_spine(2, 2, 2, 20, 20), {}))
    assert rows(tmp_path / "things.csv") == []
    assert (tmp_path / "things.csv").read_text().startswith("time,what,value")
    a.app._tick()
    a.app._tick()
    got = rows(tmp_path / "things.csv")
    assert [r["what"] for r in got] == ["tick", "tick"] and float(got[0]["time"]) > 1e9


def syn(src: str, dst: str, sport: int, dport: int) -> bytes:
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst="02:00:00:00:00:03", src="02:00:00:00:00:01"))
    p.add_protocol(ipv4.ipv4(src=src, dst=dst, proto=6))
    p.add_protocol(tcp.tcp(src_port=sport, dst_port=dport, bits=tcp.TCP_SYN))
    p.serialize()
    return bytes(p.data)


def test_packet_in_reaches_the_policy_and_its_entries_the_switch(tmp_path):
    a = App(tmp_path, "adaptive")
    dp = a.dps[1]
    table = FakeFlowTable(dp).apply_all(dp.sent)
    before = len(dp.sent)
    ofp, parser = dp.ofproto, dp.ofproto_parser
    msg = parser.OFPPacketIn(dp, buffer_id=ofp.OFP_NO_BUFFER, total_len=74,
                             reason=ofp.OFPR_ACTION, table_id=0, cookie=0xADA8,
                             match=parser.OFPMatch(in_port=1),
                             data=syn("10.0.0.1", "10.0.0.3", 41000, 5201))
    a.app._packet_in(ofp_event.EventOFPPacketIn(msg))
    new = dp.sent[before:]
    assert len(new) == 1 and isinstance(new[0], parser.OFPFlowMod)
    table.apply_all(new)
    assert len(table.lookup({"in_port": 1, "eth_type": 0x0800, "ip_proto": 6,
                             "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.3",
                             "tcp_src": 41000, "tcp_dst": 5201})) == 1
    # garbage in a packet-in is logged by the guard, never raised
    bad = parser.OFPPacketIn(dp, buffer_id=ofp.OFP_NO_BUFFER, total_len=3,
                             reason=ofp.OFPR_ACTION, table_id=0, cookie=0,
                             match=parser.OFPMatch(in_port=1), data=b"\x01\x02\x03")
    a.app._packet_in(ofp_event.EventOFPPacketIn(bad))
    assert len(dp.sent) == before + 1


def test_packet_fields_of_non_ip_data_are_empty():
    assert app_mod.packet_fields(b"") == {}
    fields = app_mod.packet_fields(syn("10.0.0.2", "10.0.0.4", 1, 2))
    assert fields == {"ipv4_src": "10.0.0.2", "ipv4_dst": "10.0.0.4", "ip_proto": 6,
                      "tcp_src": 1, "tcp_dst": 2, "tcp_flags": tcp.TCP_SYN}
