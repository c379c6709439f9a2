"""The measuring process a cluster run starts on each server (`python -m
fabric.run.cluster.serverd` over ssh, fabric.run.cluster.measure on the head).

It runs the one-machine samplers (fabric.run.samplers) on the server itself, where the server's
switch interfaces, its ovs-vswitchd and its agents are:

    head -> stdin   one JSON line: {"directions": [[link, src, dst, tier, rate_mbps, intf], ...],
                                    "agents_match": "<text in the agents' command lines>"}
    stdout -> head  "READY" once the first samples are written, then every 0.5 s the new
                    rows: "L <links.csv row>", "C <cpu.csv row>" (server clock, no header)
    head -> stdin   "stop" (or end of input: the head went away)
    stdout -> head  the last rows, then "R " + JSON: {"send_failures": {"by_interface": {...},
                    "rate_limited": b} | null, "ovs_pids": [...], "missing": [...]}

cpu.csv's groups here: the server's own ovs-vswitchd (its pidfile), no controller (it runs on
the head), the agents whose command line holds `agents_match` (this run's plan file). Rows
are written in a temporary directory on the server (removed before it exits) and streamed.
"""
from __future__ import annotations

import json
import select
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Mapping

from fabric.analysis.links import Direction
from fabric.run.ovsbuf import SendFailureWatch
from fabric.run.samplers import CpuSampler, LinkSampler, ovs_vswitchd_pids

STREAM_INTERVAL_S = 0.5   # rows go to the head this often (the live view tails links.csv)


def pids_matching(text: str, proc: Path = Path("/proc")) -> list[int]:
    """Processes whose command line (NUL-separated words joined by spaces) contains `text`."""
    out = []
    needle = text.encode()
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if needle and needle in cmdline:
                out.append(int(entry.name))
    return out


class Groups:
    """CpuSampler's groups on a server: its ovs-vswitchd, no controller, and every agent seen
    so far (an agent that exited stays in its group: its last reading keeps the sum monotonic)."""

    def __init__(self, ovs: list[int], agents_match: str):
        self.ovs, self.match = ovs, agents_match
        self.agents: set[int] = set()

    def __call__(self) -> Mapping[str, Iterable[int]]:
        if self.match:
            self.agents.update(pids_matching(self.match))
        return {"ovs_vswitchd": self.ovs, "controller": [], "agents": sorted(self.agents)}


class Pump:
    """New complete lines of a file the samplers append to, tagged for the head."""

    def __init__(self, path: Path, tag: str):
        self.file = open(path)  # noqa: SIM115 - closed by close()
        self.tag, self.partial = tag, ""
        self.file.readline()   # the header: the head writes its own

    def lines(self) -> list[str]:
        text = self.partial + self.file.read()
        *whole, self.partial = text.split("\n")
        return [f"{self.tag} {line}" for line in whole if line]

    def close(self) -> None:
        self.file.close()


def main() -> int:
    config = json.loads(sys.stdin.readline() or "{}")
    dirs = [Direction(str(l), str(s), str(d), str(t), float(r), str(i))
            for l, s, d, t, r, i in config.get("directions", [])]
    match = str(config.get("agents_match", ""))
    ovs = ovs_vswitchd_pids()
    with tempfile.TemporaryDirectory(prefix="aifabric-measure-") as tmp:
        links = LinkSampler(None, Path(tmp) / "links.csv", dirs=dirs)
        cpu = CpuSampler(Path(tmp) / "cpu.csv", Groups(ovs, match))
        watch = SendFailureWatch().start()
        links.start()
        try:
            cpu.start()
            pumps = [Pump(Path(tmp) / "links.csv", "L"), Pump(Path(tmp) / "cpu.csv", "C")]
            try:
                print("READY", flush=True)
                while True:   # rows to the head as they are sampled, until "stop" or EOF
                    ready, _, _ = select.select([sys.stdin], [], [], STREAM_INTERVAL_S)
                    _send(pumps)
                    if ready:
                        line = sys.stdin.readline()
                        if not line or line.strip() == "stop":
                            break
            finally:
                cpu.stop()
        finally:
            links.stop()
        _send(pumps)
        for p in pumps:
            p.close()
        sends = watch.stop()
        result = {"send_failures": asdict(sends) if sends is not None else None,
                  "ovs_pids": ovs, "missing": sorted(links.missing)}
    print("R " + json.dumps(result), flush=True)
    return 0


def _send(pumps: list[Pump]) -> None:
    out = [line for p in pumps for line in p.lines()]
    if out:
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:   # the head went away: its samples are of no use any more
        sys.exit(1)
