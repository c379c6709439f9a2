"""Plan generators of the traffic library: collectives, channels, jobs, inference, trace replay,
background flows (pure Python, no root). Byte counts are checked against each algorithm's
formula."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter

import pytest

from topologies.errors import SpecError
from traffic.scaling import Convert
from traffic import alltoall, background, inference, jobs, trace
from traffic.collectives import (chunk_sizes, ring_allgather, ring_allreduce,
                                 ring_reducescatter, split_channels)
from traffic.halving_doubling import distances, halving_doubling_allreduce
from traffic.plan import TrafficPlan, source_port

HOSTS = [f'h{i}' for i in range(1, 17)]


def _valid(ts, colls=(), hosts=HOSTS):
    TrafficPlan('t', 1, tuple(ts), tuple(colls)).validate(hosts)


def _sent(ts):
    out = Counter()
    for t in ts:
        out[t.src] += t.size_bytes
    return out


def _received(ts):
    out = Counter()
    for t in ts:
        out[t.dst] += t.size_bytes
    return out


# ---- ring reduce-scatter / all-gather ---------------------------------------------------------
@pytest.mark.parametrize('n,size', [(2, 1000), (3, 3001), (5, 12_345), (8, 8000)])
def test_ring_halves_counts_and_exact_bytes(n, size):
    hosts, chunks = HOSTS[:n], chunk_sizes(size, n)
    rs, rs_coll = ring_reducescatter(hosts, size, 'rs')
    ag, ag_coll = ring_allgather(hosts, size, 'ag')
    assert len(rs) == len(ag) == n * (n - 1)
    assert (rs_coll.kind, ag_coll.kind) == ('reducescatter', 'allgather')
    for r, h in enumerate(hosts):
        assert _sent(rs)[h] == size - chunks[r]                  # keeps its reduced chunk r
        assert _sent(ag)[h] == size - chunks[(r + 1) % n]        # never forwards its successor's
        assert _received(ag)[h] == size - chunks[r]              # gets everything but its own
    if size % n == 0:
        assert set(_sent(rs).values()) == {size * (n - 1) // n}
    _valid(rs, [rs_coll])
    _valid(ag, [ag_coll])


def test_ring_halves_chunk_flow():
    n = 5
    hosts = HOSTS[:n]
    for build in (ring_reducescatter, ring_allgather):
        ts, _ = build(hosts, 5000, 'x')
        by_id = {t.id: t for t in ts}
        for t in ts:
            if t.step:
                (dep,) = t.after
                assert by_id[dep].dst == t.src and by_id[dep].chunk == t.chunk
    rs, _ = ring_reducescatter(hosts, 5000, 'x')
    for t in rs:
        if t.step == n - 2:                                       # rank r ends with chunk r
            assert t.chunk == hosts.index(t.dst)
    ag, _ = ring_allgather(hosts, 5000, 'x')
    for r, h in enumerate(hosts):                                 # step 0: own chunk out
        assert [t.chunk for t in ag if t.src == h and t.step == 0] == [r]


# ---- halving-doubling ------------------------------------------------------------------------
@pytest.mark.parametrize('n', [2, 4, 8, 16])
def test_halving_doubling_counts_bytes_partners(n):
    hosts, size = HOSTS[:n], 1600 * n
    ts, coll = halving_doubling_allreduce(hosts, size, 'hd')
    steps = 2 * int(math.log2(n))
    assert len(ts) == n * steps and coll.algorithm == 'halving-doubling'
    for h in hosts:                                               # 2(n-1)/n * S, like the ring
        assert _sent(ts)[h] * n == 2 * (n - 1) * size == _received(ts)[h] * n
    assert distances(n) == [n >> k for k in range(1, steps // 2 + 1)] + \
        [1 << k for k in range(steps // 2)]
    by_id = {t.id: t for t in ts}
    for t in ts:
        r = hosts.index(t.src)
        assert hosts.index(t.dst) == r ^ distances(n)[t.step]
        assert t.size_bytes == size // 2 ** (t.step + 1) if t.step < steps // 2 else \
            size // 2 ** (steps - t.step)
        if t.step:
            (dep,) = t.after
            assert by_id[dep].dst == t.src and by_id[dep].step == t.step - 1
    _valid(ts, [coll])


def test_halving_doubling_remainders_are_exact():
    n, size = 8, 10_007
    chunks = chunk_sizes(size, n)
    ts, _ = halving_doubling_allreduce(HOSTS[:n], size, 'hd')
    half = int(math.log2(n))
    for r, h in enumerate(HOSTS[:n]):
        rs = sum(t.size_bytes for t in ts if t.src == h and t.step < half)
        assert rs == size - chunks[r]                                # keeps the reduced chunk r
        ag = sum(t.size_bytes for t in ts if t.src == h and t.step >= half)
        held = [sum(chunks[r // w * w:r // w * w + w]) for w in (1, 2, 4)]
        assert ag == sum(held)                  # doubling: every aligned range it holds, once
    # the last reduce-scatter receipt of rank r carries exactly chunk r
    for t in ts:
        if t.step == half - 1:
            assert t.chunk == HOSTS.index(t.dst) and t.size_bytes == chunks[t.chunk]
    assert sum(t.size_bytes for t in ts) == 2 * (n * size - size)


@pytest.mark.parametrize('hosts,size,key', [
    (HOSTS[:3], 3000, 'hosts'), (HOSTS[:6], 6000, 'hosts'), (HOSTS[:1], 100, 'hosts'),
    (HOSTS[:4], 3, 'size_bytes'),
])
def test_halving_doubling_rejections(hosts, size, key):
    with pytest.raises(SpecError) as ei:
        halving_doubling_allreduce(hosts, size, 'hd')
    assert ei.value.key == key
    if len(hosts) in (3, 6):
        assert 'power-of-two' in str(ei.value)


# ---- all-to-all ------------------------------------------------------------------------------
@pytest.mark.parametrize('schedule', ['concurrent', 'phased'])
@pytest.mark.parametrize('n,size', [(2, 100), (4, 4000), (5, 5003)])
def test_alltoall_pairs_and_bytes(schedule, n, size):
    hosts, chunks = HOSTS[:n], chunk_sizes(size, n)
    ts, coll = alltoall.alltoall(hosts, size, 'a2a', schedule=schedule)
    assert len(ts) == n * (n - 1) and coll.kind == 'alltoall' and coll.algorithm == schedule
    assert Counter((t.src, t.dst) for t in ts) == {(a, b): 1 for a in hosts for b in hosts
                                                   if a != b}
    for r, h in enumerate(hosts):
        assert _sent(ts)[h] == size - chunks[r]
        assert _received(ts)[h] == (n - 1) * chunks[r]
    by_id = {t.id: t for t in ts}
    for t in ts:
        assert t.size_bytes == chunks[hosts.index(t.dst)]
        if schedule == 'concurrent' or t.step == 0:
            assert t.after == ()
        else:
            (dep,) = t.after
            assert by_id[dep].dst == t.src and by_id[dep].step == t.step - 1
    if schedule == 'phased':          # one peer at a time: every phase is a permutation
        for k in range(n - 1):
            phase = [t for t in ts if t.step == k]
            assert len({t.src for t in phase}) == len({t.dst for t in phase}) == n
    _valid(ts, [coll])


def test_alltoall_rejections():
    with pytest.raises(SpecError) as ei:
        alltoall.alltoall(HOSTS[:1], 100, 'a')
    assert ei.value.key == 'hosts'
    with pytest.raises(SpecError) as ei:
        alltoall.alltoall(HOSTS[:4], 100, 'a', schedule='ring')
    assert ei.value.key == 'algorithm'


# ---- channels and jobs -----------------------------------------------------------------------
def test_split_channels_parts_deps_and_ports():
    ts, _ = ring_allreduce(HOSTS[:4], 4003, 'ar')
    split = split_channels(ts, 3, first_id=10)
    assert len(split) == 3 * len(ts)
    assert sorted(t.id for t in split) == list(range(10, 10 + 3 * len(ts)))
    assert sum(t.size_bytes for t in split) == sum(t.size_bytes for t in ts)
    for i, t in enumerate(ts):
        parts = split[3 * i:3 * i + 3]
        assert [p.size_bytes for p in parts] == chunk_sizes(t.size_bytes, 3)
        assert {(p.src, p.dst, p.step, p.chunk) for p in parts} == {(t.src, t.dst, t.step,
                                                                      t.chunk)}
        want = {10 + 3 * ts.index(next(d for d in ts if d.id == a)) + k
                for a in t.after for k in range(3)}
        assert all(set(p.after) == want for p in parts)
    assert len({source_port(1, t.id) for t in split}) > 0.9 * len(split)   # ECMP entropy
    _valid(split)
    with pytest.raises(SpecError) as ei:
        split_channels(ts, 2000)
    assert ei.value.key == 'channels'


@pytest.mark.parametrize('kind,algorithm,per_iter', [
    ('allreduce', 'ring', lambda n: 2 * n * (n - 1)),
    ('allreduce', 'halving-doubling', lambda n: 2 * n * int(math.log2(n))),
    ('allgather', 'ring', lambda n: n * (n - 1)),
    ('reducescatter', 'ring', lambda n: n * (n - 1)),
    ('alltoall', 'concurrent', lambda n: n * (n - 1)),
    ('alltoall', 'phased', lambda n: n * (n - 1)),
])
def test_training_job_iterations_channels(kind, algorithm, per_iter):
    n, size, c, iters = 4, 8000, 2, 3
    ts, colls = jobs.training_job(kind, algorithm, HOSTS[:n], size, 'job', iterations=iters,
                                  gap_s=0.25, start_s=1.0, channels=c)
    assert len(ts) == iters * c * per_iter(n)
    assert [x.id for x in colls] == ['job/it0', 'job/it1', 'job/it2']
    assert all(x.kind == kind and x.algorithm == algorithm and x.channels == c for x in colls)
    assert {t.workload for t in ts} == {'job'} and all(t.start_s == 1.0 for t in ts)
    factor = 2 * (n - 1) / n if kind == 'allreduce' else (n - 1) / n
    assert set(_sent(ts).values()) == {iters * factor * size}
    by_id = {t.id: t for t in ts}
    for t in ts:
        it = int(t.group.rsplit('it', 1)[1])
        deps = [by_id[a] for a in t.after]
        if t.gap_s:               # the iteration's first sends: after the previous iteration
            assert t.gap_s == 0.25
            assert all(d.group == f'job/it{it - 1}' for d in deps) and (deps or it == 0)
    _valid(ts, colls)
    assert jobs.training_job(kind, algorithm, HOSTS[:n], size, 'job', iterations=iters,
                             channels=c) == jobs.training_job(kind, algorithm, HOSTS[:n], size,
                                                              'job', iterations=iters,
                                                              channels=c)


def test_job_rejections():
    for args, key in [(('allreduce', 'tree'), 'algorithm'), (('gossip', 'ring'), 'kind')]:
        with pytest.raises(SpecError) as ei:
            jobs.collective(*args, HOSTS[:4], 4000, 'g')
        assert ei.value.key == key
    with pytest.raises(SpecError) as ei:
        jobs.training_job('allgather', 'ring', HOSTS[:1], 4000, 'g')
    assert ei.value.key == 'hosts'                                # a ring of one host
    with pytest.raises(SpecError) as ei:
        jobs.training_job('allreduce', 'ring', HOSTS[:4], 4000, 'g', iterations=0)
    assert ei.value.key == 'iterations'


# ---- inference -------------------------------------------------------------------------------
def test_model_profiles_follow_the_kv_formula():
    assert inference.PROFILES['70b'].kv_bytes_per_token == 327_680        # 2 x 80 layers x 8 KV heads x 128 x 2 B
    assert inference.PROFILES['8b'].kv_bytes_per_token == 131_072
    for p in inference.PROFILES.values():
        assert p.kv_bytes_per_token == 2 * p.layers * p.kv_heads * p.head_dim * p.dtype_bytes
    with pytest.raises(SpecError) as ei:
        inference.profile('7t')
    assert ei.value.key == 'model'


def test_arrival_processes_hit_rate_and_cv():
    rng = random.Random(5)
    for process, cv in (('poisson', 1.0), ('gamma', 3.0), ('gamma', 0.5)):
        times = inference.arrival_times(20_000, 4.0, rng, process, cv)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert times[0] == 0.0 and all(g >= 0 for g in gaps)
        assert statistics.mean(gaps) == pytest.approx(0.25, rel=0.05)
        assert statistics.pstdev(gaps) / statistics.mean(gaps) == pytest.approx(cv, rel=0.1)
    for kw, key in [({'rate_per_s': 0}, 'rate_per_s'), ({'cv': -1.0}, 'cv'),
                    ({'process': 'uniform'}, 'arrivals')]:
        args = {'n': 3, 'rate_per_s': 1.0, 'rng': rng, **kw}
        with pytest.raises(SpecError) as ei:
            inference.arrival_times(**args)
        assert ei.value.key == key


def test_synthetic_requests_deterministic_by_seed():
    a = inference.synthetic_requests(500, 2.0, seed='1/llm', prompt_median=1500,
                                     output_median=13, max_output=40)
    assert a == inference.synthetic_requests(500, 2.0, seed='1/llm', prompt_median=1500,
                                             output_median=13, max_output=40)
    assert a != inference.synthetic_requests(500, 2.0, seed='2/llm', prompt_median=1500,
                                             output_median=13, max_output=40)
    assert statistics.median(r.prompt_tokens for r in a) == pytest.approx(1500, rel=0.1)
    assert statistics.median(r.output_tokens for r in a) == pytest.approx(13, rel=0.15)
    assert max(r.output_tokens for r in a) <= 40 and min(r.output_tokens for r in a) >= 1
    fixed = inference.synthetic_requests(5, 1.0, seed=1, prompt_sigma=0, output_sigma=0)
    assert {(r.prompt_tokens, r.output_tokens) for r in fixed} == {(1020, 129)}


def test_request_transfers_shape_sizes_and_deps():
    reqs = [inference.Request(0, 0.0, 1000, 3), inference.Request(1, 0.5, 10, 1),
            inference.Request(2, 2.0, 7, 2)]
    model = inference.PROFILES['70b']
    ts = inference.request_transfers(reqs, ['c1'], ['p1', 'p2'], ['d1', 'd2'], model,
                                     prompt_bytes_per_token=4, token_message_bytes=50,
                                     prefill_s_per_token=0.001, decode_s_per_token=0.02,
                                     start_s=1.0, workload='llm', first_id=7)
    assert len(ts) == sum(2 + r.output_tokens for r in reqs)
    assert [t.id for t in ts] == list(range(7, 7 + len(ts)))
    by_group = {}
    for t in ts:
        by_group.setdefault(t.group, []).append(t)
    assert list(by_group) == ['llm/r0', 'llm/r1', 'llm/r2']
    for req, (_gid, parts) in zip(reqs, by_group.items()):
        prompt, kv, *tokens = parts
        p, d = ('p1', 'd1') if req.index % 2 == 0 else ('p2', 'd2')
        assert (prompt.src, prompt.dst, prompt.step) == ('c1', p, inference.STEP_PROMPT)
        assert prompt.size_bytes == 4 * req.prompt_tokens and prompt.after == ()
        assert (kv.src, kv.dst, kv.step, kv.after) == (p, d, inference.STEP_KV, (prompt.id,))
        assert kv.size_bytes == req.prompt_tokens * 327_680
        assert kv.gap_s == pytest.approx(0.001 * req.prompt_tokens)
        assert len(tokens) == req.output_tokens
        for j, t in enumerate(tokens):
            assert (t.src, t.dst, t.size_bytes, t.after) == (d, 'c1', 50, (kv.id,))
            assert t.step == inference.STEP_TOKEN0 + j
            assert t.gap_s == pytest.approx(0.02 * (j + 1))
        assert {t.start_s for t in parts} == {1.0 + req.arrival_s}
    _valid(ts, hosts=['c1', 'p1', 'p2', 'd1', 'd2'])
    scaled = inference.request_transfers(reqs, ['c1'], ['p1'], ['d1'], model,
                                         convert=Convert(1e-3, 10.0))
    kv0 = next(t for t in scaled if t.step == inference.STEP_KV)
    assert kv0.size_bytes == round(1000 * 327_680 * 1e-3)
    assert next(t for t in scaled if t.group == 'inference/r1').start_s == pytest.approx(5.0)
    assert next(t for t in scaled if t.step == inference.STEP_TOKEN0).size_bytes == 1  # clamped


def test_request_transfers_rejections():
    reqs = [inference.Request(0, 0.0, 10, 1)]
    model = inference.PROFILES['8b']
    for roles, key in [((['a'], ['b'], ['a']), 'decode'), (([], ['b'], ['c']), 'clients'),
                       ((['a'], ['b', 'a'], ['c']), 'prefill')]:
        with pytest.raises(SpecError) as ei:
            inference.request_transfers(reqs, *roles, model)
        assert ei.value.key == key
    with pytest.raises(SpecError) as ei:
        inference.request_transfers(reqs, ['a'], ['b'], ['c'], model, decode_s_per_token=-1)
    assert ei.value.key == 'decode_s_per_token'
    many = [inference.Request(i, 0.0, 10, 100_000) for i in range(2)]
    with pytest.raises(SpecError) as ei:
        inference.request_transfers(many, ['a'], ['b'], ['c'], model)
    assert ei.value.key == 'requests'


# ---- trace replay ----------------------------------------------------------------------------
def _write_trace(path, rows, header='TIMESTAMP,ContextTokens,GeneratedTokens'):
    path.write_text(header + '\n' + ''.join(f'{a},{b},{c}\n' for a, b, c in rows))
    return path


def test_azure_trace_read_and_replay(tmp_path):
    p = _write_trace(tmp_path / 't.csv', [
        ('2023-11-16 18:15:47.1805900', 900, 10),       # out of order on purpose
        ('2023-11-16 18:15:46.6805900', 1500, 13),
        ('2023-11-16 18:15:49.6805900', 20, 0),
    ])
    rows = trace.read_azure_trace(p)
    assert [(r.context_tokens, r.generated_tokens) for r in rows] == [(1500, 13), (900, 10),
                                                                      (20, 0)]
    got = trace.replay(rows, time_scale=2.0)
    assert [round(t, 6) for t, _, _ in got] == [0.0, 1.0, 6.0]
    reqs = inference.trace_requests(got, max_prompt=1000, max_output=12)
    assert [(r.prompt_tokens, r.output_tokens) for r in reqs] == [(1000, 12), (900, 10),
                                                                  (20, 1)]
    assert [r.arrival_s for r in reqs] == [t for t, _, _ in got]
    numeric = _write_trace(tmp_path / 'n.csv', [(10.5, 5, 5), (12, 6, 6)])
    assert [t for t, _, _ in trace.replay(trace.read_azure_trace(numeric))] == [0.0, 1.5]


def test_trace_rate_factor_thins_deterministically(tmp_path):
    p = _write_trace(tmp_path / 't.csv', [(i * 0.1, 100, 5) for i in range(2000)])
    rows = trace.read_azure_trace(p)
    a = trace.replay(rows, rate_factor=0.25, seed='s')
    assert a == trace.replay(rows, rate_factor=0.25, seed='s')
    assert a != trace.replay(rows, rate_factor=0.25, seed='t')
    assert len(a) == pytest.approx(500, rel=0.15)
    assert len(trace.replay(rows, max_requests=7)) == 7


@pytest.mark.parametrize('rows,header,match', [
    ([('x', 5, 5)], None, 'line 2'),
    ([(1, 0, 5)], None, 'ContextTokens'),
    ([(1, 5, 5)], 'TIME,ContextTokens,GeneratedTokens', 'TIMESTAMP'),
    ([], None, 'no requests'),
])
def test_trace_rejections(tmp_path, rows, header, match):
    p = _write_trace(tmp_path / 'bad.csv', rows,
                     *([header] if header else []))
    with pytest.raises(SpecError, match=match) as ei:
        trace.read_azure_trace(p)
    assert ei.value.key == 'trace'
    with pytest.raises(SpecError) as ei:
        trace.read_azure_trace(tmp_path / 'missing.csv')
    assert ei.value.key == 'trace'
    with pytest.raises(SpecError) as ei:
        trace.replay([trace.TraceRow(0, 1, 1)], rate_factor=1.5)
    assert ei.value.key == 'rate_factor'


# ---- background flows ------------------------------------------------------------------------
def test_shipped_cdfs_are_the_published_points():
    ws, dm = background.load_cdf('websearch'), background.load_cdf('datamining')
    assert ws.points == ((10_000, 0.15), (80_000, 0.53), (1_000_000, 0.70),
                         (10_000_000, 0.97), (30_000_000, 1.0))
    assert dm.points[0] == (1100, 0.5) and dm.points[-1] == (1_000_000_000, 1.0)
    assert ws.sample(0.0) == ws.sample(0.15) == 10_000               # the first point is an atom
    assert ws.sample(0.34) == 45_000                                  # linear in between
    assert ws.sample(0.9999999) <= 30_000_000
    mean = 10e3 * .15 + .38 * 45e3 + .17 * 540e3 + .27 * 5.5e6 + .03 * 20e6
    assert ws.mean_bytes() == pytest.approx(mean)
    rng = random.Random(3)
    draws = [ws.sample(rng.random()) for _ in range(50_000)]
    assert statistics.mean(draws) == pytest.approx(mean, rel=0.05)


def test_cdf_file_rejections(tmp_path):
    for text, match in [('10,0.5\n5,1.0\n', 'increase'), ('10,0.5\n20,0.9\n', 'last'),
                        ('10;1\n', 'expected'), ('a,b\n', 'whole number'),
                        ('# none\n', 'no points')]:
        p = tmp_path / 'c.csv'
        p.write_text(text)
        with pytest.raises(SpecError, match=match) as ei:
            background.load_cdf(str(p))
        assert ei.value.key == 'cdf'
    with pytest.raises(SpecError, match='neither'):
        background.load_cdf('no-such-cdf')


def test_poisson_flows_offer_the_target_load():
    cdf = background.load_cdf('websearch')
    hosts, rate_mbps, load, duration = HOSTS[:8], 20.0, 0.4, 600.0
    fl = background.poisson_flows(hosts, cdf, load, rate_mbps, duration, seed=9, start_s=2.0,
                                  size_factor=0.2)
    assert fl == background.poisson_flows(hosts, cdf, load, rate_mbps, duration, seed=9,
                                          start_s=2.0, size_factor=0.2)
    assert fl != background.poisson_flows(hosts, cdf, load, rate_mbps, duration, seed=10,
                                          start_s=2.0, size_factor=0.2)
    assert all(2.0 <= t.start_s < 2.0 + duration and t.src != t.dst for t in fl)
    assert [t.start_s for t in fl] == sorted(t.start_s for t in fl)
    expect_rate = background.arrival_rate_per_s(cdf, load, 8, rate_mbps, 0.2)
    assert expect_rate == pytest.approx(load * 8 * 20e6 / (8 * cdf.mean_bytes() * 0.2))
    assert len(fl) / duration == pytest.approx(expect_rate, rel=0.05)
    offered = sum(t.size_bytes for t in fl) * 8 / duration / (8 * rate_mbps * 1e6)
    assert offered == pytest.approx(load, rel=0.15)
    srcs = Counter(t.src for t in fl)
    assert set(srcs) == set(hosts) and min(srcs.values()) > 0.8 * len(fl) / 8


def test_poisson_flows_rejections():
    cdf = background.load_cdf('websearch')
    for kw, key in [({'load': 0.0}, 'load'), ({'load': 1.5}, 'load'),
                    ({'duration_s': 0.0}, 'duration_s'), ({'hosts': ['h1']}, 'hosts'),
                    ({'duration_s': 1e7}, 'duration_s'), ({'duration_s': 1e-6}, 'duration_s')]:
        args = {'hosts': HOSTS[:4], 'cdf': cdf, 'load': 0.5, 'host_rate_mbps': 20.0,
                'duration_s': 10.0, 'seed': 1, **kw}
        with pytest.raises(SpecError) as ei:
            background.poisson_flows(**args)
        assert ei.value.key == key
