"""Registry of forwarding policies, by the name a spec uses (`policy = "ecmp"`)."""
from __future__ import annotations

from typing import Any, Callable

import networkx as nx

from topologies.errors import SpecError

from controller.policies.base import Policy, PortCounters, Stats

POLICIES: dict[str, type[Policy]] = {}


def register(name: str) -> Callable[[type[Policy]], type[Policy]]:
    """Class decorator: make a Policy subclass available under `name`."""
    def deco(cls: type[Policy]) -> type[Policy]:
        if name in POLICIES:
            raise ValueError(f"policy {name!r} registered twice")
        cls.name = name
        POLICIES[name] = cls
        return cls
    return deco


def make_policy(name: str, graph: nx.Graph, params: dict[str, Any] | None = None) -> Policy:
    """Instantiate a registered policy; SpecError for an unknown name or bad params."""
    cls = POLICIES.get(name)
    if cls is None:
        known = ", ".join(sorted(POLICIES))
        raise SpecError("policy", f"unknown policy {name!r} (known: {known})")
    return cls(graph, params)


# Built-in policies register themselves on import (kept last: they import `register`).
from controller.policies import ecmp  # noqa: E402,F401
from controller.policies import adaptive, priority  # noqa: E402,F401
from controller.policies import ddc, spray  # noqa: E402,F401

__all__ = ["POLICIES", "Policy", "PortCounters", "Stats", "make_policy", "register"]
