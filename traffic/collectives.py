"""Collective schedules as transfer DAGs (nccl-tests conventions, docs/metrics.md).

Ring all-reduce = reduce-scatter then all-gather, each n-1 steps; at every step each rank sends
one chunk of ~S/n bytes to its ring successor once it has received the previous step's chunk
from its predecessor. Chunks sum exactly to S, so per-host and total byte counts are exact.
Ring reduce-scatter and ring all-gather are the two halves on their own (n-1 steps each; S is
the total array size, as nccl-tests counts it for them). `split_channels` spreads every
transfer of a schedule over c parallel TCP connections (NCCL's several rings/QPs).
Other shapes: traffic.halving_doubling (all-reduce), traffic.alltoall; traffic.jobs picks one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from topologies.errors import SpecError

from traffic.plan import Collective, Transfer

Builder = Callable[[str, int], tuple[list[Transfer], Collective]]
ChunkOf = Callable[[int, int, int], int]   # (step, rank, n) -> chunk index sent


def chunk_sizes(size_bytes: int, n: int) -> list[int]:
    """S split into n chunks summing exactly to S; the remainder goes to the first chunks."""
    base, rem = divmod(size_bytes, n)
    return [base + (1 if c < rem else 0) for c in range(n)]


def check_group(hosts: Sequence[str], size_bytes: int, min_hosts: int = 2) -> tuple[str, ...]:
    """The group as a tuple; SpecError('hosts'|'size_bytes') unless it has >= min_hosts distinct
    non-empty names and S splits into one non-empty chunk per rank."""
    hosts = tuple(hosts)
    if len(hosts) < min_hosts:
        raise SpecError('hosts', f'a collective needs at least {min_hosts} hosts, '
                                 f'got {len(hosts)}')
    seen: set[str] = set()
    for h in hosts:
        if not isinstance(h, str) or not h:
            raise SpecError('hosts', f'host names must be non-empty strings, got {h!r}')
        if h in seen:
            raise SpecError('hosts', f'duplicate host {h!r}')
        seen.add(h)
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int):
        raise SpecError('size_bytes', f'must be an integer, got {size_bytes!r}')
    if size_bytes < len(hosts):
        raise SpecError('size_bytes', f'{size_bytes} bytes cannot be split into '
                        f'{len(hosts)} non-empty chunks')
    return hosts



def _ring(hosts: Sequence[str], size_bytes: int, group: str, kind: str, steps: int,
          chunk_of: ChunkOf, start_s: float, first_id: int, workload: str, gap_s: float
          ) -> tuple[list[Transfer], Collective]:
    """`steps` ring steps; transfer id = first_id + step*n + rank; at step k rank r sends chunk
    chunk_of(k, r, n) to hosts[r+1] after receiving its predecessor's step k-1 transfer."""
    hosts = check_group(hosts, size_bytes)
    n = len(hosts)
    chunks = chunk_sizes(size_bytes, n)
    transfers: list[Transfer] = []
    for k in range(steps):
        for r in range(n):
            c = chunk_of(k, r, n)
            after = () if k == 0 else (first_id + (k - 1) * n + (r - 1) % n,)
            transfers.append(Transfer(
                id=first_id + k * n + r, src=hosts[r], dst=hosts[(r + 1) % n],
                size_bytes=chunks[c], start_s=start_s, after=after,
                gap_s=gap_s if k == 0 else 0.0, workload=workload, group=group, step=k,
                chunk=c))
    return transfers, Collective(id=group, kind=kind, algorithm='ring', hosts=hosts,
                                 size_bytes=size_bytes)


def ring_allreduce(hosts: Sequence[str], size_bytes: int, group: str, start_s: float = 0.0,
                   first_id: int = 0, workload: str = 'allreduce', gap_s: float = 0.0
                   ) -> tuple[list[Transfer], Collective]:
    """Ring all-reduce of S = `size_bytes` per rank over `hosts` (ring order as given).

    2(n-1) steps; transfer id = first_id + step*n + rank. At step k rank r sends to
    hosts[(r+1) % n] chunk (r-k) mod n (reduce-scatter, k < n-1) or (r+1-k') mod n with
    k' = k-(n-1) (all-gather), after receiving its predecessor's step k-1 transfer. Step 0
    waits for nothing but t0 + start_s (+ gap_s, the compute time before the collective).
    Each rank sends 2(n-1)/n * S.
    """
    def chunk_of(k: int, r: int, n: int) -> int:
        return (r - k) % n if k < n - 1 else (r + 1 - (k - (n - 1))) % n
    n = len(tuple(hosts))
    return _ring(hosts, size_bytes, group, 'allreduce', 2 * (n - 1), chunk_of, start_s,
                 first_id, workload, gap_s)


def ring_reducescatter(hosts: Sequence[str], size_bytes: int, group: str, start_s: float = 0.0,
                       first_id: int = 0, workload: str = 'reducescatter', gap_s: float = 0.0
                       ) -> tuple[list[Transfer], Collective]:
    """Ring reduce-scatter of a S-byte array (S = each rank's input, nccl-tests): n-1 steps,
    at step k rank r sends chunk (r-k-1) mod n, so rank r ends with the reduced chunk r.
    Each rank sends S - chunk_r = (n-1)/n * S."""
    n = len(tuple(hosts))
    return _ring(hosts, size_bytes, group, 'reducescatter', n - 1,
                 lambda k, r, n: (r - k - 1) % n, start_s, first_id, workload, gap_s)


def ring_allgather(hosts: Sequence[str], size_bytes: int, group: str, start_s: float = 0.0,
                   first_id: int = 0, workload: str = 'allgather', gap_s: float = 0.0
                   ) -> tuple[list[Transfer], Collective]:
    """Ring all-gather of a S-byte result (S = total output, nccl-tests; rank r contributes
    chunk r): n-1 steps, at step k rank r forwards chunk (r-k) mod n. Each rank sends
    S - chunk_(r+1) = (n-1)/n * S."""
    n = len(tuple(hosts))
    return _ring(hosts, size_bytes, group, 'allgather', n - 1, lambda k, r, n: (r - k) % n,
                 start_s, first_id, workload, gap_s)


def split_channels(transfers: Sequence[Transfer], channels: int, first_id: int = 0
                   ) -> list[Transfer]:
    """Every transfer becomes `channels` parallel transfers (own TCP connections, own source
    ports, hence own ECMP hashes) of chunk_sizes(size, channels) bytes with the same
    dependencies; a transfer that waited for one now waits for all its parts. Ids are
    renumbered first_id + i*channels + part, in the given order; `chunk`/`step` are kept and
    `channel` is the part (so traffic.connections keys one connection per peer and channel)."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise SpecError('channels', f'must be an integer >= 1, got {channels!r}')
    smallest = min((t.size_bytes for t in transfers), default=channels)
    if smallest < channels:
        raise SpecError('channels', f'{channels} channels cannot split a {smallest}-byte '
                                    f'transfer into non-empty parts: use a larger size_bytes')
    if channels == 1 and all(t.id == first_id + i for i, t in enumerate(transfers)):
        return [replace(t, channel=0) for t in transfers]
    index = {t.id: i for i, t in enumerate(transfers)}

    def parts(tid: int) -> tuple[int, ...]:
        return tuple(first_id + index[tid] * channels + p for p in range(channels))
    out: list[Transfer] = []
    for t in transfers:
        after = tuple(a for dep in t.after  # outside deps (an earlier iteration) stay
                      for a in (parts(dep) if dep in index else (dep,)))
        for p, size in enumerate(chunk_sizes(t.size_bytes, channels)):
            out.append(replace(t, id=parts(t.id)[p], size_bytes=size, after=after, channel=p))
    return out


def repeat(build: Builder, iterations: int, gap_s: float = 0.0, group: str = 'collective',
           first_id: int = 0) -> tuple[list[Transfer], list[Collective]]:
    """`iterations` rounds of (compute gap + collective), group ids '<group>/it<i>'.

    `build(group_id, first_id)` makes one instance. Every transfer that waits for nothing in
    its own instance gets `gap_s` and, from the second iteration on, waits for the receipts
    that ended the previous iteration at its sender: those no transfer of that host waited for
    (for a ring, the last step's receipt). Dependencies stay local to each host.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise SpecError('iterations', f'must be an integer >= 1, got {iterations!r}')
    if not gap_s >= 0:
        raise SpecError('gap_s', f'must be >= 0, got {gap_s!r}')
    all_t: list[Transfer] = []
    colls: list[Collective] = []
    last: dict[str, tuple[int, ...]] = {}
    next_id = first_id
    for it in range(iterations):
        ts, coll = build(f'{group}/it{it}', next_id)
        out = []
        for t in ts:
            if not t.after:
                t = replace(t, gap_s=gap_s, after=last.get(t.src, ()))
            out.append(t)
        all_t.extend(out)
        colls.append(coll)
        next_id = max([next_id - 1] + [t.id for t in ts]) + 1
        last = _final_receipts(ts)
    return all_t, colls


def ring_allreduce_iterations(hosts: Sequence[str], size_bytes: int, group: str,
                              iterations: int = 1, gap_s: float = 0.0, start_s: float = 0.0,
                              first_id: int = 0, workload: str = 'allreduce'
                              ) -> tuple[list[Transfer], list[Collective]]:
    """`iterations` back-to-back ring all-reduces, each preceded by `gap_s` of compute."""
    return repeat(lambda g, i: ring_allreduce(hosts, size_bytes, g, start_s=start_s,
                                              first_id=i, workload=workload),
                  iterations, gap_s=gap_s, group=group, first_id=first_id)


def _final_receipts(transfers: Sequence[Transfer]) -> dict[str, tuple[int, ...]]:
    """Per host: ids of transfers it receives that none of its own sends waits for."""
    waited = {(t.src, a) for t in transfers for a in t.after}
    out: dict[str, list[int]] = {}
    for t in transfers:
        if (t.dst, t.id) not in waited:
            out.setdefault(t.dst, []).append(t.id)
    return {h: tuple(sorted(ids)) for h, ids in out.items()}
