"""Controller: time from its start to every flow installed, vs fabric size.

    sudo .venv/bin/python -m bench.controller [--hosts 8 32 64 128] [--policy ecmp]

Started as the engine starts it (fabric.run.startup.bring_up: the controller process, then, once
it listens, the Mininet network). From the
controller's stdout protocol (controller.process: LISTENING, CONNECTED <sw>, INSTALLED <sw>,
READY, each stamped on arrival) we report, in seconds from the controller's start:
  listen     the OpenFlow socket listens (process start-up, os-ken import)
  built      the network is up (EmulatedNetwork.start returned; switches connect meanwhile)
  connected  the last switch connected
  ready      every switch's state installed and confirmed by a barrier (READY)
plus the slowest switch's CONNECTED -> INSTALLED time, how long the engine waited after the
build (max(0, ready - built)) and the flow entries and groups the switches hold at READY.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from fabric.run.runlock import exclusive_run
from fabric.run.startup import bring_up, make_fabric, ready_timeout_s
from topologies import model

from bench.build import shape_graph
from bench.common import SHAPES, print_facts, table


def count_entries(switches: list[str]) -> tuple[int, int]:
    """(flow entries, groups) over the switches (OpenFlow 1.3 dumps)."""
    def count(what: str, marker: str) -> int:
        return sum(subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", what, sw], capture_output=True,
                                  text=True).stdout.count(marker) for sw in switches)
    return count("dump-flows", "cookie="), count("dump-groups", "group_id=")


def measure(graph, policy: str, dp: str, workdir: Path) -> dict[str, float]:
    ctl, net = make_fabric(graph, policy, {}, dp, workdir)
    try:
        t0 = time.monotonic()
        bring_up(ctl, net)
        built = time.monotonic() - t0
        ctl.wait_ready(timeout_s=ready_timeout_s(graph))
        ready_at = time.monotonic() - t0
        events = list(ctl.events)
        flows, groups = count_entries(model.switches(graph))
    finally:
        net.stop()
        ctl.stop()

    def first(kind: str) -> float:
        return next(t for t, k, _ in events if k == kind) - t0
    connected = {a: t for t, k, a in events if k == "CONNECTED"}
    installed = {a: t for t, k, a in events if k == "INSTALLED"}
    return {"listen": first("LISTENING"), "built": built,
            "connected": max(connected.values()) - t0, "ready": first("READY"),
            "slowest_switch": max(installed[s] - connected[s] for s in installed),
            "waited": max(0.0, ready_at - built), "flows": flows, "groups": groups}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[8, 32, 64, 128],
                    choices=sorted(SHAPES))
    ap.add_argument("--policy", default="ecmp")
    ap.add_argument("--datapath", choices=["kernel", "user"], default="user")
    args = ap.parse_args()
    print_facts(f"controller ({args.policy}): start -> all flows installed, vs fabric size")
    headers = ["hosts", "switches", "listen s", "built s", "connected s", "ready s",
               "slowest sw s", "engine waited s", "flows", "groups"]
    rows = []
    for hosts in args.hosts:
        g = shape_graph(hosts)
        with exclusive_run(), tempfile.TemporaryDirectory(prefix="bench-ctl-") as tmp:
            m = measure(g, args.policy, args.datapath, Path(tmp))
        rows.append([hosts, len(model.switches(g)), m["listen"], m["built"], m["connected"],
                     m["ready"], m["slowest_switch"], m["waited"], m["flows"], m["groups"]])
        print(table(headers, rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(headers, rows))


if __name__ == "__main__":
    main()
