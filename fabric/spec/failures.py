"""Failure specs checked against a fabric model: take a fabric link or switch down mid-run.

    [[failure]]                      [[failure]]
    at_s = 2.0                       at_s = 2.0
    switch = "ncf1"                  link = ["l1", "s1"]
    fabric = "ddc"   # optional: only the fabric of that name ("" = every fabric)

Only fabric-tier elements may fail, and never so that hosts are cut off: every flow must still be
deliverable, which is what the failure test measures. SpecError names the bad key. Planning the
failures is fabric.plan.failures, applying them fabric.run.failures, their impact
fabric.analysis.failures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import networkx as nx

from topologies import model

from topologies.errors import SpecError
from fabric.spec.load import check_name


@dataclass(frozen=True)
class FailureSpec:
    """Take a fabric link (`link = ["l1", "s1"]`) or a fabric switch (`switch = "ncf1"`) down at
    t0 + at_s (fabric.run.failures); `fabric` limits it to the fabric of that name."""
    at_s: float
    link: tuple[str, ...] = ()
    switch: str = ""
    fabric: str = ""



# ---------------------------------------------------------------- validation (pure)

def applies_to(failure: FailureSpec, fabric_name: str) -> bool:
    return not failure.fabric or failure.fabric == fabric_name


def check_failures(failures: Sequence[FailureSpec], graph: nx.Graph, fabric_name: str,
                   fabric_names: Sequence[str], deadline_s: float) -> None:
    """Validate every failure that applies to this fabric; SpecError names the bad key."""
    failed_edges: set[frozenset[str]] = set()
    failed_nodes: set[str] = set()
    for i, f in enumerate(failures):
        key = f"failure[{i}]"
        if f.fabric and f.fabric not in fabric_names:
            raise SpecError(f"{key}.fabric", f"{f.fabric!r} names no fabric "
                                             f"(have: {', '.join(fabric_names)})")
        if not math.isfinite(f.at_s) or f.at_s >= deadline_s:
            raise SpecError(f"{key}.at_s", f"must be before the run's deadline_s ({deadline_s:g}), "
                                           f"got {f.at_s!r}")
        if bool(f.link) == bool(f.switch):
            raise SpecError(key, "give exactly one of link = [a, b] or switch = name")
        if not applies_to(f, fabric_name):
            continue
        where = f"fabric {fabric_name!r}"
        if f.link:
            if len(f.link) != 2:
                raise SpecError(f"{key}.link", f"a link is two switch names, got {list(f.link)}")
            for j, name in enumerate(f.link):
                check_name(name, f"{key}.link[{j}]")
                if name not in graph:
                    raise SpecError(f"{key}.link[{j}]", f"{name!r} is not in {where}")
            a, b = f.link
            if not graph.has_edge(a, b):
                raise SpecError(f"{key}.link", f"{where} has no link {a}-{b}")
            if graph.edges[a, b]["tier"] != "fabric":
                raise SpecError(f"{key}.link", f"{a}-{b} is a host link: only fabric links may "
                                               "fail (the host would lose its flows)")
            failed_edges.add(frozenset((a, b)))
        else:
            check_name(f.switch, f"{key}.switch")
            if f.switch not in graph or graph.nodes[f.switch]["role"] == model.HOST:
                raise SpecError(f"{key}.switch", f"{f.switch!r} is not a switch of {where}")
            if any(graph.nodes[n]["role"] == model.HOST for n in graph.neighbors(f.switch)):
                raise SpecError(f"{key}.switch", f"{f.switch} has hosts: only fabric switches "
                                                 "(spines, NCFs) may fail")
            failed_nodes.add(f.switch)
        survivors = graph.copy()
        survivors.remove_nodes_from(failed_nodes)
        survivors.remove_edges_from(tuple(e) for e in failed_edges)
        if not nx.is_connected(survivors):
            raise SpecError(key, f"with this failure {where} is partitioned: some flows could "
                                 "never be delivered")
