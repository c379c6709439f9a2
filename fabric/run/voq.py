"""A scheduled DDC's VOQ stage on real packets: its devices, and the credit loop that sets rates.

Per NCP (topologies.ddc, `scheduler = "credits"`)::

    host ports ─nft fwd─► <ncp>-vq  [HTB: one class per destination host = the VOQs]
                                      │ veth
                          <ncp>-vs  ─nft─► local host port, or stamp + spray over NCF links

The VOQ devices are plain veths in the root namespace (not OVS ports): the packets in them are
still the sending host's own (the kernel forwards the same buffer), so a VOQ that is throttled
holds back the sender's TCP through its small-queue limit instead of dropping: measured on two
namespaces, a VOQ at 1 Mbit/s behind a 5 Mbit/s NIC carried one TCP flow at 1.02 Mbit/s with
2 packets queued and 0 drops, 0 retransmissions. That is the lossless back-pressure a DDC's
credits give.

CreditLoop reads every VOQ's counters over rtnetlink each `credit_interval_ms` (one class dump
per NCP, ~10 us each), asks controller.credits for the rates, and changes the classes whose
rate moved by more than RATE_CHANGE (one netlink message each). It writes credits.csv (the busy
VOQs, twice a second) and, when stopped, its statistics (CreditLoop.stats) for the run summary.
"""
from __future__ import annotations

import csv
import json
import logging
from contextlib import contextmanager
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import networkx as nx

from controller.credits import CreditAllocator, Voq, VoqSample
from topologies import model
from topologies.ddc import scheduled, voq_intfs
from topologies.errors import RunError
from topologies.queues import frame_bytes, graph_mtu
from topologies.shaping import htb_burst_bytes, voq_class_minor, voq_lines

from fabric.run import registry
from fabric.run.tcnl import ClassStats, NetlinkError, TcNetlink

log = logging.getLogger("fabric.run.voq")
RATE_CHANGE = 0.02    # a class is changed when its rate moves by more than this fraction
CSV_PERIOD_S = 0.5    # credits.csv: one row per busy VOQ this often
HTB_ROOT = 0x10000    # handle 1:


def voq_table(graph: nx.Graph) -> dict[str, list[str]]:
    """NCP -> the destination hosts of its VOQs, in class order: every host, its own ones
    included (traffic between two hosts of one NCP goes through its VOQs too, so each egress
    port has one scheduler for everything sent to it)."""
    hs = model.hosts(graph)
    return {ncp: list(hs) for ncp in model.switches(graph, "ncp")}


def ncp_fabric_bps(graph: nx.Graph, ncp: str) -> float:
    """Bytes/s an NCP can put into the fabric: the sum of its NCF links' rates."""
    return sum(d["rate_mbps"] for _, o, d in graph.edges(ncp, data=True)
               if graph.nodes[o]["role"] != model.HOST) * 1e6 / 8


def device_names(graph: nx.Graph) -> list[str]:
    return [i for ncp in model.switches(graph, "ncp") for i in voq_intfs(ncp)]


def voq_config(graph: nx.Graph, ncps: list[str] | None = None) -> tuple[list[str], list[str]]:
    """`ip -batch` and `tc -batch` lines that create and shape the VOQ veth pairs of these
    NCPs (default: every NCP); pure (cluster mode sends each server its NCPs' lines)."""
    mtu = graph_mtu(graph)
    table = voq_table(graph)
    ip_lines, tc_lines = [], []
    for ncp in (table if ncps is None else ncps):
        dsts = table[ncp]
        vq, vs = voq_intfs(ncp)
        ip_lines += [f"link add {vq} mtu {mtu} type veth peer name {vs} mtu {mtu}",
                     f"link set {vq} up", f"link set {vs} up"]
        rate = max(model.host_rate_mbps(graph, h) for h in dsts)
        tc_lines += voq_lines(vq, [graph.nodes[h]["ip"] for h in dsts], rate,
                              int(graph.graph["params"]["egress_queue_packets"]), mtu)
    return ip_lines, tc_lines


def create(graph: nx.Graph, workdir: Path) -> None:
    """Create and shape every NCP's VOQ veth pair (before the controller programs the NCPs:
    their nft tables name these devices)."""
    registry.register(interfaces=device_names(graph))   # before they exist (fabric clean)
    table = voq_table(graph)
    ip_lines, tc_lines = voq_config(graph)
    cfg = Path(workdir) / "netcfg"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "voq.ip").write_text("\n".join(ip_lines) + "\n")
    (cfg / "voq.tc").write_text("\n".join(tc_lines) + "\n")
    for argv in (["ip", "-batch", str(cfg / "voq.ip")], ["tc", "-batch", str(cfg / "voq.tc")]):
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if res.returncode:
            raise RunError(f"creating the DDC's VOQs failed ({argv[0]}): {res.stderr.strip()}")
    for name in device_names(graph):  # no IPv6 chatter (router solicitations) into the VOQs
        conf = Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
        if conf.exists():
            conf.write_text("1\n")
    log.info("VOQs: %d NCPs x %d classes", len(table),
             max((len(d) for d in table.values()), default=0))


def remove(graph: nx.Graph) -> None:
    """Delete every NCP's VOQ veth pair that exists (deleting one end removes both)."""
    have = registry.existing_interfaces()
    for ncp in model.switches(graph, "ncp"):
        vq, vs = voq_intfs(ncp)
        for name in (vq, vs):
            if name in have and model.INTF_NAME.match(name):
                subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)
                break


RateChange = tuple[str, int, float]   # (NCP, class handle, new rate in bytes/s)


class VoqDevices(Protocol):
    """Where the VOQ classes live: read every NCP's class counters, change class rates."""

    def open(self) -> None: ...

    def read(self) -> dict[str, list[ClassStats]]: ...

    def set_rates(self, changes: list[RateChange], burst: int, quantum: int) -> None: ...

    def close(self) -> None: ...


class LocalVoqs:
    """The NCPs' VOQ devices on this machine, over one rtnetlink socket."""

    def __init__(self, ncps: list[str]):
        self.ifindex = {ncp: socket.if_nametoindex(voq_intfs(ncp)[0]) for ncp in ncps}
        self._nl: TcNetlink | None = None

    def open(self) -> None:
        self._nl = TcNetlink()

    def read(self) -> dict[str, list[ClassStats]]:
        assert self._nl is not None
        return {ncp: self._nl.classes(idx) for ncp, idx in self.ifindex.items()}

    def set_rates(self, changes: list[RateChange], burst: int, quantum: int) -> None:
        assert self._nl is not None
        for ncp, handle, rate in changes:
            self._nl.set_htb_rate(self.ifindex[ncp], handle, HTB_ROOT, rate, burst, quantum)

    def close(self) -> None:
        if self._nl is not None:
            self._nl.close()
            self._nl = None


class CreditLoop:
    """The credit allocator running on a thread beside the emulation. `devices`: where the
    VOQs are (default: this machine; cluster mode: fabric.run.cluster.ddc, on the servers)."""

    def __init__(self, graph: nx.Graph, run_dir: Path, interval_s: float,
                 devices: VoqDevices | None = None):
        self.graph = graph
        self.interval_s = interval_s
        self.csv_path = Path(run_dir) / "credits.csv"
        table = voq_table(graph)
        self.classes: dict[Voq, int] = {}     # VOQ -> class handle
        self.devices: VoqDevices = devices or LocalVoqs(list(table))
        for ncp, dsts in table.items():
            for i, dst in enumerate(dsts):
                self.classes[(ncp, dst)] = HTB_ROOT | voq_class_minor(i)
        port = {h: model.host_rate_mbps(graph, h) * 1e6 / 8 for h in model.hosts(graph)}
        self.allocator = CreditAllocator(port, {n: ncp_fabric_bps(graph, n) for n in table})
        self.rates: dict[Voq, float] = {v: port[v[1]] for v in self.classes}  # as created
        mtu = graph_mtu(graph)
        self.burst = htb_burst_bytes(max(model.host_rate_mbps(graph, h)
                                         for h in model.hosts(graph)), mtu)
        self.quantum = frame_bytes(mtu)
        self.counters: dict[Voq, tuple[int, int, int]] = {}  # bytes, overlimits, drops
        self.first: dict[Voq, tuple[int, int]] = {}          # drops, bytes at start
        self.ticks = self.changes = self.late = self.errors = 0
        self.max_backlog = 0
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> CreditLoop:
        self.devices.open()
        try:
            self._read()  # baseline counters
        except BaseException:
            self.devices.close()
            raise
        self._thread = threading.Thread(target=self._run, name="credits", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.devices.close()
        return self.stats()

    def stats(self) -> dict[str, Any]:
        drops = sum(c[2] - self.first.get(v, (0, 0))[0] for v, c in self.counters.items())
        sent = sum(c[0] - self.first.get(v, (0, 0))[1] for v, c in self.counters.items())
        return {"voqs": len(self.classes), "interval_ms": self.interval_s * 1000,
                "decisions": self.ticks, "late_decisions": self.late, "rate_changes": self.changes,
                "netlink_errors": self.errors, "cpu_s": round(self.cpu_s, 3),
                "voq_sent_bytes": sent, "voq_drops": drops,
                "max_voq_backlog_bytes": self.max_backlog}

    # ------------------------------------------------------------ the loop
    def _read(self) -> dict[Voq, tuple[int, int, int, int]]:
        """VOQ -> (sent bytes, overlimits, drops, backlog bytes) now."""
        by_handle: dict[tuple[str, int], tuple[int, int, int, int]] = {}
        for ncp, classes in self.devices.read().items():
            for c in classes:
                by_handle[(ncp, c.handle)] = (c.sent_bytes, c.overlimits, c.drops, c.backlog_bytes)
        now = {v: by_handle[(v[0], h)] for v, h in self.classes.items() if (v[0], h) in by_handle}
        if not self.first:
            self.first = {v: (c[2], c[0]) for v, c in now.items()}
            self.counters = {v: c[:3] for v, c in now.items()}
        return now

    def _run(self) -> None:
        rows: list[list[Any]] = []
        period_bytes: dict[Voq, int] = {}
        last = time.monotonic()
        t_csv = last
        with open(self.csv_path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["time_s", "ncp", "dst", "rate_mbps", "sent_mbps", "backlog_bytes"])
            while not self._stop.wait(max(0.0, last + self.interval_s - time.monotonic())):
                c0 = time.thread_time()
                now = time.monotonic()
                dt, last = now - last, now
                if dt > 2 * self.interval_s:
                    self.late += 1
                try:
                    samples = self._tick(dt, period_bytes)
                except (OSError, NetlinkError) as exc:  # a device gone (teardown): stop quietly
                    self.errors += 1
                    log.warning("credit loop: %s", exc)
                    if self.errors > 10:
                        return
                    continue
                if now - t_csv >= CSV_PERIOD_S:
                    span = now - t_csv
                    rows += [[round(time.time(), 3), v[0], v[1],
                              round(self.rates[v] * 8 / 1e6, 4),
                              round(b * 8 / 1e6 / span, 4), samples[v].backlog_bytes]
                             for v, b in sorted(period_bytes.items()) if b > 0 and v in samples]
                    out.writerows(rows)
                    f.flush()
                    rows, period_bytes, t_csv = [], {}, now
                self.cpu_s += time.thread_time() - c0

    def _tick(self, dt: float, period_bytes: dict[Voq, int]) -> dict[Voq, VoqSample]:
        now = self._read()
        samples = {}
        for v, (sent, over, drops, backlog) in now.items():
            b0, o0, _ = self.counters.get(v, (sent, over, drops))
            samples[v] = VoqSample(sent - b0, backlog, over > o0)
            period_bytes[v] = period_bytes.get(v, 0) + sent - b0
            self.counters[v] = (sent, over, drops)
            self.max_backlog = max(self.max_backlog, backlog)
        self.ticks += 1
        changes: list[tuple[Voq, float]] = []
        for v, rate in self.allocator.decide(samples, dt).items():
            old = self.rates[v]
            if abs(rate - old) > RATE_CHANGE * old:
                changes.append((v, rate))
        if changes:
            self.devices.set_rates([(v[0], self.classes[v], r) for v, r in changes], self.burst,
                                   self.quantum)
            for v, rate in changes:
                self.rates[v] = rate
            self.changes += len(changes)
        return samples


DDC_FILE = "ddc.json"  # what the DDC's data plane did; fabric.analysis.analyse reads it


def record_ddc(run_dir: Path, key: str, section: dict[str, Any]) -> None:
    """Put `section` under `key` in run_dir/ddc.json, keeping the other parts' sections (the
    credit loop and the reassembly each write theirs when they stop)."""
    path = Path(run_dir) / DDC_FILE
    try:
        doc = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:   # a half-written file of a killed run: start again
        doc = {}
    doc[key] = section
    path.write_text(json.dumps(doc, indent=1) + "\n")


@contextmanager
def scheduling(graph: nx.Graph, run_dir: Path,
               devices: Callable[[], VoqDevices] | None = None) -> Iterator[CreditLoop | None]:
    """The credit loop running while the block runs (a scheduled DDC; else nothing); its
    statistics go to run_dir/ddc.json when it stops, whatever happened in the block.
    `devices`: makes where the VOQs are (default: this machine)."""
    if not scheduled(graph):
        yield None
        return
    loop = CreditLoop(graph, run_dir, graph.graph["params"]["credit_interval_ms"] / 1000,
                      devices() if devices is not None else None)
    loop.start()
    try:
        yield loop
    finally:
        stats = loop.stop()
        extra = getattr(loop.devices, "stats", None)
        record_ddc(run_dir, "credits", {**stats, **(extra() if extra else {})})
