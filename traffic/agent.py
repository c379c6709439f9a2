"""Per-host traffic agent: runs one host's part of a TrafficPlan over real TCP.

    python -m traffic.agent --plan PLAN.json --hosts HOSTS.json --me h1 --port 5201 \
        --out DIR --deadline-s 120 [--bind-ip IP] [--connect-retry-s 5]

stdout protocol (traffic.agent_protocol): `READY` once listening; optionally `CONNECT` on stdin, answered `CONNECTED`
once every warm persistent connection of this host is open (their handshakes happen here,
before t0); then it reads `GO <t0 epoch>` from stdin; finally `DONE` (exit 0) or
`FAILED <reason>` (exit 1; 143 on SIGTERM, 130 on SIGINT).

Wire format: a stream of messages, each a JSON header line {id, src, dst, size, start} and
exactly `size` payload bytes; the receiver answers every complete message with a 1-byte ack
on the same connection. A transfer without `conn` gets a connection of its own from a source
port derived from (seed, id), sends its message, SHUT_WR, waits for the ack. A transfer with
`conn` is queued on that persistent connection (traffic.plan.Connection, source port from
(seed, key), so its ECMP path stays put): one sender thread writes the queue's messages back to
back, one reader takes the acks; the connection closes when its last message is acked. Warm
connections open on CONNECT (or at GO without one), the others at t0 + their first start_s.
Rows are flushed as they happen, so a failed run leaves what it did on disk:
    DIR/<me>.recv.csv  id,src,dst,bytes,start,end            (one row per complete arrival)
    DIR/<me>.send.csv  id,src,dst,bytes,start,acked,error,sport,conn
                       (one row per planned send on DONE/FAILED; on SIGTERM the finished ones)
    DIR/<me>.conn.csv  CONN_COLUMNS: one row per connection this host opened (a persistent one,
                       or a transfer's own): its handshake (connect() time) and TCP_INFO's
                       min_rtt/srtt/retransmits when it closed
A send is offered at max(t0 + start_s, arrival of its `after` ids at this host) + gap_s.
Times are time.time() epoch seconds: hosts share the machine's clock (hosts on several
servers: the engine moves each host's times onto the head's clock, traffic.records.collect).
`start` is stamped by the sender when it offers the message (before connect() for a transfer's
own connection; when it joins a persistent connection's queue otherwise), `end` by the receiver
when the message's last byte has been read. FCT = end - start in both cases.
"""

from __future__ import annotations

import argparse
import csv
import errno
import heapq
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from topologies.errors import SpecError

from traffic import agent_protocol as proto
from traffic.agent_protocol import failed, say
from traffic.plan import Connection, TrafficPlan, Transfer, source_port

ACK = b'\x06'
PAYLOAD_CHUNK = 1 << 20     # one sendall() hands the kernel up to 1 MiB: no per-byte Python work
RECV_CHUNK = 256 << 10      # per-connection reusable receive buffer
HEADER_MAX = 4096
RECV_COLUMNS = ('id', 'src', 'dst', 'bytes', 'start', 'end')
SEND_COLUMNS = ('id', 'src', 'dst', 'bytes', 'start', 'acked', 'error', 'sport', 'conn')
CONN_COLUMNS = ('conn', 'kind', 'src', 'dst', 'sport', 'warm', 'opened', 'established', 'handshake_s',
                'messages', 'bytes', 'min_rtt_s', 'srtt_s', 'retrans', 'error')
_RETRY_ERRNOS = {errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH,
                 errno.ECONNRESET, errno.ECONNABORTED}


def tcp_info(sock: socket.socket) -> dict[str, float | int]:
    """min_rtt_s, srtt_s and total_retrans from TCP_INFO (Linux struct tcp_info; {} if the
    kernel gives less)."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    except OSError:
        return {}
    out: dict[str, float | int] = {}
    if len(raw) >= 104:
        out['srtt_s'] = struct.unpack_from('I', raw, 68)[0] / 1e6
        out['retrans'] = struct.unpack_from('I', raw, 100)[0]
    if len(raw) >= 152:
        out['min_rtt_s'] = struct.unpack_from('I', raw, 148)[0] / 1e6
    return out


@dataclass
class PersistentConn:
    """A persistent connection this host opens: its queue and its bookkeeping (the agent's
    condition guards every field)."""
    spec: Connection
    sport: int
    total: int                                  # messages planned on it
    open_at_s: float = 0.0                      # offset from t0 (cold connections)
    sock: socket.socket | None = None
    actual_sport: int | str = ''
    opened: float | None = None
    established: float | None = None
    queue: deque = field(default_factory=deque)       # (transfer, start) not yet written
    inflight: deque = field(default_factory=deque)    # (transfer, start) written, not acked
    sent: int = 0
    acked: int = 0
    bytes: int = 0
    closed: bool = False
    connecting: bool = False


class TransferError(Exception):
    """A transfer could not be completed (refused, short read, no ack, bad header...)."""


class _Terminated(BaseException):
    """Raised in the main thread by the SIGTERM/SIGINT handler."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _ts(t: float | None) -> str:
    return '' if t is None else f'{t:.6f}'


def log(me: str, msg: str) -> None:
    """One line on stderr (the engine keeps it as the agent's log)."""
    try:
        sys.stderr.write(f'{time.time():.6f} agent[{me}] {msg}\n')
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class CsvLog:
    """Append-only CSV whose rows are flushed at once (thread-safe)."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self._lock = threading.Lock()
        self._f: Any = open(path, 'w', newline='')  # noqa: SIM115 - closed by close()
        self._w = csv.writer(self._f, lineterminator='\n')
        self._w.writerow(columns)
        self._f.flush()

    def row(self, values: Sequence[Any]) -> None:
        with self._lock:
            if self._f is None:
                return
            self._w.writerow(values)
            self._f.flush()

    def close(self, timeout: float = 1.0) -> None:
        """Close after any row being written (never leaves a torn row)."""
        got = self._lock.acquire(timeout=timeout)
        try:
            if self._f is not None:
                self._f.close()
                self._f = None
        finally:
            if got:
                self._lock.release()


class Agent:
    """One host's sender scheduler, receiver and bookkeeping."""

    def __init__(self, plan: TrafficPlan, hosts: dict[str, str], me: str, port: int,
                 out_dir: Path, listen_ip: str, src_ip: str, connect_retry_s: float = 5.0,
                 tcp_cc: str | None = None):
        part = plan.for_host(me)
        self.plan, self.hosts, self.me, self.port = plan, hosts, me, port
        self.listen_ip, self.src_ip = listen_ip, src_ip
        self.connect_retry_s = connect_retry_s
        self.tcp_cc = tcp_cc  # per-socket congestion control (root may pick any the kernel has)
        self.sends: dict[int, Transfer] = {t.id: t for t in part.sends}
        self.expected: dict[int, Transfer] = {t.id: t for t in part.receives}
        self.payload = memoryview(bytes(PAYLOAD_CHUNK))
        out_dir.mkdir(parents=True, exist_ok=True)
        self.recv_log = CsvLog(out_dir / f'{me}.recv.csv', RECV_COLUMNS)
        self.send_log = CsvLog(out_dir / f'{me}.send.csv', SEND_COLUMNS)
        self.conn_log = CsvLog(out_dir / f'{me}.conn.csv', CONN_COLUMNS)
        self.pconns: dict[str, PersistentConn] = {}
        for c in plan.connections_of(me):
            mine = [t for t in part.sends if t.conn == c.key]
            self.pconns[c.key] = PersistentConn(
                c, source_port(plan.seed, c.key), len(mine),
                min((t.start_s for t in mine), default=0.0))

        self.cond = threading.Condition()          # guards every field below
        self.t0: float | None = None
        self.received: dict[int, float] = {}       # id -> end stamp
        self.receiving: set[int] = set()
        self.acked: set[int] = set()
        self.started: set[int] = set()
        self.rows_written: set[int] = set()
        self.waiting: dict[int, set[int]] = {}     # send id -> dependency ids not yet arrived
        self.dependents: dict[int, list[int]] = {}  # dependency id -> send ids waiting on it
        self.ready: list[tuple[float, int]] = []   # heap of (due time, send id)
        self.socks: set[socket.socket] = set()
        self.sender_threads: list[threading.Thread] = []
        self.failure: str | None = None
        self.stopping = False
        self.finished = threading.Event()          # done or failed
        self.lsock: socket.socket | None = None

    # ---- lifecycle ---------------------------------------------------------------------
    def listen(self) -> None:
        """Bind and listen; the accept loop runs in a daemon thread."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.listen_ip, self.port))
        s.listen(socket.SOMAXCONN)
        self.lsock = s
        threading.Thread(target=self._accept_loop, name='accept', daemon=True).start()

    def open_warm(self) -> None:
        """Open every warm persistent connection now (before t0): their handshakes stay out
        of every transfer's FCT, as NCCL's connection set-up stays out of collective time."""
        for pc in self.pconns.values():
            if pc.spec.warm and pc.total:
                self._open(pc)

    def go(self, t0: float) -> None:
        """Start the sender schedule relative to t0 (receipts before GO are kept)."""
        with self.cond:
            self.t0 = t0
            for tid, t in self.sends.items():
                for a in t.after:
                    self.dependents.setdefault(a, []).append(tid)
                missing = {a for a in t.after if a not in self.received}
                if missing:
                    self.waiting[tid] = missing
                else:
                    self._push_ready(t)
            self._check_done()
        for pc in self.pconns.values():
            if pc.total:
                th = threading.Thread(target=self._run_conn, args=(pc,), name='conn',
                                      daemon=True)
                th.start()
                self.sender_threads.append(th)
        threading.Thread(target=self._dispatch, name='dispatch', daemon=True).start()

    def stop(self) -> None:
        """Stop scheduling and unblock every socket (in-flight transfers fail fast)."""
        with self.cond:
            self.stopping = True
            socks = list(self.socks)
            self.cond.notify_all()
        for s in socks + ([self.lsock] if self.lsock else []):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.lsock:
            self.lsock.close()

    def finish_failed(self, reason: str, join_s: float = 2.0) -> None:
        """After a failure: let in-flight senders record their error, then add a row for
        every send that never started."""
        self.stop()
        end = time.time() + join_s
        for th in list(self.sender_threads):
            th.join(max(0.0, end - time.time()))
        with self.cond:
            todo = [t for tid, t in self.sends.items() if tid not in self.rows_written]
            self.rows_written.update(t.id for t in todo)
        for t in todo:
            state = 'aborted' if t.id in self.started else 'not started'
            self.send_log.row([t.id, t.src, t.dst, 0, '', '', f'{state}: {reason}', '',
                               t.conn or ''])

    def close_logs(self) -> None:
        self.recv_log.close()
        self.send_log.close()
        self.conn_log.close()

    def missing_summary(self) -> str:
        with self.cond:
            unacked = sorted(set(self.sends) - self.acked)
            absent = sorted(set(self.expected) - set(self.received))
        return (f'{len(unacked)} sends unacked {_ids(unacked)}, '
                f'{len(absent)} receipts missing {_ids(absent)}')

    # ---- state transitions (hold self.cond) ----------------------------------------------
    def _push_ready(self, t: Transfer) -> None:
        assert self.t0 is not None
        deps_end = max((self.received[a] for a in t.after), default=0.0)
        due = max(self.t0 + t.start_s, deps_end) + t.gap_s
        heapq.heappush(self.ready, (due, t.id))
        self.cond.notify_all()

    def _check_done(self) -> None:
        if len(self.acked) == len(self.sends) and len(self.received) == len(self.expected):
            self.finished.set()

    def fail(self, reason: str) -> None:
        """Record the first failure and wake the main thread."""
        with self.cond:
            first = self.failure is None
            if first:
                self.failure = reason
            self.finished.set()
        if first:
            log(self.me, f'error: {reason}')

    # ---- sender ------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Start a sender thread for each transfer when it is due."""
        with self.cond:
            while not self.stopping:
                now = time.time()
                if self.ready and self.ready[0][0] <= now:
                    _, tid = heapq.heappop(self.ready)
                    t = self.sends[tid]
                    if t.conn is not None:     # offered now: joins its connection's queue
                        self.started.add(tid)
                        self.pconns[t.conn].queue.append((t, now))
                        self.cond.notify_all()
                        continue
                    th = threading.Thread(target=self._send, args=(self.sends[tid],),
                                          name=f'send{tid}', daemon=True)
                    try:
                        th.start()
                    except RuntimeError as e:   # out of threads: fail now, not at the deadline
                        self.fail(f'cannot start the sender of transfer {tid}: {e}')
                        return
                    self.started.add(tid)
                    self.sender_threads.append(th)
                    continue
                self.cond.wait(self.ready[0][0] - now if self.ready else None)

    def _message(self, sock: socket.socket, t: Transfer, start: float) -> int:
        """Write one framed message (header line + payload); returns the payload bytes."""
        hdr = json.dumps({'id': t.id, 'src': t.src, 'dst': t.dst, 'size': t.size_bytes,
                          'start': start}) + '\n'
        sock.sendall(hdr.encode())
        mv, remaining = self.payload, t.size_bytes
        while remaining > 0:
            n = min(remaining, len(mv))
            sock.sendall(mv[:n])
            remaining -= n
        return t.size_bytes

    def _send(self, t: Transfer) -> None:
        start = time.time()
        sent, sock = 0, None
        sport: int | str = ''
        try:
            sock, sport = self._connect(t.dst, source_port(self.plan.seed, t.id), str(t.id))
            established = time.time()
            sent = self._message(sock, t, start)
            sock.shutdown(socket.SHUT_WR)
            if sock.recv(1) != ACK:
                raise TransferError(f'no ack from {t.dst} (connection closed)')
            acked = time.time()
            info = tcp_info(sock)
            with self.cond:
                self.rows_written.add(t.id)
            self.send_log.row([t.id, t.src, t.dst, sent, _ts(start), _ts(acked), '', sport, ''])
            self._conn_row(str(t.id), t.dst, sport, False, start, established, 1, sent, info)
            with self.cond:
                self.acked.add(t.id)
                self._check_done()
        except Exception as e:
            with self.cond:
                # stopped by a signal or by another failure: say why (never 'aborted: None')
                cause = self.failure or ('agent stopped' if self.stopping else None)
                first_row = t.id not in self.rows_written   # finish_failed may have won
                self.rows_written.add(t.id)
            reason = f'transfer {t.id} {t.src}->{t.dst}: {e or type(e).__name__}'
            err = f'aborted: {cause}' if cause else reason
            if first_row:
                self.send_log.row([t.id, t.src, t.dst, sent, _ts(start), '', err, sport, ''])
            self.fail(reason)
        finally:
            if sock is not None:
                with self.cond:
                    self.socks.discard(sock)
                sock.close()

    def _connect(self, dst: str, port: int, what: str) -> tuple[socket.socket, int]:
        """Connect to `dst` from the deterministic source `port` (ephemeral if it is taken),
        retrying refused/unreachable connects for connect_retry_s; `what` names it in logs."""
        dst_ip = self.hosts[dst]
        fixed: int | None = port
        give_up = time.time() + self.connect_retry_s
        delay = 0.05
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            with self.cond:
                if self.stopping:
                    s.close()
                    raise TransferError('stopped')
                self.socks.add(s)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.tcp_cc:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, self.tcp_cc.encode())
                try:
                    s.bind((self.src_ip, fixed or 0))
                except OSError as e:
                    if fixed is None or e.errno != errno.EADDRINUSE:
                        raise
                    log(self.me, f'{what}: source port {fixed} in use, ephemeral')
                    fixed = None
                    s.bind((self.src_ip, 0))
                s.settimeout(max(0.5, give_up - time.time()))
                s.connect((dst_ip, self.port))
                s.settimeout(None)
                return s, s.getsockname()[1]
            except OSError as e:
                with self.cond:
                    self.socks.discard(s)
                    stopping = self.stopping
                s.close()
                if stopping:
                    raise TransferError('stopped') from None
                if e.errno == errno.EADDRNOTAVAIL and fixed is not None:
                    log(self.me, f'{what}: 4-tuple with source port {fixed} busy, ephemeral')
                    fixed = None
                    continue
                retryable = isinstance(e, TimeoutError) or e.errno in _RETRY_ERRNOS
                if not retryable or time.time() >= give_up:
                    raise TransferError(f'connect to {dst} {dst_ip}:{self.port} failed '
                                        f'after {self.connect_retry_s:g}s: {e}') from None
                time.sleep(delay)
                delay = min(2 * delay, 0.5)

    def _conn_row(self, key: str, dst: str, sport: int | str, warm: bool, opened: float | None,
                  established: float | None, messages: int, nbytes: int,
                  info: dict[str, float | int], error: str = '') -> None:
        hs = (established - opened) if opened is not None and established is not None else None
        kind = 'persistent' if key in self.pconns else 'transfer'
        self.conn_log.row([key, kind, self.me, dst, sport, 'true' if warm else 'false', _ts(opened),
                           _ts(established), _ts(hs), messages, nbytes,
                           _ts(info.get('min_rtt_s')), _ts(info.get('srtt_s')),
                           info.get('retrans', ''), error])

    def _open(self, pc: PersistentConn) -> None:
        """Connect a persistent connection (once) and start its ack reader."""
        with self.cond:
            if pc.sock is not None or pc.connecting:
                return
            pc.connecting = True
        pc.opened = time.time()
        sock, sport = self._connect(pc.spec.dst, pc.sport, f'connection {pc.spec.key}')
        pc.established = time.time()
        with self.cond:
            pc.sock, pc.actual_sport = sock, sport
        threading.Thread(target=self._read_acks, args=(pc,), name='acks', daemon=True).start()

    def _run_conn(self, pc: PersistentConn) -> None:
        """Sender of one persistent connection: open it (cold ones at t0 + their first start),
        then write its queued messages back to back, in the order they were offered."""
        try:
            if pc.sock is None:
                with self.cond:
                    assert self.t0 is not None
                    due = self.t0 + (0.0 if pc.spec.warm else pc.open_at_s)
                    while not self.stopping and time.time() < due:
                        self.cond.wait(due - time.time())
                    if self.stopping:
                        return
                self._open(pc)
            while True:
                with self.cond:
                    while not pc.queue and not self.stopping and pc.sent < pc.total:
                        self.cond.wait()
                    if self.stopping or pc.sent >= pc.total:
                        return
                    t, start = pc.queue.popleft()
                    pc.inflight.append((t, start))
                    pc.sent += 1
                    pc.bytes += t.size_bytes
                    sock = pc.sock
                assert sock is not None
                self._message(sock, t, start)
        except Exception as e:
            self._conn_failed(pc, e)

    def _read_acks(self, pc: PersistentConn) -> None:
        """Ack reader of one persistent connection: one ack byte per message, in order."""
        sock = pc.sock
        assert sock is not None
        try:
            while True:
                data = sock.recv(4096)
                if not data:
                    with self.cond:
                        if pc.acked >= pc.total:
                            return
                    raise TransferError(f'connection closed by {pc.spec.dst} with '
                                        f'{pc.total - pc.acked} messages unacked')
                if data.strip(ACK):
                    raise TransferError(f'garbage instead of acks from {pc.spec.dst}')
                now = time.time()
                done: list[tuple[Transfer, float]] = []
                with self.cond:
                    for _ in range(len(data)):
                        if not pc.inflight:
                            raise TransferError(f'ack from {pc.spec.dst} for no message')
                        done.append(pc.inflight.popleft())
                    pc.acked += len(done)
                    self.rows_written.update(t.id for t, _ in done)
                    last = pc.acked >= pc.total
                for t, start in done:
                    self.send_log.row([t.id, t.src, t.dst, t.size_bytes, _ts(start), _ts(now),
                                       '', pc.actual_sport, pc.spec.key])
                if last:
                    self._close(pc)
                with self.cond:
                    self.acked.update(t.id for t, _ in done)
                    self._check_done()
                if last:
                    return
        except Exception as e:
            self._conn_failed(pc, e)

    def _close(self, pc: PersistentConn, error: str = '') -> None:
        """Record the connection's TCP_INFO and close it (once)."""
        with self.cond:
            if pc.closed:
                return
            pc.closed = True
            sock = pc.sock
        info = tcp_info(sock) if sock is not None else {}
        self._conn_row(pc.spec.key, pc.spec.dst, pc.actual_sport, pc.spec.warm, pc.opened,
                       pc.established, pc.acked, pc.bytes, info, error)
        if sock is not None:
            with self.cond:
                self.socks.discard(sock)
            sock.close()

    def _conn_failed(self, pc: PersistentConn, e: Exception) -> None:
        """A persistent connection broke: its unacked messages get error rows, the agent fails."""
        with self.cond:
            cause = self.failure or ('agent stopped' if self.stopping else None)
            lost = [x for x in pc.inflight if x[0].id not in self.rows_written]
            self.rows_written.update(t.id for t, _ in lost)
        reason = f'connection {pc.spec.key} {self.me}->{pc.spec.dst}: {e or type(e).__name__}'
        err = f'aborted: {cause}' if cause else reason
        for t, start in lost:
            self.send_log.row([t.id, t.src, t.dst, 0, _ts(start), '', err, pc.actual_sport,
                               pc.spec.key])
        self._close(pc, err)
        self.fail(reason)

    # ---- receiver ----------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self.lsock is not None
        while True:
            try:
                conn, addr = self.lsock.accept()
            except OSError as e:
                if not self.stopping:
                    self.fail(f'accept failed: {e}')
                return
            try:
                threading.Thread(target=self._serve, args=(conn, addr), name='recv',
                                 daemon=True).start()
            except RuntimeError as e:          # out of threads: fail now, not at the deadline
                conn.close()
                self.fail(f'cannot start a receiver: {e}')
                return

    def _serve(self, conn: socket.socket, addr: Any) -> None:
        with self.cond:
            if self.stopping:
                conn.close()
                return
            self.socks.add(conn)
        try:
            self._receive(conn, addr)
        except Exception as e:
            if not self.stopping:
                self.fail(f'receive from {addr[0]}:{addr[1]}: {e or type(e).__name__}')
        finally:
            with self.cond:
                self.socks.discard(conn)
            conn.close()

    def _receive(self, conn: socket.socket, addr: Any) -> None:
        """Read framed messages until the sender closes at a message boundary; ack each."""
        pending = bytearray()          # bytes read past the previous message
        buf: memoryview | None = None
        messages = 0
        while True:
            while b'\n' not in pending:
                chunk = conn.recv(HEADER_MAX)
                if not chunk:
                    if pending:
                        raise TransferError('connection closed inside a header')
                    if not messages:    # opened and closed without a byte: not a transfer
                        log(self.me, f'empty connection from {addr[0]}:{addr[1]} ignored')
                    return
                pending += chunk
                if len(pending) > HEADER_MAX and b'\n' not in pending:
                    raise TransferError('header too long')
            cut = pending.index(b'\n')
            hdr = json.loads(bytes(pending[:cut]))
            del pending[:cut + 1]
            tid, size, start = int(hdr['id']), int(hdr['size']), float(hdr['start'])
            t = self.expected.get(tid)
            if t is None:
                raise TransferError(f'transfer {tid} is not planned to arrive at {self.me}')
            if size != t.size_bytes or hdr.get('src') != t.src:
                raise TransferError(f'transfer {tid}: header {hdr} does not match the plan '
                                    f'({t.src}, {t.size_bytes} bytes)')
            with self.cond:
                if tid in self.receiving:
                    raise TransferError(f'transfer {tid} arrived twice')
                self.receiving.add(tid)
            got = min(len(pending), size)
            del pending[:got]
            if got < size and (buf is None or len(buf) < min(RECV_CHUNK, size - got)):
                buf = memoryview(bytearray(min(RECV_CHUNK, max(size - got, 1 << 12))))
            while got < size:
                assert buf is not None
                n = conn.recv_into(buf, min(len(buf), size - got))
                if n == 0:
                    raise TransferError(f'short read: transfer {tid} from {t.src}: '
                                        f'{got} of {size} bytes')
                got += n
            end = time.time()
            messages += 1
            self.recv_log.row([tid, t.src, self.me, got, _ts(start), _ts(end)])
            try:
                conn.sendall(ACK)         # before marking: DONE must not beat our own ack
            except OSError as e:
                log(self.me, f'transfer {tid}: ack not sent: {e}')
            with self.cond:
                self.received[tid] = end
                if self.t0 is not None:
                    for sid in self.dependents.get(tid, ()):
                        missing = self.waiting.get(sid)
                        if missing is not None:
                            missing.discard(tid)
                            if not missing:
                                del self.waiting[sid]
                                self._push_ready(self.sends[sid])
                self._check_done()


def _ids(ids: list[int], limit: int = 10) -> str:
    return '[' + ','.join(map(str, ids[:limit])) + (',...' if len(ids) > limit else '') + ']'


def load_hosts(path: str | Path) -> dict[str, str]:
    """HOSTS.json: {"h1": "10.0.0.1", ...} (a '/prefix' suffix is dropped)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SpecError('hosts', f'{path}: {e}') from None
    if not isinstance(data, dict):
        raise SpecError('hosts', f'{path}: must map host name -> IP')
    out = {}
    for name, ip in data.items():
        if not isinstance(ip, str) or not ip:
            raise SpecError(f'hosts.{name}', f'IP must be a string, got {ip!r}')
        out[name] = ip.split('/')[0]
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog='python -m traffic.agent', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--plan', required=True, help='TrafficPlan JSON')
    p.add_argument('--hosts', required=True, help='JSON mapping host name -> IP')
    p.add_argument('--me', required=True, help='this host name')
    p.add_argument('--port', type=int, required=True, help='TCP port every agent listens on')
    p.add_argument('--out', required=True, help='directory for <me>.send.csv / <me>.recv.csv')
    p.add_argument('--deadline-s', type=float, default=120.0,
                   help='fail if not done by t0 + this many seconds')
    p.add_argument('--tcp-cc', help='TCP congestion control for sends (e.g. cubic, bbr)')
    p.add_argument('--bind-ip', help='listen address (default: my IP from --hosts)')
    p.add_argument('--connect-retry-s', type=float, default=5.0,
                   help='keep retrying refused/unreachable connects this long')
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent; returns the exit code."""
    args = parse_args(argv)
    threading.stack_size(1 << 20)
    try:
        agent = _setup(args)
    except (SpecError, OSError) as e:
        log(args.me, f'setup failed: {e}')
        say(failed(f'setup: {e}'))
        return 1

    def on_signal(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise _Terminated(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return _run(agent, args)
    except _Terminated as e:
        name = signal.Signals(e.signum).name
        log(args.me, f'terminated by {name}')
        agent.stop()
        say(failed(f'terminated by {name}'))
        return 128 + e.signum
    finally:
        agent.close_logs()


def _setup(args: argparse.Namespace) -> Agent:
    """The agent of host args.me, listening (SpecError/OSError on bad input)."""
    plan = TrafficPlan.load(args.plan)
    hosts = load_hosts(args.hosts)
    plan.validate(hosts)
    src_ip = hosts.get(args.me) or args.bind_ip
    if not src_ip:
        raise SpecError('me', f'{args.me!r} is not in {args.hosts} and no --bind-ip given')
    agent = Agent(plan, hosts, args.me, args.port, Path(args.out),
                  listen_ip=args.bind_ip or src_ip, src_ip=src_ip,
                  connect_retry_s=args.connect_retry_s, tcp_cc=args.tcp_cc)
    agent.listen()
    return agent


def _run(agent: Agent, args: argparse.Namespace) -> int:
    """READY, open the warm connections on CONNECT, wait for GO, run the schedule until done,
    failed or past the deadline."""
    part = agent.plan.for_host(args.me)
    log(args.me, f'listening on {agent.listen_ip}:{args.port}; {len(part.sends)} sends, '
                 f'{len(part.receives)} receipts planned')
    say(proto.READY)
    line = sys.stdin.readline()
    if line.strip() == proto.CONNECT:      # warm persistent connections open before t0
        try:
            agent.open_warm()
        except (TransferError, OSError) as e:
            reason = f'opening connections: {e}'
            agent.fail(reason)
            agent.finish_failed(reason)
            say(failed(reason))
            return 1
        say(proto.CONNECTED)
        line = sys.stdin.readline()
    t0 = proto.parse_go(line)
    if t0 is None:
        reason = 'stdin closed before GO' if not line else f'expected GO <t0>, got {line!r}'
        agent.fail(reason)
        agent.finish_failed(reason)
        say(failed(reason))
        return 1
    agent.go(t0)
    deadline = t0 + args.deadline_s
    while not agent.finished.wait(timeout=max(0.0, min(1.0, deadline - time.time()))):
        if time.time() >= deadline:
            agent.fail(f'deadline passed ({args.deadline_s:g}s after t0): '
                       + agent.missing_summary())
            break
    if agent.failure is not None:
        agent.finish_failed(agent.failure)
        say(failed(agent.failure))
        return 1
    log(args.me, 'done')
    say(proto.DONE)
    return 0


if __name__ == '__main__':
    try:
        code = main()
    except _Terminated as sig:   # a signal that lands after main's own handler (its finally)
        code = 128 + sig.signum
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)   # daemon threads may still sit in accept()/recv(): do not wait for them
