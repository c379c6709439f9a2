"""`kind = "inference"`: LLM requests (prompt, KV-cache transfer, token stream) and their metrics.

Per inference workload, from its flow records grouped by request id (FlowRecord.group) and part
(FlowRecord.step, traffic.inference.STEP_*):
    KV transfer time  = FCT of the KV-cache transfer (TTFT_fabric);
    network TTFT      = FCT(prompt) + FCT(KV) + FCT(first token): the fabric's share of TTFT;
    TTFT              = first token's arrival - prompt's start (compute gaps included);
    token gaps        = gaps between in-order token deliveries at the client (a token is
                        usable once it and all before it have arrived: max of their ends);
    fabric goodput (bytes/s) and inference goodput (tokens/s) are kept apart.
The summary's `inference` section holds one InferenceResult per workload; requests.csv one row
per request.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

from topologies.errors import SpecError
from traffic import connections, inference, trace
from traffic.inference import STEP_KV, STEP_PROMPT, STEP_TOKEN0
from traffic.plan import TrafficPlan
from traffic.records import FlowRecord

from fabric.analysis.metrics import Distribution, fmt
from fabric.spec.load import bounded, positive
from fabric.spec.workload import (Connections, PlanContext, SummaryContext, Units, Workload,
                                  WorkloadSummary, register, require_positive)

REQUEST_COLUMNS = ("workload", "request", "complete", "kv_bytes", "prompt_s", "kv_transfer_s",
                   "ttft_network_s", "ttft_s", "tokens", "token_gap_mean_s", "token_gap_max_s")


@register
@dataclass(frozen=True, kw_only=True)
class InferenceSpec(Workload):
    """LLM inference requests (traffic.inference). Arrivals: "poisson" or "gamma" (`cv`) at
    `rate_per_s` with lognormal token counts around the medians `prompt_tokens` /
    `output_tokens`, or "trace": an Azure-format CSV (`trace`, a path; `time_scale`,
    `rate_factor`, traffic.trace). `requests` caps the count. KV bytes per token come from
    the `model` profile (8b, 70b, 405b)."""
    section = "inference"
    kind: Literal["inference"]
    clients: tuple[str, ...]
    prefill: tuple[str, ...]
    decode: tuple[str, ...]
    model: str = "70b"
    requests: int = positive(1, 10000, default=20)
    arrivals: Literal["poisson", "gamma", "trace"] = "poisson"
    rate_per_s: float = bounded(0.001, 10000, default=1.0)
    cv: float = bounded(0.05, 20, default=1.0)
    trace: str = ""
    time_scale: float = bounded(0.001, 1000, default=1.0)
    rate_factor: float = bounded(0, 1, above=True, default=1.0)
    prompt_tokens: int = positive(1, 1_000_000, default=1020)
    prompt_sigma: float = bounded(0, 5, default=0.5)
    output_tokens: int = positive(1, 100_000, default=129)
    output_sigma: float = bounded(0, 5, default=0.5)
    max_prompt_tokens: int = positive(1, 1_000_000, default=8192)
    max_output_tokens: int = positive(1, 100_000, default=512)
    prompt_bytes_per_token: int = positive(1, 1_000_000, default=4)
    token_message_bytes: int = 64
    prefill_s_per_token: float = 0.0
    decode_s_per_token: float = 0.02
    start_s: float = 0.0
    connections: Connections = "persistent"
    units: Units = "emulated"
    name: str = "inference"

    def check(self, key: str) -> None:
        if self.model not in inference.PROFILES:
            raise SpecError(f"{key}.model", f"{self.model!r} is not a model profile "
                                            f"({', '.join(inference.PROFILES)})")
        require_positive(self, key, "rate_per_s", "cv", "time_scale")
        if not 0 < self.rate_factor <= 1:
            raise SpecError(f"{key}.rate_factor", f"must be in (0, 1], got {self.rate_factor}")
        for name in ("prompt_sigma", "output_sigma", "prefill_s_per_token", "decode_s_per_token"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise SpecError(f"{key}.{name}", f"must be a number >= 0, got {v!r}")
        if (self.arrivals == "trace") != bool(self.trace):
            raise SpecError(f"{key}.trace", 'give a trace file exactly when arrivals = "trace"')

    def named_hosts(self) -> list[tuple[str, str]]:
        return [(f"{role}[{j}]", h) for role, hs in (("clients", self.clients),
                                                     ("prefill", self.prefill),
                                                     ("decode", self.decode))
                for j, h in enumerate(hs)]

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        rng_seed = ctx.rng_seed(self.name)
        if self.arrivals == "trace":
            rows = trace.replay(trace.read_azure_trace(self.trace), self.time_scale,
                                self.rate_factor, seed=rng_seed, max_requests=self.requests)
            requests = inference.trace_requests(rows, self.max_prompt_tokens,
                                                self.max_output_tokens)
        else:
            requests = inference.synthetic_requests(
                self.requests, self.rate_per_s, rng_seed, self.arrivals, self.cv,
                self.prompt_tokens, self.prompt_sigma, self.output_tokens, self.output_sigma,
                self.max_prompt_tokens, self.max_output_tokens)
        transfers = inference.request_transfers(
            requests, self.clients, self.prefill, self.decode, inference.profile(self.model),
            self.prompt_bytes_per_token, self.token_message_bytes, self.prefill_s_per_token,
            self.decode_s_per_token, ctx.convert, self.start_s, workload=self.name)
        transfers, conns = connections.inference(transfers, STEP_TOKEN0, STEP_KV,
                                                 self.connections)
        return TrafficPlan(self.name, ctx.seed, tuple(transfers), connections=conns)

    def summarise(self, records: Sequence[FlowRecord],
                  ctx: SummaryContext) -> WorkloadSummary:
        return WorkloadSummary(inference_result(records), "requests.csv", REQUEST_COLUMNS,
                               tuple(request_row(self.name, r) for r in request_results(records)))


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

    def lines(self, name: str, time_dilation: float | None) -> list[str]:
        """Its block of the printed summary (real-unit columns under a [scale])."""
        td = time_dilation
        out = [f"inference {name}: {self.complete}/{self.requests} requests complete, "
               f"{self.tokens} tokens, fabric goodput {fmt(self.fabric_goodput_mbps, 1)} "
               f"Mbit/s, {fmt(self.token_goodput_per_s, 1)} tokens/s",
               f"  {'(ms)':<22}{'n':>5}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"
               + ("   real p50/p99 ms" if td else "")]
        for label, d in (("KV transfer (TTFT_fab)", self.kv_transfer_s),
                         ("network TTFT", self.ttft_network_s), ("TTFT", self.ttft_s),
                         ("token gap", self.token_gap_s)):
            out.append(f"  {label:<22}{d.count:>5}{_ms(d.p50):>9}{_ms(d.p90):>9}"
                       f"{_ms(d.p99):>9}{_ms(d.max):>9}"
                       + (f"   {_ms(d.p50 / td)}/{_ms(d.p99 / td)}" if td else ""))
        return out + [""]


def _ms(v: float | None) -> str:
    """Seconds as milliseconds, one decimal."""
    return fmt(v, 1, 1e3)


def _fct(r: FlowRecord | None) -> float:
    return r.fct_s if r is not None and r.complete and r.fct_s is not None else math.nan


def request_results(records: Iterable[FlowRecord]) -> list[RequestResult]:
    """Per request id (FlowRecord.group), in order of first appearance."""
    groups: dict[str, dict[int, FlowRecord]] = {}
    for r in records:
        if r.group is not None and r.step is not None:
            groups.setdefault(r.group, {})[r.step] = r
    out = []
    for gid, parts in groups.items():
        prompt, kv = parts.get(STEP_PROMPT), parts.get(STEP_KV)
        tokens = [parts[s] for s in sorted(parts) if s >= STEP_TOKEN0]
        first = tokens[0] if tokens else None
        ttft = (first.end - prompt.start if first is not None and first.complete
                and first.end is not None and prompt is not None and prompt.start is not None
                else math.nan)
        gaps: list[float] = []
        usable = -math.inf
        for t in tokens:
            if not t.complete or t.end is None:
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


def inference_result(records: Sequence[FlowRecord]) -> InferenceResult:
    """Summary of one inference workload's records."""
    reqs = request_results(records)
    done = [r for r in records if r.complete]
    ends = [r.end for r in done if r.end is not None]
    starts = [r.start for r in done if r.start is not None]
    span = max(ends) - min(starts) if ends and starts else math.nan
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


def request_row(workload: str, r: RequestResult) -> tuple[object, ...]:
    """One requests.csv row: workload, id, its parts' times (s, emulated; empty where NaN)."""
    def cell(v: float) -> str:
        return "" if math.isnan(v) else f"{v:.6f}"
    gaps = r.token_gaps_s
    return (workload, r.id, "true" if r.complete else "false", r.kv_bytes, cell(r.prompt_s),
            cell(r.kv_transfer_s), cell(r.ttft_network_s), cell(r.ttft_s), r.tokens,
            cell(sum(gaps) / len(gaps) if gaps else math.nan), cell(max(gaps, default=math.nan)))
