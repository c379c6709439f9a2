"""Real traffic agents as subprocesses on 127.0.0.x loopback addresses (no root, no Mininet)."""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from traffic.collectives import ring_allreduce_iterations
from traffic.p2p import flows
from traffic.plan import TrafficPlan, Transfer, source_port
from traffic.records import collect, read_csv, write_csv

ROOT = Path(__file__).resolve().parents[1]
IP_BASE = 10 + os.getpid() % 200      # 127.0.<base>.x: concurrent test runs do not collide


def _ip(i: int) -> str:
    return f'127.0.{IP_BASE}.{i}'


def _free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


class Agent:
    """One agent subprocess with its stdout lines in a queue."""

    def __init__(self, me: str, plan: Path, hosts: Path, port: int, out: Path,
                 *extra: str):
        self.me, self.port = me, port
        self.err = open(out / f'{me}.stderr', 'w')  # noqa: SIM115 - closed by stop()
        self.p = subprocess.Popen(
            [sys.executable, '-m', 'traffic.agent', '--plan', str(plan), '--hosts', str(hosts),
             '--me', me, '--port', str(port), '--out', str(out), *extra],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
            text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.p.stdout:
            self.lines.put(line.strip())
        self.lines.put('<EOF>')

    def expect(self, timeout: float = 10.0) -> str:
        return self.lines.get(timeout=timeout)

    def go(self, t0: float) -> None:
        self.p.stdin.write(f'GO {t0:.6f}\n')
        self.p.stdin.flush()

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        self.err.close()


def _start(tmp_path: Path, plan: TrafficPlan, hosts: dict[str, str], running: list[str],
           *extra: str) -> dict[str, Agent]:
    plan_path, hosts_path = tmp_path / 'plan.json', tmp_path / 'hosts.json'
    plan.save(plan_path)
    hosts_path.write_text(json.dumps(hosts))
    port = _free_port(hosts[running[0]])
    agents = {h: Agent(h, plan_path, hosts_path, port, tmp_path, *extra) for h in running}
    for a in agents.values():
        assert a.expect() == 'READY', (tmp_path / f'{a.me}.stderr').read_text()
    return agents


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_ring_allreduce_and_p2p_over_tcp(tmp_path):
    names = ['h1', 'h2', 'h3', 'h4']
    hosts = {h: _ip(11 + i) for i, h in enumerate(names)}
    size, gap = 3_000_001, 0.05                       # uneven chunks on purpose
    ring, colls = ring_allreduce_iterations(names, size, 'allreduce0', iterations=2,
                                            gap_s=gap)
    p2p = flows([('h1', 'h3', 2_000_000, 0.02)], first_id=len(ring))
    plan = TrafficPlan('ring+p2p', seed=7, transfers=tuple(ring + p2p),
                       collectives=tuple(colls))
    plan.validate(hosts)
    agents = _start(tmp_path, plan, hosts, names, '--deadline-s', '20')
    try:
        t0 = time.time() + 0.3
        for a in agents.values():
            a.go(t0)
        for a in agents.values():
            assert a.expect(20) == 'DONE', (tmp_path / f'{a.me}.stderr').read_text()
            assert a.p.wait(5) == 0
    finally:
        for a in agents.values():
            a.kill()

    recs = collect(tmp_path, plan)
    assert len(recs) == len(plan.transfers)
    assert all(r.complete for r in recs), [r for r in recs if not r.complete]
    by_id = {r.flow_id: r for r in recs}
    planned = plan.by_id()
    for r in recs:
        t = planned[r.flow_id]
        assert r.bytes == t.size_bytes and r.fct_s > 0
        assert r.start >= t0 + t.start_s - 1e-3
        for dep in t.after:                           # dependency respected, after the gap
            assert r.start >= by_id[dep].end + t.gap_s - 1e-3, (t, by_id[dep])
        if not t.after:
            assert r.start >= t0 + t.start_s + t.gap_s - 1e-3
    # bytes on the wire per host match the plan exactly
    for h in names:
        got = sum(int(row['bytes']) for row in _rows(tmp_path / f'{h}.recv.csv'))
        assert got == sum(t.size_bytes for t in plan.transfers if t.dst == h)
        sends = _rows(tmp_path / f'{h}.send.csv')
        assert len(sends) == len(plan.for_host(h).sends)
        assert all(row['error'] == '' and row['acked'] for row in sends)
    ring_bytes = sum(r.bytes for r in recs if r.group and r.group.endswith('/it0'))
    assert ring_bytes == 2 * (len(names) - 1) * size
    # the receiver's end precedes the sender's ack; source ports follow (seed, id)
    sends = {int(r['id']): r for h in names for r in _rows(tmp_path / f'{h}.send.csv')}
    assert all(float(sends[i]['acked']) >= by_id[i].end for i in by_id)
    deterministic = sum(int(s['sport']) == source_port(plan.seed, i) for i, s in sends.items())
    assert deterministic >= 0.9 * len(sends)
    # records survive a CSV round trip
    write_csv(recs, tmp_path / 'flows.csv')
    assert read_csv(tmp_path / 'flows.csv') == [
        r.__class__(**{**r.__dict__, 'start': round(r.start, 6), 'end': round(r.end, 6),
                       'fct_s': round(r.fct_s, 6)}) for r in recs]


def test_unreachable_peer_fails_with_partial_records(tmp_path):
    hosts = {'h1': _ip(21), 'h2': _ip(22), 'h9': _ip(29)}    # h9 has no agent
    plan = TrafficPlan('fail', seed=1, transfers=(
        Transfer(0, 'h2', 'h1', 500_000),
        Transfer(1, 'h1', 'h2', 500_000),
        Transfer(2, 'h1', 'h9', 500_000, after=(0,)),
        Transfer(3, 'h1', 'h2', 1000, after=(4,)),     # never starts: waits on h9
        Transfer(4, 'h9', 'h1', 1000),
    ))
    agents = _start(tmp_path, plan, hosts, ['h1', 'h2'], '--deadline-s', '10',
                    '--connect-retry-s', '1')
    try:
        t0 = time.time() + 0.2
        for a in agents.values():
            a.go(t0)
        line = agents['h1'].expect(10)
        assert line.startswith('FAILED') and 'h9' in line
        assert agents['h1'].p.wait(5) == 1
        # h2 got what it needs from h1 before the failure (transfer 3 is h1->h2 but waits)
        agents['h2'].p.send_signal(signal.SIGTERM)
        assert agents['h2'].p.wait(5) in (143, -signal.SIGTERM)
    finally:
        for a in agents.values():
            a.kill()
    assert time.time() - t0 < 8
    sends = {int(r['id']): r for r in _rows(tmp_path / 'h1.send.csv')}
    assert sends[1]['error'] == '' and sends[1]['acked']
    assert 'h9' in sends[2]['error'] and not sends[2]['acked']
    assert sends[3]['error'].startswith('not started')
    assert [int(r['id']) for r in _rows(tmp_path / 'h1.recv.csv')] == [0]
    recs = {r.flow_id: r for r in collect(tmp_path, plan)}
    assert recs[0].complete and recs[1].complete
    assert not recs[2].complete and recs[2].end is None and recs[2].fct_s is None
    assert 'h9' in recs[2].error
    assert not recs[3].complete and recs[3].start is None
    assert not recs[4].complete and recs[4].start is None and recs[4].error == ''


def test_sigterm_exits_promptly(tmp_path):
    hosts = {'h1': _ip(31), 'h2': _ip(32)}
    plan = TrafficPlan('wait', seed=1, transfers=(Transfer(0, 'h2', 'h1', 1000),))
    (a,) = _start(tmp_path, plan, hosts, ['h1'], '--deadline-s', '60').values()
    try:
        a.go(time.time())                 # waits for a transfer that will never come
        time.sleep(0.3)
        t = time.time()
        a.p.send_signal(signal.SIGTERM)
        assert a.p.wait(3) == 143
        assert time.time() - t < 2
        assert a.expect(2).startswith('FAILED terminated')
    finally:
        a.kill()
    assert _rows(tmp_path / 'h1.recv.csv') == []


def test_sigterm_before_go_and_stdin_eof(tmp_path):
    hosts = {'h1': _ip(41), 'h2': _ip(42)}
    plan = TrafficPlan('wait', seed=1, transfers=(Transfer(0, 'h2', 'h1', 1000),))
    agents = _start(tmp_path, plan, hosts, ['h1', 'h2'])
    try:
        agents['h1'].p.send_signal(signal.SIGTERM)      # blocked reading GO
        assert agents['h1'].p.wait(3) == 143
        agents['h2'].p.stdin.close()                    # engine went away
        assert agents['h2'].expect(3) == 'FAILED stdin closed before GO'
        assert agents['h2'].p.wait(3) == 1
    finally:
        for a in agents.values():
            a.kill()
    assert _rows(tmp_path / 'h2.send.csv')[0]['error'].startswith('not started')


def test_bad_plan_fails_before_ready(tmp_path):
    hosts = {'h1': _ip(51)}
    plan = TrafficPlan('bad', seed=1, transfers=(Transfer(0, 'h1', 'h7', 10),))
    plan.save(tmp_path / 'plan.json')
    (tmp_path / 'hosts.json').write_text(json.dumps(hosts))
    r = subprocess.run([sys.executable, '-m', 'traffic.agent', '--plan', str(tmp_path /
                        'plan.json'), '--hosts', str(tmp_path / 'hosts.json'), '--me', 'h1',
                        '--port', '1', '--out', str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert r.stdout.startswith('FAILED') and 'h7' in r.stdout


@pytest.fixture(autouse=True)
def _loopback_only():
    """127.0.0.0/8 is all local on Linux; skip if this machine disagrees."""
    try:
        with socket.socket() as s:
            s.bind((_ip(1), 0))
    except OSError as e:      # pragma: no cover
        pytest.skip(f'cannot bind {_ip(1)}: {e}')


def test_deadline_and_short_read(tmp_path):
    hosts = {'h1': _ip(61), 'h2': _ip(62), 'h3': _ip(63)}
    plan = TrafficPlan('short', seed=1, transfers=(
        Transfer(0, 'h2', 'h1', 100_000, start_s=3600.0),   # h2 would send it in an hour
        Transfer(1, 'h3', 'h2', 1000)))                     # h3 has no agent
    (h1,) = _start(tmp_path, plan, hosts, ['h1'], '--deadline-s', '30').values()
    (h2,) = _start(tmp_path, plan, hosts, ['h2'], '--deadline-s', '0.5').values()
    try:
        t0 = time.time()
        h1.go(t0)
        h2.go(t0)
        # a fake sender delivers a truncated transfer 0 to h1: short read
        with socket.create_connection((hosts['h1'], h1.port), timeout=2) as s:
            s.sendall(json.dumps({'id': 0, 'src': 'h2', 'dst': 'h1', 'size': 100_000,
                                  'start': time.time()}).encode() + b'\n' + bytes(10))
        line = h1.expect(5)
        assert line.startswith('FAILED') and 'short read' in line and '10 of 100000' in line
        assert h1.p.wait(5) == 1
        line = h2.expect(5)
        assert line.startswith('FAILED deadline passed') and '[1]' in line
        assert h2.p.wait(5) == 1
        assert time.time() - t0 < 4
    finally:
        h1.kill()
        h2.kill()
    assert _rows(tmp_path / 'h1.recv.csv') == []
    (row,) = _rows(tmp_path / 'h2.send.csv')
    assert row['error'].startswith('not started: deadline passed')


def test_persistent_connections_carry_a_ring_and_tokens(tmp_path):
    """A 2-channel ring all-reduce over one connection per (peer, channel), opened on CONNECT
    before t0, and a cold connection opened at its first transfer's start: every message
    arrives framed, ports follow (seed, key), one connection row per connection."""
    from traffic import connections
    from traffic.collectives import split_channels
    names = ['h1', 'h2', 'h3']
    hosts = {h: _ip(41 + i) for i, h in enumerate(names)}
    ring, colls = ring_allreduce_iterations(names, 300_001, 'ar', iterations=2, gap_s=0.02)
    ring = split_channels(ring, 2)
    ring, conns = connections.collective(ring)
    tokens = [Transfer(len(ring) + j, 'h3', 'h1', 64, start_s=0.1, gap_s=0.01 * j,
                       workload='llm', group='llm/r0', step=2 + j) for j in range(5)]
    tokens, tconns = connections.inference(tokens, token_step0=2, kv_step=1)
    plan = TrafficPlan('persistent', seed=3, transfers=tuple(ring + tokens),
                       collectives=tuple(colls), connections=conns + tconns)
    plan.validate(hosts)
    assert len(conns) == 2 * len(names) and not tconns[0].warm
    agents = _start(tmp_path, plan, hosts, names, '--deadline-s', '20')
    try:
        for a in agents.values():
            a.p.stdin.write('CONNECT\n')
            a.p.stdin.flush()
        for a in agents.values():
            assert a.expect(10) == 'CONNECTED', (tmp_path / f'{a.me}.stderr').read_text()
        t0 = time.time() + 0.2
        for a in agents.values():
            a.go(t0)
        for a in agents.values():
            assert a.expect(20) == 'DONE', (tmp_path / f'{a.me}.stderr').read_text()
    finally:
        for a in agents.values():
            a.kill()
    recs = collect(tmp_path, plan)
    assert all(r.complete for r in recs), [r for r in recs if not r.complete]
    rows = [r for h in names for r in _rows(tmp_path / f'{h}.conn.csv')]
    assert sorted(r['conn'] for r in rows) == sorted(c.key for c in plan.connections)
    by_key = {r['conn']: r for r in rows}
    for c in plan.connections:
        row = by_key[c.key]
        assert int(row['messages']) == sum(t.conn == c.key for t in plan.transfers)
        assert int(row['sport']) == source_port(plan.seed, c.key)
        assert float(row['handshake_s']) > 0 and float(row['min_rtt_s']) >= 0
        # warm ones opened before t0, the cold one at t0 + its first start
        if c.warm:
            assert float(row['established']) < t0
        else:
            assert float(row['opened']) >= t0 + 0.1 - 1e-3
    sends = {int(r['id']): r for h in names for r in _rows(tmp_path / f'{h}.send.csv')}
    assert all(sends[t.id]['conn'] == t.conn for t in plan.transfers)
    by_id = {r.flow_id: r for r in recs}
    for t in plan.transfers:        # dependencies and gaps still hold on shared connections
        for dep in t.after:
            assert by_id[t.id].start >= by_id[dep].end + t.gap_s - 1e-3
