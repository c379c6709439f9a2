"""Turn TOML tables into frozen dataclasses, rejecting unknown keys and wrong types by key path.

The rules come from the dataclass itself, so a spec class is its own schema:

* a field's type hint decides the accepted TOML type (int, float, str, bool, tuple[...], dict,
  a nested dataclass, or a tuple of them); ints are accepted where floats are expected;
* fields named ``*_bytes`` take sizes ("4MB", "512KiB", 4000000) and must be positive;
* fields named ``*_mbps`` or ``*_s`` must be >= 0, ``*_mbps`` > 0;
* fields named ``name`` must be safe identifiers (they end up in file and interface names);
* ``field(metadata={"min": N, "choices": (...)})`` adds bounds and enumerations.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, TypeVar

from topologies.errors import SpecError
from fabric.spec.units import parse_size

SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
T = TypeVar("T")


def check_name(value: str, key: str) -> str:
    """A name that is safe in file names, interface names and shell words."""
    if not isinstance(value, str) or not SAFE_NAME.match(value):
        raise SpecError(key, f"{value!r} is not a safe name (letter first, then letters, digits, "
                             f"'-' or '_', at most 40 characters)")
    return value


def load(cls: type[T], table: Any, key: str) -> T:
    """Build dataclass `cls` from a TOML table; `key` is the table's path, used in errors."""
    if not isinstance(table, dict):
        raise SpecError(key, f"expected a table, got {type(table).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise SpecError(_join(key, unknown[0]),
                        f"unknown key (known keys: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        sub = _join(key, name)
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SpecError(sub, "missing required key")
            continue
        raw = table[name]
        value = parse_size(raw, sub) if name.endswith("_bytes") else _convert(hints[name], raw, sub)
        values[name] = _check_field(name, value, f, sub)
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
        if value not in args:
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
    return tuple(_convert(item, v, _join(key, i)) for i, v in enumerate(value))


def _scalar(hint: Any, value: Any, key: str) -> Any:
    """float (ints accepted), int, str or bool; never a bool where a number is expected."""
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(key, f"expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(key, f"expected a whole number, got {value!r}")
        return value
    if hint in (str, bool):
        if type(value) is not hint:
            raise SpecError(key, f"expected {hint.__name__}, got {value!r}")
        return value
    raise TypeError(f"spec type {hint!r} at {key} is not supported by specload")


def _check_field(name: str, value: Any, f: dataclasses.Field, key: str) -> Any:
    if name.endswith("_mbps") and not value > 0:
        raise SpecError(key, f"must be > 0 Mbit/s, got {value!r}")
    if name.endswith("_s") and isinstance(value, float) and value < 0:
        raise SpecError(key, f"must be >= 0 seconds, got {value!r}")
    if name == "name":
        check_name(value, key)
    low = f.metadata.get("min")
    if low is not None and value < low:
        raise SpecError(key, f"must be >= {low}, got {value!r}")
    high = f.metadata.get("max")
    if high is not None and value > high:
        raise SpecError(key, f"must be <= {high}, got {value!r}")
    return value


def positive(minimum: int = 1, maximum: int | None = None, **kw: Any) -> Any:
    """A dataclass field with bounds, e.g. `spines: int = positive(1, 64)`."""
    meta = {"min": minimum}
    if maximum is not None:
        meta["max"] = maximum
    return dataclasses.field(metadata=meta, **kw)
