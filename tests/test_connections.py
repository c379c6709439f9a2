"""Connection reuse: persistent connections per (peer, channel), per request and per host pair;
their plan representation, the ideal model's view of them and the run's transport block."""
from __future__ import annotations

import math

import pytest

from fabric.analysis import ideal, transport
from fabric.report.summary import format_transport
from topologies.errors import SpecError
from fabric.plan.traffic import build_plan
from fabric.plan.experiment import parse_experiment
from topologies.single import build_single_switch
from traffic import connections, inference
from traffic.collectives import ring_allreduce_iterations, split_channels
from traffic.plan import Connection, TrafficPlan, Transfer, source_port


def _ring(channels: int = 2, iterations: int = 2) -> list[Transfer]:
    ts, _ = ring_allreduce_iterations(['a', 'b', 'c'], 3000, 'job', iterations=iterations,
                                      workload='job')
    return split_channels(ts, channels)


def test_collective_one_connection_per_peer_and_channel_for_the_whole_job():
    ts, conns = connections.collective(_ring(channels=2, iterations=3))
    assert sorted(c.key for c in conns) == sorted(
        f'job/{s}>{d}/ch{c}' for s, d in (('a', 'b'), ('b', 'c'), ('c', 'a')) for c in (0, 1))
    assert all(c.warm for c in conns)
    for t in ts:                                    # every step of every iteration reuses it
        assert t.conn == f'job/{t.src}>{t.dst}/ch{t.channel}'
    per, none = connections.collective(_ring(), 'per_transfer')
    assert none == () and all(t.conn is None for t in per)
    with pytest.raises(SpecError) as e:
        connections.collective(_ring(), 'pooled')
    assert e.value.key == 'connections'


def test_inference_tokens_per_request_kv_and_prompts_per_pair():
    reqs = inference.synthetic_requests(4, 5.0, 1, output_median=3, output_sigma=0.0)
    ts = inference.request_transfers(reqs, ['c'], ['p1', 'p2'], ['d'], inference.profile('8b'))
    ts, conns = connections.inference(ts, inference.STEP_TOKEN0, inference.STEP_KV)
    by_key = {c.key: c for c in conns}
    assert {k for k in by_key if '/kv/' in k} == {'inference/kv/p1>d', 'inference/kv/p2>d'}
    assert {k for k in by_key if '/prompt/' in k} == {'inference/prompt/c>p1',
                                                      'inference/prompt/c>p2'}
    tokens = [c for c in conns if c.key.endswith('/tokens')]
    assert len(tokens) == 4 and not any(c.warm for c in tokens)
    for t in ts:
        if t.step >= inference.STEP_TOKEN0:
            assert t.conn == f'{t.group}/tokens'


def test_plan_keeps_validates_and_merges_connections():
    ts, conns = connections.collective(_ring())
    plan = TrafficPlan('p', 5, tuple(ts), connections=conns)
    plan.validate(['a', 'b', 'c'])
    assert TrafficPlan.from_dict(plan.to_dict()) == plan
    assert plan.connections_of('a') == [c for c in conns if c.src == 'a']
    with pytest.raises(SpecError, match='unknown connection'):
        TrafficPlan('p', 5, tuple(ts), connections=conns[1:]).validate()
    bad = (Connection(conns[0].key, 'b', 'a'),) + conns[1:]
    with pytest.raises(SpecError, match='runs b->a'):
        TrafficPlan('p', 5, tuple(ts), connections=bad).validate()
    with pytest.raises(SpecError, match='used by two merged plans'):
        TrafficPlan.merge(plan, plan)
    # the seed decides a connection's source port, hence its ECMP path, for the whole job
    key = conns[0].key
    assert source_port(5, key) == source_port(5, key) != source_port(6, key)


def test_ideal_persistent_connection_has_no_handshake_and_is_fifo():
    g = build_single_switch(2, 20.0)
    one = (Transfer(0, 'h1', 'h2', 100_000),)
    own = ideal.ideal_plan(g, TrafficPlan('x', 1, one))
    conn = (Connection('k', 'h1', 'h2'),)
    kept = ideal.ideal_plan(g, TrafficPlan('x', 1, (Transfer(0, 'h1', 'h2', 100_000, conn='k'),),
                                           connections=conn))
    assert kept.flows[0].fct_s < own.flows[0].fct_s      # the handshake is gone
    two = tuple(Transfer(i, 'h1', 'h2', 100_000, conn='k') for i in range(2))
    fifo = ideal.ideal_plan(g, TrafficPlan('x', 1, two, connections=conn))
    # one stream: the second message flows after the first, at full rate (not side by side)
    assert fifo.flows[0].end_s == pytest.approx(kept.flows[0].end_s, rel=1e-6)
    assert fifo.flows[1].end_s == pytest.approx(2 * kept.flows[0].end_s, rel=0.02)


def _spec(mode: str | None, **extra):
    w = {'kind': 'allreduce', 'name': 'ring', 'size_bytes': 30_000, 'hosts': 'all', **extra}
    if mode:
        w['connections'] = mode
    return parse_experiment({'name': 'x', 'fabric': {'kind': 'single', 'hosts': 4,
                                                     'host_rate_mbps': 20},
                             'workload': [w]})


def test_spec_key_default_and_plan():
    sp = _spec(None, channels=2)
    plan = build_plan(sp, sp.fabric(None).build(), 1)
    assert len(plan.connections) == 4 * 2 and all(t.conn for t in plan.transfers)
    sp = _spec('per_transfer')
    plan = build_plan(sp, sp.fabric(None).build(), 1)
    assert plan.connections == () and not any(t.conn for t in plan.transfers)
    with pytest.raises(SpecError) as e:
        _spec('pooled')
    assert 'connections' in e.value.key


def _row(conn, src, dst, kind, hs, rtt, retrans='0'):
    return {'conn': conn, 'kind': kind, 'src': src, 'dst': dst, 'handshake_s': hs,
            'min_rtt_s': rtt, 'retrans': retrans}


def test_transport_summary_paths_handshakes_and_rtt_scale():
    rows = [_row('a', 'h1', 'h2', 'persistent', '0.001', '0.0002', '3'),
            _row('b', 'h1', 'h2', 'persistent', '0.002', '0.0004'),
            _row('7', 'h2', 'h1', 'transfer', '0.003', '0.0006', '1')]
    t = transport.summarise(rows, [0.1, 0.2, 0.3])
    assert (t.persistent, t.per_transfer, t.retransmits) == (2, 1, 4)
    assert [(p.src, p.dst, p.base_rtt_s, p.connections) for p in t.paths] == [
        ('h1', 'h2', 0.0002, 2), ('h2', 'h1', 0.0006, 1)]
    assert t.handshake_persistent_s.max == pytest.approx(0.002)
    assert t.rtt_share == pytest.approx(0.0004 / 0.2)
    assert t.rtt_factor is None and not t.warnings
    # 0.4 ms emulated at dilation 10 stands for 40 us real: 4x a 10 us fabric -> warned
    off = transport.summarise(rows, [0.2], {'time_dilation': 10, 'real_base_rtt_us': 10})
    assert off.stands_for_real_s == pytest.approx(40e-6)
    assert off.rtt_factor == pytest.approx(4.0)
    assert off.warnings and 'time_dilation to ~40' in off.warnings[0]
    ok = transport.summarise(rows, [0.2], {'time_dilation': 40, 'real_base_rtt_us': 10})
    assert ok.rtt_factor == pytest.approx(1.0) and not ok.warnings
    assert any('base RTT' in line for line in format_transport(off))
    empty = transport.summarise([], [])
    assert empty.base_rtt_s.count == 0 and math.isnan(empty.rtt_share)


def test_run_and_scale_keys_for_transport():
    sp = parse_experiment({'name': 'x', 'run': {'tcp_slow_start_after_idle': True},
                           'scale': {'real_link_gbps': 400, 'time_dilation': 20,
                                     'real_base_rtt_us': 5},
                           'fabric': {'kind': 'single', 'hosts': 2, 'host_rate_mbps': 20},
                           'workload': [{'kind': 'flows', 'flows': [
                               {'src': 'h1', 'dst': 'h2', 'size_bytes': 1000}]}]})
    assert sp.run.tcp_slow_start_after_idle is True
    assert sp.scale.real_base_rtt_us == 5
    assert _spec(None).run.tcp_slow_start_after_idle is False   # the default
    with pytest.raises(SpecError) as e:
        parse_experiment({'name': 'x', 'scale': {'real_link_gbps': 400, 'real_base_rtt_us': 0},
                          'fabric': {'kind': 'single', 'hosts': 2, 'host_rate_mbps': 20},
                          'workload': [{'kind': 'flows', 'flows': [
                              {'src': 'h1', 'dst': 'h2', 'size_bytes': 1000}]}]})
    assert e.value.key == 'scale.real_base_rtt_us'
