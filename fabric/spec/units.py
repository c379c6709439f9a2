"""Sizes and rates as a person writes them in an experiment file ("4MB", "512 KiB", 20)."""
from __future__ import annotations

import re

from topologies.errors import SpecError
from topologies.queues import QueueDepth

_SIZE_UNITS = {
    "": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_SIZE_RE = re.compile(r" *([0-9]{1,20}(?:\.[0-9]{1,20})?) *([A-Za-z]{0,3}) *")  # fullmatch
MAX_BYTES = 10**12  # 1 TB: days of transfer at the emulator's tens of Mbit/s


def parse_size(value: object, key: str) -> int:
    """Bytes from an int or a string with a decimal (kB, MB, GB) or binary (KiB, MiB) unit."""
    if isinstance(value, bool):
        raise SpecError(key, f"expected a size in bytes, got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= MAX_BYTES:
            raise SpecError(key, f"size must be 1 B .. 1 TB ({MAX_BYTES} bytes), got {_short(value)}")
        return value
    elif isinstance(value, float) and value.is_integer():
        number, unit = value, ""
    elif isinstance(value, str) and (m := _SIZE_RE.fullmatch(value)):
        number, unit = float(m.group(1)), m.group(2).lower()
        if unit not in _SIZE_UNITS:
            raise SpecError(key, f"unknown size unit {m.group(2)!r} in {value!r} "
                                 f"(use B, kB, MB, GB, KiB, MiB, GiB)")
    else:
        raise SpecError(key, f"expected a size such as 4000000, '4MB' or '512KiB', got {_short(value)}")
    size = number * _SIZE_UNITS[unit]
    if size > MAX_BYTES:
        raise SpecError(key, f"size must be at most 1 TB ({MAX_BYTES} bytes), got {value!r}")
    if size <= 0 or not size.is_integer():
        raise SpecError(key, f"size must be a positive whole number of bytes, got {value!r}")
    return int(size)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def human_bytes(n: float) -> str:
    """'4.19 MB' style, decimal units (as nccl-tests and link rates use)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    raise AssertionError("unreachable")


_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_TIME_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|ms|us)\s*$")


def parse_queue(value: object, key: str) -> QueueDepth | None:
    """A queue depth: packets (an int), bytes ("100KB", "1MiB") or time at line rate ("2ms",
    "500us", "0.01s"); None stays None (the fabric's `queue_packets`)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 2:
            raise SpecError(key, f"must be >= 2 packets, got {value}")
        return QueueDepth(packets=value)
    if isinstance(value, str) and (m := _TIME_RE.match(value)):
        seconds = float(m.group(1)) * _TIME_UNITS[m.group(2)]
        if not seconds > 0:
            raise SpecError(key, f"must be a positive time, got {value!r}")
        return QueueDepth(seconds=seconds)
    if isinstance(value, str):
        return QueueDepth(bytes=parse_size(value, key))
    raise SpecError(key, f"expected packets (100), bytes ('100KB') or time ('2ms'), got {value!r}")
