"""Soak: N tiny experiments back to back, some killed mid-run, and after each a check that the
run left nothing behind and its run directory is there with the right status.

    sudo .venv/bin/python scripts/soak.py --runs 100 --kill 10 [--out /tmp/soak]

Killed runs cycle through SIGINT, SIGTERM and SIGKILL, sent 0.3-2.5 s (seeded) after the run
took the run lock (its engine.log appears then), i.e. while building or during the workload.
After every killed run the script runs `fabric clean --wait` and reports what it removed (a
SIGKILLed run cannot tear down; after SIGINT/SIGTERM there should be nothing). After every
run, holding the run lock (so no other run's network is up meanwhile), it checks:

  * no OVS bridge or root-namespace interface named like ours, no qdisc on such an interface,
    no `fabric_*` nft table, no controller/agent process or Mininet shell (fabric.run.cleanup);
  * no registry record left (fabric.run.registry) and the lock free (we could take it);
  * the run directory exists; complete runs: summary.json status "complete"; SIGINT/SIGTERM:
    summary.json with an "interrupted" error; SIGKILL: the directory (no summary is expected).

Prints one line per run and a total; exit status 1 if anything was left or lost. Not a test:
it needs root and Open vSwitch and takes ~5 s a run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fabric.run import registry  # noqa: E402
from fabric.run.cleanup import leftovers  # noqa: E402
from fabric.run.runlock import exclusive_run  # noqa: E402
from topologies.model import INTF_NAME  # noqa: E402

EXPERIMENT = """name = "soak"
seed = {seed}
[run]
deadline_s = 30
start_delay_s = 0.2
[fabric]
kind = "leafspine"
spines = 1
leaves = 2
hosts_per_leaf = 1
host_rate_mbps = 20
fabric_rate_mbps = 20
[[workload]]
kind = "flows"
flows = [{{ src = "h1", dst = "h2", size_bytes = "{size}" }}]
"""
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
OUT = Path("/nonexistent")  # the soak's run directories (set in main)


def qdisc_leftovers() -> list[str]:
    out = subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout
    devs = {m.group(1) for m in re.finditer(r" dev (\S+) ", out)}
    return [f"qdisc on {d}" for d in sorted(devs) if INTF_NAME.match(d)]


def check_clean() -> list[str]:
    """What is left, looked at while holding the run lock."""
    with exclusive_run(timeout_s=3600):
        own = registry.current().path if registry.current() else None
        records = [str(p) for p, _ in registry.records() if p != own]
        mine = [item for item in leftovers()  # processes: only ours (tests of others may
                if not item.startswith("process ")  # start controllers of their own)
                or "mininet:" in item or str(OUT) in item]
        return mine + qdisc_leftovers() + [f"registry record {r}" for r in records]


# names the soak's fabric uses (1 spine, 2 leaves, 2 hosts): a leftover named otherwise is some
# other run's on this shared machine (reported apart: the soak cannot have made it)
OUR_NAMES = re.compile(r"(ovs bridge|interface|qdisc on|nft table netdev fabric_)\s*"
                       r"(s1|l1|l2|h1|h2)(-eth[0-9]+)?$")


def split_foreign(items: list[str]) -> tuple[list[str], list[str]]:
    ours = [i for i in items if not re.match(r"(ovs bridge|interface|qdisc on|nft table)", i)
            or OUR_NAMES.match(i)]
    return ours, [i for i in items if i not in ours]


def run_one(i: int, exp: Path, out: Path, sig: signal.Signals | None, rng: random.Random,
            python: str) -> dict:
    before = set(out.iterdir()) if out.exists() else set()
    cmd = [python, "-m", "fabric", "run", str(exp), "--out", str(out), "--json"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            preexec_fn=_default_sigint)
    row: dict = {"run": i, "signal": sig.name if sig else "", "cleaned": ""}
    if sig is not None:
        delay = rng.uniform(0.3, 2.5)
        deadline = time.monotonic() + 3600
        while proc.poll() is None and time.monotonic() < deadline:  # wait for the lock
            new = set(out.iterdir()) - before if out.exists() else set()
            if any((d / "engine.log").exists() for d in new):
                break
            time.sleep(0.05)
        time.sleep(delay)
        row["after_s"] = round(delay, 2)
        if proc.poll() is None:
            proc.send_signal(sig)
        else:
            row["signal"] += " (too late: run ended)"
    _, err = proc.communicate(timeout=600)
    row["exit"] = proc.returncode
    if sig is not None:  # after any kill (SIGINT/SIGTERM runs should leave nothing to clean)
        res = subprocess.run([python, "-m", "fabric", "clean", "--wait"], cwd=REPO,
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        row["cleaned"] = len([l for l in res.stdout.splitlines() if l.startswith("removed")])
    new = sorted(set(out.iterdir()) - before)
    row["run_dir"] = str(new[0]) if len(new) == 1 else f"{len(new)} new directories"
    row["status"] = _status(new[0]) if len(new) == 1 else "LOST"
    row["status_ok"] = _status_ok(row["status"], sig, row["signal"])
    row["left"], row["foreign"] = split_foreign(check_clean())
    if err.strip() and proc.returncode not in (0, 130, -9, -2, -15):
        row["stderr"] = err.strip().splitlines()[-1][:200]
    return row


def _default_sigint() -> None:
    """A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT
    ignored: restore the default so the run gets its KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _status(run_dir: Path) -> str:
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return "no summary"
    error = summary.get("error") or ""
    return summary["status"] + (" (interrupted)" if "interrupted" in error else "")


def _status_ok(status: str, sig: signal.Signals | None, sent: str) -> bool:
    if sig is None or "too late" in sent:
        return status == "complete"
    if sig == signal.SIGKILL:
        return status == "no summary"
    return status.endswith("(interrupted)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--kill", type=int, default=10, help="how many runs to kill (spread evenly)")
    ap.add_argument("--out", type=Path, default=None, help="run directories (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("soak: needs root (it runs emulations)", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    global OUT
    out = OUT = args.out or Path(tempfile.mkdtemp(prefix="aifabric-soak-"))
    exp_dir = Path(tempfile.mkdtemp(prefix="aifabric-soak-exp-"))
    short, long_ = exp_dir / "short.toml", exp_dir / "long.toml"
    short.write_text(EXPERIMENT.format(seed=args.seed, size="200kB"))
    long_.write_text(EXPERIMENT.format(seed=args.seed, size="8MB"))  # ~3.5 s of workload
    step = args.runs / args.kill if args.kill else 0
    killed = {int(k * step + step / 2) for k in range(args.kill)} if args.kill else set()
    bad = 0
    rows = []
    t_start = time.monotonic()
    for i in range(args.runs):
        sig = SIGNALS[len([k for k in killed if k < i]) % 3] if i in killed else None
        row = run_one(i, long_ if sig else short, out, sig, rng, sys.executable)
        rows.append(row)
        ok = row["status_ok"] and not row["left"]
        bad += not ok
        print(f"run {i:3d} {row['signal'] or '-':8s} exit {row['exit']:4d} "
              f"status {row['status']:24s} {'ok' if ok else 'BAD'}"
              f"{'  left: ' + ', '.join(row['left'][:5]) if row['left'] else ''}"
              f"{'  (others: ' + ', '.join(row['foreign'][:3]) + ')' if row['foreign'] else ''}"
              f"{'  cleaned ' + str(row['cleaned']) if row['cleaned'] != '' else ''}", flush=True)
    runs_dirs = len([d for d in out.iterdir() if d.is_dir()])
    print(f"\nsoak: {args.runs} runs ({len(killed)} killed: "
          f"{', '.join(r['signal'] for r in rows if r['signal'])}) in "
          f"{time.monotonic() - t_start:.0f} s; {bad} bad; {runs_dirs} run directories in {out}; "
          f"leftovers after any run: {sum(bool(r['left']) for r in rows)}")
    (out / "soak.json").write_text(json.dumps(rows, indent=1))
    return 1 if bad or runs_dirs != args.runs else 0


if __name__ == "__main__":
    sys.exit(main())
