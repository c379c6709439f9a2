"""Real units vs emulated units: the optional ``[scale]`` table and its conversions.

A real AI fabric runs 400-800 Gbit/s links; this emulator runs tens of Mbit/s. A spec may give a
workload's sizes, times and rates in real units (``units = "real"`` on the workload) and declare
how the emulated fabric stands for the real one::

    [scale]
    real_link_gbps = 400      # the real host (NIC) link rate the fabric's host_rate_mbps stands for
    time_dilation = 10        # emulated seconds per real second (default 1)
    real_base_rtt_us = 10     # the real fabric's base RTT (default 10 us, an assumption)

    size factor  f = host_rate_mbps * 1e6 / (real_link_gbps * 1e9) * time_dilation
    emulated bytes   = max(1, round(real bytes * f))        (every size: messages, KV caches, flows)
    emulated seconds = real seconds * time_dilation         (start_s, compute gaps, decode times)
    emulated rates   = real rates / time_dilation           (request arrivals per second)

With time_dilation = 1 a transfer takes as long in the emulation as on the real fabric (sizes
shrink by the rate ratio); a larger dilation keeps messages big enough for TCP to reach line rate
and stretches every time by the same factor. The host rate is the fabric's (the smallest host
link if they differ), so two fabrics with the same host rate replay the same plan.
Workloads with ``units = "emulated"`` (the default) are taken as written. Results are always
measured in emulated units; with a [scale] the summary's ``scale`` block gives f, the dilation
and each workload's input units, and the report adds real-time equivalents (emulated s /
dilation) of job JCTs and inference latencies, so the two are never mixed silently
(Scale.real_s / Scale.real_mbps convert others). Sizes smaller than one emulated byte are
rounded up to 1 byte. RTT / transfer time keeps the real fabric's ratio only when the emulated
base RTT equals real_base_rtt_us x time_dilation: fabric.analysis.transport measures it and warns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from topologies.errors import SpecError


@dataclass(frozen=True)
class ScaleSpec:
    """The ``[scale]`` table (bounds: fabric.spec.load field metadata)."""
    real_link_gbps: float = field(metadata={"min": 0.001, "max": 100_000})
    time_dilation: float = field(default=1.0, metadata={"min": 0.001, "max": 1_000_000})
    # the real fabric's base RTT (fabric.analysis.transport checks the emulated one against it)
    real_base_rtt_us: float = field(default=10.0, metadata={"min": 0.01, "max": 1_000_000})


@dataclass(frozen=True)
class Convert:
    """Sizes and times of one workload into emulated units (identity for emulated input)."""
    size_factor: float = 1.0
    time_factor: float = 1.0

    def bytes(self, n: float) -> int:
        """Emulated bytes for `n` input bytes (at least 1)."""
        return max(1, round(n * self.size_factor))

    def seconds(self, s: float) -> float:
        """Emulated seconds for `s` input seconds (rates follow: arrival times are scaled)."""
        return s * self.time_factor


IDENTITY = Convert()


@dataclass(frozen=True)
class Scale:
    """A [scale] applied to a fabric whose host links run `emulated_link_mbps`."""
    real_link_gbps: float
    emulated_link_mbps: float
    time_dilation: float = 1.0
    real_base_rtt_us: float = 10.0

    @property
    def size_factor(self) -> float:
        """Emulated bytes per real byte."""
        return self.emulated_link_mbps * 1e6 / (self.real_link_gbps * 1e9) * self.time_dilation

    def convert(self, units: str) -> Convert:
        """How to turn a workload's `units` into emulated units."""
        return Convert(self.size_factor, self.time_dilation) if units == "real" else IDENTITY

    def real_s(self, emulated_s: float) -> float:
        return emulated_s / self.time_dilation

    def real_mbps(self, emulated_mbps: float) -> float:
        return emulated_mbps * self.real_link_gbps * 1e3 / self.emulated_link_mbps

    def describe(self, workload_units: dict[str, str]) -> dict[str, Any]:
        """The summary's `scale` block."""
        return {"real_link_gbps": self.real_link_gbps,
                "emulated_link_mbps": self.emulated_link_mbps,
                "time_dilation": self.time_dilation, "size_factor": self.size_factor,
                "real_base_rtt_us": self.real_base_rtt_us,
                "workload_units": dict(workload_units)}


def check_scale(scale: ScaleSpec | None, workload_units: Iterable[str]) -> None:
    """SpecError unless the [scale] values are positive and, when a workload's units (in
    spec order) are "real", there is a [scale]."""
    if scale is not None:
        for key in ("real_link_gbps", "time_dilation", "real_base_rtt_us"):
            v = getattr(scale, key)
            if not (math.isfinite(v) and v > 0):
                raise SpecError(f"scale.{key}", f"must be a number > 0, got {v!r}")
    for i, units in enumerate(workload_units):
        if units == "real" and scale is None:
            raise SpecError(f"workload[{i}].units", 'units = "real" needs a [scale] table '
                                                    "(e.g. real_link_gbps = 400)")


def fabric_scale(scale: ScaleSpec | None, host_rates_mbps: Iterable[float]) -> Scale | None:
    """The Scale for a fabric with these host link rates (None without a [scale] table)."""
    if scale is None:
        return None
    return Scale(scale.real_link_gbps, min(host_rates_mbps), scale.time_dilation,
                 scale.real_base_rtt_us)
