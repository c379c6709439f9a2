"""Workload kinds, one module each: spec dataclass, checks, planner and summary section.

Every module here registers its kind with fabric.spec.workload.register when imported; this
package imports them all (fabric/__init__.py imports this package), so a new kind is one new
file in this folder (plus its test). The protocol: fabric.spec.workload.Workload.
"""
from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
