"""What Mininet 2.3.0 needs of the standard library that Python 3.12 removed.

mininet.node and mininet.examples.cluster import `distutils.version.StrictVersion` to compare
Open vSwitch versions; distutils is gone from Python 3.12 (Ubuntu 24.04), and the import fails
unless setuptools' shim happens to be installed. `ensure_strict_version()` registers a minimal
`distutils.version` module (only StrictVersion: dotted numeric versions, compared as tuples)
when, and only when, the real one cannot be imported.
"""
from __future__ import annotations

import re
import sys
import types
from functools import total_ordering
from typing import Any


@total_ordering
class StrictVersion:
    """A dotted numeric version ("2.17.9", "3.1.0"; a suffix such as "-rc1" is ignored)."""

    def __init__(self, text: str):
        m = re.match(r"\s*(\d+(?:\.\d+)*)", str(text))
        if m is None:
            raise ValueError(f"invalid version number {text!r}")
        self.version = tuple(int(x) for x in m.group(1).split("."))
        self.version += (0,) * (3 - len(self.version))

    def _other(self, other: Any) -> tuple[int, ...]:
        return (other if isinstance(other, StrictVersion) else StrictVersion(other)).version

    def __eq__(self, other: object) -> bool:
        return self.version == self._other(other)

    def __lt__(self, other: Any) -> bool:
        return self.version < self._other(other)

    def __hash__(self) -> int:
        return hash(self.version)

    def __repr__(self) -> str:
        return f"StrictVersion('{'.'.join(map(str, self.version))}')"


def ensure_strict_version() -> bool:
    """Make `from distutils.version import StrictVersion` work; True if the shim was needed."""
    try:
        from distutils.version import StrictVersion as _real  # noqa: F401
        return False
    except ImportError:
        pass
    pkg = sys.modules.get("distutils") or types.ModuleType("distutils")
    version = types.ModuleType("distutils.version")
    version.StrictVersion = StrictVersion  # type: ignore[attr-defined]
    pkg.version = version  # type: ignore[attr-defined]
    if sys.modules.get("distutils") is None:
        sys.modules["distutils"] = pkg
    sys.modules["distutils.version"] = version
    return True
