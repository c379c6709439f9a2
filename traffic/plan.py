"""Deterministic traffic plans: what every host sends, to whom, when and after what.

A plan is a DAG of transfers whose dependencies are local to a host: a transfer leaves `src`
only after every transfer in `after` has fully arrived at `src`. Each agent can therefore run
its part of the plan alone, with nothing but its own receipts and the shared clock.
Plans are pure data (JSON on disk) so the same plan and seed replay on every fabric.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

from topologies.errors import SpecError

PLAN_FORMAT = 1
SPORT_MIN = 20000
SPORT_MAX = 59999
CONNECTION_MODES = ('persistent', 'per_transfer')


@dataclass(frozen=True)
class Transfer:
    """One message of `size_bytes` from `src` to `dst`.

    The sender offers it no earlier than t0 + start_s, and only once every id in `after` has
    arrived at `src` (all must have dst == src); then it waits `gap_s` more (compute time).
    `group`/`step` tie it to a collective instance and its step; `chunk` is the ring chunk index.
    `conn` names the persistent connection (TrafficPlan.connections) that carries it, behind
    the messages offered to that connection before it; None: a TCP connection of its own.
    `channel` is the parallel connection (NCCL channel) of a collective transfer.
    """

    id: int
    src: str
    dst: str
    size_bytes: int
    start_s: float = 0.0
    after: tuple[int, ...] = ()
    gap_s: float = 0.0
    workload: str = ''
    group: str | None = None
    step: int | None = None
    chunk: int | None = None
    channel: int | None = None
    conn: str | None = None


@dataclass(frozen=True)
class Connection:
    """A long-lived TCP connection `src` -> `dst` (NCCL's connection per peer and channel, a
    serving stack's stream per request or per prefill/decode pair).

    It carries every transfer whose `conn` is `key`, one after the other in the order they
    are offered, as framed messages; its source port comes from (seed, key), so its ECMP path
    is fixed for its whole life. `warm`: opened before t0 (communicator/engine set-up, its
    handshake outside every FCT); else opened at t0 + the earliest start_s of its transfers
    (e.g. a request's arrival)."""

    key: str
    src: str
    dst: str
    warm: bool = True


@dataclass(frozen=True)
class Collective:
    """One collective instance; `size_bytes` is S as nccl-tests defines it for `kind`;
    `channels` parallel TCP connections carry each of its steps (traffic.collectives)."""

    id: str
    kind: str
    algorithm: str
    hosts: tuple[str, ...]
    size_bytes: int
    channels: int = 1


class HostPart(NamedTuple):
    """A host's share of a plan: the transfers it sends and those it must receive."""

    sends: list[Transfer]
    receives: list[Transfer]


def source_port(seed: int, transfer_id: int | str) -> int:
    """Deterministic TCP source port in [20000, 59999] for a transfer's own connection (its
    id) or a persistent connection (its key), so ECMP's 5-tuple hash (and hence path choice)
    is reproducible for a given seed."""
    digest = hashlib.blake2b(f"{seed}:{transfer_id}".encode(), digest_size=8).digest()
    return SPORT_MIN + int.from_bytes(digest, 'big') % (SPORT_MAX - SPORT_MIN + 1)


@dataclass(frozen=True)
class TrafficPlan:
    """A named, seeded set of transfers (plus the collectives they implement)."""

    name: str
    seed: int
    transfers: tuple[Transfer, ...]
    collectives: tuple[Collective, ...] = field(default=())
    connections: tuple[Connection, ...] = field(default=())

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return {
            'format': PLAN_FORMAT,
            'name': self.name,
            'seed': self.seed,
            'transfers': [
                {**asdict(t), 'after': list(t.after)} for t in self.transfers
            ],
            'collectives': [
                {**asdict(c), 'hosts': list(c.hosts)} for c in self.collectives
            ],
            'connections': [asdict(c) for c in self.connections],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrafficPlan:
        """Inverse of to_dict; malformed input raises SpecError naming the key."""
        if not isinstance(data, Mapping):
            raise SpecError('plan', 'must be a JSON object')
        fmt = data.get('format', PLAN_FORMAT)
        if fmt != PLAN_FORMAT:
            raise SpecError('format', f'unsupported plan format {fmt!r}')
        name = _typed(data, 'name', str, 'name', default='plan')
        seed = _typed(data, 'seed', int, 'seed', default=0)
        raw_t = data.get('transfers', [])
        if not isinstance(raw_t, list):
            raise SpecError('transfers', 'must be a list')
        transfers = tuple(_transfer_from(d, f'transfers[{i}]') for i, d in enumerate(raw_t))
        raw_c = data.get('collectives', [])
        if not isinstance(raw_c, list):
            raise SpecError('collectives', 'must be a list')
        collectives = tuple(_collective_from(d, f'collectives[{i}]') for i, d in enumerate(raw_c))
        raw_k = data.get('connections', [])
        if not isinstance(raw_k, list):
            raise SpecError('connections', 'must be a list')
        conns = tuple(_connection_from(d, f'connections[{i}]') for i, d in enumerate(raw_k))
        return cls(name=name, seed=seed, transfers=transfers, collectives=collectives,
                   connections=conns)

    def save(self, path: str | Path) -> None:
        """Write the plan as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + '\n')

    @classmethod
    def load(cls, path: str | Path) -> TrafficPlan:
        """Read a plan written by save()."""
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise SpecError('plan', f'{path}: not valid JSON: {e}') from None
        return cls.from_dict(data)

    # ---- checks and views ----------------------------------------------------------------
    def validate(self, host_names: Iterable[str] | None = None) -> None:
        """Raise SpecError unless the plan is runnable on `host_names` (None: skip host check):
        known hosts, src != dst, size > 0, unique ids, local existing `after` ids, no cycles,
        every `conn` a declared connection with the transfer's src and dst."""
        hosts = None if host_names is None else set(host_names)
        by_id: dict[int, int] = {}
        for i, t in enumerate(self.transfers):
            key = f'transfers[{i}]'
            if t.id in by_id:
                raise SpecError(f'{key}.id', f'duplicate transfer id {t.id} '
                                f'(also transfers[{by_id[t.id]}])')
            by_id[t.id] = i
            for attr in ('src', 'dst'):
                h = getattr(t, attr)
                if hosts is not None and h not in hosts:
                    raise SpecError(f'{key}.{attr}', f'unknown host {h!r}')
            if t.src == t.dst:
                raise SpecError(f'{key}.dst', f'src and dst are both {t.src!r}')
            if t.size_bytes <= 0:
                raise SpecError(f'{key}.size_bytes', f'must be > 0, got {t.size_bytes}')
            for attr in ('start_s', 'gap_s'):
                v = getattr(t, attr)
                if not math.isfinite(v) or v < 0:
                    raise SpecError(f'{key}.{attr}', f'must be a finite number >= 0, got {v}')
        for i, t in enumerate(self.transfers):
            for dep in t.after:
                if dep not in by_id:
                    raise SpecError(f'transfers[{i}].after', f'transfer {t.id} waits for '
                                    f'unknown transfer id {dep}')
                d = self.transfers[by_id[dep]]
                if d.dst != t.src:
                    raise SpecError(f'transfers[{i}].after', f'transfer {t.id} (sent by '
                                    f'{t.src!r}) waits for transfer {dep} which arrives at '
                                    f'{d.dst!r}: dependencies must be local to the sender')
        conns: dict[str, Connection] = {}
        for i, conn in enumerate(self.connections):
            if conn.key in conns:
                raise SpecError(f'connections[{i}].key', f'duplicate connection {conn.key!r}')
            conns[conn.key] = conn
        for i, t in enumerate(self.transfers):
            if t.conn is None:
                continue
            found = conns.get(t.conn)
            if found is None:
                raise SpecError(f'transfers[{i}].conn', f'unknown connection {t.conn!r}')
            if (found.src, found.dst) != (t.src, t.dst):
                raise SpecError(f'transfers[{i}].conn', f'connection {t.conn!r} runs '
                                f'{found.src}->{found.dst}, transfer {t.id} {t.src}->{t.dst}')
        cycle = _find_cycle(self.transfers)
        if cycle:
            i = by_id[cycle[0]]
            raise SpecError(f'transfers[{i}].after', 'dependency cycle: transfer '
                            + ' waits for '.join(map(str, cycle + [cycle[0]])))
        seen: set[str] = set()
        for i, c in enumerate(self.collectives):
            if c.id in seen:
                raise SpecError(f'collectives[{i}].id', f'duplicate collective id {c.id!r}')
            seen.add(c.id)
            for h in c.hosts:
                if hosts is not None and h not in hosts:
                    raise SpecError(f'collectives[{i}].hosts', f'unknown host {h!r}')

    def connections_of(self, name: str) -> list[Connection]:
        """The persistent connections `name` opens (it is their src), in plan order."""
        return [c for c in self.connections if c.src == name]

    def for_host(self, name: str) -> HostPart:
        """Transfers sent by `name` and transfers expected at `name`, in plan order."""
        return HostPart([t for t in self.transfers if t.src == name],
                        [t for t in self.transfers if t.dst == name])

    def hosts(self) -> list[str]:
        """Every host named by a transfer or collective, sorted."""
        names = {t.src for t in self.transfers} | {t.dst for t in self.transfers}
        for c in self.collectives:
            names.update(c.hosts)
        return sorted(names)

    def by_id(self) -> dict[int, Transfer]:
        """Transfers indexed by id."""
        return {t.id: t for t in self.transfers}

    @staticmethod
    def merge(*plans: TrafficPlan, name: str | None = None,
              seed: int | None = None) -> TrafficPlan:
        """See module-level merge()."""
        return merge(*plans, name=name, seed=seed)


def merge(*plans: TrafficPlan, name: str | None = None, seed: int | None = None) -> TrafficPlan:
    """Combine workloads into one plan: ids renumbered 0.. in order (and `after` remapped),
    collectives concatenated (their ids must stay unique). Name defaults to the names joined
    by '+', seed to the first plan's seed."""
    if not plans:
        raise SpecError('plans', 'nothing to merge')
    out: list[Transfer] = []
    colls: list[Collective] = []
    conns: list[Connection] = []
    seen: dict[str, set[str]] = {'collectives': set(), 'connections': set()}

    def unique(p_idx: int, what: str, name: str, kind: str) -> None:
        if name in seen[what]:
            raise SpecError(f'plans[{p_idx}].{what}', f'{kind} {name!r} used by two merged plans')
        seen[what].add(name)
    next_id = 0
    for p_idx, p in enumerate(plans):
        mapping: dict[int, int] = {}
        for t in p.transfers:
            if t.id in mapping:
                raise SpecError(f'plans[{p_idx}].transfers', f'duplicate transfer id {t.id}')
            mapping[t.id] = next_id
            next_id += 1
        for t in p.transfers:
            try:
                after = tuple(mapping[a] for a in t.after)
            except KeyError as e:
                raise SpecError(f'plans[{p_idx}].transfers', f'transfer {t.id} waits for '
                                f'unknown transfer id {e.args[0]}') from None
            out.append(replace(t, id=mapping[t.id], after=after))
        for c in p.collectives:
            unique(p_idx, 'collectives', c.id, 'collective id')
            colls.append(c)
        for k in p.connections:
            unique(p_idx, 'connections', k.key, 'connection')
            conns.append(k)
    return TrafficPlan(name=name if name is not None else '+'.join(p.name for p in plans),
                       seed=seed if seed is not None else plans[0].seed,
                       transfers=tuple(out), collectives=tuple(colls),
                       connections=tuple(conns))


# ---- helpers -------------------------------------------------------------------------------
_MISSING = object()


def _typed(d: Mapping[str, Any], k: str, typ: type | tuple[type, ...], key: str,
           default: Any = _MISSING) -> Any:
    """d[k] checked against typ (bool is never an int/float here)."""
    if k not in d:
        if default is _MISSING:
            raise SpecError(key, 'missing')
        return default
    v = d[k]
    if isinstance(v, bool) or not isinstance(v, typ):
        names = typ.__name__ if isinstance(typ, type) else '/'.join(t.__name__ for t in typ)
        raise SpecError(key, f'must be {names}, got {v!r}')
    return v


def _transfer_from(d: Any, key: str) -> Transfer:
    if not isinstance(d, Mapping):
        raise SpecError(key, 'must be an object')
    known = set(Transfer.__dataclass_fields__)
    extra = set(d) - known
    if extra:
        raise SpecError(f'{key}.{sorted(extra)[0]}', 'unknown field')
    after = _typed(d, 'after', list, f'{key}.after', default=[])
    for j, a in enumerate(after):
        if isinstance(a, bool) or not isinstance(a, int):
            raise SpecError(f'{key}.after[{j}]', f'must be int, got {a!r}')
    group = d.get('group')
    if group is not None and not isinstance(group, str):
        raise SpecError(f'{key}.group', f'must be str or null, got {group!r}')
    opt_int = {}
    conn = d.get('conn')
    if conn is not None and not isinstance(conn, str):
        raise SpecError(f'{key}.conn', f'must be str or null, got {conn!r}')
    for k in ('step', 'chunk', 'channel'):
        v = d.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise SpecError(f'{key}.{k}', f'must be int or null, got {v!r}')
        opt_int[k] = v
    return Transfer(
        id=_typed(d, 'id', int, f'{key}.id'),
        src=_typed(d, 'src', str, f'{key}.src'),
        dst=_typed(d, 'dst', str, f'{key}.dst'),
        size_bytes=_typed(d, 'size_bytes', int, f'{key}.size_bytes'),
        start_s=float(_typed(d, 'start_s', (int, float), f'{key}.start_s', default=0.0)),
        after=tuple(after),
        gap_s=float(_typed(d, 'gap_s', (int, float), f'{key}.gap_s', default=0.0)),
        workload=_typed(d, 'workload', str, f'{key}.workload', default=''),
        group=group, step=opt_int['step'], chunk=opt_int['chunk'],
        channel=opt_int['channel'], conn=conn)


def _connection_from(d: Any, key: str) -> Connection:
    if not isinstance(d, Mapping):
        raise SpecError(key, 'must be an object')
    warm = d.get('warm', True)
    if not isinstance(warm, bool):
        raise SpecError(f'{key}.warm', f'must be true or false, got {warm!r}')
    return Connection(key=_typed(d, 'key', str, f'{key}.key'),
                      src=_typed(d, 'src', str, f'{key}.src'),
                      dst=_typed(d, 'dst', str, f'{key}.dst'), warm=warm)


def _collective_from(d: Any, key: str) -> Collective:
    if not isinstance(d, Mapping):
        raise SpecError(key, 'must be an object')
    hosts = _typed(d, 'hosts', list, f'{key}.hosts')
    for j, h in enumerate(hosts):
        if not isinstance(h, str):
            raise SpecError(f'{key}.hosts[{j}]', f'must be str, got {h!r}')
    return Collective(id=_typed(d, 'id', str, f'{key}.id'),
                      kind=_typed(d, 'kind', str, f'{key}.kind'),
                      algorithm=_typed(d, 'algorithm', str, f'{key}.algorithm'),
                      hosts=tuple(hosts),
                      size_bytes=_typed(d, 'size_bytes', int, f'{key}.size_bytes'),
                      channels=_typed(d, 'channels', int, f'{key}.channels', default=1))


def _find_cycle(transfers: Iterable[Transfer]) -> list[int] | None:
    """A dependency cycle as a list of ids, or None (iterative DFS; plans can be large)."""
    deps = {t.id: list(t.after) for t in transfers}
    state: dict[int, int] = {}  # 1 = on stack, 2 = done
    for root in deps:
        if state.get(root):
            continue
        stack: list[tuple[int, int]] = [(root, 0)]
        path: list[int] = [root]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            children = deps.get(node, [])
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if child not in deps:
                    continue
                s = state.get(child)
                if s == 1:
                    return path[path.index(child):]
                if s is None:
                    state[child] = 1
                    stack.append((child, 0))
                    path.append(child)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None
