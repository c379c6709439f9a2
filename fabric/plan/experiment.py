"""An experiment checked end to end: its spec (fabric.spec) and the traffic plan it implies on
every one of its fabrics (the planners reject impossible groups, naming the key).

This is what `fabric check`, `fabric run` and `fabric compare` load; nothing is built until it
has passed.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

from fabric.plan.traffic import build_plan
from fabric.spec.experiment import ExperimentSpec, parse_spec, read_toml
from fabric.spec.overrides import Override, apply_overrides, document_text, parse_overrides


def check_plans(spec: ExperimentSpec) -> None:
    """Build the traffic plan on every fabric of `spec`; SpecError names the bad key."""
    for fab in spec.fabrics:
        build_plan(spec, fab.build())


def parse_experiment(doc: dict[str, Any]) -> ExperimentSpec:
    """Validate a parsed TOML document and the plans it implies."""
    spec = parse_spec(doc)
    check_plans(spec)
    return spec


def load_experiment(path: str | Path, overrides: Sequence[str | Override] = ()) -> ExperimentSpec:
    """Read an experiment TOML file, apply `--set KEY=VALUE` overrides to the document, then
    validate it and the plans it implies (errors name the file's keys, fabric.spec.overrides)."""
    doc = read_toml(path)
    return experiment_from_document(doc, overrides, Path(path).read_text())


def experiment_from_document(doc: dict[str, Any], overrides: Sequence[str | Override] = (),
                             source: str = "") -> ExperimentSpec:
    """Validate a document after applying `overrides`; the spec carries the TOML as run
    (`source_toml`: `source` itself when nothing was overridden)."""
    parsed = [o if isinstance(o, Override) else parse_overrides([o])[0] for o in overrides]
    edited = apply_overrides(doc, parsed)
    spec = parse_experiment(edited)
    return dataclasses.replace(spec, source_toml=document_text(edited, parsed, source))
