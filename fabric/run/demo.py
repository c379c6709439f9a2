"""`fabric demo`: the guided lesson of docs/lesson.md, run step by step, pausing for the teacher.

Each step says what it shows and what to look for, runs one fabric of examples/lesson.toml (or
lesson-small.toml) through the same engine as `fabric run` (optionally with the live view), then
prints the figures this machine just measured: the job's completion time against the one-switch
reference, the ECMP collisions read from the flows' traced paths, adaptive's moves, TCP
reordering, the failure's impact. A table of every step closes the lesson.
"""
from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from fabric.analysis.summary import RunSummary
from fabric.plan.experiment import load_experiment
from fabric.run.engine import run_experiment

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


@dataclass(frozen=True)
class Step:
    """One lesson step: which fabric of which file, what it shows, what to look for."""
    title: str
    file: str
    fabric: str
    shows: str
    look_for: str


STEPS = (
    Step("1. The reference: one non-blocking switch", "lesson.toml", "single",
         "A ring all-reduce of 4 MB per rank, 3 iterations, over 4 hosts on one big switch: "
         "no fabric tier, nothing to collide. Its time is the yardstick of every later step.",
         "JCT close to the ideal (every host link busy, ~19 Mbit/s of goodput each)."),
    Step("2. Leaf/spine with ECMP: hash collisions", "lesson.toml", "ecmp",
         "The same ring on 2 leaves x 2 spines. Ring order h1->h3->h2->h4->h1 puts two flows on "
         "each leaf's two uplinks at once; ECMP hashes each TCP connection's 5-tuple onto one.",
         "the `collisions` lines: two flows that hashed onto the same uplink share its 20 Mbit/s "
         "while the other uplink idles (in the live view: one red, one grey uplink), and the "
         "ring waits for its slowest step. JCT against the one switch."),
    Step("3. adaptive: re-placing the elephants", "lesson.toml", "adaptive",
         "A Hedera-like controller polls flow statistics every 100 ms and moves a large flow "
         "off a congested uplink onto the least loaded path (moves.csv).",
         "`moves` (how many flows it re-placed) and the JCT: most of ECMP's loss comes back, "
         "but every collision costs up to one polling interval before it is fixed."),
    Step("4a. Small messages on ECMP", "lesson-small.toml", "ecmp",
         "Now each ring step moves only 62.5 kB (~25 ms on the wire): 480 short flows.",
         "the JCT of small-message all-reduce on ECMP, the baseline of the next two runs."),
    Step("4b. Small messages on adaptive: what it cannot fix", "lesson-small.toml", "adaptive",
         "The same, with the adaptive controller.",
         "`moves`: flows end before a 100 ms poll can see them, so there is little or nothing "
         "to move and the JCT stays near ECMP's: re-placement needs flows that live longer "
         "than the control loop."),
    Step("4c. Small messages sprayed", "lesson-small.toml", "spray",
         "Per-packet spraying (nftables at the leaves) sends packet after packet over both "
         "uplinks, with no control loop at all.",
         look_for="the JCT against 4a and 4b."),
    Step("5. Spraying on the leaf/spine", "lesson.toml", "spray",
         "Back to 4 MB messages: every flow's packets alternate over both uplinks, "
         "so no two flows can pile onto one.",
         "the JCT (near the one switch) and the `tcp` reorder counters: spraying reorders "
         "packets, the receivers' TCP absorbs it."),
    Step("6. The DDC: NCPs, NCFs, cell spraying", "lesson.toml", "ddc",
         "A Distributed Disaggregated Chassis: hosts on NCPs, every NCP to every NCF, every "
         "packet sprayed over all NCF links, deep egress queues (docs/ddc.md).",
         "the JCT next to the one switch: the fabric behaves as one big switch here."),
    Step("7a. A spine fails under ECMP", "lesson-failure.toml", "ecmp-spine-failure",
         "A 2 MB ring all-reduce, 6 iterations; spine s1 loses all its links 3 s into the run. "
         "The controller sees the port-status "
         "messages and re-routes everything through s2.",
         "the `failure` line: the iteration that saw it against the steady ones. Flows hashed "
         "to s1 lose packets until the leaves are re-programmed; afterwards all traffic shares "
         "one spine."),
    Step("7b. An NCF fails in the DDC", "lesson-failure.toml", "ddc-ncf-failure",
         "The same failure in the DDC: NCF ncf1 goes down; the spray maps are recomputed.",
         "the `failure` line next to 7a: both fabrics lose half their fabric capacity; the "
         "sprayed flows lose only the packets on the dead links."),
)


def job_seconds(run_dir: Path) -> float | None:
    """Whole-job time from flows.csv: last end - first start of the complete flows."""
    try:
        with open(run_dir / "flows.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["complete"].lower() == "true"]
    except OSError:
        return None
    if not rows:
        return None
    return max(float(r["end"]) for r in rows) - min(float(r["start"]) for r in rows)


def moves(run_dir: Path) -> int | None:
    try:
        with open(run_dir / "moves.csv", newline="") as f:
            return sum(1 for _ in csv.DictReader(f))
    except OSError:
        return None


def figures(step: Step, s: RunSummary, reference_s: float | None) -> tuple[float | None, list[str]]:
    """The step's job time and the lines that show what to look for (`reference_s`: the one
    switch's job time on the same workload, None when the step's file has no such run)."""
    run = Path(s.run_dir)
    jct = job_seconds(run)
    lines = [f"status {s.status}; run directory {run}"]
    if jct is not None:
        vs = f" ({jct / reference_s:.2f}x the one switch's {reference_s:.2f} s)" \
            if reference_s else ""
        lines.append(f"job time {jct:.2f} s{vs}")
    for c in s.collectives:
        lines.append(f"  {c.id}: JCT {c.jct_s:.2f} s, busbw {c.busbw_mbps:.1f} Mbit/s")
    if s.collisions:
        lines.append(f"collisions ({len(s.collisions)} uplink/flow-pair combinations, top 3; "
                     "flows that overlapped a failure left out):")
        lines += [f"  {c}" for c in s.collisions[:3]]
    elif step.fabric not in ("single",):
        lines.append("collisions: none (paths.csv)")
    m = moves(run)
    if m is not None:
        lines.append(f"moves: adaptive re-placed {m} flows (moves.csv)")
    if s.tcp:
        lines.append(f"tcp: {s.tcp.get('reorder_events', 0)} reorder events, "
                     f"{s.tcp.get('Tcp.RetransSegs', 0)} retransmitted segments")
    for f in s.failures:
        if f.get("applied_s") is None:
            lines.append(f"failure: {f['what']} NOT applied ({f.get('error')})")
        elif f.get("jct_overhead") is not None:
            lines.append(f"failure: {f['what']} at t0+{f['applied_s']:.2f} s: the iteration that "
                         f"saw it took {f['hit_jct_s']:.2f} s vs {f['steady_jct_p50_s']:.2f} s "
                         f"steady ({f['jct_overhead'] * 100:+.0f}%)")
        else:
            lines.append(f"failure: {f['what']} at t0+{f['applied_s']:.2f} s; hit "
                         f"{', '.join(f.get('collectives_hit') or []) or 'no collective'}")
    if s.fidelity is not None and not s.fidelity.faithful:
        lines.append("fidelity: UNFAITHFUL (the machine was too busy): repeat this step")
    return jct, lines


def run_lesson(out: Path, pause: bool = True, live_port: int | None = None,
               steps: tuple[Step, ...] = STEPS, stdout: TextIO | None = None,
               wait: Callable[[str], Any] | None = None,
               run: Callable[..., RunSummary] = run_experiment) -> int:
    """Run the lesson; returns 0 when every step completed."""
    say = (stdout or sys.stdout).write
    wait = wait or input
    reference: dict[str, float] = {}   # file -> the one switch's job time
    table: list[tuple[str, float | None, str]] = []
    ok = True
    emulated = 0.0
    for i, step in enumerate(steps):
        say(f"\n=== {step.title} ===\n{step.shows}\nLook for: {step.look_for}\n")
        if pause:
            wait("[Enter] to run this step ")
        path = EXAMPLES / step.file
        summary = run(load_experiment(path), path, out, step.fabric, live_port=live_port)
        jct, lines = figures(step, summary, reference.get(step.file))
        if step.fabric == "single" and jct is not None:
            reference[step.file] = jct
        ok = ok and summary.status == "complete"
        busy = sum(summary.phases_s.values())
        emulated += busy
        say("\n".join(lines) + f"\n(emulation {busy:.1f} s: build, controller, workload, "
            "teardown)\n")
        table.append((step.title, jct, summary.run_dir))
        if pause and i + 1 < len(steps):
            wait("[Enter] for the next step ")
    say("\n=== Summary (job time, this machine) ===\n")
    for title, jct, _run_dir in table:
        say(f"{title:<55} {'-' if jct is None else f'{jct:6.2f} s'}\n")
    say(f"emulation time of the whole lesson: {emulated:.0f} s\n")
    return 0 if ok else 1
