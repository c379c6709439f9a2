"""Failure specs turned into FailureActions: which interfaces (both link ends) go down when.

A switch failure downs every link of the switch; the box itself keeps running (its OpenFlow
connection stays up), as when a real fabric box loses its links.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import networkx as nx

from topologies import model
from fabric.spec.failures import FailureSpec, applies_to



@dataclass(frozen=True)
class FailureAction:
    """What to take down at t0 + at_s: a description and the interfaces (both link ends)."""
    at_s: float
    what: str
    interfaces: tuple[str, ...]


# ---------------------------------------------------------------- planning (pure)

def _link_interfaces(graph: nx.Graph, a: str, b: str) -> tuple[str, str]:
    return (model.intf_name(a, model.port(graph, a, b)),
            model.intf_name(b, model.port(graph, b, a)))


def failure_actions(failures: Iterable[FailureSpec], graph: nx.Graph,
                    fabric_name: str) -> list[FailureAction]:
    """The (validated) failures of this fabric as interface actions, in time order."""
    out = []
    for f in failures:
        if not applies_to(f, fabric_name):
            continue
        if f.link:
            a, b = f.link
            out.append(FailureAction(f.at_s, f"link {a}-{b}", _link_interfaces(graph, a, b)))
        else:
            intfs = tuple(i for n in graph.neighbors(f.switch)
                          for i in _link_interfaces(graph, f.switch, n))
            out.append(FailureAction(f.at_s, f"switch {f.switch}", intfs))
    return sorted(out, key=lambda a: a.at_s)
