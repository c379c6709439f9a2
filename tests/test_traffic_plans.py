"""Traffic plans, ring all-reduce schedule and p2p flows (pure Python, no root)."""

from __future__ import annotations

from collections import Counter

import pytest

from topologies.errors import SpecError
from traffic.collectives import (chunk_sizes, repeat, ring_allreduce,
                                 ring_allreduce_iterations)
from traffic.p2p import flows
from traffic.plan import Collective, TrafficPlan, Transfer, merge, source_port

HOSTS = [f'h{i}' for i in range(1, 9)]


def _plan(transfers, collectives=(), name='p', seed=1):
    return TrafficPlan(name=name, seed=seed, transfers=tuple(transfers),
                       collectives=tuple(collectives))


@pytest.mark.parametrize('n', [2, 3, 4, 8])
def test_ring_counts_and_bytes_divisible(n):
    hosts = HOSTS[:n]
    size = 840 * n          # divisible by n
    ts, coll = ring_allreduce(hosts, size, 'ar0')
    assert len(ts) == 2 * n * (n - 1)
    assert coll == Collective('ar0', 'allreduce', 'ring', tuple(hosts), size)
    sent = Counter()
    recv = Counter()
    for t in ts:
        sent[t.src] += t.size_bytes
        recv[t.dst] += t.size_bytes
    for h in hosts:
        assert sent[h] * n == 2 * (n - 1) * size      # 2(n-1)/n * S exactly
        assert recv[h] * n == 2 * (n - 1) * size
    assert sum(sent.values()) == 2 * (n - 1) * size
    assert {t.group for t in ts} == {'ar0'}
    _plan(ts, [coll]).validate(hosts)


@pytest.mark.parametrize('n,size', [(3, 1000), (4, 4_000_003), (5, 7), (8, 12345)])
def test_ring_remainder_exact_totals(n, size):
    ts, _ = ring_allreduce(HOSTS[:n], size, 'ar')
    assert sum(chunk_sizes(size, n)) == size
    assert max(chunk_sizes(size, n)) - min(chunk_sizes(size, n)) <= 1
    assert sum(t.size_bytes for t in ts) == 2 * (n - 1) * size
    # every chunk is sent n-1 times in each phase
    for phase in (range(n - 1), range(n - 1, 2 * (n - 1))):
        per_chunk = Counter(t.chunk for t in ts if t.step in phase)
        assert per_chunk == dict.fromkeys(range(n), n - 1)
    # each host sends everything except chunks (r+1) and (r+2): exact per-host totals
    chunks = chunk_sizes(size, n)
    for r, h in enumerate(HOSTS[:n]):
        mine = sum(t.size_bytes for t in ts if t.src == h)
        assert mine == 2 * size - chunks[(r + 1) % n] - chunks[(r + 2) % n]


def test_ring_schedule_and_dependencies():
    n = 4
    hosts = HOSTS[:n]
    ts, _ = ring_allreduce(hosts, 4000, 'ar', start_s=0.5, first_id=100)
    by_id = {t.id: t for t in ts}
    assert sorted(by_id) == list(range(100, 100 + 2 * n * (n - 1)))
    for t in ts:
        r = hosts.index(t.src)
        k = t.step
        assert t.id == 100 + k * n + r
        assert t.dst == hosts[(r + 1) % n]
        assert t.start_s == 0.5
        expect_chunk = (r - k) % n if k < n - 1 else (r + 1 - (k - n + 1)) % n
        assert t.chunk == expect_chunk
        if k == 0:
            assert t.after == ()
        else:
            (dep,) = t.after
            d = by_id[dep]
            assert d.dst == t.src and d.step == k - 1
            assert d.src == hosts[(r - 1) % n]
            # the chunk received at step k-1 is the one forwarded at step k (also across
            # the reduce-scatter -> all-gather boundary: the fully reduced chunk)
            assert d.chunk == t.chunk
    # after reduce-scatter rank r owns the fully reduced chunk (r+1) mod n
    last_rs = [t for t in ts if t.step == n - 2]
    for t in last_rs:
        assert t.chunk == (hosts.index(t.dst) + 1) % n


def test_ring_deterministic():
    a = ring_allreduce(HOSTS[:5], 10_007, 'g', first_id=3)
    b = ring_allreduce(HOSTS[:5], 10_007, 'g', first_id=3)
    assert a == b
    assert source_port(7, 12) == source_port(7, 12)
    ports = {source_port(7, i) for i in range(200)}
    assert all(20000 <= p <= 59999 for p in ports)
    assert len(ports) > 180                        # well spread
    assert [source_port(8, i) for i in range(20)] != [source_port(7, i) for i in range(20)]


@pytest.mark.parametrize('hosts,size,key', [
    (['h1'], 100, 'hosts'),
    ([], 100, 'hosts'),
    (['h1', 'h2', 'h1'], 100, 'hosts'),
    (['h1', 'h2', 'h3'], 2, 'size_bytes'),
])
def test_ring_rejections(hosts, size, key):
    with pytest.raises(SpecError) as ei:
        ring_allreduce(hosts, size, 'ar')
    assert ei.value.key == key


def test_repeat_iterations_chain_locally():
    n = 4
    ts, colls = ring_allreduce_iterations(HOSTS[:n], 4000, 'allreduce0', iterations=3,
                                          gap_s=0.01, first_id=10)
    per = 2 * n * (n - 1)
    assert len(ts) == 3 * per
    assert [c.id for c in colls] == ['allreduce0/it0', 'allreduce0/it1', 'allreduce0/it2']
    assert sorted(t.id for t in ts) == list(range(10, 10 + 3 * per))
    by_id = {t.id: t for t in ts}
    for t in ts:
        it = int(t.group.rsplit('it', 1)[1])
        if t.step == 0:
            assert t.gap_s == 0.01
            if it == 0:
                assert t.after == ()
            else:
                (dep,) = t.after
                d = by_id[dep]
                assert d.dst == t.src                          # local
                assert d.group == f'allreduce0/it{it - 1}'
                assert d.step == 2 * (n - 1) - 1               # the last receipt
        else:
            assert t.gap_s == 0.0
    _plan(ts, colls).validate(HOSTS[:n])
    # a generic builder works too
    ts2, colls2 = repeat(lambda g, i: ring_allreduce(HOSTS[:3], 30, g, first_id=i), 2,
                         group='x')
    assert len(ts2) == 2 * 12 and [c.id for c in colls2] == ['x/it0', 'x/it1']
    with pytest.raises(SpecError) as ei:
        repeat(lambda g, i: ring_allreduce(HOSTS[:3], 30, g, first_id=i), 0)
    assert ei.value.key == 'iterations'


def test_p2p_flows():
    fs = flows([('h1', 'h2', 1000, 0.5), ('h3', 'h4', 10),
                {'src': 'h2', 'dst': 'h1', 'size_bytes': 5}], first_id=7)
    assert [f.id for f in fs] == [7, 8, 9]
    assert fs[0] == Transfer(7, 'h1', 'h2', 1000, start_s=0.5, workload='p2p')
    assert fs[1].start_s == 0.0 and fs[2].size_bytes == 5
    for bad, key in [([('h1', 'h1', 10)], 'flows[0].dst'), ([('h1', 'h2', 0)],
                     'flows[0].size_bytes'), ([('h1', 'h2', 5, -1)], 'flows[0].start_s'),
                     ([('h1', 'h2')], 'flows[0]')]:
        with pytest.raises(SpecError) as ei:
            flows(bad)
        assert ei.value.key == key


def test_validate_rejections():
    ok = [Transfer(0, 'h1', 'h2', 10), Transfer(1, 'h2', 'h1', 10, after=(0,))]
    _plan(ok).validate(['h1', 'h2'])

    def bad(transfers, hosts=('h1', 'h2', 'h3'), collectives=()):
        with pytest.raises(SpecError) as ei:
            _plan(transfers, collectives).validate(hosts)
        return ei.value

    e = bad([Transfer(0, 'h1', 'h9', 10)])
    assert e.key == 'transfers[0].dst' and 'h9' in str(e)
    e = bad([Transfer(0, 'h1', 'h1', 10)])
    assert e.key == 'transfers[0].dst'
    e = bad([Transfer(0, 'h1', 'h2', 0)])
    assert e.key == 'transfers[0].size_bytes'
    e = bad([Transfer(0, 'h1', 'h2', 1), Transfer(0, 'h2', 'h1', 1)])
    assert e.key == 'transfers[1].id'
    e = bad([Transfer(0, 'h1', 'h2', 1, after=(5,))])
    assert e.key == 'transfers[0].after' and '5' in str(e)
    # non-local dependency: h3 cannot wait for something arriving at h2
    e = bad([Transfer(0, 'h1', 'h2', 1), Transfer(1, 'h3', 'h1', 1, after=(0,))])
    assert e.key == 'transfers[1].after' and 'local' in str(e)
    # cycle 0 -> 1 -> 2 -> 0, all local
    e = bad([Transfer(0, 'h1', 'h2', 1, after=(2,)), Transfer(1, 'h2', 'h3', 1, after=(0,)),
             Transfer(2, 'h3', 'h1', 1, after=(1,))])
    assert e.key.startswith('transfers[') and e.key.endswith('].after') and 'cycle' in str(e)
    e = bad([Transfer(0, 'h1', 'h2', 1, start_s=-1.0)])
    assert e.key == 'transfers[0].start_s'
    e = bad([Transfer(0, 'h1', 'h2', 1)], collectives=[Collective('c', 'allreduce', 'ring',
                                                                  ('h1', 'h7'), 10)])
    assert e.key == 'collectives[0].hosts' and 'h7' in str(e)


def test_for_host():
    ts, _ = ring_allreduce(HOSTS[:3], 300, 'ar')
    part = _plan(ts).for_host('h2')
    assert all(t.src == 'h2' for t in part.sends) and len(part.sends) == 4
    assert all(t.dst == 'h2' for t in part.receives) and len(part.receives) == 4
    sends, receives = part
    assert sends == part.sends and receives == part.receives


def test_json_round_trip(tmp_path):
    ts, coll = ring_allreduce(HOSTS[:4], 4_000_003, 'allreduce0/it0', start_s=0.25)
    plan = _plan(ts + flows([('h1', 'h3', 999, 0.1)], first_id=len(ts)), [coll],
                 name='mix', seed=42)
    assert TrafficPlan.from_dict(plan.to_dict()) == plan
    path = tmp_path / 'plan.json'
    plan.save(path)
    loaded = TrafficPlan.load(path)
    assert loaded == plan
    assert isinstance(loaded.transfers[5].after, tuple)
    assert isinstance(loaded.collectives[0].hosts, tuple)


def test_from_dict_rejections(tmp_path):
    good = _plan([Transfer(0, 'h1', 'h2', 10)]).to_dict()
    bad = dict(good, transfers=[dict(good['transfers'][0], size_bytes='10')])
    with pytest.raises(SpecError) as ei:
        TrafficPlan.from_dict(bad)
    assert ei.value.key == 'transfers[0].size_bytes'
    bad = dict(good, transfers=[dict(good['transfers'][0], colour='red')])
    with pytest.raises(SpecError) as ei:
        TrafficPlan.from_dict(bad)
    assert ei.value.key == 'transfers[0].colour'
    p = tmp_path / 'broken.json'
    p.write_text('{not json')
    with pytest.raises(SpecError) as ei:
        TrafficPlan.load(p)
    assert ei.value.key == 'plan'


def test_merge_renumbers():
    ts1, c1 = ring_allreduce(HOSTS[:3], 300, 'ar0')
    p1 = _plan(ts1, [c1], name='train', seed=5)
    p2 = _plan([Transfer(0, 'h1', 'h4', 10), Transfer(1, 'h4', 'h2', 10, after=(0,))],
               name='bg', seed=9)
    m = merge(p1, p2)
    assert m.name == 'train+bg' and m.seed == 5
    assert [t.id for t in m.transfers] == list(range(len(ts1) + 2))
    assert m.transfers[-1].after == (len(ts1),)
    assert m.transfers[:len(ts1)] == tuple(ts1)        # first plan keeps ids 0..
    assert m.collectives == (c1,)
    m.validate(HOSTS[:4])
    assert TrafficPlan.merge(p1, p2, name='x', seed=1).name == 'x'
    # merging a plan with itself: ids unique again, but a collective id may not repeat
    with pytest.raises(SpecError) as ei:
        merge(p1, p1)
    assert ei.value.key == 'plans[1].collectives'
    m2 = merge(p2, p2)
    assert [t.after for t in m2.transfers] == [(), (0,), (), (2,)]
    m2.validate(['h1', 'h2', 'h4'])
