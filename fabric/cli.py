"""The `fabric` command: run, up, demo, compare, check, analyse, doctor, clean.

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
from typing import TYPE_CHECKING

from topologies.errors import FabricError, SpecError

if TYPE_CHECKING:
    from fabric.analysis.summary import RunSummary

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
    run.add_argument("--live", type=_port, nargs="?", const=0, metavar="PORT",
                     help="serve the live view on 127.0.0.1 during the run (PORT, default: any "
                          "free port; the URL is printed)")
    up = sub.add_parser("up", help="build one fabric of an experiment and hand over to Mininet's "
                        "CLI with workload/fail/restore/controller/paths/util/live commands")
    up.add_argument("experiment", type=Path, help="experiment TOML file (see examples/)")
    up.add_argument("--fabric", help="which [[fabric]] of the file (default: the first)")
    up.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="directory that receives the session directory (default: runs/)")
    up.add_argument("--live-port", type=_port, default=0,
                    help="port of the live view on 127.0.0.1 (default: any free port)")
    up.add_argument("--no-live", action="store_true", help="no live view")
    demo = sub.add_parser("demo", help="the guided lesson of docs/lesson.md, step by step, "
                          "pausing for Enter between steps")
    demo.add_argument("--out", type=Path, default=DEFAULT_OUT,
                      help="directory that receives the lesson's runs (default: runs/)")
    demo.add_argument("--no-pause", action="store_true", help="run every step without waiting")
    demo.add_argument("--live", type=_port, nargs="?", const=0, metavar="PORT",
                      help="serve the live view of each step's run")
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
    ana = sub.add_parser("analyse", help="recompute a run directory's summary.json, ideal.csv and "
                         "fidelity verdict from the files the run wrote (no root)")
    ana.add_argument("run_dir", type=Path, help="a run directory (runs/<time>-<experiment>-<fabric>)")
    ana.add_argument("--json", action="store_true", help="print the summary as JSON")
    doctor = sub.add_parser("doctor", help="what this machine offers, and how to fix what is missing")
    doctor.add_argument("--json", action="store_true")
    sub.add_parser("clean", help="remove leftovers of a crashed run (bridges, links, processes)")
    return p


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {n}")
    return n


def _seed_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, got {n}")
    return n


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
    if args.command == "demo":
        _need_root("fabric demo")
        from fabric.run.demo import run_lesson
        return run_lesson(args.out, pause=not args.no_pause, live_port=args.live)
    if args.command == "analyse":
        from fabric.analysis.analyse import reanalyse
        return _print_summary(reanalyse(args.run_dir), args.json)
    from fabric.plan.experiment import load_experiment
    spec = load_experiment(args.experiment)
    if args.command == "check":
        print(f"{args.experiment}: ok ({len(spec.fabrics)} fabric(s), "
              f"{len(spec.workloads)} workload(s))")
        return 0
    if args.command == "compare":
        from fabric.analysis.comparison import check_comparable
        from fabric.report.compare_text import format_comparison
        from fabric.run.compare import run_comparison
        check_comparable(spec)  # bad input -> SpecError before anything is built
        _need_root("fabric compare")
        comp = run_comparison(spec, args.experiment, args.out, args.seeds)
        print(json.dumps(comp.to_dict(), indent=2) if args.json else format_comparison(comp))
        return 0 if comp.all_complete else 1
    if args.fabric is not None:
        spec.fabric(args.fabric)  # bad name -> SpecError before anything is built
    if args.command == "up":
        _need_root("fabric up")
        from fabric.run.session import fabric_up
        fabric_up(spec, args.experiment, args.out, args.fabric,
                  None if args.no_live else args.live_port)
        return 0
    _need_root("fabric run")
    from fabric.run.engine import run_experiment
    from fabric.run.session import own_by_invoker
    summary = run_experiment(spec, args.experiment, args.out, args.fabric, args.seed,
                             live_port=args.live)
    own_by_invoker(Path(summary.run_dir))   # under sudo: the user's files, not root's
    return _print_summary(summary, args.json)


def _print_summary(summary: RunSummary, as_json: bool) -> int:
    """Print a run summary (table or JSON); exit code 0 for a complete run, else 1."""
    from fabric.report.summary import format_summary
    print(json.dumps(summary.to_dict(), indent=2) if as_json else format_summary(summary))
    return 0 if summary.status == "complete" else 1
