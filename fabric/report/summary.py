"""The run summary as the table `fabric run` prints: setup, phases, collectives, FCT, jobs,
each workload's own section (inference, slowdown bins, ...), TCP counters and the fidelity verdict.

Pure formatting of fabric.analysis results; what each figure means is defined where it is
computed (fabric.analysis.metrics, fabric.analysis.fidelity; a workload's section prints itself,
fabric/workloads/).
"""
from __future__ import annotations

from typing import Any

from fabric.analysis.fidelity import Fidelity
from fabric.analysis.metrics import fmt
from fabric.analysis.summary import RunSummary
from fabric.analysis.transport import TransportResult


def format_summary(s: RunSummary) -> str:
    """The human table `fabric run` prints."""
    lines = [f"experiment {s.experiment}  fabric {s.fabric}  policy {s.policy}  seed {s.seed}  "
             f"datapath {s.datapath}",
             f"status: {s.status.upper()}" + (f"  ({s.error})" if s.error else ""),
             "setup: " + "  ".join(f"{k}={v}" for k, v in s.setup.items()),
             "phases: " + "  ".join(f"{k} {v:.2f}s" for k, v in s.phases_s.items()),
             f"flows: {s.flows_complete}/{s.flows_planned} complete", ""]
    if s.collectives:
        lines.append(f"{'collective':<22}{'ranks':>6}{'size':>10}{'JCT s':>9}{'bound s':>9}"
                     f"{'algbw':>9}{'busbw':>9}{'eff':>7}{'ideal s':>9}{'x ideal':>8}  (Mbit/s)")
        for c in s.collectives:
            lines.append(f"{c.id:<22}{c.ranks:>6}{c.size_bytes / 1e6:>8.2f}MB{fmt(c.jct_s):>9}"
                         f"{fmt(c.lower_bound_s):>9}{fmt(c.algbw_mbps, 2):>9}"
                         f"{fmt(c.busbw_mbps, 2):>9}{fmt(c.busbw_efficiency, 1, 100):>6}%"
                         f"{fmt(c.ideal_jct_s):>9}{fmt(c.jct_vs_ideal, 2):>8}")
        lines.append("")
    if s.fct_by_workload:
        lines.append(f"{'FCT (ms)':<22}{'n':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
        for name, d in list(s.fct_by_workload.items()) + ([("all", s.fct_s)] if s.fct_s else []):
            lines.append(f"{name:<22}{d.count:>6}{fmt(d.p50, 1, 1e3):>9}{fmt(d.p90, 1, 1e3):>9}"
                         f"{fmt(d.p99, 1, 1e3):>9}{fmt(d.max, 1, 1e3):>9}")
    if s.ideal is not None and s.ideal.fct_ratio.count:
        r, sd = s.ideal.fct_ratio, s.ideal.fct_slowdown
        lines.append(f"{'FCT vs ideal':<22}{r.count:>6}  measured/ideal p50 {fmt(r.p50, 2)} "
                     f"p99 {fmt(r.p99, 2)}; slowdown vs alone p50 {fmt(sd.p50, 2)} "
                     f"p99 {fmt(sd.p99, 2)}  (ideal: max-min fluid, {s.ideal.view} paths, "
                     f"goodput {s.ideal.goodput_factor:.3f} of wire)")
    lines += format_sections(s)
    if s.tcp:
        lines.append(f"\ntcp: {s.tcp['Tcp.OutSegs']} segments, {s.tcp['Tcp.RetransSegs']} retransmitted "
                     f"({s.tcp['retransmit_ppm']} ppm), {s.tcp['reorder_events']} reorder events, "
                     f"{s.tcp['TcpExt.TCPOFOQueue']} queued out of order "
                     f"({s.tcp.get('ofo_permille', 0) / 10:.1f}%), "
                     f"{s.tcp['TcpExt.TCPTimeouts']} timeouts")
        if "retrans_real" in s.tcp:
            lines.append(f"retransmitted: {s.tcp['retrans_real']} real "
                         f"({s.tcp['retrans_real_ppm']} ppm), {s.tcp['retrans_spurious']} "
                         f"spurious (DSACK: the receiver had the data)")
    if s.loss:
        parts = [f"{tier} {d['total']} (queues {d['queue_drops']}, host NICs {d['host_nic_drops']}, "
                 f"OVS {d['ovs_drops']}, veth {d['veth_drops']}{_send(d)})" if tier == "host" else
                 f"{tier} {d['total']} (queues {d['queue_drops']}, OVS {d['ovs_drops']}, "
                 f"veth {d['veth_drops']}{_send(d)})" for tier, d in sorted(s.loss.items())]
        lines.append("packets lost: " + "; ".join(parts))
    lines += format_ddc(s.ddc)
    if s.transport is not None:
        lines += format_transport(s.transport)
    if s.collisions:
        more = f" (+{len(s.collisions) - 3} more in paths.csv/summary.json)" \
            if len(s.collisions) > 3 else ""
        lines.append("paths: " + "; ".join(s.collisions[:3]) + more)
    for f in s.failures:
        when = (f"at t0+{f['applied_s']:.2f}s" if f.get("applied_s") is not None
                else f"NOT applied ({f.get('error')})")
        hit = ", ".join(f.get("collectives_hit") or []) or "no collective"
        lines.append(f"failure: {f['what']} down {when}; hit {hit}" + (
            f"; JCT {f['hit_jct_s']:.3f}s vs steady p50 {f['steady_jct_p50_s']:.3f}s "
            f"({f['jct_overhead'] * 100:+.1f}%, {'zero impact' if f['zero_impact'] else 'impact'})"
            if f.get("jct_overhead") is not None else ""))
    if s.fidelity is not None:
        lines += [""] + format_fidelity(s.fidelity)
    lines.append(f"\nresults: {s.run_dir}")
    return "\n".join(lines)


def format_sections(s: RunSummary) -> list[str]:
    """Human tables for the summary: jobs, the workloads' sections, scale."""
    td = s.scale["time_dilation"] if s.scale else None
    lines: list[str] = []
    if s.jobs:
        lines.append(f"{'job':<16}{'collective':<31}{'ranks':>6}{'iters':>6}{'ch':>4}"
                     f"{'JCT s':>9}{'roofline':>9}{'ratio':>7}" + ("  real JCT s" if td else ""))
        for j in s.jobs:
            lines.append(f"{j.name:<16}{j.kind + ' ' + j.algorithm:<31}{j.ranks:>6}"
                         f"{j.iterations:>6}{j.channels:>4}{fmt(j.jct_s):>9}"
                         f"{fmt(j.roofline_s):>9}{fmt(j.jct_ratio, 2):>7}"
                         + (f"  {fmt(j.jct_s / td, 4)}" if td else ""))
        lines.append("")
    for results in s.sections.values():  # each workload's own block (Workload.summarise)
        for name, result in results.items():
            lines += result.lines(name, td)
    if s.scale:
        sc = s.scale
        lines.append(f"scale: emulated {sc['emulated_link_mbps']:g} Mbit/s host links stand for "
                     f"{sc['real_link_gbps']:g} Gbit/s; 1 real byte = {sc['size_factor']:.3g} "
                     f"emulated bytes, 1 real s = {sc['time_dilation']:g} emulated s; units: "
                     + ", ".join(f"{k}={v}" for k, v in sc["workload_units"].items()))
    while lines and not lines[-1]:
        lines.pop()
    return [""] + lines if lines else lines


def format_fidelity(f: Fidelity) -> list[str]:
    """Lines for the printed run summary."""
    head = "fidelity: " + ("FAITHFUL" if f.faithful else "UNFAITHFUL")
    if f.servers:
        head += f"  ({'every one' if f.faithful else 'not every one'} of {len(f.servers)} servers"
    elif f.cpu is not None:
        head += "  (" + _cpu_figures(f.cpu, controller=True)
    if f.cpu is not None or f.servers:
        if f.busy_links:
            worst = min(f.busy_links, key=lambda x: x.measured_util / x.ideal_util)
            head += (f"; busy links at >= {worst.measured_util / worst.ideal_util:.0%} of their "
                     "ideal load")
        head += ")"
    lines = [head]
    for s in f.servers:   # cluster mode: each server's own verdict and figures
        lines.append(f"  server {s.server}: {'FAITHFUL' if s.faithful else 'UNFAITHFUL'} ("
                     + (_cpu_figures(s.cpu, controller=False) if s.cpu else "no CPU samples")
                     + f"; {s.busy_links} busy directions judged; kernel drops "
                     f"{s.kernel_dropped}; unread by OVS {s.ovs_rx_dropped}; OVS send failures "
                     + ("unknown" if s.send_failures is None else str(s.send_failures)) + ")")
    return lines + [f"  UNFAITHFUL: {r}" for r in f.reasons] + [f"  note: {w}" for w in f.warnings]


def _cpu_figures(c: Any, controller: bool) -> str:
    return (f"cpu {c.machine_busy_mean:.0%} mean / {c.machine_busy_peak:.0%} peak of "
            f"{c.cores} cores; ovs-vswitchd {c.ovs_vswitchd_cores_mean:.2f} / "
            f"{c.ovs_vswitchd_cores_peak:.2f} cores; agents {c.agents_cores_mean:.2f}"
            + (f"; controller {c.controller_cores_mean:.2f}" if controller else ""))


def format_transport(t: TransportResult) -> list[str]:
    """The summary's transport lines."""
    def ms(x: float | None) -> str:
        return "-" if x is None or x != x else f"{x * 1e3:.2f}"
    hp, ht = t.handshake_persistent_s, t.handshake_per_transfer_s
    line = (f"transport: {t.persistent} persistent connections"
            + (f" (handshake p50 {ms(hp.p50)} ms, max {ms(hp.max)} ms, before their first "
               "message is offered: in no FCT)"
               if hp.count else "")
            + f", {t.per_transfer} transfers on connections of their own"
            + (f" (handshake p50 {ms(ht.p50)} ms, max {ms(ht.max)} ms, inside their FCT)"
               if ht.count else ""))
    out = [line]
    if t.base_rtt_s.count:
        b = t.base_rtt_s
        rtt = (f"base RTT (TCP min_rtt) over {b.count} paths: p50 {ms(b.p50)} ms, "
               f"max {ms(b.max)} ms; {t.rtt_share * 100:.1f}% of the median FCT"
               if t.rtt_share == t.rtt_share else
               f"base RTT (TCP min_rtt) over {b.count} paths: p50 {ms(b.p50)} ms, max {ms(b.max)} ms")
        if t.stands_for_real_s is not None:
            rtt += (f"; stands for {t.stands_for_real_s * 1e6:.1f} us real "
                    f"(time dilation {t.time_dilation:g})")
            if t.rtt_factor is not None and t.real_base_rtt_s is not None:
                rtt += (f", real fabric {t.real_base_rtt_s * 1e6:g} us: "
                        f"RTT/transfer time x{t.rtt_factor:.1f}")
        out.append(rtt)
    out += [f"warning: {w}" for w in t.warnings]
    return out


def format_ddc(ddc: dict[str, Any] | None) -> list[str]:
    """What a scheduled DDC's VOQs, credits and egress reassembly did (summary.ddc)."""
    if not ddc:
        return []
    lines = []
    c = ddc.get("credits")
    if c:
        lines.append(f"ddc credits: {c['voqs']} VOQs, {c['decisions']} decisions every "
                     f"{c['interval_ms']:g} ms ({c['late_decisions']} late), {c['rate_changes']} "
                     f"rate changes, {c['cpu_s']:.2f} s CPU; VOQ drops {c['voq_drops']}, "
                     f"deepest VOQ {c['max_voq_backlog_bytes']} B")
    r = ddc.get("reassembly")
    if r:
        lines.append("ddc reassembly: " + ", ".join(f"{k} {v}" for k, v in r.items()
                                                    if not isinstance(v, dict)))
    return lines


def _send(d: dict[str, int]) -> str:
    """", OVS send N" when ovs-vswitchd's send buffer overflowed (fabric.analysis.ovsbuf)."""
    n = d.get("ovs_send_failures", 0)
    return f", OVS send >= {n}" if n else ""   # its log is rate-limited
