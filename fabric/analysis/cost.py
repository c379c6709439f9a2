"""The cost line: a measured JCT ratio between two fabrics in accelerator-hours and money.

A job occupies `accelerators` for `job_hours` on the slower fabric S of a pair. On the faster
fabric F the share `measured_share` of that time (the part that behaves like the measured
workload) shrinks by the measured ratio r = JCT_F / JCT_S; the rest is unaffected:

    r_job            = 1 - measured_share * (1 - r)
    accelerator-hours per job:  S: N * H      F: N * H * r_job
    cost per job:               accelerator-hours * accelerator_hour_usd
    worth of the gain           = (1 / r_job - 1) / network_share
                                  of the network's cost: the faster fabric's network could cost
                                  that much more than the slower one's before a job on it
                                  costs more (break-even; >= 100%: the gain alone pays for a
                                  whole second network, "the network pays for itself")

Derivation of the last line: the cluster costs C per hour, the network s*C of it. If F's
network costs k times S's, F's cluster costs C (1 + (k - 1) s) per hour and a job on it
C (1 + (k - 1) s) H r_job; equal to S's C H when k - 1 = (1 / r_job - 1) / s.
The interval of r (fabric.analysis.headtohead) is carried through every figure.
"""
from __future__ import annotations

from dataclasses import dataclass

from fabric.analysis.headtohead import PairedRatio
from fabric.spec.cost import DEFAULT_COST, CostSpec


@dataclass(frozen=True)
class CostLine:
    """The cost line of one resolved pair: `fast` beats `slow`; (low, high) = 95% interval."""
    workload: str
    fast: str
    slow: str
    ratio: float                       # JCT_fast / JCT_slow, measured
    ratio_ci: tuple[float, float]
    job_ratio: float                   # with measured_share applied
    hours_slow: float                  # accelerator-hours per job on the slower fabric
    hours_fast: float
    hours_saved_ci: tuple[float, float]
    usd_slow: float                    # cost per job
    usd_fast: float
    usd_saved_ci: tuple[float, float]
    network_worth: float               # break-even network premium (fraction of its cost)
    network_worth_ci: tuple[float, float]


def cost_line(p: PairedRatio, cost: CostSpec | None = None) -> CostLine | None:
    """The cost line of a pair the seeds resolve (None otherwise: no difference to price)."""
    c = cost or DEFAULT_COST
    if not p.resolved or p.ratio is None or p.low is None or p.high is None:
        return None
    fast, slow, r, lo, hi = p.a, p.b, p.ratio, p.low, p.high
    if r > 1:
        fast, slow, r, lo, hi = p.b, p.a, 1 / r, 1 / p.high, 1 / p.low

    def job(x: float) -> float:
        return 1 - c.measured_share * (1 - x)
    hours = c.accelerators * c.job_hours
    price = c.accelerator_hour_usd

    def worth(x: float) -> float:
        return (1 / job(x) - 1) / c.network_share
    return CostLine(p.workload, fast, slow, r, (lo, hi), job(r), hours, hours * job(r),
                    (hours * (1 - job(hi)), hours * (1 - job(lo))), hours * price,
                    hours * job(r) * price,
                    (hours * (1 - job(hi)) * price, hours * (1 - job(lo)) * price),
                    worth(r), (worth(hi), worth(lo)))


def assumptions(cost: CostSpec | None) -> str:
    """The assumptions the cost line rests on, in one paragraph."""
    c = cost or DEFAULT_COST
    src = "from the experiment's [cost] table" if cost is not None else "defaults: no [cost] table"
    return (f"Assumptions ({src}; sources in docs/metrics.md): a job on {c.accelerators:,} accelerators at "
            f"${c.accelerator_hour_usd:,.2f} per accelerator-hour, {c.job_hours:g} h long on the "
            f"slower fabric, {c.measured_share:.0%} of it behaving like the measured workload; "
            f"the network is {c.network_share:.0%} of the cluster's cost. What carries the result: "
            "(1) that the measured JCT ratio holds at full scale and rate (the emulator scales "
            "link rates and sizes down together; queues, RTTs and many more hosts may not), "
            "(2) measured_share (a job that computes most of the time gains less), "
            "(3) network_share (the break-even premium scales with 1/network_share); the "
            "accelerator price and cluster size only scale the dollar figures.")


def format_cost(line: CostLine) -> str:
    """One line: accelerator-hours and dollars per job, and what the gain is worth."""
    return (f"`{line.workload}`: a job on {line.fast} needs {line.hours_fast:,.0f} accelerator-h "
            f"vs {line.hours_slow:,.0f} on {line.slow}: saves {line.hours_slow - line.hours_fast:,.0f} "
            f"(95% CI {line.hours_saved_ci[0]:,.0f}..{line.hours_saved_ci[1]:,.0f}) accelerator-h, "
            f"${line.usd_slow - line.usd_fast:,.0f} per job (${line.usd_saved_ci[0]:,.0f}.."
            f"${line.usd_saved_ci[1]:,.0f}); break-even: {line.fast}'s network could cost "
            f"{line.network_worth:.0%} ({line.network_worth_ci[0]:.0%}..{line.network_worth_ci[1]:.0%}) "
            f"more than {line.slow}'s")
