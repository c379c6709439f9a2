"""The egress resequencer on real packets: two namespaces joined by a veth, the receiver's
packets queued to fabric.run.reseqd; out-of-order stamps arrive in order at a UDP socket, a
lost stamp is skipped after the hold timeout, the nft stamping rule keeps packets valid, and
nothing (rules, process) is left behind."""
from __future__ import annotations

import os
import socket
import subprocess
import time
import pytest

from controller.nftables import STAMP
from fabric.run.nfqueue import Netns
from fabric.run.reseqd import ReseqHost, iptables_binary, start_resequencer
from fabric.run.resequencer import ReseqParams
from fabric.run.runlock import exclusive_run

pytestmark = pytest.mark.emulation
S, R = "rsqt-s", "rsqt-r"  # namespaces
SRC, SRC2, DST = "10.77.0.1", "10.77.0.3", "10.77.0.2"
PORT = 9999


def sh(*argv: str) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True).stdout


def in_ns(ns: str, *argv: str) -> str:
    return sh("ip", "netns", "exec", ns, *argv)


@pytest.fixture
def pair():
    """S (10.77.0.1 and .3 on s0) -- veth -- R (10.77.0.2 on r0); a process in R for its pid."""
    with exclusive_run():
        for ns in (S, R):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        sleeper = None
        try:
            sh("ip", "netns", "add", S)
            sh("ip", "netns", "add", R)
            sh("ip", "link", "add", "rsqt-s0", "netns", S, "type", "veth", "peer", "name",
               "rsqt-r0", "netns", R)
            in_ns(S, "ip", "addr", "add", f"{SRC}/24", "dev", "rsqt-s0")
            in_ns(S, "ip", "addr", "add", f"{SRC2}/24", "dev", "rsqt-s0")
            in_ns(R, "ip", "addr", "add", f"{DST}/24", "dev", "rsqt-r0")
            for ns, dev in ((S, "rsqt-s0"), (R, "rsqt-r0")):
                in_ns(ns, "ip", "link", "set", dev, "up")
                in_ns(ns, "ip", "link", "set", "lo", "up")
            sleeper = subprocess.Popen(["ip", "netns", "exec", R, "sleep", "300"])
            deadline = time.monotonic() + 5
            while not _same_ns(sleeper.pid, R) and time.monotonic() < deadline:
                time.sleep(0.02)  # until the sleeper is inside R
            yield sleeper.pid
        finally:
            if sleeper:
                sleeper.kill()
                sleeper.wait()
            for ns in (S, R):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _same_ns(pid: int, ns: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/var/run/netns/{ns}").st_ino
    except OSError:
        return False


def receiver() -> socket.socket:
    with Netns(f"/var/run/netns/{R}"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((DST, PORT))
    sock.settimeout(3)
    return sock


def send_raw(ids: list[int]) -> None:
    """IPv4/UDP packets from SRC with these IPv4 IDs (payload: the ID), through an AF_PACKET
    socket in S, so the kernel sends them exactly as built (ID 0 included)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    src_mac = in_ns(S, "cat", "/sys/class/net/rsqt-s0/address").strip()
    dst_mac = in_ns(R, "cat", "/sys/class/net/rsqt-r0/address").strip()
    with Netns(f"/var/run/netns/{S}"):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        sock.bind(("rsqt-s0", 0))
        for i in ids:
            frame = Ether(src=src_mac, dst=dst_mac) / IP(src=SRC, dst=DST, id=i) / \
                UDP(sport=PORT, dport=PORT) / str(i).encode()
            sock.send(bytes(frame))
            time.sleep(0.001)
    finally:
        sock.close()


def received(sock: socket.socket, n: int) -> list[int]:
    out = []
    for _ in range(n):
        out.append(int(sock.recv(100)))
    return out


def rules_in_r() -> str:
    return in_ns(R, iptables_binary(), "-w", "5", "-t", "raw", "-S", "PREROUTING")


def test_out_of_order_stamps_reach_the_host_in_order(pair, tmp_path):
    host = ReseqHost("r", pair, "rsqt-r0", 5, ncp="ncpR")
    proc = start_resequencer(tmp_path, [host], {SRC: "ncpS", SRC2: "ncpS2"},
                             ReseqParams(hold_timeout_ms=200))
    try:
        assert "NFQUEUE" in rules_in_r()
        sock = receiver()
        order = [0, 2, 1, 3, 6, 4, 5, 7, 8, 9, 11]  # 10 is lost
        send_raw(order)
        got = received(sock, len(order))
        assert got == sorted(order)
        # stamped by nft at R's ingress (before PREROUTING), in order: the checksum stays
        # valid (the packets reach the socket) and nothing is held
        subprocess.run(["ip", "netns", "exec", R, "nft", "-f", "-"], check=True, text=True,
                       input="table netdev rsqt {\n chain in {\n  type filter hook ingress "
                             "device rsqt-r0 priority 0; policy accept;\n"
                             f"  ip saddr {SRC2} {STAMP}\n }}\n}}\n")
        with Netns(f"/var/run/netns/{S}"):
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.bind((SRC2, 0))
        for i in range(100, 150):
            tx.sendto(str(i).encode(), (DST, PORT))
        tx.close()
        assert received(sock, 50) == list(range(100, 150))
        sock.close()
    finally:
        stats = proc.stop()
    assert proc.proc.returncode == 0
    assert stats is not None and stats["partial"] is False
    t = stats["total"]
    assert t["seen"] == 11 + 50
    assert t["held"] == 3 and t["released_after_hold"] == 3  # 2, 6 and 11
    assert t["gaps"] == 1 and t["gap_seqs"] == 1 and t["timeouts"] == 1
    assert t["late"] == 0 and t["resyncs"] == 0
    assert t["in_order"] == 8 + 50  # the stamps counted 0, 1, 2, ... (not all 0)
    assert t["hold_ms_max"] >= 150  # 11 waited for the timeout
    assert "NFQUEUE" not in rules_in_r()
