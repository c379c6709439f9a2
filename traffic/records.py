"""Flow records: the agents' raw per-host CSV rows joined with the plan, one row per transfer.

Every planned transfer gets a record, so a transfer that never arrived is visible
(complete=False, end/fct empty) instead of silently missing from the statistics.
FCT = end (last byte read by the receiver) - start (sender about to connect), one clock.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Mapping

from traffic.plan import TrafficPlan

COLUMNS = ('flow_id', 'src', 'dst', 'bytes', 'start', 'end', 'fct_s', 'workload', 'group',
           'step', 'complete', 'error')


@dataclass(frozen=True)
class FlowRecord:
    """One planned transfer and what happened to it; `bytes` is the planned size."""

    flow_id: int
    src: str
    dst: str
    bytes: int
    start: float | None
    end: float | None
    fct_s: float | None
    workload: str
    group: str | None
    step: int | None
    complete: bool
    error: str = ''


def _read_rows(paths: Iterable[Path]) -> dict[int, dict[str, str]]:
    """id -> first row seen (files of a run never repeat an id; a torn last line is skipped)."""
    out: dict[int, dict[str, str]] = {}
    for p in sorted(paths):
        with open(p, newline='') as f:
            for row in csv.DictReader(f):
                try:
                    tid = int(row['id'])
                except (KeyError, TypeError, ValueError):
                    continue
                out.setdefault(tid, row)
    return out


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, '') else None
    except ValueError:
        return None


def collect(out_dir: str | Path, plan: TrafficPlan,
            clock_offset_s: Mapping[str, float] | None = None) -> list[FlowRecord]:
    """Join DIR/*.recv.csv and DIR/*.send.csv with the plan (plan order). `clock_offset_s`:
    host -> seconds its clock is ahead of the reference clock (hosts on several machines):
    `start` (the sender's clock) and `end` (the receiver's) are moved onto the reference clock,
    so a flow between machines is timed on one clock."""
    off = clock_offset_s or {}
    d = Path(out_dir)
    recv = _read_rows(d.glob('*.recv.csv'))
    send = _read_rows(d.glob('*.send.csv'))
    records = []
    for t in plan.transfers:
        r, s = recv.get(t.id), send.get(t.id)
        start = _float(s.get('start')) if s else None
        if start is None and r:
            start = _float(r.get('start'))
        end = _float(r.get('end')) if r else None
        start = None if start is None else start - off.get(t.src, 0.0)
        end = None if end is None else end - off.get(t.dst, 0.0)
        got = int(r['bytes']) if r and r.get('bytes', '').isdigit() else None
        complete = (r is not None and end is not None and start is not None
                    and got == t.size_bytes and r.get('src') == t.src and r.get('dst') == t.dst)
        error = (s.get('error') or '') if s else ''
        if r and not complete:
            error = error or f'receipt does not match the plan ({got} bytes)'
        records.append(FlowRecord(
            flow_id=t.id, src=t.src, dst=t.dst, bytes=t.size_bytes, start=start,
            end=end if complete else None,
            fct_s=(end - start) if complete and end is not None and start is not None else None,
            workload=t.workload, group=t.group, step=t.step, complete=complete, error=error))
    return records


def _cell(v: object) -> str:
    if v is None:
        return ''
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, float):
        return f'{v:.6f}'
    return str(v)


def write_csv(records: Iterable[FlowRecord], path: str | Path) -> None:
    """One row per record; empty cells for None; complete as true/false."""
    with open(path, 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(COLUMNS)
        for rec in records:
            w.writerow([_cell(getattr(rec, c)) for c in COLUMNS])


def read_csv(path: str | Path) -> list[FlowRecord]:
    """Inverse of write_csv."""
    out = []
    with open(path, newline='') as f:
        for row in csv.DictReader(f):
            out.append(FlowRecord(
                flow_id=int(row['flow_id']), src=row['src'], dst=row['dst'],
                bytes=int(row['bytes']), start=_float(row['start']), end=_float(row['end']),
                fct_s=_float(row['fct_s']), workload=row['workload'],
                group=row['group'] or None,
                step=int(row['step']) if row['step'] else None,
                complete=row['complete'] == 'true', error=row.get('error') or ''))
    return out


assert tuple(f.name for f in fields(FlowRecord)) == COLUMNS


def span(records: Iterable[FlowRecord]) -> tuple[float, float] | None:
    """(earliest start, latest end) over the records that have both times; None if none has."""
    pairs = [(r.start, r.end) for r in records if r.start is not None and r.end is not None]
    if not pairs:
        return None
    return min(s for s, _ in pairs), max(e for _, e in pairs)
