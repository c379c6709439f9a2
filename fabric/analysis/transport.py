"""Connections and round-trip times of a run: handshakes kept apart from FCTs, and the base RTT
of every path beside the real fabric's RTT it stands for.

From the agents' `<host>.conn.csv` (traffic.agent.CONN_COLUMNS), one row per connection a host
opened: a persistent one (traffic.plan.Connection) or a transfer's own.

  handshake  = connect() time of a connection (SYN sent -> established at the client), kept
               apart: warm persistent connections open before t0 and are in no FCT; a
               transfer's own connection pays it inside its FCT.
  base RTT   = per path (src, dst), the smallest TCP_INFO min_rtt over its connections: the
               kernel's minimum RTT sample, i.e. the emulated fabric's RTT without queueing
               (SYN/ACK and data-segment samples; a full-size segment adds its serialisation).
  RTT scale  = with a [scale] table (traffic.scaling), emulated seconds are real seconds x
               time_dilation and message transfer times scale exactly so; RTT / transfer time
               is therefore as on the real fabric only when the emulated base RTT equals
               real_base_rtt_us x time_dilation. rtt_factor = measured / that target; beyond
               RTT_FACTOR_MAX either way the summary warns: slow start, RTOs, queueing and
               every per-message latency then weigh more (or less) than on the real fabric.
  rtt_share  = base RTT (p50 over paths) / median FCT of the run's transfers: how much of a
               typical transfer one round trip is, in emulated time (no [scale] needed).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from fabric.analysis.metrics import Distribution, percentile

RTT_FACTOR_MAX = 2.0     # warn when the emulated RTT is off the scaled real one by more than 2x


@dataclass(frozen=True)
class PathRtt:
    """The base RTT of one directed host pair (the path its connections hashed onto)."""
    src: str
    dst: str
    base_rtt_s: float
    connections: int


@dataclass(frozen=True)
class TransportResult:
    """Connections opened, their handshakes, base RTTs and the RTT's scale (seconds)."""
    persistent: int                      # persistent connections opened
    per_transfer: int                    # transfers that opened a connection of their own
    handshake_persistent_s: Distribution
    handshake_per_transfer_s: Distribution
    base_rtt_s: Distribution             # over paths: each path's smallest min_rtt
    paths: list[PathRtt]
    retransmits: int                     # TCP_INFO total_retrans summed over connections
    rtt_share: float                     # base RTT p50 / median FCT (NaN without flows)
    time_dilation: float | None = None
    real_base_rtt_s: float | None = None   # the real fabric's ([scale] real_base_rtt_us)
    stands_for_real_s: float | None = None  # measured p50 / time_dilation
    rtt_factor: float | None = None         # measured p50 / (real_base_rtt_s x time_dilation)
    warnings: list[str] = field(default_factory=list)


def read_rows(agent_dir: Path) -> list[dict[str, str]]:
    """Every <host>.conn.csv row of a run (torn last lines skipped)."""
    rows: list[dict[str, str]] = []
    for p in sorted(Path(agent_dir).glob("*.conn.csv")):
        with open(p, newline="") as f:
            rows += [r for r in csv.DictReader(f) if r.get("conn") and r.get("dst")]
    return rows


def _float(v: str | None) -> float | None:
    try:
        x = float(v) if v not in (None, "") else None
    except ValueError:
        return None
    return x if x is not None and math.isfinite(x) else None


def summarise(rows: Sequence[dict[str, str]], fct_s: Iterable[float] = (),
              scale: dict[str, Any] | None = None) -> TransportResult:
    """The run's transport block from its connection rows, FCTs and [scale] description
    (traffic.scaling.Scale.describe, or None)."""
    persistent = [r for r in rows if r.get("kind") == "persistent"]
    own = [r for r in rows if r.get("kind") == "transfer"]
    best: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        rtt = _float(r.get("min_rtt_s"))
        if rtt is not None and rtt > 0:
            best.setdefault((r["src"], r["dst"]), []).append(rtt)
    paths = [PathRtt(s, d, min(v), len(v)) for (s, d), v in sorted(best.items())]
    base = Distribution.of(p.base_rtt_s for p in paths)
    fcts = [x for x in fct_s if x is not None and math.isfinite(x)]
    share = base.p50 / percentile(fcts, 50) if fcts and base.count else math.nan
    retrans = sum(int(r["retrans"]) for r in rows if (r.get("retrans") or "").isdigit())
    res: dict[str, Any] = dict(persistent=len(persistent), per_transfer=len(own),
               handshake_persistent_s=Distribution.of(
                   x for r in persistent if (x := _float(r.get("handshake_s"))) is not None),
               handshake_per_transfer_s=Distribution.of(
                   x for r in own if (x := _float(r.get("handshake_s"))) is not None),
               base_rtt_s=base, paths=paths, retransmits=retrans, rtt_share=share)
    warnings: list[str] = []
    if scale and base.count:
        d = float(scale.get("time_dilation", 1.0))
        real = scale.get("real_base_rtt_us")
        res.update(time_dilation=d, stands_for_real_s=base.p50 / d)
        if real:
            real_s = float(real) / 1e6
            factor = base.p50 / (real_s * d)
            res.update(real_base_rtt_s=real_s, rtt_factor=factor)
            if not 1 / RTT_FACTOR_MAX <= factor <= RTT_FACTOR_MAX:
                warnings.append(
                    f"RTT out of scale: the emulated base RTT {base.p50 * 1e3:.3f} ms stands for "
                    f"{base.p50 / d * 1e6:.1f} us on the real fabric at time dilation {d:g}, "
                    f"{factor:.1f}x its {real_s * 1e6:g} us, so RTT / transfer time is {factor:.1f}x "
                    f"the real one (limit {RTT_FACTOR_MAX:g}x): "
                    + (f"raise [scale] time_dilation to ~{d * factor:.0f}" if factor > 1 else
                       f"lower [scale] time_dilation to ~{d * factor:.1f}")
                    + " (sizes follow) or see docs/transport.md")
    return TransportResult(**res, warnings=warnings)
