"""Background flows: sizes from a flow-size CDF, Poisson arrivals at a target load, random pairs.

CDF files (traffic/data/<name>.csv, or any path) hold `size_bytes,cdf` rows, '#' comments
allowed: P(size <= size_bytes) = cdf, sizes increasing, cdf non-decreasing, last cdf = 1.
Sampling is by inverse transform: the first point is an atom (a fraction cdf_0 of flows has
exactly size_0 bytes, the published tables start there), and sizes are interpolated linearly
between consecutive points (as HPCC's and pFabric's flow generators do).

Load: every host link is offered `load` x its line rate on average, so the fleet-wide arrival
rate is  lambda = load * n_hosts * rate_bps / (8 * mean flow size);  inter-arrival times are
exponential (Poisson), each flow's source is a uniformly random host of the group and its
destination a uniformly random other one. Everything is drawn from one seeded generator.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

from topologies.errors import SpecError

from .inputfile import read_text

from traffic.plan import Transfer

SHIPPED = ('websearch', 'datamining')
MAX_FLOWS = 20000
MAX_FLOW_BYTES = 10**12  # largest size a CDF may give (1 TB)


@dataclass(frozen=True)
class SizeCdf:
    """A piecewise-linear flow-size CDF: ((size_bytes, cumulative fraction), ...)."""

    name: str
    points: tuple[tuple[int, float], ...]

    def sample(self, u: float) -> int:
        """The size at cumulative fraction u in [0, 1) (inverse transform)."""
        s0, c0 = self.points[0]
        if u <= c0:
            return s0
        for (sa, ca), (sb, cb) in zip(self.points, self.points[1:]):
            if u <= cb:
                return round(sa + (sb - sa) * (u - ca) / (cb - ca)) if cb > ca else sb
        return self.points[-1][0]

    def mean_bytes(self) -> float:
        """Exact mean of the distribution sample() draws from."""
        s0, c0 = self.points[0]
        total = s0 * c0
        for (sa, ca), (sb, cb) in zip(self.points, self.points[1:]):
            total += (cb - ca) * (sa + sb) / 2
        return total


def _csv_reason(e: Exception) -> str:
    """csv's complaint without any of the row's text."""
    text = str(e)
    return 'a field is too long' if 'field larger' in text else (
        'a NUL character' if 'NUL' in text else 'malformed quoting')


def parse_cdf(text: str, source: str) -> SizeCdf:
    """A SizeCdf from CSV text; SpecError('cdf', ...) naming the line for bad rows."""
    name = source
    points: list[tuple[int, float]] = []
    rows = csv.reader(io.StringIO(text))
    source = repr(source)  # printable; rows are never echoed (the file may be anything)
    line_no = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as e:
            raise SpecError('cdf', f'{source} line {rows.line_num}: not CSV ({_csv_reason(e)})'
                            ) from None
        line_no = rows.line_num
        if not row or row[0].strip().startswith('#') or row[0].strip() == 'size_bytes':
            continue
        where = f'{source} line {line_no}'
        if len(row) != 2:
            raise SpecError('cdf', f'{where}: expected 2 columns "size_bytes,cdf", '
                                   f'got {len(row)}')
        try:
            size, frac = int(row[0]), float(row[1])
        except ValueError:
            raise SpecError('cdf', f'{where}: size_bytes must be a whole number and cdf a '
                                   'number') from None
        if not 1 <= size <= MAX_FLOW_BYTES or not 0 < frac <= 1:
            raise SpecError('cdf', f'{where}: need 1 <= size_bytes <= {MAX_FLOW_BYTES} and '
                                   '0 < cdf <= 1')
        if points and (size <= points[-1][0] or frac < points[-1][1]):
            raise SpecError('cdf', f'{where}: sizes must increase and cdf must not decrease')
        points.append((size, frac))
    if not points:
        raise SpecError('cdf', f'{source}: no points')
    if not math.isclose(points[-1][1], 1.0):
        raise SpecError('cdf', f'{source}: the last cdf value must be 1.0, '
                               f'got {points[-1][1]}')
    return SizeCdf(Path(name).stem, tuple(points))


def load_cdf(name_or_path: str) -> SizeCdf:
    """A shipped CDF by name (websearch, datamining) or a CSV file by path."""
    if name_or_path in SHIPPED:
        text = resources.files('traffic').joinpath('data', f'{name_or_path}.csv').read_text()
        return parse_cdf(text, name_or_path)
    if not os.path.exists(name_or_path):  # False (no ValueError) for a path with a NUL
        raise SpecError('cdf', f'{name_or_path!r} is neither a shipped CDF '
                               f'({", ".join(SHIPPED)}) nor an existing file')
    text = read_text(name_or_path, 'cdf', 'CDF file')
    return parse_cdf(text, name_or_path)


def arrival_rate_per_s(cdf: SizeCdf, load: float, n_hosts: int, host_rate_mbps: float,
                       size_factor: float = 1.0) -> float:
    """Poisson rate (flows/s) offering `load` x host_rate on each of n_hosts links on average."""
    return load * n_hosts * host_rate_mbps * 1e6 / (8 * cdf.mean_bytes() * size_factor)


def poisson_flows(hosts: Sequence[str], cdf: SizeCdf, load: float, host_rate_mbps: float,
                  duration_s: float, seed: int | str, start_s: float = 0.0,
                  size_factor: float = 1.0, workload: str = 'background', first_id: int = 0
                  ) -> list[Transfer]:
    """Flows arriving in [start_s, start_s + duration_s); sizes = max(1, round(cdf size *
    size_factor)) (a [scale] applied to the CDF's real sizes)."""
    hosts = tuple(hosts)
    if len(hosts) < 2 or len(set(hosts)) != len(hosts):
        raise SpecError('hosts', f'background flows need at least 2 distinct hosts, got {hosts}')
    if not (math.isfinite(load) and 0 < load <= 1):
        raise SpecError('load', f'must be a fraction of the host link rate in (0, 1], '
                                f'got {load!r}')
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise SpecError('duration_s', f'must be > 0, got {duration_s!r}')
    rate = arrival_rate_per_s(cdf, load, len(hosts), host_rate_mbps, size_factor)
    if rate * duration_s > MAX_FLOWS:
        raise SpecError('duration_s', f'{rate * duration_s:.0f} flows expected (at '
                                      f'{rate:.1f}/s), more than {MAX_FLOWS}: shorten it')
    rng = random.Random(seed)
    out: list[Transfer] = []
    t = rng.expovariate(rate)
    while t < duration_s:
        src = rng.choice(hosts)
        dst = rng.choice([h for h in hosts if h != src])
        size = max(1, round(cdf.sample(rng.random()) * size_factor))
        out.append(Transfer(id=first_id + len(out), src=src, dst=dst, size_bytes=size,
                            start_s=start_s + t, workload=workload))
        t += rng.expovariate(rate)
    if not out:
        raise SpecError('duration_s', f'no flow arrives within {duration_s:g} s at {rate:.3g} '
                                      'flows/s: raise the load or the duration')
    return out
