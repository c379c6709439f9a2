"""Point-to-point flows: independent transfers with a fixed start time (no dependencies)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from topologies.errors import SpecError

from traffic.plan import Transfer

FlowSpec = Sequence[Any] | Mapping[str, Any]


def flows(specs: Sequence[FlowSpec], first_id: int = 0, workload: str = 'p2p',
          group: str | None = None) -> list[Transfer]:
    """Transfers from (src, dst, size_bytes[, start_s]) tuples or {src, dst, size_bytes,
    start_s} mappings; ids first_id, first_id+1, ... in the given order."""
    out: list[Transfer] = []
    for i, spec in enumerate(specs):
        key = f'flows[{i}]'
        if isinstance(spec, Mapping):
            try:
                src, dst, size = spec['src'], spec['dst'], spec['size_bytes']
            except KeyError as e:
                raise SpecError(f'{key}.{e.args[0]}', 'missing') from None
            start = spec.get('start_s', 0.0)
        else:
            if isinstance(spec, str) or len(spec) not in (3, 4):
                raise SpecError(key, 'must be (src, dst, size_bytes[, start_s])')
            src, dst, size = spec[0], spec[1], spec[2]
            start = spec[3] if len(spec) == 4 else 0.0
        if not isinstance(src, str) or not isinstance(dst, str):
            raise SpecError(key, f'src/dst must be host names, got {src!r}, {dst!r}')
        if src == dst:
            raise SpecError(f'{key}.dst', f'src and dst are both {src!r}')
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise SpecError(f'{key}.size_bytes', f'must be an integer > 0, got {size!r}')
        if isinstance(start, bool) or not isinstance(start, (int, float)) \
                or not math.isfinite(start) or start < 0:
            raise SpecError(f'{key}.start_s', f'must be a number >= 0, got {start!r}')
        out.append(Transfer(id=first_id + i, src=src, dst=dst, size_bytes=size,
                            start_s=float(start), workload=workload, group=group))
    return out
