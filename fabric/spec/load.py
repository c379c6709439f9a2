"""Turn TOML tables into frozen dataclasses, rejecting unknown keys and wrong types by key path.

The rules come from the dataclass itself, so a spec class is its own schema:

* a field's type hint decides the accepted TOML type (int, float, str, bool, tuple[...], dict,
  a nested dataclass, or a tuple of them); ints are accepted where floats are expected;
* every number must be finite and bounded (README "Bounds"): fields named ``*_bytes`` take
  sizes ("4MB", "512KiB", 4000000) in [1 B, 1 TB]; ``*_s`` are seconds in [0, 86400];
  ``*_mbps`` rates in (0, 100000]; other numbers in [-1e9, 1e9] unless the field says otherwise;
* fields named ``name`` must be safe identifiers (they end up in file and interface names);
* ``positive(lo, hi)`` / ``bounded(lo, hi)`` fields (metadata ``min``, ``max``, ``gt``) add bounds.

Every bad key of a table is reported, not only the first (topologies.errors.SpecErrors).
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, TypeVar

from topologies.errors import Collector, SpecError
from fabric.spec.units import parse_size

SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")  # used with fullmatch (no trailing \n)
MAX_SECONDS = 86400.0          # any *_s field: one day
MAX_MBPS = 100_000.0           # any *_mbps field: 100 Gbit/s
MAX_NUMBER = 1e9               # any other number without its own bounds
T = TypeVar("T")


def check_name(value: str, key: str) -> str:
    """A name that is safe in file names, interface names and shell words."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise SpecError(key, f"{value!r} is not a safe name (letter first, then letters, digits, "
                             f"'-' or '_', at most 40 characters)")
    return value


def load(cls: type[T], table: Any, key: str) -> T:
    """Build dataclass `cls` from a TOML table; `key` is the table's path, used in errors.
    Every bad key of the table is reported (SpecErrors), in field order."""
    if not isinstance(table, dict):
        raise SpecError(key, f"expected a table, got {type(table).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    errors = Collector()
    hints = typing.get_type_hints(cls)
    values = {}
    for name, raw in table.items():  # in the file's order, so errors are too
        sub = _join(key, str(name))
        if name not in fields:
            errors.errors.append(SpecError(sub, f"unknown key (known keys: "
                                                f"{', '.join(sorted(fields))})"))
            continue
        with errors.check():
            value = (parse_size(raw, sub) if name.endswith("_bytes")
                     else _convert(hints[name], raw, sub))
            values[name] = _check_field(name, value, fields[name], sub)
    for name, f in fields.items():
        if name not in table and f.default is dataclasses.MISSING \
                and f.default_factory is dataclasses.MISSING:
            errors.errors.append(SpecError(_join(key, name), "missing required key"))
    errors.raise_any()
    return cls(**values)


def _join(key: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{key}[{name}]"
    return f"{key}.{name}" if key else name


def _convert(hint: Any, value: Any, key: str) -> Any:
    """`value` as the type `hint` names (SpecError naming `key` when it does not fit)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(hint), value, key)
    if origin is typing.Literal:
        args = typing.get_args(hint)
        if not isinstance(value, (str, int, float, bool)) or value not in args:
            raise SpecError(key, f"{value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        return _tuple(typing.get_args(hint)[0], value, key)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise SpecError(key, f"expected a table, got {type(value).__name__}")
        return dict(value)
    if dataclasses.is_dataclass(hint):
        return load(hint, value, key)  # type: ignore[arg-type]
    if hint is Any:
        return value
    return _scalar(hint, value, key)


def _union(options: tuple[Any, ...], value: Any, key: str) -> Any:
    """The first option (None aside) the value fits; else every option's complaint."""
    real = [o for o in options if o is not type(None)]
    if len(real) == 1:  # X | None: errors of X keep their own key path
        return _convert(real[0], value, key)
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _convert(option, value, key)
        except SpecError as exc:
            errors.append(str(exc))
    raise SpecError(key, f"{value!r} does not fit ({'; '.join(errors)})")


def _tuple(item: Any, value: Any, key: str) -> tuple[Any, ...]:
    """A TOML list as a tuple of `item` (a lone string where strings are expected: one item)."""
    if isinstance(value, str) and item is str:
        value = [value]
    if not isinstance(value, list):
        raise SpecError(key, f"expected a list, got {type(value).__name__}")
    errors, out = Collector(), []
    for i, v in enumerate(value):
        with errors.check():
            out.append(_convert(item, v, _join(key, i)))
    errors.raise_any()
    return tuple(out)


def _scalar(hint: Any, value: Any, key: str) -> Any:
    """float (ints accepted), int, str or bool; never a bool where a number is expected."""
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(key, f"expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:
            raise SpecError(key, f"{_short(value)} is too large") from None
        if not math.isfinite(number):
            raise SpecError(key, f"must be a finite number, got {value!r}")
        return number
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(key, f"expected a whole number, got {value!r}")
        return value
    if hint in (str, bool):
        if type(value) is not hint:
            raise SpecError(key, f"expected {hint.__name__}, got {value!r}")
        return value
    raise TypeError(f"spec type {hint!r} at {key} is not supported by specload")


def _short(value: Any) -> str:
    """repr of a value, shortened (a 400-digit integer is not worth printing)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def bounds(name: str, f: dataclasses.Field[Any], value: Any) -> tuple[float, float, bool]:
    """(low, high, low_exclusive) of a numeric field: its metadata, else the naming rules."""
    meta = f.metadata
    if name.endswith("_s"):
        low, high, gt = 0.0, MAX_SECONDS, False
    elif name.endswith("_mbps"):
        low, high, gt = 0.0, MAX_MBPS, True
    else:
        low, high, gt = -MAX_NUMBER, MAX_NUMBER, False
    if "min" in meta:
        low, gt = meta["min"], False
    if "gt" in meta:
        low, gt = meta["gt"], True
    return low, meta.get("max", high), gt


def _check_field(name: str, value: Any, f: dataclasses.Field[Any], key: str) -> Any:
    if name == "name":
        check_name(value, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or name.endswith("_bytes"):
        return value
    low, high, gt = bounds(name, f, value)
    unit = " seconds" if name.endswith("_s") else " Mbit/s" if name.endswith("_mbps") else ""
    if value < low or (gt and value == low):
        raise SpecError(key, f"must be {'>' if gt else '>='} {low:g}{unit}, got {_short(value)}")
    if value > high:
        raise SpecError(key, f"must be <= {high:g}{unit}, got {_short(value)}")
    return value


def positive(minimum: int = 1, maximum: int | None = None, **kw: Any) -> Any:
    """A dataclass field with bounds, e.g. `spines: int = positive(1, 64)`."""
    meta: dict[str, Any] = {"min": minimum}
    if maximum is not None:
        meta["max"] = maximum
    return dataclasses.field(metadata=meta, **kw)


def bounded(low: float, high: float, *, above: bool = False, **kw: Any) -> Any:
    """A numeric dataclass field in [low, high] (or (low, high] with above=True)."""
    meta: dict[str, Any] = {"gt" if above else "min": low, "max": high}
    return dataclasses.field(metadata=meta, **kw)
