"""Per-workload results of the traffic library: inference requests, FCT slowdown, training jobs.

Pure functions over FlowRecords (traffic.records), added to the RunSummary by `summarise`:
  inference (per workload; records grouped by request id = FlowRecord.group, parts by step,
  traffic.inference.STEP_*):
    KV transfer time  = FCT of the KV-cache transfer (TTFT_fabric, docs/metrics.md);
    network TTFT      = FCT(prompt) + FCT(KV) + FCT(first token): the fabric's share of TTFT;
    TTFT              = first token's arrival - prompt's start (compute gaps included);
    token gaps        = gaps between in-order token deliveries at the client (a token is
                        usable once it and all before it have arrived: max of their ends);
    fabric goodput (bytes/s) and inference goodput (tokens/s) are kept apart.
  FCT slowdown (per background workload) = FCT / ideal, clamped at 1, with ideal = wire bytes
    * 8 / line rate + base RTT (docs/metrics.md, HPCC; wire bytes: payload + the agent's header in
    full frames, fabric.ideal.WireModel), by fixed size bins (pFabric style: (0,100KB),
    [100KB,10MB), >=10MB; sizes in the workload's input units) with count, mean, p50, p95, p99.
    A base RTT of 0 means "estimate from this run": the smallest FCT - serialisation over the
    workload's flows, at least 0 (HTB's burst lets small flows beat the line rate, so it can
    come out 0; give base_rtt_s for a fixed value).
Contention penalty = p99 under background load / p99 alone: compare two runs' summaries.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from topologies import model
from traffic.inference import STEP_KV, STEP_PROMPT, STEP_TOKEN0

from fabric.analysis import metrics
from fabric.analysis.metrics import Distribution, percentile
from fabric.analysis.ideal import WireModel
from fabric.plan.traffic import plan_scale
from fabric.spec.workloads import BackgroundSpec, InferenceSpec

SLOWDOWN_BINS: tuple[tuple[str, float, float], ...] = (
    ("<100KB", 0, 100e3), ("100KB-10MB", 100e3, 10e6), (">=10MB", 10e6, math.inf))
REQUEST_COLUMNS = ("workload", "request", "complete", "kv_bytes", "prompt_s", "kv_transfer_s",
                   "ttft_network_s", "ttft_s", "tokens", "token_gap_mean_s", "token_gap_max_s")


@dataclass(frozen=True)
class RequestResult:
    """One request, measured (NaN where a part did not complete)."""
    id: str
    complete: bool
    kv_bytes: int
    prompt_s: float
    kv_transfer_s: float
    ttft_network_s: float
    ttft_s: float
    tokens: int
    token_gaps_s: tuple[float, ...]


@dataclass(frozen=True)
class InferenceResult:
    """One inference workload: distributions over its requests (seconds, emulated)."""
    requests: int
    complete: int
    tokens: int
    kv_transfer_s: Distribution
    ttft_network_s: Distribution
    ttft_s: Distribution
    token_gap_s: Distribution
    fabric_fraction: Distribution   # KV transfer time / TTFT
    fabric_goodput_mbps: float
    token_goodput_per_s: float


def _fct(r: Any) -> float:
    return r.fct_s if r is not None and r.complete else math.nan


def request_results(records: Iterable[Any]) -> list[RequestResult]:
    """Per request id (FlowRecord.group), in order of first appearance."""
    groups: dict[str, dict[int, Any]] = {}
    for r in records:
        if r.group is not None and r.step is not None:
            groups.setdefault(r.group, {})[r.step] = r
    out = []
    for gid, parts in groups.items():
        prompt, kv = parts.get(STEP_PROMPT), parts.get(STEP_KV)
        tokens = [parts[s] for s in sorted(parts) if s >= STEP_TOKEN0]
        first = tokens[0] if tokens else None
        ttft = (first.end - prompt.start if first is not None and first.complete
                and prompt is not None and prompt.start is not None else math.nan)
        gaps: list[float] = []
        usable = -math.inf
        for t in tokens:
            if not t.complete:
                break
            ready = max(usable, t.end)
            if usable > -math.inf:
                gaps.append(ready - usable)
            usable = ready
        out.append(RequestResult(
            gid, all(p.complete for p in parts.values()), kv.bytes if kv else 0, _fct(prompt),
            _fct(kv), _fct(prompt) + _fct(kv) + _fct(first), ttft, len(tokens), tuple(gaps)))
    return out


def _finite(xs: Iterable[float]) -> list[float]:
    return [x for x in xs if not math.isnan(x)]


def inference_result(records: Sequence[Any]) -> InferenceResult:
    """Summary of one inference workload's records."""
    reqs = request_results(records)
    done = [r for r in records if r.complete]
    span = (max(r.end for r in done) - min(r.start for r in done)) if done else math.nan
    tokens = sum(1 for r in done if r.step is not None and r.step >= STEP_TOKEN0)
    good = span > 0
    return InferenceResult(
        len(reqs), sum(r.complete for r in reqs), tokens,
        Distribution.of(_finite(r.kv_transfer_s for r in reqs)),
        Distribution.of(_finite(r.ttft_network_s for r in reqs)),
        Distribution.of(_finite(r.ttft_s for r in reqs)),
        Distribution.of(g for r in reqs for g in r.token_gaps_s),
        Distribution.of(_finite(r.kv_transfer_s / r.ttft_s for r in reqs if r.ttft_s > 0)),
        sum(r.bytes for r in done) * 8 / span / 1e6 if good else math.nan,
        tokens / span if good else math.nan)


@dataclass(frozen=True)
class SlowdownBin:
    """FCT slowdown statistics of the flows in one size bin."""
    label: str
    count: int
    mean: float
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, label: str, xs: Sequence[float]) -> "SlowdownBin":
        nan = math.nan
        if not xs:
            return cls(label, 0, nan, nan, nan, nan)
        return cls(label, len(xs), sum(xs) / len(xs), percentile(xs, 50), percentile(xs, 95),
                   percentile(xs, 99))


@dataclass(frozen=True)
class SlowdownResult:
    """FCT slowdown of one workload's flows, overall and per size bin."""
    line_rate_mbps: float
    base_rtt_s: float
    base_rtt_source: str
    overall: SlowdownBin
    bins: list[SlowdownBin]


def ideal_fct_s(size_bytes: float, line_rate_mbps: float, base_rtt_s: float,
                wire: WireModel = WireModel()) -> float:
    """The flow alone on the fabric: its wire bytes at line rate plus one base RTT."""
    wire_bytes = (size_bytes + wire.header_bytes) * wire.forward_cost
    return wire_bytes * 8 / (line_rate_mbps * 1e6) + base_rtt_s


def fct_slowdown(records: Sequence[Any], line_rate_mbps: float, base_rtt_s: float = 0.0,
                 bin_size_factor: float = 1.0, wire: WireModel = WireModel()) -> SlowdownResult:
    """Slowdown = max(1, FCT / ideal FCT) of the complete flows, binned by size / bin_size_factor
    (the workload's input units); base_rtt_s = 0 estimates it from the fastest flow."""
    done = [r for r in records if r.complete]
    source = "spec"
    if base_rtt_s <= 0:
        base_rtt_s = max(0.0, min((r.fct_s - ideal_fct_s(r.bytes, line_rate_mbps, 0.0, wire)
                                   for r in done), default=0.0))
        source = f"estimated (fastest of {len(done)} flows)"
    pairs = [(r.bytes / bin_size_factor,
              max(1.0, r.fct_s / ideal_fct_s(r.bytes, line_rate_mbps, base_rtt_s, wire)))
             for r in done]
    bins = [SlowdownBin.of(label, [x for size, x in pairs if lo <= size < hi])
            for label, lo, hi in SLOWDOWN_BINS]
    return SlowdownResult(line_rate_mbps, base_rtt_s, source,
                          SlowdownBin.of("all", [x for _, x in pairs]), bins)


def write_requests_csv(rows: Iterable[tuple[str, RequestResult]], path: Path) -> None:
    """One row per request: workload, id, its parts' times (s, emulated)."""
    def cell(v: float) -> str:
        return "" if math.isnan(v) else f"{v:.6f}"
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(REQUEST_COLUMNS)
        for name, r in rows:
            gaps = r.token_gaps_s
            w.writerow([name, r.id, "true" if r.complete else "false", r.kv_bytes,
                        cell(r.prompt_s), cell(r.kv_transfer_s), cell(r.ttft_network_s),
                        cell(r.ttft_s), r.tokens, cell(sum(gaps) / len(gaps) if gaps else math.nan),
                        cell(max(gaps, default=math.nan))])


def summarise(spec: Any, plan: Any, records: Sequence[Any], graph: Any, summary: Any,
              run_dir: Path | None = None) -> None:
    """Fill summary.jobs, .inference, .slowdown and .scale; write requests.csv to run_dir."""
    rates = {h: model.host_rate_mbps(graph, h) for h in model.hosts(graph)}
    summary.jobs = metrics.job_results(plan, records, rates)
    scale = plan_scale(spec, graph)
    if scale is not None:
        summary.scale = scale.describe({w.name: getattr(w, "units", "emulated")
                                        for w in spec.workloads})
    rows: list[tuple[str, RequestResult]] = []
    for w in spec.workloads:
        mine = [r for r in records if r.workload == w.name]
        convert = scale.convert(w.units) if scale and hasattr(w, "units") else None
        if isinstance(w, InferenceSpec):
            summary.inference[w.name] = inference_result(mine)
            rows += [(w.name, r) for r in request_results(mine)]
        elif isinstance(w, BackgroundSpec):
            hs = {h for r in mine for h in (r.src, r.dst)} or set(rates)
            summary.slowdown[w.name] = fct_slowdown(
                mine, min(rates[h] for h in hs),
                convert.seconds(w.base_rtt_s) if convert else w.base_rtt_s,
                convert.size_factor if convert else 1.0)
    if rows and run_dir is not None:
        write_requests_csv(rows, run_dir / "requests.csv")
