"""The run summary as the table `fabric run` prints: setup, phases, collectives, FCT, jobs,
inference, slowdown bins, TCP counters and the fidelity verdict.

Pure formatting of fabric.analysis results; what each figure means is defined where it is
computed (fabric.analysis.metrics, fabric.analysis.workloads, fabric.analysis.fidelity).
"""
from __future__ import annotations

from typing import Any

from fabric.analysis.fidelity import Fidelity
from fabric.analysis.summary import RunSummary
from fabric.analysis.transport import TransportResult


def _f(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    if value is None or value != value:  # NaN
        return "-"
    return f"{value * scale:.{digits}f}"


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
            lines.append(f"{c.id:<22}{c.ranks:>6}{c.size_bytes / 1e6:>8.2f}MB{_f(c.jct_s):>9}"
                         f"{_f(c.lower_bound_s):>9}{_f(c.algbw_mbps, digits=2):>9}"
                         f"{_f(c.busbw_mbps, digits=2):>9}{_f(c.busbw_efficiency, 100, 1):>6}%"
                         f"{_f(c.ideal_jct_s):>9}{_f(c.jct_vs_ideal, digits=2):>8}")
        lines.append("")
    if s.fct_by_workload:
        lines.append(f"{'FCT (ms)':<22}{'n':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
        for name, d in list(s.fct_by_workload.items()) + ([("all", s.fct_s)] if s.fct_s else []):
            lines.append(f"{name:<22}{d.count:>6}{_f(d.p50, 1e3, 1):>9}{_f(d.p90, 1e3, 1):>9}"
                         f"{_f(d.p99, 1e3, 1):>9}{_f(d.max, 1e3, 1):>9}")
    if s.ideal is not None and s.ideal.fct_ratio.count:
        r, sd = s.ideal.fct_ratio, s.ideal.fct_slowdown
        lines.append(f"{'FCT vs ideal':<22}{r.count:>6}  measured/ideal p50 {_f(r.p50, digits=2)} "
                     f"p99 {_f(r.p99, digits=2)}; slowdown vs alone p50 {_f(sd.p50, digits=2)} "
                     f"p99 {_f(sd.p99, digits=2)}  (ideal: max-min fluid, {s.ideal.view} paths, "
                     f"goodput {s.ideal.goodput_factor:.3f} of wire)")
    lines += format_sections(s)
    if s.tcp:
        lines.append(f"\ntcp: {s.tcp['Tcp.OutSegs']} segments, {s.tcp['Tcp.RetransSegs']} retransmitted "
                     f"({s.tcp['retransmit_ppm']} ppm), {s.tcp['reorder_events']} reorder events, "
                     f"{s.tcp['TcpExt.TCPOFOQueue']} queued out of order, "
                     f"{s.tcp['TcpExt.TCPTimeouts']} timeouts")
    if s.transport is not None:
        lines += format_transport(s.transport)
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


def _num(v: float | None, digits: int = 3, scale: float = 1.0) -> str:
    return "-" if v is None or v != v else f"{v * scale:.{digits}f}"


def _ms(v: float | None) -> str:
    """Seconds as milliseconds, one decimal."""
    return _num(v, 1, 1e3)


def format_sections(s: Any) -> list[str]:
    """Human tables for the summary: jobs, inference, FCT slowdown, scale."""
    td = s.scale["time_dilation"] if s.scale else None
    lines: list[str] = []
    if s.jobs:
        lines.append(f"{'job':<16}{'collective':<31}{'ranks':>6}{'iters':>6}{'ch':>4}"
                     f"{'JCT s':>9}{'roofline':>9}{'ratio':>7}" + ("  real JCT s" if td else ""))
        for j in s.jobs:
            lines.append(f"{j.name:<16}{j.kind + ' ' + j.algorithm:<31}{j.ranks:>6}"
                         f"{j.iterations:>6}{j.channels:>4}{_num(j.jct_s):>9}"
                         f"{_num(j.roofline_s):>9}{_num(j.jct_ratio, 2):>7}"
                         + (f"  {_num(j.jct_s / td, 4)}" if td else ""))
        lines.append("")
    for name, inf in s.inference.items():
        lines.append(f"inference {name}: {inf.complete}/{inf.requests} requests complete, "
                     f"{inf.tokens} tokens, fabric goodput {_num(inf.fabric_goodput_mbps, 1)} "
                     f"Mbit/s, {_num(inf.token_goodput_per_s, 1)} tokens/s")
        lines.append(f"  {'(ms)':<22}{'n':>5}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"
                     + ("   real p50/p99 ms" if td else ""))
        for label, d in (("KV transfer (TTFT_fab)", inf.kv_transfer_s),
                         ("network TTFT", inf.ttft_network_s), ("TTFT", inf.ttft_s),
                         ("token gap", inf.token_gap_s)):
            lines.append(f"  {label:<22}{d.count:>5}{_ms(d.p50):>9}{_ms(d.p90):>9}"
                         f"{_ms(d.p99):>9}{_ms(d.max):>9}"
                         + (f"   {_ms(d.p50 / td)}/{_ms(d.p99 / td)}" if td else ""))
        lines.append("")
    for name, sd in s.slowdown.items():
        lines.append(f"FCT slowdown {name} (line {sd.line_rate_mbps:g} Mbit/s, base RTT "
                     f"{sd.base_rtt_s * 1e3:.2f} ms {sd.base_rtt_source})")
        lines.append(f"  {'size bin':<14}{'n':>6}{'mean':>8}{'p50':>8}{'p95':>8}{'p99':>8}")
        for b in sd.bins + [sd.overall]:
            lines.append(f"  {b.label:<14}{b.count:>6}{_num(b.mean, 1):>8}{_num(b.p50, 1):>8}"
                         f"{_num(b.p95, 1):>8}{_num(b.p99, 1):>8}")
        lines.append("")
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
    if f.cpu is not None:
        c = f.cpu
        head += (f"  (cpu {c.machine_busy_mean:.0%} mean / {c.machine_busy_peak:.0%} peak of "
                 f"{c.cores} cores; ovs-vswitchd {c.ovs_vswitchd_cores_mean:.2f} / "
                 f"{c.ovs_vswitchd_cores_peak:.2f} cores; agents {c.agents_cores_mean:.2f}; "
                 f"controller {c.controller_cores_mean:.2f}")
        if f.busy_links:
            worst = min(f.busy_links, key=lambda x: x.measured_util / x.ideal_util)
            head += (f"; busy links at >= {worst.measured_util / worst.ideal_util:.0%} of their "
                     "ideal load")
        head += ")"
    return [head] + [f"  UNFAITHFUL: {r}" for r in f.reasons] + [f"  note: {w}" for w in f.warnings]


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
