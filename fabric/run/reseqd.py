"""The egress resequencer process: one per run, root, root namespace, all hosts.

For each host it opens an NFQUEUE socket inside the host's network namespace, then adds one
iptables rule there (raw PREROUTING: packets from the remote sources on the host's interface go
to that queue, `--queue-bypass`: nobody listening means they pass). Every queued packet's IPv4
ID is its sequence stamp; fabric.run.resequencer decides when it may go on to the host's TCP.
Statistics go to `stats_path` as JSON every `stats_interval_s` (marked partial) and at the end.
SIGTERM/SIGINT: rules removed, held packets released in order, sockets closed, final stats.

The engine starts it with `start_resequencer(...)` and stops it with `.stop()`; standalone:
`python -m fabric.run.reseqd CONFIG.json [--until-eof]` (config: ReseqConfig.to_json's format;
--until-eof: also stop when stdin reaches EOF, as when it runs on a cluster server over ssh and
the head closes the session or dies: fabric.run.cluster.ddc).
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import networkx as nx

from topologies import model
from topologies.ddc import reassembling
from topologies.errors import RunError
from topologies.queues import frame_bytes, graph_mtu

from fabric.run import registry
from fabric.run.nfqueue import NfQueue, ipv4_fields
from fabric.run.voq import record_ddc
from fabric.run.resequencer import HostResequencer, ReseqParams, ReseqStats

NICE = -10
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")  # interface / host names that may reach argv


@dataclass(frozen=True)
class ReseqHost:
    """A receiving host: its namespace (a process in it), interface, queue and own NCP."""
    name: str
    pid: int
    intf: str
    queue: int
    ncp: str | None = None  # packets from sources on this NCP are not stamped: not queued


@dataclass(frozen=True)
class ReseqConfig:
    """What the process needs; JSON on disk (to_json / from_json)."""
    hosts: tuple[ReseqHost, ...]
    sources: dict[str, str]  # source IPv4 address -> its ingress NCP
    stats_path: str
    params: ReseqParams = field(default_factory=ReseqParams)
    stats_interval_s: float = 1.0

    def __post_init__(self) -> None:
        queues = set()
        for h in self.hosts:
            if not _NAME.match(h.name) or not _NAME.match(h.intf):
                raise ValueError(f"bad host or interface name {h.name!r}/{h.intf!r}")
            if h.pid <= 0 or not 0 <= h.queue < 65536 or h.queue in queues:
                raise ValueError(f"host {h.name}: bad pid {h.pid} or queue {h.queue}")
            queues.add(h.queue)
        for ip in self.sources:
            ipaddress.IPv4Address(ip)

    def to_json(self) -> str:
        return json.dumps({"hosts": [asdict(h) for h in self.hosts], "sources": self.sources,
                           "stats_path": self.stats_path, "params": asdict(self.params),
                           "stats_interval_s": self.stats_interval_s}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ReseqConfig:
        d = json.loads(text)
        return cls(hosts=tuple(ReseqHost(**h) for h in d["hosts"]), sources=dict(d["sources"]),
                   stats_path=str(d["stats_path"]), params=ReseqParams(**d.get("params", {})),
                   stats_interval_s=float(d.get("stats_interval_s", 1.0)))

    def remote_sources(self, host: ReseqHost) -> list[str]:
        """Sources whose packets towards `host` carry a stamp (another NCP's hosts)."""
        return sorted((ip for ip, ncp in self.sources.items() if ncp != host.ncp),
                      key=ipaddress.IPv4Address)


def iptables_binary() -> str:
    """iptables-legacy if present (x_tables: no nft table appears in the host namespace),
    else iptables."""
    return "iptables-legacy" if shutil.which("iptables-legacy") else "iptables"


def rule_argv(action: str, host: ReseqHost, sources: list[str]) -> list[str]:
    """The argv that adds (-A) or deletes (-D) a host's queue rule, run in its namespace."""
    argv = ["nsenter", f"--net=/proc/{host.pid}/ns/net", iptables_binary(), "-w", "5",
            "-t", "raw", action, "PREROUTING", "-i", host.intf]
    if sources:
        argv += ["-s", ",".join(str(ipaddress.IPv4Address(s)) for s in sources)]
    return argv + ["-j", "NFQUEUE", "--queue-num", str(int(host.queue)), "--queue-bypass"]


def kernel_queue_counters(pid: int, queue: int) -> dict[str, int]:
    """The kernel's counters of one queue in a namespace (/proc/<pid>/net/netfilter/...)."""
    try:
        lines = Path(f"/proc/{pid}/net/netfilter/nfnetlink_queue").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        f = line.split()
        if len(f) >= 8 and f[0] == str(queue):
            return {"waiting": int(f[2]), "queue_dropped": int(f[5]),
                    "user_dropped": int(f[6]), "id_sequence": int(f[7])}
    return {}


class _Host:
    __slots__ = ("kernel", "queue", "reseq", "rule_added", "spec", "streams")

    def __init__(self, spec: ReseqHost, queue: NfQueue, params: ReseqParams,
                 streams: dict[int, str]):
        self.spec, self.queue = spec, queue
        self.reseq = HostResequencer(params, seed=spec.queue)
        self.streams = streams  # source address (int) -> ingress NCP
        self.rule_added = False
        self.kernel: dict[str, int] = {}


class Daemon:
    """The process's state: every host's queue and resequencer."""

    def __init__(self, config: ReseqConfig, until_eof: bool = False):
        self.config = config
        self.until_eof = until_eof
        self.hosts: list[_Host] = []
        self.stop = False
        self.started = time.monotonic()
        self.unparsed = 0
        self.parent = os.getppid()
        self.cpu_ready_s = 0.0

    def open(self) -> None:
        for spec in self.config.hosts:
            q = NfQueue(spec.queue, f"/proc/{spec.pid}/ns/net")
            remote = self.config.remote_sources(spec)
            streams = {int(ipaddress.IPv4Address(ip)): self.config.sources[ip] for ip in remote}
            h = _Host(spec, q, self.config.params, streams)
            self.hosts.append(h)
            _run(rule_argv("-A", spec, remote))
            h.rule_added = True
        self.cpu_ready_s = _cpu_s()

    def close(self) -> None:
        """Rules first (no new packets queued), then what is queued and held, in order."""
        for h in self.hosts:
            if h.rule_added:
                try:
                    _run(rule_argv("-D", h.spec, self.config.remote_sources(h.spec)))
                except RunError:
                    pass  # the namespace is gone with its rules
                h.rule_added = False
        now = time.monotonic()
        for h in self.hosts:
            try:
                self._service(h, now)
                h.queue.accept(h.reseq.flush(time.monotonic()))
            except OSError:
                pass
            h.kernel = kernel_queue_counters(h.spec.pid, h.spec.queue) or h.kernel
            h.queue.close()

    def _service(self, h: _Host, now: float) -> None:
        out: list[int] = []
        streams, reseq = h.streams, h.reseq
        for _ in range(256):
            pkts = h.queue.read()
            if not pkts:
                break
            for p in pkts:
                f = ipv4_fields(p.payload)
                if f is None:
                    self.unparsed += 1
                    out.append(p.packet_id)
                    continue
                out += reseq.packet(streams.get(f[1]), f[0], p.packet_id, now)
        if out:
            h.queue.accept(out)

    def loop(self) -> None:
        sel = selectors.DefaultSelector()
        for h in self.hosts:
            sel.register(h.queue.fileno(), selectors.EVENT_READ, h)
        if self.until_eof:
            sel.register(sys.stdin.fileno(), selectors.EVENT_READ, None)
        interval = self.config.stats_interval_s
        next_stats = time.monotonic() + interval
        try:
            holding: set[_Host] = set()  # hosts with held packets: the only ones with deadlines
            while not self.stop:
                now = time.monotonic()
                wake = next_stats
                for h in holding:
                    d = h.reseq.next_deadline()
                    if d is not None and d < wake:
                        wake = d
                for key, _ in sel.select(max(0.0, wake - now)):
                    h = key.data
                    if h is None:   # stdin (--until-eof): EOF ends the service
                        if not os.read(key.fd, 4096):
                            self.stop = True
                            sel.unregister(key.fd)
                        continue
                    self._service(h, time.monotonic())
                    if h.reseq.n_held:
                        holding.add(h)
                now = time.monotonic()
                for h in list(holding):
                    d = h.reseq.next_deadline()
                    if d is not None and d <= now:
                        h.queue.accept(h.reseq.expire(now))
                    if not h.reseq.n_held:
                        holding.discard(h)
                if now >= next_stats:
                    if os.getppid() != self.parent or not any(
                            os.path.exists(f"/proc/{h.spec.pid}") for h in self.hosts):
                        self.stop = True  # the engine or every host is gone: nothing to serve
                    for h in self.hosts:
                        h.kernel = kernel_queue_counters(h.spec.pid, h.spec.queue) or h.kernel
                    self.write_stats(partial=True)
                    next_stats = now + interval
        finally:
            sel.close()

    def stats(self, partial: bool) -> dict[str, Any]:
        total = ReseqStats()
        hosts = {}
        for h in self.hosts:
            d = h.reseq.stats.as_dict()
            d["kernel_queue"] = h.kernel
            hosts[h.spec.name] = d
            total.merge(h.reseq.stats)
        cpu_s = _cpu_s() - self.cpu_ready_s  # serving packets, not starting up
        out = total.as_dict()
        out["queue_dropped"] = sum(h.kernel.get("queue_dropped", 0) for h in self.hosts)
        out["user_dropped"] = sum(h.kernel.get("user_dropped", 0) for h in self.hosts)
        return {"partial": partial, "elapsed_s": round(time.monotonic() - self.started, 3),
                "cpu_s": round(cpu_s, 3), "cpu_startup_s": round(self.cpu_ready_s, 3),
                "cpu_us_per_packet": round(cpu_s * 1e6 / total.seen, 2) if total.seen else None,
                "unparsed": self.unparsed, "params": asdict(self.config.params),
                "total": out, "hosts": hosts}

    def write_stats(self, partial: bool) -> None:
        path = Path(self.config.stats_path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.stats(partial), indent=1) + "\n")
        os.replace(tmp, path)


def _cpu_s() -> float:
    """CPU time of this process so far (user + system; the kernel's reinjection of accepted
    packets, and the receiving TCP's work, run in our send of the verdicts)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _run(argv: list[str]) -> None:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunError(f"resequencer: cannot run {argv[2]}: {exc}") from None
    if res.returncode:
        raise RunError(f"resequencer: {' '.join(argv[2:])} failed: {res.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    until_eof = "--until-eof" in args
    args = [a for a in args if a != "--until-eof"]
    if len(args) != 1:
        print("usage: python -m fabric.run.reseqd CONFIG.json [--until-eof]", file=sys.stderr)
        return 2
    config = ReseqConfig.from_json(Path(args[0]).read_text())
    try:  # a data-path element, like ovs-vswitchd (which runs at nice -10): not a background job
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except OSError:
        pass
    daemon = Daemon(config, until_eof)

    def on_signal(signum: int, frame: object) -> None:
        daemon.stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        daemon.open()
        daemon.write_stats(partial=True)
        print("ready", flush=True)
        daemon.loop()
    except (OSError, RunError, ValueError) as exc:
        print(f"error: {exc}", flush=True)
        return 1
    finally:
        daemon.close()
        daemon.write_stats(partial=False)
    return 0


class ResequencerProcess:
    """A running resequencer (start_resequencer); stop() ends it and returns its statistics.
    `eof_stops`: the process is asked to stop by closing its stdin (it runs --until-eof behind
    an ssh session, where a signal would end the session, not the process); `log_path`: where
    its stderr goes when it was piped."""

    def __init__(self, proc: subprocess.Popen[str], stats_path: Path, eof_stops: bool = False,
                 log_path: Path | None = None):
        self.proc, self.stats_path = proc, stats_path
        self.eof_stops, self.log_path = eof_stops, log_path

    def stop(self, timeout_s: float = 10.0) -> dict[str, Any] | None:
        """SIGTERM (or EOF on its stdin), wait (SIGKILL after timeout_s); the final statistics,
        None if unreadable."""
        if self.proc.poll() is None:
            if self.eof_stops and self.proc.stdin is not None:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
            else:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.proc.stderr:
            err = self.proc.stderr.read()
            self.proc.stderr.close()
            if self.log_path is not None and err:
                self.log_path.write_text(err)
        try:
            return json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return None


def _local_launch(argv: list[str], log_path: Path) -> subprocess.Popen[str]:
    """The daemon as a child of this process (python -m fabric.run.reseqd ARGS)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "fabric.run.reseqd", *argv],
                                stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                                start_new_session=True)


Launcher = Callable[[list[str], Path], "subprocess.Popen[str]"]


def start_resequencer(run_dir: Path, hosts: list[ReseqHost], sources: dict[str, str],
                      params: ReseqParams | None = None, ready_timeout_s: float = 15.0,
                      name: str = "reseq", launch: Launcher | None = None,
                      ) -> ResequencerProcess:
    """Start the process for these hosts (their namespaces must exist); returns once every
    queue is bound and every rule is in, so packets sent from now on are resequenced. Writes
    <name>.json (config), <name>_stats.json (statistics) and <name>.log into run_dir. RunError
    if it fails. `launch(args, log_path)`: starts `python -m fabric.run.reseqd ARGS` elsewhere
    (cluster mode: on a server, over ssh, with --until-eof; its stderr piped); default here."""
    run_dir = Path(run_dir)
    stats_path = run_dir / f"{name}_stats.json"
    config = ReseqConfig(tuple(hosts), dict(sources), str(stats_path), params or ReseqParams())
    cfg_path = run_dir / f"{name}.json"
    cfg_path.write_text(config.to_json())
    log_path = run_dir / f"{name}.log"
    if launch is None:
        proc = _local_launch([str(cfg_path)], log_path)
        registry.register(pids=[proc.pid])
        handle = ResequencerProcess(proc, stats_path)
    else:
        proc = launch([str(cfg_path), "--until-eof"], log_path)
        handle = ResequencerProcess(proc, stats_path, eof_stops=True, log_path=log_path)
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    ok = bool(sel.select(ready_timeout_s))
    sel.close()
    line = proc.stdout.readline().strip() if ok else ""
    if line != "ready":
        handle.stop()
        detail = log_path.read_text().strip()[-300:] if log_path.exists() else ""
        raise RunError(f"resequencer {name} did not start: {line or 'no answer'}"
                       + (f" ({detail})" if detail else ""))
    return handle


def hosts_from_model(graph: nx.Graph, host_pids: Mapping[str, int]
                     ) -> tuple[list[ReseqHost], dict[str, str]]:
    """The resequencer's hosts (queue i+1 for the i-th host, its interface towards its NCP)
    and its source map (every host's address -> its NCP) for a DDC model."""
    hosts, sources = [], {}
    for i, h in enumerate(model.hosts(graph)):
        ncp, _ = model.attachment(graph, h)
        sources[str(graph.nodes[h]["ip"])] = ncp
        hosts.append(ReseqHost(h, int(host_pids[h]), model.intf_name(h, model.port(graph, h, ncp)),
                               i + 1, ncp))
    return hosts, sources


REASSEMBLY_KEY = "reassembly"  # its totals in run_dir/ddc.json (fabric.run.voq.record_ddc)


HOLD_PACKET_TIMES = 16  # a gap may hold packets back this many packet times at line rate


def params_for(graph: nx.Graph) -> ReseqParams:
    """The reassembly's tuning for this fabric: the hold timeout is HOLD_PACKET_TIMES full
    frames at the slowest host's line rate, and at least the default (50 ms). Path skew here is
    counted in packet times (a frame waiting a batch in OVS on one path): at 10 Mbit/s and MTU
    9000 one frame lasts 7.2 ms, and a fixed 50 ms skipped gaps whose packets then arrived
    (32-host runs: 36 of 44,434 packets late)."""
    frame_bits = frame_bytes(graph_mtu(graph)) * 8
    slowest = min(model.host_rate_mbps(graph, h) for h in model.hosts(graph)) * 1e6
    hold_ms = max(ReseqParams().hold_timeout_ms, HOLD_PACKET_TIMES * frame_bits / slowest * 1e3)
    return ReseqParams(hold_timeout_ms=min(hold_ms, 10_000.0))


@contextmanager
def reassembly(graph: nx.Graph, host_pids: Mapping[str, int], run_dir: Path,
               params: ReseqParams | None = None) -> Iterator[ResequencerProcess | None]:
    """The egress resequencer running while the block runs (a DDC with `reassembly`; else
    nothing). On leaving, however it happens: the process stopped (its rules removed, held
    packets released), its totals under "reassembly" in run_dir/ddc.json, per host in
    run_dir/reseq_stats.json. Enter it after the hosts exist, leave it before they go."""
    if not reassembling(graph):
        yield None
        return
    hosts, sources = hosts_from_model(graph, host_pids)
    proc = start_resequencer(Path(run_dir), hosts, sources, params or params_for(graph))
    try:
        yield proc
    finally:
        stats = proc.stop()
        record_ddc(run_dir, REASSEMBLY_KEY, {
            **stats["total"], "partial": stats["partial"], "cpu_s": stats["cpu_s"],
            "cpu_us_per_packet": stats["cpu_us_per_packet"]} if stats else
            {"error": "no statistics (see reseq.log)"})

if __name__ == "__main__":
    sys.exit(main())
