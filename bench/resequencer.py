"""Egress resequencer: packets per second it keeps up with, CPU microseconds per packet.

    sudo .venv/bin/python -m bench.resequencer [--queues 1 16] [--rates 5000 20000 0] [--seconds 3]

One sender namespace joined by a veth to each of Q receiver namespaces; the resequencer process
(fabric.run.reseqd, started as the engine starts it) queues every packet arriving at the
receivers. A forked sender writes prebuilt IPv4/UDP frames with sequence stamps in their IDs
through AF_PACKET, round-robin over the receivers, paced to the offered rate (0: as fast as
it can); in order, or reordered (every block of 8 stamps of a stream shuffled: 7 of 8 packets
wait). The frames are addressed to a non-local address, so after the resequencer the receiver
drops them in routing: what is measured is the queue round trip, not a socket.
Reported per run: offered and achieved rate, packets the daemon saw, packets that bypassed it
(the kernel queue full: fail-open), the daemon's CPU time per packet (user + system: the
kernel's reinjection, and in a real run the receiving TCP's work, happen in its send of the
verdicts) and its share of one core over the sending time + 0.2 s. /proc CPU times tick at 10 ms: short runs are coarse.
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from fabric.run.nfqueue import Netns
from fabric.run.reseqd import ReseqHost, start_resequencer
from fabric.run.resequencer import ReseqParams
from fabric.run.runlock import exclusive_run

from bench.common import print_facts, table

SENDER = "rsqb-s"


def sh(*argv: str) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True).stdout


def build(queues: int) -> list[subprocess.Popen[bytes]]:
    """Namespaces and veths; a sleeping process in each receiver (its pid names the netns)."""
    teardown(queues)
    sh("ip", "netns", "add", SENDER)
    sleepers = []
    for i in range(queues):
        r = f"rsqb-r{i}"
        sh("ip", "netns", "add", r)
        sh("ip", "link", "add", f"rsqb-s{i}", "netns", SENDER, "type", "veth", "peer", "name",
           f"rsqb-r{i}", "netns", r)
        sh("ip", "netns", "exec", SENDER, "ip", "link", "set", f"rsqb-s{i}", "up")
        sh("ip", "netns", "exec", r, "ip", "addr", "add", f"10.79.{i}.2/24", "dev", f"rsqb-r{i}")
        sh("ip", "netns", "exec", r, "ip", "link", "set", f"rsqb-r{i}", "up")
        sleepers.append(subprocess.Popen(["ip", "netns", "exec", r, "sleep", "3600"]))
    for i, p in enumerate(sleepers):
        ino = os.stat(f"/var/run/netns/rsqb-r{i}").st_ino
        while os.stat(f"/proc/{p.pid}/ns/net").st_ino != ino:
            time.sleep(0.01)
    return sleepers


def teardown(queues: int) -> None:
    for ns in [SENDER] + [f"rsqb-r{i}" for i in range(queues)]:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def frames(queues: int, count: int, reorder: bool, seed: int) -> list[tuple[int, bytes]]:
    """(receiver index, frame) in sending order: stamps 0, 1, 2... per receiver."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    rng = random.Random(seed)
    per = -(-count // queues)
    streams = []
    for i in range(queues):
        mac = sh("ip", "netns", "exec", f"rsqb-r{i}", "cat",
                 f"/sys/class/net/rsqb-r{i}/address").strip()
        template = bytes(Ether(dst=mac) / IP(src=f"10.79.{i}.1", dst=f"10.79.{i}.9", id=0) /
                         UDP(sport=9, dport=9) / (b"x" * 64))
        seqs = list(range(per))
        if reorder:
            for b in range(0, per, 8):
                block = seqs[b:b + 8]
                rng.shuffle(block)
                seqs[b:b + 8] = block
        streams.append([_with_id(template, s % 65536) for s in seqs])
    return [(i, streams[i][k]) for k in range(per) for i in range(queues)][:count]


def _with_id(frame: bytes, ident: int) -> bytes:
    """The frame with this IPv4 ID and its header checksum recomputed."""
    b = bytearray(frame)
    b[18:20] = ident.to_bytes(2, "big")
    b[24:26] = b"\0\0"
    s = sum(int.from_bytes(b[14 + k:16 + k], "big") for k in range(0, 20, 2))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    b[24:26] = (~s & 0xFFFF).to_bytes(2, "big")
    return bytes(b)


def send(queues: int, plan: list[tuple[int, bytes]], rate_pps: float) -> tuple[int, float]:
    """Fork a sender in the sender namespace; (packets sent, seconds it took)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no return
        os.close(r)
        try:
            with Netns(f"/var/run/netns/{SENDER}"):
                socks = [socket.socket(socket.AF_PACKET, socket.SOCK_RAW) for _ in range(queues)]
            for i, s in enumerate(socks):
                s.bind((f"rsqb-s{i}", 0))
            sent, t0 = 0, time.monotonic()
            tick = 32
            for k in range(0, len(plan), tick):
                for i, f in plan[k:k + tick]:
                    try:
                        socks[i].send(f)
                        sent += 1
                    except OSError:
                        pass
                if rate_pps:
                    ahead = t0 + (k + tick) / rate_pps - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
            os.write(w, f"{sent} {time.monotonic() - t0}".encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 100).decode().split()
    os.close(r)
    os.waitpid(pid, 0)
    return int(data[0]), float(data[1])


def cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def measure(queues: int, rate_pps: float, reorder: bool, seconds: float, seed: int,
            workdir: Path) -> list[object]:
    count = int(rate_pps * seconds) if rate_pps else 60_000
    sleepers = build(queues)
    try:
        plan = frames(queues, count, reorder, seed)
        hosts = [ReseqHost(f"r{i}", p.pid, f"rsqb-r{i}", i + 1, "ncp-r")
                 for i, p in enumerate(sleepers)]
        sources = {f"10.79.{i}.1": "ncp-s" for i in range(queues)}
        proc = start_resequencer(workdir, hosts, sources, ReseqParams(hold_timeout_ms=20))
        try:
            c0 = cpu_s(proc.proc.pid)
            sent, took = send(queues, plan, rate_pps)
            time.sleep(0.2)  # the daemon drains what is queued
            c1 = cpu_s(proc.proc.pid)
        finally:
            stats = proc.stop()
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
        teardown(queues)
    seen = stats["total"]["seen"] if stats else 0
    cpu = c1 - c0
    return [queues, "reordered" if reorder else "in order", int(rate_pps) or "max",
            round(sent / took), seen, sent - seen,
            stats["total"]["held"] if stats else "?",
            round(cpu * 1e6 / seen, 1) if seen else "?", round(cpu / (took + 0.2), 2)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queues", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--rates", type=float, nargs="+", default=[5000, 20000, 50000, 100000],
                    help="offered packets/s over all queues (0: as fast as the sender can)")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print_facts("egress resequencer (fabric.run.reseqd): NFQUEUE round trip per packet")
    rows = []
    with exclusive_run(), tempfile.TemporaryDirectory(prefix="rsqb-") as tmp:
        for q in args.queues:
            for reorder in (False, True):
                for rate in args.rates:
                    rows.append(measure(q, rate, reorder, args.seconds, args.seed, Path(tmp)))
                    print("  ".join(str(c) for c in rows[-1]), flush=True)
    print(table(["queues", "order", "offered pps", "sent pps", "daemon saw", "bypassed",
                 "held", "cpu us/pkt", "cpu share of 1 core"], rows))


if __name__ == "__main__":
    main()
