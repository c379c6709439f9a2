"""Training jobs: iterations of (compute gap + one collective), on a host group of their own.

A job is one workload: `iterations` rounds, each a compute gap of `gap_s` on every rank and then
the collective; the next round starts on a rank once its part of the previous one has arrived
(traffic.collectives.repeat). Several jobs on disjoint host groups make a multi-tenant cluster;
fabric.analysis.metrics.job_results reports each job's JCT separately, so a noisy neighbour shows.

    ALGORITHMS[(kind, algorithm)] -> builder(hosts, S, group, start_s=, first_id=, workload=)
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

from topologies.errors import SpecError

from traffic import alltoall, collectives, halving_doubling
from traffic.plan import Collective, Transfer

Build = Callable[..., tuple[list[Transfer], Collective]]

ALGORITHMS: dict[tuple[str, str], Build] = {
    ('allreduce', 'ring'): collectives.ring_allreduce,
    ('allreduce', 'halving-doubling'): halving_doubling.halving_doubling_allreduce,
    ('allgather', 'ring'): collectives.ring_allgather,
    ('reducescatter', 'ring'): collectives.ring_reducescatter,
    ('alltoall', 'concurrent'): partial(alltoall.alltoall, schedule='concurrent'),
    ('alltoall', 'phased'): partial(alltoall.alltoall, schedule='phased'),
}


def algorithms(kind: str) -> list[str]:
    """The algorithms known for a collective kind."""
    return [a for k, a in ALGORITHMS if k == kind]


def collective(kind: str, algorithm: str, hosts: Sequence[str], size_bytes: int, group: str,
               channels: int = 1, start_s: float = 0.0, first_id: int = 0,
               workload: str = '') -> tuple[list[Transfer], Collective]:
    """One collective instance, every transfer split over `channels` connections."""
    build = ALGORITHMS.get((kind, algorithm))
    if build is None:
        known = algorithms(kind)
        if not known:
            raise SpecError('kind', f'{kind!r} is not a collective '
                                    f'({", ".join(sorted({k for k, _ in ALGORITHMS}))})')
        raise SpecError('algorithm', f'{algorithm!r} is not an algorithm for {kind} '
                                     f'({", ".join(known)})')
    ts, coll = build(hosts, size_bytes, group, start_s=start_s, first_id=0,
                     workload=workload or kind)
    ts = collectives.split_channels(ts, channels, first_id)
    return ts, Collective(coll.id, coll.kind, coll.algorithm, coll.hosts, coll.size_bytes,
                          channels=channels)


def training_job(kind: str, algorithm: str, hosts: Sequence[str], size_bytes: int, name: str,
                 iterations: int = 1, gap_s: float = 0.0, start_s: float = 0.0,
                 channels: int = 1, first_id: int = 0
                 ) -> tuple[list[Transfer], list[Collective]]:
    """`iterations` x (compute `gap_s` + collective) as workload `name`; collective ids
    '<name>/it<i>'. The first compute gap starts at t0 + start_s."""
    return collectives.repeat(
        lambda g, i: collective(kind, algorithm, hosts, size_bytes, g, channels=channels,
                                start_s=start_s, first_id=i, workload=name),
        iterations, gap_s=gap_s, group=name, first_id=first_id)
