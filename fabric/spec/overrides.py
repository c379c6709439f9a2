"""`--set KEY=VALUE`: edit a parsed experiment document (the TOML as a dict) before validation.

The edited document is validated exactly as a file would be, so a bad value gives the file's
error, naming the file's key path (``fabric[1].ncfs``, ``workload[0].size_bytes``).

Key paths (``docs/api.md``):

    seed, name, reference               a top-level key
    run.deadline_s, scale.time_dilation a key of a table (created when absent)
    fabric.KEY                          the only fabric; with several, every fabric whose kind
                                        has KEY (all of them when none has it)
    fabric[N].KEY                       the N-th fabric, counted from 0 as errors count it
    fabric[NAME].KEY, fabric.NAME.KEY   the fabric named NAME, else the only one of kind NAME
    workload..., failure...             the same for [[workload]] and [[failure]] tables
    ....flows[0].size_bytes, hosts[1]   an element of a list
    fabric.policy_params.interval_s     a key of an inline table

A value is a TOML value (``1.0``, ``8``, ``true``, ``"x"``, ``["h1", "h2"]``, ``{a = 1}``),
else the text itself as a string (``8MB``, ``ecmp``).
"""
from __future__ import annotations

import copy
import dataclasses
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fabric.spec import tomlwrite
from topologies.errors import SpecError

SECTIONS = ("fabric", "workload", "failure")  # arrays of tables, addressed by index, name or kind
_STEP = re.compile(r"(?:^|\.)([A-Za-z_][A-Za-z0-9_-]*)|\[([A-Za-z0-9_-]+)\]")


@dataclass(frozen=True)
class Override:
    """One `KEY=VALUE`: the key path as written, its steps and the parsed value."""
    text: str
    key: str
    steps: tuple[tuple[str, Any], ...]
    value: Any


def parse_value(text: str) -> Any:
    """A TOML value, else the text as a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_key(key: str, what: str = "--set") -> tuple[tuple[str, Any], ...]:
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(key):
        m = _STEP.match(key, pos)
        if m is None or m.end() == pos:
            raise SpecError(what, f"{key!r} is not a key path (e.g. fabric.speedup, "
                                  f"workload[stride].size_bytes, fabric[0].policy_params.x)")
        if m.group(1) is not None:
            steps.append(("key", m.group(1)))
        else:
            sel = m.group(2)
            steps.append(("index", int(sel)) if sel.isdigit() else ("select", sel))
        pos = m.end()
    if not steps or steps[0][0] != "key":
        raise SpecError(what, f"{key!r} must start with a key name")
    return tuple(steps)


def parse_override(text: str, what: str = "--set") -> Override:
    """`KEY=VALUE` -> Override; SpecError naming `what` when it is not of that form."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(what, f"{text!r} is not KEY=VALUE (e.g. fabric.speedup=1.0)")
    return Override(text, key, parse_key(key, what), parse_value(value.strip()))


def parse_overrides(texts: Sequence[str], what: str = "--set") -> list[Override]:
    return [parse_override(t, what) for t in texts]


def apply_overrides(doc: dict[str, Any], overrides: Sequence[Override]) -> dict[str, Any]:
    """A copy of `doc` with every override applied in order (the last one wins)."""
    out = copy.deepcopy(doc)
    for o in overrides:
        _apply(out, o)
    return out


def document_text(doc: dict[str, Any], overrides: Sequence[Override], source: str = "") -> str:
    """The experiment as run, for the run's spec.toml: the file's own text when nothing was
    overridden, else the edited document with the overrides listed on top."""
    if not overrides and source:
        return source
    head = "".join(f"#   {o.text}\n" for o in overrides)
    if head:
        head = "# the experiment file with these overrides applied (--set):\n" + head + "\n"
    return head + tomlwrite.dumps(doc)


def _spec_class(section: str, table: Any) -> type | None:
    from fabric.spec.experiment import FABRIC_KINDS
    from fabric.spec.failures import FailureSpec
    from fabric.spec.workload import WORKLOADS
    if section == "failure":
        return FailureSpec
    kinds: dict[str, Any] = FABRIC_KINDS if section == "fabric" else WORKLOADS
    kind = table.get("kind") if isinstance(table, dict) else None
    return kinds.get(kind) if isinstance(kind, str) else None


def _accepts(section: str, table: Any, key: str) -> bool:
    """Does the spec class of this entry's kind have `key`?"""
    cls = _spec_class(section, table)
    return cls is not None and key in {f.name for f in dataclasses.fields(cls)}


def _entry_name(section: str, table: Any) -> Any:
    """The entry's name as the spec will have it (its `name`, else its kind's default)."""
    if not isinstance(table, dict):
        return None
    if "name" in table:
        return table["name"]
    cls = _spec_class(section, table)
    default = {f.name: f.default for f in dataclasses.fields(cls)}.get("name") if cls else None
    return default if isinstance(default, str) else table.get("kind")


def _select(section: str, entries: list[Any], sel: str) -> int | None:
    """Index of the entry named `sel`, else of the only entry of kind `sel`; None if neither."""
    for i, t in enumerate(entries):
        if _entry_name(section, t) == sel:
            return i
    kinds = [i for i, t in enumerate(entries) if isinstance(t, dict) and t.get("kind") == sel]
    if len(kinds) > 1:
        names = ", ".join(str(_entry_name(section, entries[i])) for i in kinds)
        raise SpecError(f"{section}[{sel}]", f"{len(kinds)} {section}s are of kind {sel!r} "
                                             f"({names}): name one")
    return kinds[0] if kinds else None


def _describe(section: str, entries: list[Any]) -> str:
    return ", ".join(f"[{i}] {_entry_name(section, t)}"
                     + (f" ({t['kind']})" if isinstance(t, dict) and "kind" in t else "")
                     for i, t in enumerate(entries))


def _apply(doc: dict[str, Any], o: Override) -> None:
    steps = list(o.steps)
    _, top = steps[0]
    if top not in SECTIONS or len(steps) == 1 or top not in doc:
        _set(doc, top, steps[1:], o.value, top)
        return
    value = doc[top]
    entries = [value] if isinstance(value, dict) else value
    if not isinstance(entries, list):
        _set(doc, top, steps[1:], o.value, top)  # the file's validation reports the type
        return
    kind, arg = steps[1]
    rest = steps[2:]
    if kind == "index":
        if not 0 <= arg < len(entries):
            raise SpecError(f"{top}[{arg}]", f"no such {top}: the experiment has {len(entries)} "
                                             f"({_describe(top, entries)})")
        targets = [arg]
    elif kind == "select" or (len(steps) > 2 and _select(top, entries, arg) is not None):
        i = _select(top, entries, arg)
        if i is None:
            raise SpecError(f"{top}[{arg}]", f"no {top} named or of kind {arg!r} "
                                             f"(have: {_describe(top, entries)})")
        targets = [i]
    else:  # fabric.KEY: the only one, or every one whose kind has KEY
        rest = steps[1:]
        targets = list(range(len(entries)))
        if len(entries) > 1:
            having = [i for i in targets if _accepts(top, entries[i], arg)]
            targets = having or targets
    for i in targets:
        path = f"{top}[{i}]"
        if not rest:
            entries[i] = o.value
        else:
            _set_in(entries[i], rest, o.value, path)
    if isinstance(value, dict):
        doc[top] = entries[0]


def _set(node: dict[str, Any], key: str, rest: list[tuple[str, Any]], value: Any, path: str) -> None:
    if not rest:
        node[key] = value
        return
    if key not in node and rest[0][0] == "key":
        node[key] = {}
    if key not in node:
        raise SpecError(path, "missing: there is no list here to index")
    _set_in(node[key], rest, value, path)


def _set_in(node: Any, steps: list[tuple[str, Any]], value: Any, path: str) -> None:
    kind, arg = steps[0]
    if kind == "key":
        if not isinstance(node, dict):
            raise SpecError(path, f"is {_type(node)}, not a table: it has no key {arg!r}")
        _set(node, arg, steps[1:], value, f"{path}.{arg}")
        return
    if kind == "select":
        raise SpecError(f"{path}[{arg}]", "only fabric, workload and failure entries are selected "
                                          "by name; use a number")
    if not isinstance(node, list):
        raise SpecError(path, f"is {_type(node)}, not a list: it has no element [{arg}]")
    if not 0 <= arg < len(node):
        raise SpecError(f"{path}[{arg}]", f"no such element (the list has {len(node)})")
    if len(steps) == 1:
        node[arg] = value
    else:
        _set_in(node[arg], steps[1:], value, f"{path}[{arg}]")


def _type(x: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "a whole number",
            float: "a number"}.get(type(x), type(x).__name__)
