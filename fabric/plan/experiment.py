"""An experiment checked end to end: its spec (fabric.spec) and the traffic plan it implies on
every one of its fabrics (the planners reject impossible groups, naming the key).

This is what `fabric check`, `fabric run` and `fabric compare` load; nothing is built until it
has passed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx

from fabric.plan.traffic import build_plan
from traffic.plan import TrafficPlan
from fabric.spec.experiment import ExperimentSpec, parse_spec, read_toml


def check_plans(spec: ExperimentSpec) -> list[tuple[Any, nx.Graph, TrafficPlan]]:
    """Build the traffic plan on every fabric of `spec`; SpecError names the bad key.
    Returns (fabric spec, model, plan) per fabric (`fabric check` predicts capacity from them)."""
    out = []
    for fab in spec.fabrics:
        graph = fab.build()
        out.append((fab, graph, build_plan(spec, graph)))
    return out


def parse_experiment(doc: dict[str, Any]) -> ExperimentSpec:
    """Validate a parsed TOML document and the plans it implies."""
    spec = parse_spec(doc)
    check_plans(spec)
    return spec


def load_checked(path: str | Path) -> tuple[ExperimentSpec, list[tuple[Any, nx.Graph, TrafficPlan]]]:
    """load_experiment, also returning what check_plans built."""
    spec = parse_spec(read_toml(path))
    return spec, check_plans(spec)


def load_experiment(path: str | Path) -> ExperimentSpec:
    """Read and validate an experiment TOML file and the plans it implies."""
    return parse_experiment(read_toml(path))
