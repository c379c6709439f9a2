"""The `fabric` command: run, up, demo, compare, sweep, check, analyse, doctor, clean (run,
compare, sweep and check through fabric.api).

Exit codes: 0 success; 1 the run failed or is partial (results are still on disk); 2 bad input
(nothing was built); 130 interrupted. Bad input is reported as one line per error,
`fabric: error in <key>: <message>` (at most topologies.errors.MAX_ERRORS of them, then a count),
every line printable: control characters in keys and values are escaped.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NoReturn

from topologies.errors import FabricError, SpecError

if TYPE_CHECKING:
    from fabric.analysis.summary import RunSummary

DEFAULT_OUT = Path("runs")
MAX_SEED = 2**32 - 1


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one `fabric: error in <argument>: ...` line and exit 2."""

    def error(self, message: str) -> NoReturn:
        key, text = "arguments", message
        if message.startswith("argument "):
            key, _, text = message[len("argument "):].partition(": ")
            key = key.split("/")[-1]
        elif message.startswith("unrecognized arguments: "):
            key = message.split(": ", 1)[1].split(" ")[0]
            text = "unknown argument"
        elif message.startswith("the following arguments are required: "):
            key, text = message.split(": ", 1)[1], "missing"
        _print_error(SpecError(key, text))
        sys.exit(2)


def _printable(text: str) -> str:
    """`text` with control characters escaped, so one error stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _print_error(exc: SpecError) -> None:
    for e in exc.errors:
        key = e.key if e.key.isprintable() else repr(e.key)
        print(f"fabric: error in {key}: {_printable(e.message)}" if e.key
              else f"fabric: error: {_printable(e.message)}", file=sys.stderr)
    more = getattr(exc, "more", 0)
    if more:
        print(f"fabric: ... and {more} more error(s) not shown", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fabric", description="Emulate AI back-end fabrics on real "
                                "packets (Mininet + Open vSwitch + an os-ken controller).")
    p.add_argument("--version", action="version", version=f"%(prog)s {project_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one experiment on one fabric and print its summary")
    run.add_argument("experiment", type=Path, help="experiment TOML file (see examples/)")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT,
                     help="directory that receives the new run directory (default: runs/)")
    run.add_argument("--fabric", help="which [[fabric]] of the file to run (default: the first)")
    run.add_argument("--seed", type=_seed, help="override the experiment's seed "
                     f"(0..{MAX_SEED})")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_set(run)
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
                         "write a side-by-side report with head-to-head verdicts")
    cmp.add_argument("experiment", type=Path, help="experiment TOML file listing [[fabric]] entries")
    cmp.add_argument("--seeds", type=_seed_count, default=3,
                     help="seeds per fabric: the experiment's seed, seed+1, ... (default: 3)")
    cmp.add_argument("--out", type=Path, default=DEFAULT_OUT,
                     help="directory that receives the new report directory (default: runs/)")
    cmp.add_argument("--json", action="store_true", help="print the comparison as JSON (README.md)")
    cmp.add_argument("--include-unfaithful", action="store_true",
                     help="count complete runs the fidelity monitor judged UNFAITHFUL in means, "
                          "ratios and verdicts (default: leave them out; they stay flagged)")
    _add_set(cmp)
    swp = sub.add_parser("sweep", help="run an experiment for every value of one or more "
                         "parameters (--vary) as one comparison and one report (docs/api.md)")
    swp.add_argument("experiment", type=Path, nargs="?",
                     help="experiment TOML file (not with --resume)")
    swp.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                     help="a parameter and its values, e.g. fabric[ddc].speedup=1.0,1.25,1.5 "
                          "(repeat for several: the cross product is run)")
    swp.add_argument("--zip", action="store_true",
                     help="pair the i-th values of every --vary instead of the cross product")
    swp.add_argument("--seeds", type=_seed_count, default=1,
                     help="seeds per fabric and point: the experiment's seed, seed+1, ... (default: 1)")
    swp.add_argument("--out", type=Path, default=DEFAULT_OUT,
                     help="directory that receives the new sweep directory (default: runs/)")
    swp.add_argument("--resume", type=Path, metavar="DIR",
                     help="continue an interrupted sweep in DIR: finished runs are not rerun")
    swp.add_argument("--json", action="store_true", help="print sweep.json instead of the table")
    _add_set(swp)
    check = sub.add_parser("check", help="validate an experiment file without building anything")
    check.add_argument("experiment", type=Path)
    _add_set(check)
    ana = sub.add_parser("analyse", help="recompute a run directory's summary.json, ideal.csv and "
                         "fidelity verdict from the files the run wrote (no root)")
    ana.add_argument("run_dir", type=Path, help="a run directory (runs/<time>-<experiment>-<fabric>)")
    ana.add_argument("--json", action="store_true", help="print the summary as JSON")
    doctor = sub.add_parser("doctor", help="what this machine offers, and how to fix what is missing")
    doctor.add_argument("--json", action="store_true")
    clean = sub.add_parser("clean", help="remove what killed runs of this project left behind "
                           "(the bridges, links, nft tables and processes they registered)")
    clean.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    clean.add_argument("--wait", action="store_true",
                       help="wait for a live run to finish instead of refusing")
    clean.add_argument("--run", metavar="RUN_DIR",
                       help="only what the run with this run directory left (on this machine "
                            "and, for a cluster run, on its servers)")
    clean.add_argument("--force", action="store_true",
                       help="clean even while a run holds the run lock (kills that run too)")
    return p


def project_version() -> str:
    """The installed distribution's version (setup.cfg), or "unknown" from a bare checkout."""
    import importlib.metadata as md
    try:
        return md.version("aifabric-emulator")
    except md.PackageNotFoundError:
        return "unknown"


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a key of the file before it is validated, e.g. "
                        "fabric.speedup=1.0, workload.stride.size_bytes=8MB, "
                        "'fabric[ddc].ncfs=8', seed=3 (repeatable; docs/api.md)")


def _seed(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if not 0 <= n <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {text[:40]}")
    return n


def _capacity_lines(spec: Any, planned: list[Any], send_buffer: bool = True) -> list[str]:
    """`fabric check`'s prediction per fabric: does the plan fit this machine's capacity? With
    `send_buffer`, also OVS's send buffer against each fabric's queues (a run's engine logs that
    line itself, so run and compare leave it out)."""
    from fabric.analysis.capacity import predict
    from fabric.run.datapath import choose_datapath
    try:
        datapath = choose_datapath(spec.run.datapath)
    except Exception:
        datapath = "user"
    lines = [predict(fab.name, graph, plan, datapath).message() for fab, graph, plan in planned]
    if send_buffer and datapath == "user":   # OVS's send buffer vs the queues (analysis.ovsbuf)
        from fabric.analysis.ovsbuf import fit
        from fabric.run.ovsbuf import send_buffer_bytes
        buf = send_buffer_bytes() if os.geteuid() == 0 else None
        lines += [fit(fab.name, graph, buf).message() for fab, graph, _ in planned]
    return lines
def _bounded_int(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high] (`what` names it in the error)."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {n}")
        return n
    return parse


_port = _bounded_int(0, 65535, "a port number")
_seed_count = _bounded_int(1, 100, "a whole number")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)  # run logs at INFO go to the run's engine.log only
    console.setFormatter(logging.Formatter("fabric: %(message)s"))
    logging.getLogger().addHandler(console)
    args.emulating = False  # set once a run may have built something
    try:
        return _dispatch(args)
    except SpecError as exc:
        _print_error(exc)
        return 2
    except KeyboardInterrupt:
        print("fabric: interrupted" + ("; everything the run created was removed, partial "
                                       "results kept" if args.emulating else ""), file=sys.stderr)
        return 130
    except FabricError as exc:
        print(f"fabric: {_printable(str(exc))}", file=sys.stderr)
        return 1
    finally:  # main() may be called in-process (tests): leave the root logger as found
        logging.getLogger().removeHandler(console)


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
        removed = clean(dry_run=args.dry_run, wait=args.wait, force=args.force,
                        run_dir=args.run)
        verb = "would remove" if args.dry_run else "removed"
        print("\n".join(f"{verb} {_printable(item)}" for item in removed) or "nothing to clean")
        return 0
    if args.command == "demo":
        _need_root("fabric demo")
        from fabric.run.demo import run_lesson
        return run_lesson(args.out, pause=not args.no_pause, live_port=args.live)
    if args.command == "analyse":
        from fabric.analysis.analyse import reanalyse
        return _print_summary(reanalyse(args.run_dir), args.json)
    if args.command == "sweep":
        return _sweep(args)
    from fabric.plan.experiment import load_checked
    spec, planned = load_checked(args.experiment, getattr(args, "overrides", []))
    if args.command == "check":
        print(f"{args.experiment}: ok ({len(spec.fabrics)} fabric(s), "
              f"{len(spec.workloads)} workload(s))")
        for line in _capacity_lines(spec, planned):
            print(line)
        if spec.cluster is not None:
            from topologies.placement import place, tunnel_mtu
            c = spec.cluster
            print(f"cluster: {len(c.servers)} server(s), {c.tunnel} tunnels "
                  f"(fabric MTU at most {tunnel_mtu(c.tunnel, c.underlay_mtu)})")
            for fab, graph, _plan in planned:
                print(f"{fab.name}: placement")
                for line in place(graph, c.servers).lines():
                    print(line)
        return 0
    if args.command == "compare":
        from fabric.report.compare_text import format_comparison
        from fabric.analysis.comparison import check_comparable
        from fabric.run.compare import run_comparison
        check_comparable(spec)  # bad input -> SpecError before anything is built
        check_out_dir(args.out)
        _need_root("fabric compare")
        for line in _capacity_lines(spec, planned, send_buffer=False):
            if "WARNING" in line:
                print(line, file=sys.stderr)
        args.emulating = True
        comp = run_comparison(spec, args.experiment, args.out, args.seeds,
                              include_unfaithful=args.include_unfaithful)
        print(json.dumps(comp.to_dict(), indent=2) if args.json else format_comparison(comp))
        return 0 if comp.all_complete else 1
    if args.fabric is not None:
        spec.fabric(args.fabric)  # bad name -> SpecError before anything is built
    chosen = spec.fabric(args.fabric).name
    for line in _capacity_lines(spec, [p for p in planned if p[0].name == chosen],
                                send_buffer=False):
        if "WARNING" in line:
            print(line, file=sys.stderr)
    check_out_dir(args.out)
    if args.command == "up":
        _need_root("fabric up")
        args.emulating = True
        from fabric.run.session import fabric_up
        fabric_up(spec, args.experiment, args.out, args.fabric,
                  None if args.no_live else args.live_port)
        return 0
    _need_root("fabric run")
    args.emulating = True
    from fabric.run.engine import run_experiment
    from fabric.run.session import own_by_invoker
    summary = run_experiment(spec, args.experiment, args.out.resolve(), args.fabric, args.seed,
                             live_port=args.live)
    own_by_invoker(Path(summary.run_dir))   # under sudo: the user's files, not root's
    return _print_summary(summary, args.json)


def _print_summary(summary: RunSummary, as_json: bool) -> int:
    """Print a run summary (table or JSON); exit code 0 for a complete run, else 1."""
    from fabric.report.summary import format_summary
    print(json.dumps(summary.to_dict(), indent=2) if as_json else format_summary(summary))
    return 0 if summary.status == "complete" else 1


def _sweep(args: argparse.Namespace) -> int:
    from fabric import api
    from fabric.analysis.sweep import format_sweep
    if args.resume is not None:
        if args.experiment is not None or args.vary or args.overrides or args.zip:
            raise SpecError("--resume", "give only the sweep directory: the experiment, --set, "
                                        "--vary, --zip and --seeds are read from it")
        sweep = api.resume_sweep(args.resume)
    else:
        if args.experiment is None:
            raise SpecError("experiment", "give an experiment file (or --resume DIR)")
        sweep = api.sweep(args.experiment, args.vary, args.overrides, args.zip, args.seeds,
                          args.out)
    print(json.dumps(sweep.to_dict(), indent=2) if args.json else format_sweep(sweep))
    return 0 if sweep.complete else 1


def check_out_dir(out: Path) -> None:
    """SpecError('--out') unless `out` is (or can be made) a writable directory; creates it."""
    shown = repr(str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SpecError("--out", f"{shown} exists and is not a directory") from None
    except NotADirectoryError:
        raise SpecError("--out", f"{shown} is under a file, not a directory") from None
    except (OSError, ValueError) as exc:
        raise SpecError("--out", f"cannot create {shown}: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from None
    if not out.is_dir():
        raise SpecError("--out", f"{shown} is not a directory")
    if not os.access(out, os.W_OK | os.X_OK):
        raise SpecError("--out", f"{shown} is not writable")
