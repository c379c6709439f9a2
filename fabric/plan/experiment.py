"""An experiment checked end to end: its spec (fabric.spec) and the traffic plan it implies on
every one of its fabrics (the planners reject impossible groups, naming the key).

This is what `fabric check`, `fabric run` and `fabric compare` load; nothing is built until it
has passed.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import networkx as nx

from fabric.plan.traffic import build_plan
from traffic.plan import TrafficPlan
from fabric.spec.experiment import ExperimentSpec, parse_spec, parse_toml, read_experiment_text
from fabric.spec.overrides import Override, apply_overrides, document_text, parse_overrides


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


def load_experiment(path: str | Path, overrides: Sequence[str | Override] = ()) -> ExperimentSpec:
    """Read an experiment TOML file, apply `--set KEY=VALUE` overrides to the document, then
    validate it and the plans it implies (errors name the file's keys, fabric.spec.overrides)."""
    return load_checked(path, overrides)[0]


def load_checked(path: str | Path, overrides: Sequence[str | Override] = ()
                 ) -> tuple[ExperimentSpec, list[tuple[Any, nx.Graph, TrafficPlan]]]:
    """load_experiment, also returning what check_plans built (`fabric check` predicts the
    run's capacity from it)."""
    text = read_experiment_text(path)   # read once: the document and the spec copy's source
    return _checked(parse_toml(text, str(path)), overrides, text)


def experiment_from_document(doc: dict[str, Any], overrides: Sequence[str | Override] = (),
                             source: str = "") -> ExperimentSpec:
    """Validate a document after applying `overrides`; the spec carries the TOML as run
    (`source_toml`: `source` itself when nothing was overridden)."""
    return _checked(doc, overrides, source)[0]


def _checked(doc: dict[str, Any], overrides: Sequence[str | Override], source: str
             ) -> tuple[ExperimentSpec, list[tuple[Any, nx.Graph, TrafficPlan]]]:
    parsed = [o if isinstance(o, Override) else parse_overrides([o])[0] for o in overrides]
    edited = apply_overrides(doc, parsed)
    spec = dataclasses.replace(parse_spec(edited),
                               source_toml=document_text(edited, parsed, source))
    return spec, check_plans(spec)
