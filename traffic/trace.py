"""Replay of LLM inference request traces in the Azure LLM inference trace format.

The format (Azure/AzurePublicDataset, AzureLLMInferenceTrace 2023) is a CSV with
the header TIMESTAMP,ContextTokens,GeneratedTokens and one request per row; TIMESTAMP is a date
time such as `2023-11-16 18:15:46.6805900` (any number of fractional digits) or plain seconds.
The project ships no third-party trace: point `trace` at your own copy.

Arrival times are taken relative to the earliest request and then
  time_scale   multiplies the timeline (2.0 = half the request rate, bursts twice as long);
  rate_factor  in (0, 1] keeps each request with that probability (seeded): a lower rate with
               the trace's burst structure intact.
"""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path

from topologies.errors import SpecError

from .inputfile import read_text

COLUMNS = ('TIMESTAMP', 'ContextTokens', 'GeneratedTokens')
MAX_TOKENS = 10_000_000     # a token count beyond this is not a request
MAX_SPAN_S = 86_400.0       # replayed timeline (after time_scale), seconds


@dataclass(frozen=True)
class TraceRow:
    """One trace request: its timestamp (seconds, any origin) and token counts."""

    timestamp_s: float
    context_tokens: int
    generated_tokens: int


def parse_timestamp(text: str) -> float:
    """Seconds from a number or an ISO-like date time with any number of fractional digits."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    whole, _, frac = text.partition('.')
    base = datetime.fromisoformat(whole).replace(tzinfo=UTC)  # naive: read as UTC
    if frac and not frac.isdigit():
        raise ValueError(f'bad fractional seconds in {text!r}')
    return base.timestamp() + (float(f'0.{frac}') if frac else 0.0)


def read_azure_trace(path: str | Path) -> list[TraceRow]:
    """Rows of an Azure-format trace CSV, sorted by time; SpecError('trace') naming the line."""
    text = read_text(path, 'trace', 'trace file')
    shown = repr(str(path))  # printable; rows are never echoed (the file may be anything)
    rows: list[TraceRow] = []
    reader = csv.DictReader(io.StringIO(text, newline=''))
    try:
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise SpecError('trace', f'{shown}: missing column(s) {", ".join(missing)} '
                                     f'(need the header {",".join(COLUMNS)})')
        for row in reader:
            where = f'{shown} line {reader.line_num}'
            try:
                ts = parse_timestamp(row['TIMESTAMP'])
                ctx, gen = int(row['ContextTokens']), int(row['GeneratedTokens'])
            except (TypeError, ValueError, OverflowError):
                raise SpecError('trace', f'{where}: TIMESTAMP must be seconds or a date time, '
                                         'ContextTokens and GeneratedTokens whole numbers') from None
            if not (1 <= ctx <= MAX_TOKENS and 0 <= gen <= MAX_TOKENS and math.isfinite(ts)):
                raise SpecError('trace', f'{where}: need a finite TIMESTAMP, 1 <= ContextTokens '
                                         f'<= {MAX_TOKENS} and 0 <= GeneratedTokens <= '
                                         f'{MAX_TOKENS}')
            rows.append(TraceRow(ts, ctx, gen))
    except csv.Error as e:
        reason = 'a field is too long' if 'field larger' in str(e) else 'malformed CSV'
        raise SpecError('trace', f'{shown} line {reader.line_num}: {reason}') from None
    if not rows:
        raise SpecError('trace', f'{shown}: no requests')
    rows.sort(key=lambda r: r.timestamp_s)
    return rows


def replay(rows: list[TraceRow], time_scale: float = 1.0, rate_factor: float = 1.0,
           seed: int | str = 0, max_requests: int | None = None) -> list[tuple[float, int, int]]:
    """(arrival_s, prompt tokens, output tokens) per kept request, first arrival at 0."""
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise SpecError('time_scale', f'must be > 0, got {time_scale!r}')
    if not (math.isfinite(rate_factor) and 0 < rate_factor <= 1):
        raise SpecError('rate_factor', f'must be in (0, 1], got {rate_factor!r}')
    rng = random.Random(seed)
    kept = [r for r in rows if rate_factor == 1 or rng.random() < rate_factor]
    kept = kept[:max_requests] if max_requests is not None else kept
    if not kept:
        raise SpecError('rate_factor', f'no request of the trace kept at {rate_factor}')
    t0 = kept[0].timestamp_s
    span = (kept[-1].timestamp_s - t0) * time_scale
    if not span <= MAX_SPAN_S:
        raise SpecError('trace', f'the replayed requests span {span:.3g} s (x time_scale), more '
                                 f'than {MAX_SPAN_S:g} s')
    return [((r.timestamp_s - t0) * time_scale, r.context_tokens, r.generated_tokens)
            for r in kept]
