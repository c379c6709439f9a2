"""Did the emulation keep up? CPU sampling during a run, and the verdict written into its summary.

On a small machine the emulation runs out of CPU long before the emulated fabric runs out of
bandwidth; the numbers of such a run describe the machine, not the fabric. During the workload a
:class:`CpuSampler` thread reads, every 0.25 s, the cumulative CPU time of the switch datapath
(ovs-vswitchd), the controller process, the traffic agents (/proc/<pid>/stat) and of the whole
machine (/proc/stat), into ``cpu.csv``. The link sampler (fabric.linkstats) writes ``links.csv``
beside it. After the run :func:`assess` combines both with the ideal model (fabric.ideal) into
:class:`Fidelity` (the summary's ``fidelity`` field).

``cpu.csv`` columns (cumulative since the sampler started, seconds; rates are deltas / time):

    time           epoch seconds (the clock of flows.csv and links.csv)
    machine_busy_s CPU time spent not idle (user+nice+system+irq+softirq+steal), all cores
    machine_total_s CPU time elapsed, all cores (busy + idle + iowait)
    softirq_s      of which in softirq (veth forwarding, HTB dequeueing)
    ovs_vswitchd_s ovs-vswitchd (all threads; the userspace datapath forwards inside it)
    controller_s   the controller process
    agents_s       every traffic agent (a finished agent keeps its last value)

Verdict (thresholds are module constants; rates and CPU are averaged over sliding windows of at
least WINDOW_S, because one 0.25 s sample is dominated by timer jitter):

* **Unfaithful: CPU saturated while busy links fell short, with no fabric bottleneck to blame.**
  - CPU saturated: the machine was CPU_SATURATED (90%) busy over some window, OR ovs-vswitchd
    used OVS_CORE_LIMIT (0.9) of a core. The userspace datapath forwards every packet of every
    non-DPDK port in its main thread (observed: that one thread at 99.9%, the others idle), so
    one core is its ceiling however idle the other core is (machine only ~60% busy then).
  - Busy link short: a switch egress direction the ideal fabric fills (for IDEAL_BUSY_MIN_S or
    more in one stretch) carried, while active, less than LINK_SHORTFALL (90%) of the
    utilisation the ideal fabric gives it while active (1.0 for a link that is full whenever
    it carries anything). "While active" = the sampling intervals inside a stretch of activity
    (above ACTIVE_UTIL of the rate), without its first and last interval, which the stretch only
    partly covers. Averaging over the whole activity matters: when a shared CPU bottleneck
    slows every flow, each link still gets its full rate for a moment once the others finish,
    so its best short window looks healthy. Idle gaps (compute between iterations) do not count.
    90% leaves room for the 2-5% that TCP's sawtooth and the ACK class cost on a healthy link
    (bulk flows here keep 99-100% of wire rate while active).
  - No fabric bottleneck to blame: no other link on any equal-cost path of the flows crossing the
    short link reached LINK_SHORTFALL either. Otherwise a real bottleneck (two ECMP flows hashed
    onto one uplink) explains the shortfall, and the emulation faithfully shows it.
  Each condition alone is not enough. Measured here (2x2 leaf/spine, 4 bulk flows across the
  spines, non-blocking): ovs-vswitchd reached 0.94 cores at 20 Mbit/s links and 0.98 at 40 while
  flows still got 99.3-99.5% of the ideal (it polls more and batches more as load grows, so its
  CPU share saturates long before its packet rate does: 31 -> 60 -> 85 kpps); at 80 Mbit/s
  flows got 85% of ideal and links fell short. A busy machine (other users) with links at their
  rate is fine; a link below its rate without CPU saturation is TCP not filling it (a warning).
  A direction is judged only when it was measured active for MEASURED_MIN_S (1 s of whole
  sampling intervals): a faithful short burst cannot be judged, but an overloaded run stretches
  its bursts and is. A run with no judged direction gets a warning that links were not checked.
* **Unfaithful: kernel drops between interfaces** (tx_dropped on switch interfaces: a veth peer's
  backlog overflowed, softirq could not keep up) above DROP_FRACTION (0.1%) of the packets sent;
  fewer -> a warning. Drops in the emulated switch queues are not counted: they are the fabric's
  behaviour, not the machine's.
* **Unfaithful: packets ovs-vswitchd never read** (`ovs_rx_dropped`: the receive socket of a port
  overflowed because the datapath fell behind) above the same DROP_FRACTION; fewer -> a warning.
  The receive buffers stay at the kernel's default (net.core.rmem_default): a larger one would
  hide the overload as an unmodelled queue inside OVS instead of showing it.
* ovs-vswitchd at a full core with links at their rate is reported as a note: the datapath had
  no spare capacity, so a heavier workload would not have been faithful.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import networkx as nx

from traffic.plan import TrafficPlan

from fabric.analysis.links import LinkSample, first_last

SAMPLE_INTERVAL_S = 0.25
WINDOW_S = 1.0
CPU_SATURATED = 0.90
OVS_CORE_LIMIT = 0.90
LINK_SHORTFALL = 0.90
IDEAL_BUSY_MIN_S = 0.25  # links the ideal fabric keeps full at least this long are checked
MEASURED_MIN_S = 1.0     # ... once they were measured active (whole intervals) this long
ACTIVE_UTIL = 0.05      # a sampling interval above this fraction of the rate is "active"
DROP_FRACTION = 1e-3
WIRE_FRAME_BYTES = 1514          # to turn link bytes into an estimate of packets sent
GROUPS = ("ovs_vswitchd", "controller", "agents")
COLUMNS = ("time", "machine_busy_s", "machine_total_s", "softirq_s") + tuple(
    f"{g}_s" for g in GROUPS)


# ------------------------------------------------------------------------------- pure analysis

@dataclass(frozen=True)
class CpuSample:
    """One row of cpu.csv."""
    time: float
    machine_busy_s: float
    machine_total_s: float
    softirq_s: float
    ovs_vswitchd_s: float
    controller_s: float
    agents_s: float


def read_cpu_csv(path: Path) -> list[CpuSample]:
    """Rows of a cpu.csv; a torn last line is skipped."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                out.append(CpuSample(*(float(row[c]) for c in COLUMNS)))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def windows(times: Sequence[float], min_s: float = WINDOW_S) -> list[tuple[int, int]]:
    """(i, j) sample index pairs: for each i the first j with t[j] - t[i] >= min_s; when the
    whole span is shorter than min_s, the span itself."""
    out = []
    j = 0
    for i in range(len(times)):
        j = max(j, i + 1)
        while j < len(times) and times[j] - times[i] < min_s:
            j += 1
        if j < len(times):
            out.append((i, j))
    if not out and len(times) >= 2 and times[-1] > times[0]:
        out.append((0, len(times) - 1))
    return out


@dataclass(frozen=True)
class CpuStats:
    """CPU over a run: means over the whole span, peaks over WINDOW_S windows.
    machine_* are fractions of all cores (1.0 = every core busy); the rest are cores (1.0 = one)."""
    samples: int
    duration_s: float
    cores: int
    machine_busy_mean: float
    machine_busy_peak: float
    softirq_cores_mean: float
    ovs_vswitchd_cores_mean: float
    ovs_vswitchd_cores_peak: float
    controller_cores_mean: float
    agents_cores_mean: float
    agents_cores_peak: float


def cpu_stats(samples: Sequence[CpuSample]) -> CpuStats | None:
    """Means and windowed peaks; None with fewer than two samples."""
    if len(samples) < 2 or samples[-1].time <= samples[0].time:
        return None
    a, b = samples[0], samples[-1]
    span = b.time - a.time

    def frac(x: CpuSample, y: CpuSample) -> float:
        dt = y.machine_total_s - x.machine_total_s
        return (y.machine_busy_s - x.machine_busy_s) / dt if dt > 0 else 0.0

    def cores(x: CpuSample, y: CpuSample, attr: str) -> float:
        return float(getattr(y, attr) - getattr(x, attr)) / (y.time - x.time)

    w = windows([s.time for s in samples])
    ncores = max(1, round((b.machine_total_s - a.machine_total_s) / span))
    return CpuStats(
        len(samples), span, ncores, frac(a, b),
        max(frac(samples[i], samples[j]) for i, j in w),
        cores(a, b, "softirq_s"), cores(a, b, "ovs_vswitchd_s"),
        max(cores(samples[i], samples[j], "ovs_vswitchd_s") for i, j in w),
        cores(a, b, "controller_s"), cores(a, b, "agents_s"),
        max(cores(samples[i], samples[j], "agents_s") for i, j in w))


@dataclass(frozen=True)
class LinkCheck:
    """A direction the ideal fabric keeps busy: its utilisation while active, ideal and measured
    (fractions of the configured rate), and how long it was measured active."""
    src: str
    dst: str
    rate_mbps: float
    ideal_util: float
    measured_util: float
    active_s: float


def _intervals(rows: Sequence[LinkSample]) -> list[tuple[float, float]]:
    """(length s, utilisation) of each sampling interval of one direction."""
    out = []
    for a, b in zip(rows, rows[1:]):
        dt = b.time - a.time
        if dt > 0:
            out.append((dt, max(0, b.tx_bytes - a.tx_bytes) * 8 / (a.rate_mbps * 1e6 * dt)))
    return out


def _by_direction(samples: Iterable[LinkSample]) -> dict[tuple[str, str], list[LinkSample]]:
    by_dir: dict[tuple[str, str], list[LinkSample]] = {}
    for s in samples:
        by_dir.setdefault((s.src, s.dst), []).append(s)
    for rows in by_dir.values():
        rows.sort(key=lambda r: r.time)
    return by_dir


def active_utilisation(samples: Iterable[LinkSample]
                       ) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Per direction: (rate_mbps, utilisation over the interior of its active stretches, seconds
    of interior). Interior intervals are active and have active neighbours on both sides."""
    out = {}
    for key, rows in _by_direction(samples).items():
        iv = _intervals(rows)
        act = [u >= ACTIVE_UTIL for _, u in iv]
        inner = [iv[i] for i in range(1, len(iv) - 1) if act[i - 1] and act[i] and act[i + 1]]
        secs = sum(dt for dt, _ in inner)
        util = sum(dt * u for dt, u in inner) / secs if secs > 0 else math.nan
        out[key] = (rows[0].rate_mbps, util, secs)
    return out


def best_utilisation(samples: Iterable[LinkSample]) -> dict[tuple[str, str], float]:
    """Per direction: the best utilisation over any window of at least WINDOW_S."""
    out = {}
    for key, rows in _by_direction(samples).items():
        best = 0.0
        for i, j in windows([r.time for r in rows]):
            dt = rows[j].time - rows[i].time
            best = max(best, max(0, rows[j].tx_bytes - rows[i].tx_bytes) * 8
                       / (rows[0].rate_mbps * 1e6 * dt))
        out[key] = best
    return out


def kernel_drops(samples: Iterable[LinkSample],
                 frame_bytes: int = WIRE_FRAME_BYTES) -> tuple[int, float]:
    """(tx_dropped over the run, estimated packets sent) summed over all sampled directions."""
    ends = first_last(samples)
    first = {k: a for k, (a, _) in ends.items()}
    last = {k: b for k, (_, b) in ends.items()}
    dropped = sum(max(0, last[k].tx_dropped - first[k].tx_dropped) for k in first)
    sent = sum(max(0, last[k].tx_bytes - first[k].tx_bytes) for k in first) / frame_bytes
    return dropped, sent


def ovs_rx_drops(samples: Iterable[LinkSample]) -> int:
    """Packets ovs-vswitchd never read over the run (`ovs_rx_dropped` deltas, all ends)."""
    ends = first_last(samples)
    return sum(max(0, b.ovs_rx_dropped - a.ovs_rx_dropped) for a, b in ends.values())


@dataclass
class ServerFidelity:
    """One server's verdict in cluster mode: assess() over its CPU (its machine, its
    ovs-vswitchd, its agents) and the directions leaving its switches."""
    server: str
    faithful: bool
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cpu: CpuStats | None = None
    busy_links: int = 0                 # directions judged
    kernel_dropped: int = 0
    ovs_rx_dropped: int = 0
    send_failures: int | None = None    # OVS's logged send failures (None: log unreadable)


@dataclass
class Fidelity:
    """The verdict on one run (summary field `fidelity`)."""
    faithful: bool
    reasons: list[str] = field(default_factory=list)      # why unfaithful (empty when faithful)
    warnings: list[str] = field(default_factory=list)     # worth knowing, not disqualifying
    cpu: CpuStats | None = None
    busy_links: list[LinkCheck] = field(default_factory=list)
    kernel_dropped: int = 0
    ideal_peak_forwarding_mbps: float | None = None   # fabric.ideal: switch egress at its peak
    # cluster mode (fabric.analysis.servers): each server's own verdict; faithful only if all are
    servers: list[ServerFidelity] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=lambda: {
        "window_s": WINDOW_S, "cpu_saturated": CPU_SATURATED, "ovs_core_limit": OVS_CORE_LIMIT,
        "link_shortfall": LINK_SHORTFALL, "ideal_busy_min_s": IDEAL_BUSY_MIN_S,
        "measured_min_s": MEASURED_MIN_S, "drop_fraction": DROP_FRACTION})


def assess(cpu: Sequence[CpuSample], links: Sequence[LinkSample],
           busy: Mapping[tuple[str, str], float],
           neighbours: Mapping[tuple[str, str], Iterable[tuple[str, str]]] | None = None,
           frame_bytes: int = WIRE_FRAME_BYTES,
           context: Sequence[LinkSample] | None = None) -> Fidelity:
    """The verdict (rules in the module docstring); `frame_bytes`: a full frame at the fabric's
    MTU (turns link bytes into a packet estimate for the kernel-drop share); `context`: the
    samples a neighbour's utilisation is read from (default `links`; a cluster server's
    neighbours may be on other servers).

    busy: directions to check -> the ideal utilisation while active (IdealResult.
    active_utilisation of its busy_links, limited to directions whose ideal load does not depend
    on an unknown hash). neighbours: per direction, the other directions on the equal-cost paths
    of the flows that cross it: any of them at its rate explains a shortfall.
    """
    stats = cpu_stats(cpu)
    reasons: list[str] = []
    warnings: list[str] = []
    if stats is None:
        reasons.append("not measured: no CPU samples (the run failed before its workload)")
    measured = active_utilisation(links)
    checks = [LinkCheck(src, dst, measured[(src, dst)][0], ideal, measured[(src, dst)][1],
                        measured[(src, dst)][2])
              for (src, dst), ideal in sorted(busy.items())
              if (src, dst) in measured and measured[(src, dst)][2] >= MEASURED_MIN_S]
    if not checks:
        warnings.append(f"no busy link was active for {MEASURED_MIN_S:g} s: link rates not "
                        "checked")
    best = best_utilisation(links if context is None else context)

    def explained(c: LinkCheck) -> bool:
        return any(best.get(n, 0.0) >= LINK_SHORTFALL
                   for n in (neighbours or {}).get((c.src, c.dst), ()) if n != (c.src, c.dst))
    short = [c for c in checks if c.measured_util < LINK_SHORTFALL * c.ideal_util]
    unexplained = [c for c in short if not explained(c)]
    saturated = stats is not None and (stats.machine_busy_peak >= CPU_SATURATED
                                       or stats.ovs_vswitchd_cores_peak >= OVS_CORE_LIMIT)
    if saturated and unexplained:
        assert stats is not None
        why = (f"machine {stats.machine_busy_peak:.0%} busy" if stats.machine_busy_peak
               >= CPU_SATURATED else f"ovs-vswitchd at {stats.ovs_vswitchd_cores_peak:.2f} cores")
        reasons.append(f"CPU saturated ({why} over {WINDOW_S:g} s) while busy links carried "
                       f"less than {LINK_SHORTFALL:.0%} of their ideal load with no fabric "
                       f"bottleneck to blame: {link_list(unexplained)}")
    elif unexplained:
        warnings.append(f"busy links below {LINK_SHORTFALL:.0%} of their ideal load without CPU "
                        f"saturation (TCP did not fill them): {link_list(unexplained)}")
    if len(short) > len(unexplained):
        warnings.append("busy links below their ideal load behind a fabric bottleneck (e.g. an "
                        f"ECMP collision): {link_list([c for c in short if explained(c)])}")
    if stats is not None and stats.ovs_vswitchd_cores_peak >= OVS_CORE_LIMIT and not reasons:
        warnings.append(f"ovs-vswitchd used {stats.ovs_vswitchd_cores_peak:.2f} cores: the "
                        "userspace datapath had no spare capacity (no link fell short for "
                        "lack of it)")
    dropped, sent = kernel_drops(links, frame_bytes)
    if dropped and dropped > DROP_FRACTION * max(sent, 1):
        reasons.append(f"{dropped} packets dropped between interfaces by the kernel "
                       f"({dropped / max(sent, 1):.2%} of ~{sent:.0f} sent): softirq fell behind")
    elif dropped:
        warnings.append(f"{dropped} packets dropped between interfaces by the kernel")
    unread = ovs_rx_drops(links)   # ovs-vswitchd fell behind reading its ports: the machine's
    if unread and unread > DROP_FRACTION * max(sent, 1):
        reasons.append(f"{unread} packets dropped unread by ovs-vswitchd ({unread / max(sent, 1):.2%}"
                       f" of ~{sent:.0f} sent): its receive sockets overflowed, it fell behind")
    elif unread:
        warnings.append(f"{unread} packets dropped unread by ovs-vswitchd (its receive sockets "
                        "overflowed; counted in `packets lost:` as OVS)")
    return Fidelity(not reasons, reasons, warnings, stats, checks, dropped)


def link_list(checks: Sequence[LinkCheck]) -> str:
    more = f" (+{len(checks) - 4} more)" if len(checks) > 4 else ""
    return ", ".join(f"{c.src}->{c.dst} {c.measured_util:.0%} (ideal {c.ideal_util:.0%})"
                     for c in checks[:4]) + more


def per_packet_policy(policy: str) -> bool:
    """Whether a controller policy sprays packets (then the ideal 'spread' view is exact)."""
    from controller.policies import POLICIES
    from controller.policies.spraying import SprayingPolicy
    cls = POLICIES.get(policy)
    return cls is not None and issubclass(cls, SprayingPolicy)


def checked_directions(graph: nx.Graph, plan: TrafficPlan, policy: str,
                       busy: Mapping[tuple[str, str], float]
                       ) -> tuple[dict[tuple[str, str], float],
                                  dict[tuple[str, str], set[tuple[str, str]]]]:
    """(the busy directions judged, their neighbours) as assess_run describes."""
    from topologies import model

    from fabric.analysis.ideal import equal_cost_paths
    to_host = {(model.attachment(graph, h)[0], h) for h in model.hosts(graph)}
    exact = per_packet_policy(policy)
    checked = {l: s for l, s in busy.items() if l in to_host or exact}
    neighbours: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for src, dst in {(t.src, t.dst) for t in plan.transfers}:
        on_paths = {(a, b) for p in equal_cost_paths(graph, src, dst) for a, b in zip(p, p[1:])}
        for l in on_paths & set(checked):
            neighbours.setdefault(l, set()).update(on_paths)
    return checked, neighbours


def assess_run(run_dir: Path, graph: nx.Graph, plan: TrafficPlan, policy: str,
               busy: Mapping[tuple[str, str], float], peak_forwarding_bps: float | None = None,
               datapath: str = "", peak_delivery_bps: float | None = None) -> Fidelity:
    """assess() over a run directory's cpu.csv and links.csv (missing files: no samples);
    busy as for assess().

    Checked directions: switch->host always; fabric directions only under per-packet spraying
    (the ideal 'spread' view is exact there; under ECMP their load depends on the hash)."""
    from fabric.analysis.links import read_links_csv
    cpu = read_cpu_csv(run_dir / "cpu.csv") if (run_dir / "cpu.csv").exists() else []
    links = read_links_csv(run_dir / "links.csv") if (run_dir / "links.csv").exists() else []
    checked, neighbours = checked_directions(graph, plan, policy, busy)
    from topologies.queues import frame_bytes, graph_mtu
    verdict = assess(cpu, links, checked, neighbours, frame_bytes(graph_mtu(graph)))
    if peak_forwarding_bps is not None:
        from fabric.analysis.capacity import predict
        verdict.ideal_peak_forwarding_mbps = peak_forwarding_bps / 1e6
        pred = predict(graph.graph.get("name", ""), graph, plan, datapath, peak_forwarding_bps,
                       peak_delivery_bps)
        if not pred.fits and pred.budget_frames_per_s is not None:
            verdict.warnings.append(
                f"the plan asks the switches to forward {pred.peak_forwarding_mbps:.0f} Mbit/s "
                f"({pred.peak_frames_per_s / 1e3:.1f}k frames/s at MTU {pred.mtu}) at its peak; "
                f"this machine kind keeps about {pred.budget_frames_per_s / 1e3:.0f}k frames/s "
                f"faithful on the {datapath} datapath (bench.capacity): lower the link rates or "
                "raise the fabric's mtu")
    return verdict
