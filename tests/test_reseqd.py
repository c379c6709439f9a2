"""The resequencer process's pieces that need no root: its config, the iptables argv, the
model -> hosts mapping, and the NFQUEUE netlink formats (fabric.run.reseqd, fabric.run.nfqueue)."""
from __future__ import annotations

import socket
import struct

import pytest

from fabric.run import nfqueue
from fabric.run.reseqd import ReseqConfig, ReseqHost, hosts_from_model, rule_argv
from fabric.run.resequencer import ReseqParams
from topologies.ddc import build_ddc


def test_config_round_trips_and_keeps_same_ncp_sources_out():
    cfg = ReseqConfig((ReseqHost("h1", 10, "h1-eth0", 1, "ncp1"),),
                      {"10.0.0.2": "ncp1", "10.0.0.3": "ncp2", "10.0.0.10": "ncp3"},
                      "/tmp/x.json", ReseqParams(hold_timeout_ms=5))
    again = ReseqConfig.from_json(cfg.to_json())
    assert again == cfg
    assert cfg.remote_sources(cfg.hosts[0]) == ["10.0.0.3", "10.0.0.10"]


@pytest.mark.parametrize("host", [ReseqHost("h1;rm", 1, "h1-eth0", 1),
                                  ReseqHost("h1", 1, "h1 eth0", 1),
                                  ReseqHost("h1", 0, "h1-eth0", 1),
                                  ReseqHost("h1", 1, "h1-eth0", 70000)])
def test_config_refuses_names_and_numbers_that_must_not_reach_argv(host):
    with pytest.raises(ValueError):
        ReseqConfig((host,), {}, "/tmp/x.json")


def test_config_refuses_a_bad_source_and_a_shared_queue():
    with pytest.raises(ValueError):
        ReseqConfig((), {"10.0.0.300": "ncp1"}, "/tmp/x.json")
    with pytest.raises(ValueError):
        ReseqConfig((ReseqHost("h1", 1, "h1-eth0", 1), ReseqHost("h2", 2, "h2-eth0", 1)), {},
                    "/tmp/x.json")


def test_rule_argv_queues_the_remote_sources_of_one_interface():
    argv = rule_argv("-A", ReseqHost("h1", 42, "h1-eth0", 3), ["10.0.0.3", "10.0.0.4"])
    assert argv[:2] == ["nsenter", "--net=/proc/42/ns/net"]
    assert argv[3:] == ["-w", "5", "-t", "raw", "-A", "PREROUTING", "-i", "h1-eth0", "-s",
                        "10.0.0.3,10.0.0.4", "-j", "NFQUEUE", "--queue-num", "3",
                        "--queue-bypass"]
    assert "-s" not in rule_argv("-D", ReseqHost("h1", 42, "h1-eth0", 3), [])


def test_hosts_from_a_ddc_model():
    g = build_ddc(ncps=2, ncfs=2, hosts_per_ncp=2, host_rate_mbps=5)
    hosts, sources = hosts_from_model(g, {f"h{i}": 100 + i for i in range(1, 5)})
    assert [(h.name, h.pid, h.queue, h.ncp) for h in hosts] == [
        ("h1", 101, 1, "ncp1"), ("h2", 102, 2, "ncp1"), ("h3", 103, 3, "ncp2"),
        ("h4", 104, 4, "ncp2")]
    assert all(h.intf.startswith(h.name + "-eth") for h in hosts)
    assert sorted(sources.values()) == ["ncp1", "ncp1", "ncp2", "ncp2"]
    cfg = ReseqConfig(tuple(hosts), sources, "/tmp/x.json")
    assert len(cfg.remote_sources(hosts[0])) == 2  # h3, h4: only they carry stamps for h1


def test_verdict_message_layout():
    msg = nfqueue.verdict_msg(5, 0x01020304)
    assert len(msg) == 32
    length, mtype, flags = struct.unpack_from("=IHH", msg)
    assert (length, mtype, flags) == (32, (3 << 8) | 1, 1)
    assert msg[16:20] == bytes([socket.AF_UNSPEC, 0, 0, 5])  # family, version, queue (BE)
    assert struct.unpack_from("=HH", msg, 20) == (12, 2)  # NFQA_VERDICT_HDR
    assert struct.unpack_from("!II", msg, 24) == (nfqueue.NF_ACCEPT, 0x01020304)


def _packet_msg(packet_id: int, payload: bytes) -> bytes:
    hdr = struct.pack("!IHB", packet_id, 0x0800, 0) + b"\0"
    attrs = nfqueue._nla(1, hdr) + nfqueue._nla(10, payload)
    return nfqueue._msg(0, 0, 0, 7, attrs, socket.AF_INET)


def test_parse_packets_reads_ids_and_headers_from_one_datagram():
    ip = bytes([0x45, 0, 0, 40, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    data = _packet_msg(9, ip) + _packet_msg(10, ip[:19])
    pkts = list(nfqueue.parse_packets(data))
    assert [p.packet_id for p in pkts] == [9, 10]
    assert nfqueue.ipv4_fields(pkts[0].payload) == (0x1234, 0x0A000001, 0x0A000002)
    assert nfqueue.ipv4_fields(pkts[1].payload) is None  # truncated
    assert list(nfqueue.parse_packets(data[:-3])) == pkts[:1]  # a cut message is ignored


def test_no_resequencer_without_reassembly(tmp_path):
    from fabric.run.reseqd import reassembly
    for g in (build_ddc(2, 2, 2, 5, scheduler="none"), build_ddc(2, 2, 2, 5, reassembly=False)):
        with reassembly(g, {}, tmp_path) as proc:
            assert proc is None
    assert list(tmp_path.iterdir()) == []


def test_hold_timeout_scales_with_the_frame_time_at_line_rate():
    from fabric.run.reseqd import params_for
    from topologies.ddc import build_ddc
    slow_jumbo = build_ddc(2, 2, 2, host_rate_mbps=10)
    slow_jumbo.graph["mtu"] = 9000
    assert params_for(slow_jumbo).hold_timeout_ms > 100          # 16 x 7.2 ms
    assert params_for(build_ddc(2, 2, 2, host_rate_mbps=5)).hold_timeout_ms == 50.0
