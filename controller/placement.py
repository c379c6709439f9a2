"""Hedera's flow scheduling pieces, pure functions (Al-Fares et al., NSDI 2010, section 4).

* `estimate_demands`: a flow's *natural* demand is the rate it would reach if only the host NICs
  limited it (max-min fair at senders and receivers); measured rates are useless for that,
  since they already suffer from the placement being corrected. Iterates Hedera's sender
  step (split the sender's spare capacity equally among its unconverged flows) and receiver
  step (cap the flows of an oversubscribed receiver at its fair share, marking them converged)
  until nothing changes.
* `first_fit`: Hedera's Global First Fit for one flow: the first candidate path on which every
  link still has room for the flow's demand, given the reservations of the flows placed so far.

Units: whatever the capacities use (the adaptive policy uses Mbit/s).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Iterable, Mapping, Sequence, TypeVar

K = TypeVar("K", bound=Hashable)  # a host, or a link

EPS = 1e-9
MAX_ROUNDS = 1000


def estimate_demands(flows: Sequence[tuple[K, K]],
                     capacity: Mapping[K, float]) -> list[float]:
    """Natural demand of each (src, dst) flow, given every host's NIC capacity."""
    demand = [0.0] * len(flows)
    converged = [False] * len(flows)
    by_src: dict[K, list[int]] = defaultdict(list)
    by_dst: dict[K, list[int]] = defaultdict(list)
    for i, (s, d) in enumerate(flows):
        by_src[s].append(i)
        by_dst[d].append(i)

    def set_demand(i: int, value: float, conv: bool | None = None) -> bool:
        changed = abs(demand[i] - value) > EPS or (conv is not None and converged[i] != conv)
        demand[i] = value
        if conv is not None:
            converged[i] = conv
        return changed

    for _ in range(MAX_ROUNDS):
        changed = False
        for src, idx in by_src.items():
            fixed = sum(demand[i] for i in idx if converged[i])
            free = [i for i in idx if not converged[i]]
            if free:
                share = max(0.0, capacity[src] - fixed) / len(free)
                for i in free:
                    changed |= set_demand(i, share)
        for dst, idx in by_dst.items():
            if sum(demand[i] for i in idx) <= capacity[dst] + EPS:
                continue
            limited = set(idx)
            below = 0.0
            share = capacity[dst] / len(limited)
            while True:
                small = {i for i in limited if demand[i] < share - EPS}
                if not small:
                    break
                below += sum(demand[i] for i in small)
                limited -= small
                share = (capacity[dst] - below) / len(limited)
            for i in limited:
                changed |= set_demand(i, share, True)
        if not changed:
            break
    return demand


def fits(links: Iterable[K], demand: float, reserved: Mapping[K, float],
         capacity: Mapping[K, float]) -> bool:
    """Whether every link has room for `demand` on top of what is reserved."""
    return all(reserved.get(link, 0.0) + demand <= capacity[link] + EPS for link in links)


def first_fit(demand: float, candidates: Sequence[Iterable[K]],
              reserved: Mapping[K, float],
              capacity: Mapping[K, float]) -> int | None:
    """Index of the first candidate path that fits `demand`, or None."""
    for i, links in enumerate(candidates):
        if fits(links, demand, reserved, capacity):
            return i
    return None


def reserve(links: Iterable[K], demand: float, reserved: dict[K, float]) -> None:
    """Add `demand` to every link's reservation."""
    for link in links:
        reserved[link] = reserved.get(link, 0.0) + demand
