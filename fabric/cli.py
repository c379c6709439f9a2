"""The `fabric` command: run, compare, check, doctor, clean.

Exit codes: 0 success; 1 the run failed or is partial (results are still on disk); 2 bad input
(nothing was built); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any
from pathlib import Path

from topologies.errors import FabricError, SpecError

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
    cmp = sub.add_parser("compare", help="run every fabric of an experiment for several seeds and "
                         "write a side-by-side report (fabric/compare.py)")
    cmp.add_argument("experiment", type=Path, help="experiment TOML file listing [[fabric]] entries")
    cmp.add_argument("--seeds", type=_seed_count, default=3,
                     help="seeds per fabric: the experiment's seed, seed+1, ... (default: 3)")
    cmp.add_argument("--out", type=Path, default=DEFAULT_OUT,
                     help="directory that receives the new report directory (default: runs/)")
    cmp.add_argument("--json", action="store_true", help="print the comparison as JSON (README.md)")
    check = sub.add_parser("check", help="validate an experiment file without building anything")
    check.add_argument("experiment", type=Path)
    doctor = sub.add_parser("doctor", help="what this machine offers, and how to fix what is missing")
    doctor.add_argument("--json", action="store_true")
    sub.add_parser("clean", help="remove leftovers of a crashed run (bridges, links, processes)")
    return p


def _seed_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, got {n}")
    return n


def _capacity_lines(spec: Any, planned: list[Any]) -> list[str]:
    """`fabric check`'s prediction per fabric: does the plan fit this machine's capacity?"""
    from fabric.analysis.capacity import predict
    from fabric.run.datapath import choose_datapath
    try:
        datapath = choose_datapath(spec.run.datapath)
    except Exception:  # noqa: BLE001 - no OVS here: predict for the userspace datapath
        datapath = "user"
    return [predict(fab.name, graph, plan, datapath).message() for fab, graph, plan in planned]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)  # run logs at INFO go to the run's engine.log only
    console.setFormatter(logging.Formatter("fabric: %(message)s"))
    logging.getLogger().addHandler(console)
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
        from fabric import doctor
        return doctor.main(["--json"] if args.json else [])
    if args.command == "clean":
        _need_root("fabric clean")
        from fabric.run.cleanup import clean
        removed = clean()
        print("\n".join(f"removed {item}" for item in removed) or "nothing to clean")
        return 0
    from fabric.plan.experiment import load_checked
    spec, planned = load_checked(args.experiment)
    if args.command == "check":
        print(f"{args.experiment}: ok ({len(spec.fabrics)} fabric(s), "
              f"{len(spec.workloads)} workload(s))")
        for line in _capacity_lines(spec, planned):
            print(line)
        return 0
    if args.command == "compare":
        from fabric.analysis.comparison import check_comparable
        from fabric.report.compare_text import format_comparison
        from fabric.run.compare import run_comparison
        check_comparable(spec)  # bad input -> SpecError before anything is built
        _need_root("fabric compare")
        for line in _capacity_lines(spec, planned):
            if "WARNING" in line:
                print(line, file=sys.stderr)
        comp = run_comparison(spec, args.experiment, args.out, args.seeds)
        print(json.dumps(comp.to_dict(), indent=2) if args.json else format_comparison(comp))
        return 0 if comp.all_complete else 1
    if args.fabric is not None:
        spec.fabric(args.fabric)  # bad name -> SpecError before anything is built
    chosen = spec.fabric(args.fabric).name
    for line in _capacity_lines(spec, [p for p in planned if p[0].name == chosen]):
        if "WARNING" in line:
            print(line, file=sys.stderr)
    _need_root("fabric run")
    from fabric.run.engine import run_experiment
    from fabric.report.summary import format_summary
    summary = run_experiment(spec, args.experiment, args.out, args.fabric, args.seed)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(format_summary(summary))
    return 0 if summary.status == "complete" else 1
