"""The `fabric` command: run, doctor, clean.

Exit codes: 0 success; 1 the run failed or is partial (results are still on disk); 2 bad input
(nothing was built); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .errors import FabricError, SpecError

DEFAULT_OUT = Path("runs")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fabric", description="Emulate AI back-end fabrics on real "
                                "packets (Mininet + Open vSwitch + an os-ken controller).")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one experiment on one fabric and print its summary")
    run.add_argument("experiment", type=Path, help="experiment TOML file (see examples/)")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT,
                     help="directory that receives the new run directory (default: runs/)")
    run.add_argument("--fabric", help="which [[fabric]] of the file to run (default: the first)")
    run.add_argument("--seed", type=int, help="override the experiment's seed")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    check = sub.add_parser("check", help="validate an experiment file without building anything")
    check.add_argument("experiment", type=Path)
    doctor = sub.add_parser("doctor", help="what this machine offers, and how to fix what is missing")
    doctor.add_argument("--json", action="store_true")
    sub.add_parser("clean", help="remove leftovers of a crashed run (bridges, links, processes)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="fabric: %(message)s")
    try:
        return _dispatch(args)
    except SpecError as exc:
        print(f"fabric: error in {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fabric: interrupted; everything the run created was removed", file=sys.stderr)
        return 130
    except FabricError as exc:
        print(f"fabric: {exc}", file=sys.stderr)
        return 1


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise FabricError(f"{what} needs root (Mininet and Open vSwitch do): run it with sudo")


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "doctor":
        from . import doctor
        return doctor.main(["--json"] if args.json else [])
    if args.command == "clean":
        _need_root("fabric clean")
        from .cleanup import clean
        removed = clean()
        print("\n".join(f"removed {item}" for item in removed) or "nothing to clean")
        return 0
    from .spec import load_experiment
    spec = load_experiment(args.experiment)
    if args.command == "check":
        print(f"{args.experiment}: ok ({len(spec.fabrics)} fabric(s), "
              f"{len(spec.workloads)} workload(s))")
        return 0
    if args.fabric is not None:
        spec.fabric(args.fabric)  # bad name -> SpecError before anything is built
    _need_root("fabric run")
    from .engine import run_experiment
    from .results import format_summary
    summary = run_experiment(spec, args.experiment, args.out, args.fabric, args.seed)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(format_summary(summary))
    return 0 if summary.status == "complete" else 1
