"""Head-to-head: which fabric finishes the job sooner, by how much, and how sure the seeds are.

Two fabrics of one comparison run the same traffic plan with the same seeds, and a seed fixes
every transfer's TCP source port (hence ECMP's hash): run (A, seed s) and run (B, seed s) differ
only in the fabric and in the machine's noise. So the JCTs are compared seed by seed (a paired
design), on the ratio r_s = JCT_A,s / JCT_B,s, and only over seeds where both runs count
(complete and faithful, unless the comparison includes unfaithful runs).

Interval: the log ratios d_s = ln r_s are treated as a sample from a normal distribution; the
95% confidence interval of their mean is mean(d) +/- t(0.975, n-1) * sd(d) / sqrt(n) (Student's
t), mapped back with exp() to an interval of the geometric-mean ratio. Logs make "A is half of
B" and "B is twice A" the same size of effect, and the interval of a ratio stays positive.
With few seeds the t quantile is large (n = 2: 12.7) and the interval wide: the verdict says so.
With one seed there is no interval at all.

Verdict: the difference is resolved when the interval excludes 1 (no change); then "A is X% +/- Y%
faster than B", where X% = 1 - r (A needs X% less time than B) and Y% = the larger distance from
X% to either end of the interval. Otherwise: "no difference the seeds can resolve".
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Mapping

LEVEL = 0.95
FEW_SEEDS = 5  # below this, the verdict warns that the interval rests on few seeds

# Student's t, two-sided 95% (the 0.975 quantile), by degrees of freedom (standard tables).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
         17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
         25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000,
         120: 1.980}
_Z975 = 1.960


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (linear in 1/df between
    tabulated values; the normal quantile beyond 120)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if df in _T975:
        return _T975[df]
    if df > 120:
        return _Z975 + (_T975[120] - _Z975) * 120 / df
    lo = max(k for k in _T975 if k < df)
    hi = min(k for k in _T975 if k > df)
    w = (1 / df - 1 / hi) / (1 / lo - 1 / hi)
    return _T975[hi] + w * (_T975[lo] - _T975[hi])


@dataclass(frozen=True)
class PairedRatio:
    """JCT of fabric `a` over fabric `b`, seed by seed, on one workload.

    ratios: per seed JCT_a / JCT_b (seeds where both runs count); ratio: their geometric mean;
    low, high: its 95% confidence interval (None with fewer than two seeds)."""
    workload: str
    a: str
    b: str
    seeds: tuple[int, ...]
    ratios: tuple[float, ...]
    ratio: float | None
    low: float | None
    high: float | None
    level: float = LEVEL

    @property
    def n(self) -> int:
        return len(self.ratios)

    @property
    def resolved(self) -> bool:
        """The interval excludes 1: the seeds tell the fabrics apart."""
        return self.low is not None and self.high is not None and (self.high < 1 or self.low > 1)


def paired_ratio(workload: str, a: str, b: str, jct_a: Mapping[int, float | None],
                 jct_b: Mapping[int, float | None]) -> PairedRatio:
    """The paired JCT ratio a/b over the seeds both fabrics have a (positive) JCT for."""
    seeds = tuple(sorted(s for s in jct_a if s in jct_b and jct_a[s] and jct_b[s]
                         and jct_a[s] > 0 and jct_b[s] > 0))  # type: ignore[operator]
    ratios = tuple(jct_a[s] / jct_b[s] for s in seeds)  # type: ignore[operator]
    if not ratios:
        return PairedRatio(workload, a, b, (), (), None, None, None)
    logs = [math.log(r) for r in ratios]
    mean = sum(logs) / len(logs)
    if len(logs) < 2:
        return PairedRatio(workload, a, b, seeds, ratios, math.exp(mean), None, None)
    half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return PairedRatio(workload, a, b, seeds, ratios, math.exp(mean), math.exp(mean - half),
                       math.exp(mean + half))


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%" if abs(x) >= 0.095 else f"{x * 100:.1f}%"


def verdict(p: PairedRatio, label: Mapping[str, str] | None = None) -> str:
    """One line: which fabric is faster on the workload and by how much, or that the seeds
    cannot tell (module docstring)."""
    def name(f: str) -> str:
        return (label or {}).get(f, f)

    on = f"on `{p.workload}`"
    if p.ratio is None:
        return f"{name(p.a)} vs {name(p.b)} {on}: no seed where both ran (complete and counted)"
    fast, slow, r, lo, hi = p.a, p.b, p.ratio, p.low, p.high
    if r > 1:  # state it from the faster fabric's side
        fast, slow, r = p.b, p.a, 1 / r
        lo, hi = (None, None) if lo is None else (1 / hi, 1 / lo)  # type: ignore[operator]
    if lo is None or hi is None:
        return (f"{name(fast)} took {_pct(1 - r)} less time than {name(slow)} {on} in the one "
                f"seed both ran: one seed gives no interval, run more seeds")
    few = f"; only {p.n} seeds: a rough interval" if p.n < FEW_SEEDS else ""
    if not p.resolved:
        return (f"{name(p.a)} vs {name(p.b)} {on}: no difference the seeds can resolve "
                f"(JCT ratio {p.ratio:.3f}, {p.level:.0%} CI {p.low:.3f}..{p.high:.3f}, "
                f"{p.n} seeds{few})")
    gain, g_lo, g_hi = 1 - r, 1 - hi, 1 - lo
    pm = max(gain - g_lo, g_hi - gain)
    return (f"{name(fast)} is {_pct(gain)} +/- {_pct(pm)} faster than {name(slow)} {on} "
            f"({p.n} seeds, {p.level:.0%} CI {_pct(g_lo)}..{_pct(g_hi)} less time{few})")
