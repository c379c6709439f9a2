"""Recursive halving-doubling all-reduce (Rabenseifner), a second all-reduce traffic shape.

Unlike the ring (2(n-1) steps, always to the same neighbour), it takes 2*log2(n) steps and at
each step every rank exchanges with a different partner at distance d = r XOR partner:

    reduce-scatter (recursive halving), d = n/2, n/4, ..., 1:   send half of what you hold
    all-gather     (recursive doubling), d = 1, 2, ..., n/2:    send everything you hold

    n = 8, reduce-scatter: step 0 pairs (0,4)(1,5)(2,6)(3,7) exchange S/2 each,
                           step 1 pairs (0,2)(1,3)(4,6)(5,7) S/4, step 2 (0,1)(2,3)... S/8

The data a rank holds is always a contiguous range of the n chunks (traffic.collectives.
chunk_sizes), so byte counts are exact: rank r sends S - chunk_r while halving and, while
doubling, each range it holds before a step (chunk r, then its 2, 4, ..., n/2 aligned chunks),
i.e. 2(n-1)/n * S in all when n divides S, the same volume as the ring, in fewer, larger
messages to partners at several distances (more distinct pairs for ECMP to hash).
Power-of-two groups only.
"""

from __future__ import annotations

from typing import Sequence

from topologies.errors import SpecError

from traffic.collectives import check_group, chunk_sizes
from traffic.plan import Collective, Transfer


def distances(n: int) -> list[int]:
    """Partner distances of the 2*log2(n) steps: n/2 ... 1 (halving), then 1 ... n/2."""
    halving = [n >> (k + 1) for k in range(n.bit_length() - 1)]
    return halving + halving[::-1]


def halving_doubling_allreduce(hosts: Sequence[str], size_bytes: int, group: str,
                               start_s: float = 0.0, first_id: int = 0,
                               workload: str = 'allreduce', gap_s: float = 0.0
                               ) -> tuple[list[Transfer], Collective]:
    """All-reduce of S = `size_bytes` per rank; transfer id = first_id + step*n + rank.

    At step k rank r sends to r XOR d_k, after receiving the step k-1 transfer of its previous
    partner r XOR d_(k-1) (a local dependency). `chunk` is the first chunk index of the range
    sent. Rank r ends the reduce-scatter holding the reduced chunk r.
    """
    hosts = check_group(hosts, size_bytes)
    n = len(hosts)
    if n & (n - 1):
        raise SpecError('hosts', f'halving-doubling needs a power-of-two group (2, 4, 8, ...), '
                                 f'got {n} hosts: use algorithm "ring"')
    chunks = chunk_sizes(size_bytes, n)
    offsets = [sum(chunks[:i]) for i in range(n + 1)]
    held = [(0, n)] * n                    # chunk range [lo, hi) each rank holds
    dists = distances(n)
    half = len(dists) // 2
    transfers: list[Transfer] = []
    for k, d in enumerate(dists):
        nxt = list(held)
        for r in range(n):
            lo, hi = held[r]
            if k < half:                   # halving: keep my half, send the partner's
                mid = (lo + hi) // 2
                keep, send = ((lo, mid), (mid, hi)) if r & d == 0 else ((mid, hi), (lo, mid))
                nxt[r] = keep
            else:                          # doubling: send all I hold, merge the partner's
                send = (lo, hi)
                plo, phi = held[r ^ d]
                nxt[r] = (min(lo, plo), max(hi, phi))
            after = () if k == 0 else (first_id + (k - 1) * n + (r ^ dists[k - 1]),)
            transfers.append(Transfer(
                id=first_id + k * n + r, src=hosts[r], dst=hosts[r ^ d],
                size_bytes=offsets[send[1]] - offsets[send[0]], start_s=start_s, after=after,
                gap_s=gap_s if k == 0 else 0.0, workload=workload, group=group, step=k,
                chunk=send[0]))
        held = nxt
    return transfers, Collective(id=group, kind='allreduce', algorithm='halving-doubling',
                                 hosts=hosts, size_bytes=size_bytes)
