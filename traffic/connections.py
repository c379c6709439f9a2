"""Which TCP connection carries which transfer: connection reuse as the real stacks do it.

`connections = "persistent"` (the default of collectives and inference) keys every transfer to
a long-lived connection (traffic.plan.Connection); `"per_transfer"` gives every transfer a
connection of its own (handshake and slow start each time, a new source port and ECMP hash
each time). The keys, per workload kind:

  collectives  '<workload>/<src>><dst>/ch<c>': one connection per (peer, channel) for the whole
               job, opened before t0 (NCCL opens its rings' connections, one per channel, at
               communicator set-up and reuses them for every step of every iteration)
  inference    '<workload>/prompt/<client>><prefill>' and '<workload>/kv/<prefill>><decode>':
               one per host pair, opened before t0 (a serving stack's keep-alive front end
               and its KV-transfer engine); '<request>/tokens': one per request decode ->
               client, opened at the request's arrival (the response stream)
  p2p flows    '<workload>/<src>><dst>': one per host pair, opened before t0 (a connection
               pool), when a flows/stride/background workload asks for it
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable, Sequence

from topologies.errors import SpecError

from traffic.plan import CONNECTION_MODES, Connection, Transfer

KeyOf = Callable[[Transfer], 'tuple[str, bool]']   # transfer -> (connection key, warm)


def check_mode(mode: str) -> str:
    """The mode, or SpecError('connections')."""
    if mode not in CONNECTION_MODES:
        raise SpecError('connections', f'{mode!r} is not one of {", ".join(CONNECTION_MODES)}')
    return mode


def assign(transfers: Iterable[Transfer], key_of: KeyOf
           ) -> tuple[list[Transfer], tuple[Connection, ...]]:
    """Every transfer keyed to the connection `key_of` names; one Connection per key (first
    use order). A key must always join the same src and dst."""
    out: list[Transfer] = []
    conns: dict[str, Connection] = {}
    for t in transfers:
        key, warm = key_of(t)
        c = conns.get(key)
        if c is None:
            conns[key] = c = Connection(key, t.src, t.dst, warm)
        elif (c.src, c.dst) != (t.src, t.dst):
            raise SpecError('connections', f'connection {key!r} would join {c.src}->{c.dst} '
                                           f'and {t.src}->{t.dst}')
        out.append(replace(t, conn=key))
    return out, tuple(conns.values())


def per_pair(t: Transfer) -> tuple[str, bool]:
    """One warm connection per (workload, src, dst) and channel."""
    ch = '' if t.channel is None else f'/ch{t.channel}'
    return f'{t.workload}/{t.src}>{t.dst}{ch}', True


def collective(transfers: Sequence[Transfer], mode: str = 'persistent'
               ) -> tuple[list[Transfer], tuple[Connection, ...]]:
    """A training job's transfers over one connection per (peer, channel) for the whole job."""
    if check_mode(mode) == 'per_transfer':
        return list(transfers), ()
    return assign(transfers, lambda t: per_pair(replace(t, channel=t.channel or 0)))


def flows(transfers: Sequence[Transfer], mode: str = 'per_transfer'
          ) -> tuple[list[Transfer], tuple[Connection, ...]]:
    """Point-to-point flows: their own connections, or one pooled connection per host pair."""
    if check_mode(mode) == 'per_transfer':
        return list(transfers), ()
    return assign(transfers, per_pair)


def inference(transfers: Sequence[Transfer], token_step0: int, kv_step: int,
              mode: str = 'persistent') -> tuple[list[Transfer], tuple[Connection, ...]]:
    """Inference requests: prompt and KV transfers over one warm connection per host pair,
    each request's tokens over one connection of its own opened at the request's arrival."""
    if check_mode(mode) == 'per_transfer':
        return list(transfers), ()

    def key(t: Transfer) -> tuple[str, bool]:
        if t.step is not None and t.step >= token_step0:
            return f'{t.group}/tokens', False
        part = 'kv' if t.step == kv_step else 'prompt'
        return f'{t.workload}/{part}/{t.src}>{t.dst}', True
    return assign(transfers, key)
