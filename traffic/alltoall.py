"""All-to-all (MoE expert parallelism's dispatch/combine): every rank sends S/n to every other.

S is each rank's send buffer (nccl-tests): chunk d of chunk_sizes(S, n) goes to rank d, the own
chunk stays, so rank r sends S - chunk_r = (n-1)/n * S when n divides S. Two schedules:

  concurrent (default, what NCCL does: all sends of a group posted at once): n(n-1)
      independent transfers that all start at t0 + start_s (+ gap), an incast at every host;
  phased (pairwise exchange, n-1 shifted phases): in phase k = 1..n-1 rank r sends to
      r+k mod n once it has received phase k-1 from r-(k-1) mod n (a local dependency), so
      every host sends to and receives from exactly one peer at a time.

    phase 1: 0->1 1->2 2->3 3->0     phase 2: 0->2 1->3 2->0 3->1     phase 3: 0->3 ...

Transfer id = first_id + (k-1)*n + r for the phase-k send of rank r in both schedules (step k-1,
chunk = destination rank), so the two differ only in their dependencies.
"""

from __future__ import annotations

from typing import Sequence

from topologies.errors import SpecError

from traffic.collectives import check_group, chunk_sizes
from traffic.plan import Collective, Transfer

SCHEDULES = ('concurrent', 'phased')


def alltoall(hosts: Sequence[str], size_bytes: int, group: str, start_s: float = 0.0,
             first_id: int = 0, workload: str = 'alltoall', gap_s: float = 0.0,
             schedule: str = 'concurrent') -> tuple[list[Transfer], Collective]:
    """All-to-all of S = `size_bytes` per rank over `hosts` with the given schedule."""
    if schedule not in SCHEDULES:
        raise SpecError('algorithm', f'{schedule!r} is not one of {", ".join(SCHEDULES)}')
    hosts = check_group(hosts, size_bytes)
    n = len(hosts)
    chunks = chunk_sizes(size_bytes, n)
    transfers: list[Transfer] = []
    for k in range(1, n):
        for r in range(n):
            d = (r + k) % n
            phased = schedule == 'phased' and k > 1
            after = (first_id + (k - 2) * n + (r - (k - 1)) % n,) if phased else ()
            transfers.append(Transfer(
                id=first_id + (k - 1) * n + r, src=hosts[r], dst=hosts[d],
                size_bytes=chunks[d], start_s=start_s, after=after,
                gap_s=0.0 if phased else gap_s, workload=workload, group=group, step=k - 1,
                chunk=d))
    return transfers, Collective(id=group, kind='alltoall', algorithm=schedule, hosts=hosts,
                                 size_bytes=size_bytes)
