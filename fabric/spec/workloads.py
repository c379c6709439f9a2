"""Spec tables of the traffic library's workloads (registered in fabric.spec.WORKLOAD_KINDS).

    kind = "allreduce" | "allgather" | "reducescatter" | "alltoall"   a training job (CollectiveJob)
    kind = "inference"     LLM requests: prompt, KV-cache transfer, token stream (traffic.inference)
    kind = "background"    flows from a size CDF at a target load (traffic.background)

Every workload has `units = "emulated"` (default: sizes, times and rates as written) or
`units = "real"` (converted through the experiment's [scale] table, traffic.scaling); all its
`*_bytes`, `*_s` and `rate_per_s` values follow that choice. Types and bounds are checked by
fabric.spec.load; `check(key)` adds cross-field rules, `named_hosts()` lists the host names a
table gives (fabric.spec checks them against each fabric); impossible groups (e.g. a ring of one
host, halving-doubling on 3 hosts) are rejected when the plan is built at load time
(fabric.plan.traffic), all with SpecError naming the key.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from traffic import background, inference

from topologies.errors import SpecError
from fabric.spec.load import positive

Units = Literal["emulated", "real"]
# How transfers map onto TCP connections (traffic.connections): "persistent" reuses connections
# as the workload's real stack does (the default of training jobs and inference), "per_transfer"
# opens one per transfer (the default of flows, stride and background traffic).
Connections = Literal["persistent", "per_transfer"]


def _hosts_of(field: str, hosts: tuple[str, ...]) -> list[tuple[str, str]]:
    return [] if hosts == ("all",) else [(f"{field}[{j}]", h) for j, h in enumerate(hosts)]


def _positive_finite(obj: object, key: str, *names: str) -> None:
    for name in names:
        v = getattr(obj, name)
        if not (math.isfinite(v) and v > 0):
            raise SpecError(f"{key}.{name}", f"must be a number > 0, got {v!r}")


@dataclass(frozen=True, kw_only=True)
class CollectiveJob:
    """A training job: `iterations` x (compute `gap_s` + one collective of S = `size_bytes`,
    nccl-tests' S for the kind) over `hosts` ("all" or names, in ring order), each step's
    message split over `channels` parallel TCP connections (traffic.jobs), kept open for the
    whole job unless `connections = "per_transfer"` (traffic.connections)."""
    size_bytes: int
    hosts: tuple[str, ...] = ("all",)
    iterations: int = positive(1, 1000, default=1)
    gap_s: float = 0.0
    start_s: float = 0.0
    channels: int = positive(1, 64, default=1)
    connections: Connections = "persistent"
    units: Units = "emulated"

    def named_hosts(self) -> list[tuple[str, str]]:
        return _hosts_of("hosts", self.hosts)


@dataclass(frozen=True, kw_only=True)
class AllGatherSpec(CollectiveJob):
    """Ring all-gather; S is the total gathered array."""
    kind: Literal["allgather"]
    algorithm: Literal["ring"] = "ring"
    name: str = "allgather"


@dataclass(frozen=True, kw_only=True)
class ReduceScatterSpec(CollectiveJob):
    """Ring reduce-scatter; S is each rank's input array."""
    kind: Literal["reducescatter"]
    algorithm: Literal["ring"] = "ring"
    name: str = "reducescatter"


@dataclass(frozen=True, kw_only=True)
class AllToAllSpec(CollectiveJob):
    """All-to-all; S is each rank's send buffer (S/n to every rank); `algorithm` is the
    schedule: "concurrent" (all at once) or "phased" (n-1 shifted pairwise phases)."""
    kind: Literal["alltoall"]
    algorithm: Literal["concurrent", "phased"] = "concurrent"
    name: str = "alltoall"


@dataclass(frozen=True, kw_only=True)
class InferenceSpec:
    """LLM inference requests (traffic.inference). Arrivals: "poisson" or "gamma" (`cv`) at
    `rate_per_s` with lognormal token counts around the medians `prompt_tokens` /
    `output_tokens`, or "trace": an Azure-format CSV (`trace`, a path; `time_scale`,
    `rate_factor`, traffic.trace). `requests` caps the count. KV bytes per token come from
    the `model` profile (8b, 70b, 405b)."""
    kind: Literal["inference"]
    clients: tuple[str, ...]
    prefill: tuple[str, ...]
    decode: tuple[str, ...]
    model: str = "70b"
    requests: int = positive(1, 10000, default=20)
    arrivals: Literal["poisson", "gamma", "trace"] = "poisson"
    rate_per_s: float = 1.0
    cv: float = 1.0
    trace: str = ""
    time_scale: float = 1.0
    rate_factor: float = 1.0
    prompt_tokens: int = positive(1, 1_000_000, default=1020)
    prompt_sigma: float = 0.5
    output_tokens: int = positive(1, 100_000, default=129)
    output_sigma: float = 0.5
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

    def named_hosts(self) -> list[tuple[str, str]]:
        return [(f"{role}[{j}]", h) for role in ("clients", "prefill", "decode")
                for j, h in enumerate(getattr(self, role))]

    def check(self, key: str) -> None:
        if self.model not in inference.PROFILES:
            raise SpecError(f"{key}.model", f"{self.model!r} is not a model profile "
                                            f"({', '.join(inference.PROFILES)})")
        _positive_finite(self, key, "rate_per_s", "cv", "time_scale")
        if not 0 < self.rate_factor <= 1:
            raise SpecError(f"{key}.rate_factor", f"must be in (0, 1], got {self.rate_factor}")
        for name in ("prompt_sigma", "output_sigma", "prefill_s_per_token", "decode_s_per_token"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise SpecError(f"{key}.{name}", f"must be a number >= 0, got {v!r}")
        if (self.arrivals == "trace") != bool(self.trace):
            raise SpecError(f"{key}.trace", 'give a trace file exactly when arrivals = "trace"')


@dataclass(frozen=True, kw_only=True)
class BackgroundSpec:
    """Background flows (traffic.background): sizes from `cdf` ("websearch", "datamining" or
    a CSV path), Poisson arrivals offering `load` x the host link rate on every host link,
    random pairs of `hosts`, arriving for `duration_s` from `start_s`. FCT slowdown uses
    ideal = size*8/line rate + `base_rtt_s` (0: estimated from the run's fastest flow)."""
    kind: Literal["background"]
    cdf: str = "websearch"
    load: float = 0.3
    hosts: tuple[str, ...] = ("all",)
    duration_s: float = 10.0
    start_s: float = 0.0
    base_rtt_s: float = 0.0
    connections: Connections = "per_transfer"
    units: Units = "emulated"
    name: str = "background"

    def named_hosts(self) -> list[tuple[str, str]]:
        return _hosts_of("hosts", self.hosts)

    def check(self, key: str) -> None:
        if not (math.isfinite(self.load) and 0 < self.load <= 1):
            raise SpecError(f"{key}.load", f"must be a fraction of the host link rate in "
                                           f"(0, 1], got {self.load}")
        _positive_finite(self, key, "duration_s")
        try:
            background.load_cdf(self.cdf)
        except SpecError as e:
            raise SpecError(f"{key}.cdf", str(e).removeprefix("cdf: ")) from None
