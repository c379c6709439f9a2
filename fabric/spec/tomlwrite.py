"""Write a parsed TOML document back as TOML: the experiment as run, after `--set` overrides,
is recorded as the run's spec.toml (fabric.spec.overrides).

Covers what tomllib returns: tables, arrays of tables, inline tables (nested tables inside a
table), lists, strings, integers, floats (inf, nan), booleans, dates and times.
"""
from __future__ import annotations

import datetime
import json
import math
import re
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(doc: dict[str, Any]) -> str:
    """TOML text that tomllib.loads turns back into `doc`."""
    lines = _scalars(doc)
    for key, value in doc.items():
        if isinstance(value, dict):
            lines += ["", f"[{_key(key)}]", *_table_body(value, _key(key))]
        elif _is_table_array(value):
            for item in value:
                lines += ["", f"[[{_key(key)}]]", *_table_body(item, _key(key))]
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _scalars(table: dict[str, Any]) -> list[str]:
    return [f"{_key(k)} = {value(v)}" for k, v in table.items()
            if not isinstance(v, dict) and not _is_table_array(v)]


def _table_body(table: dict[str, Any], prefix: str) -> list[str]:
    lines = _scalars(table)
    for k, v in table.items():  # nested tables and arrays of tables: inline (one line each)
        if isinstance(v, dict) or _is_table_array(v):
            lines.append(f"{_key(k)} = {value(v)}")
    return lines


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def value(v: Any) -> str:
    """One TOML value, inline."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
