"""Seeded synthetic traffic patterns users otherwise write flow by flow: random permutations,
all-to-all bursts and hot-spot traffic. Pure: host names and a seed in, (src, dst, size_bytes,
start_s) tuples out (traffic.p2p.flows turns them into transfers).

Random draws come from `random.Random(seed)` with a string seed (stable across Python runs).
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence

from topologies.errors import SpecError

Flow = tuple[str, str, int, float]


def permutation(hosts: Sequence[str], group: Mapping[str, str], seed: str) -> list[tuple[str, str]]:
    """A random permutation of `hosts` in which no host sends to a host of its own group
    (group = the host's leaf, or the host itself for "any other host"); drawn source by source,
    each destination uniform among those that still leave a valid completion (Hall's
    condition: for every group g, unassigned sources of g + free destinations of g must not
    exceed the free destinations)."""
    n = len(hosts)
    sizes = Counter(group[h] for h in hosts)
    big, k = sizes.most_common(1)[0]
    if 2 * k > n:
        raise SpecError("hosts", f"no permutation sends every host outside its group: {big!r} "
                                 f"holds {k} of the {n} hosts (at most half may share one)")
    rng = random.Random(seed)
    order = list(hosts)
    rng.shuffle(order)
    src_left, dst_left = Counter(sizes), Counter(sizes)
    free = list(hosts)
    pairs = []
    for i, s in enumerate(order):
        src_left[group[s]] -= 1
        remaining = n - i - 1
        ok = []
        for d in free:
            if group[d] == group[s]:
                continue
            dst_left[group[d]] -= 1
            if all(src_left[g] + dst_left[g] <= remaining for g in sizes):
                ok.append(d)
            dst_left[group[d]] += 1
        d = rng.choice(ok)  # never empty: Hall's condition held before this source
        dst_left[group[d]] -= 1
        free.remove(d)
        pairs.append((s, d))
    return sorted(pairs, key=lambda p: hosts.index(p[0]))


def bursts(hosts: Sequence[str], size_bytes: int, count: int, interval_s: float, start_s: float,
           fanout: int, jitter_s: float, seed: str) -> list[Flow]:
    """`count` all-to-all bursts `interval_s` apart: in each, every host sends `size_bytes` to
    every other host (or to `fanout` of them, drawn per burst); each flow starts up to
    `jitter_s` late (uniform)."""
    rng = random.Random(seed)
    out: list[Flow] = []
    for b in range(count):
        t = start_s + b * interval_s
        for s in hosts:
            others = [d for d in hosts if d != s]
            if fanout:
                others = sorted(rng.sample(others, fanout), key=hosts.index)
            for d in others:
                out.append((s, d, size_bytes, t + (rng.uniform(0, jitter_s) if jitter_s else 0.0)))
    return out


def hotspot(hosts: Sequence[str], hot: Sequence[str], hot_fraction: float, flows: int,
            size_bytes: int, start_s: float, duration_s: float, seed: str) -> list[Flow]:
    """`flows` flows of `size_bytes`; each goes to a hot host with probability `hot_fraction`
    (uniform among `hot`), else to a uniform host; its source is uniform among the others;
    starts uniform in [start_s, start_s + duration_s)."""
    rng = random.Random(seed)
    out: list[Flow] = []
    for _ in range(flows):
        d = rng.choice(hot) if rng.random() < hot_fraction else rng.choice(hosts)
        s = rng.choice([h for h in hosts if h != d])
        t = start_s + (rng.uniform(0, duration_s) if duration_s else 0.0)
        out.append((s, d, size_bytes, t))
    return sorted(out, key=lambda f: f[3])


def pick_hot(hosts: Sequence[str], count: int, seed: str) -> list[str]:
    """`count` hot hosts drawn from `hosts` (in host order)."""
    if not 1 <= count < len(hosts):
        raise SpecError("hot_hosts", f"must be in 1..{len(hosts) - 1} for {len(hosts)} hosts, got {count}")
    return sorted(random.Random(seed).sample(list(hosts), count), key=list(hosts).index)
