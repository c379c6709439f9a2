"""Build/start/teardown time and memory of the emulated fabric vs size, beside bare Mininet.

    sudo .venv/bin/python -m bench.build [--hosts 8 32 64 128] [--repeat 1] [--datapath user]

For each size (leaf/spine shapes in bench.common.SHAPES) and in the same run:
  bare   Mininet with the same ModelTopo, plain Links and the same OVSSwitch datapath; no
         controller, no shaping, no host configuration: build+start, then stop.
  ours   what fabric.run.engine does (fabric.run.startup: controller, listening, network) (host
         offloads, ARP, routes, HTB shaping of every port) = build+start; then until the
         controller reports every switch installed (ready); then stop (network + controller).
Memory: the summed RSS of ovs-vswitchd, ovsdb-server, Mininet's node shells, the controller and
this process, at its peak (after start / after ready), and the system's used-memory delta
(MemTotal - MemAvailable) from before the build (noisy on a shared machine).
Each build holds fabric.run.runlock.exclusive_run(), so it waits for other emulations.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from fabric.run.runlock import exclusive_run
from fabric.run.startup import bring_up, make_fabric, ready_timeout_s
from topologies import model
from topologies.leafspine import build_leaf_spine
from topologies.mininet_topo import ModelTopo

from bench.common import SHAPES, datapaths, ovs_pids, print_facts, rss_mb, table, used_memory_mb

RATE_MBPS = 20.0


def shape_graph(hosts: int) -> Any:
    spines, leaves, per_leaf = SHAPES[hosts]
    return build_leaf_spine(spines, leaves, per_leaf, RATE_MBPS, RATE_MBPS)


def node_pids(net: Any) -> list[int]:
    return [n.pid for n in net.hosts + net.switches + net.controllers if getattr(n, "pid", None)]


def bare(graph: Any, dp: str) -> dict[str, float]:
    """Bare Mininet: same topology, links and datapath; nothing else."""
    from fabric.run.pycompat import ensure_strict_version
    ensure_strict_version()   # Mininet 2.3.0 imports distutils, gone in Python 3.12
    from mininet import log as mnlog
    from mininet.link import Link
    from mininet.net import Mininet
    from mininet.node import OVSSwitch
    mnlog.setLogLevel("error")
    mem0 = used_memory_mb()
    t = time.monotonic()
    net = Mininet(topo=ModelTopo(graph=graph), controller=None, link=Link,
                  switch=partial(OVSSwitch, datapath=dp, protocols="OpenFlow13",
                                 failMode="secure"),
                  autoSetMacs=False, autoStaticArp=False, build=False, waitConnected=False)
    try:
        net.build()
        net.start()
        start_s = time.monotonic() - t
        rss = rss_mb(ovs_pids() + node_pids(net) + [os.getpid()])
        mem = used_memory_mb() - mem0
    finally:
        t = time.monotonic()
        net.stop()
        stop_s = time.monotonic() - t
    return {"start_s": start_s, "stop_s": stop_s, "rss_mb": rss, "mem_mb": mem}


def ours(graph: Any, dp: str, workdir: Path) -> dict[str, float]:
    """The emulator as fabric.run.engine runs it (controller process + EmulatedNetwork)."""
    mem0 = used_memory_mb()
    t = time.monotonic()
    ctl, net = make_fabric(graph, "ecmp", {}, dp, workdir)
    try:
        bring_up(ctl, net)
        start_s = time.monotonic() - t
        rss = rss_mb(ovs_pids() + node_pids(net.net) + [os.getpid(), ctl.pid or 0])
        t = time.monotonic()
        ctl.wait_ready(timeout_s=ready_timeout_s(graph))
        ready_s = time.monotonic() - t
        rss = max(rss, rss_mb(ovs_pids() + node_pids(net.net) + [os.getpid(), ctl.pid or 0]))
        mem = used_memory_mb() - mem0
    finally:
        t = time.monotonic()
        net.stop()
        ctl.stop()
        stop_s = time.monotonic() - t
    return {"start_s": start_s, "ready_s": ready_s, "stop_s": stop_s, "rss_mb": rss,
            "mem_mb": mem}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[8, 32, 64, 128],
                    choices=sorted(SHAPES))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--datapath", choices=["kernel", "user"], default=None,
                    help="default: every kind available here")
    args = ap.parse_args()
    print_facts("build/start/teardown time and memory vs fabric size (ours vs bare Mininet)")
    rows = []
    for dp in [args.datapath] if args.datapath else datapaths():
        for hosts in args.hosts:
            g = shape_graph(hosts)
            for _ in range(args.repeat):
                with exclusive_run(), tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
                    b = bare(g, dp)
                    o = ours(g, dp, Path(tmp))
                spines, leaves, _ = SHAPES[hosts]
                rows.append([dp, hosts, f"{spines}x{leaves}", len(model.switches(g)),
                             b["start_s"], o["start_s"], o["start_s"] / b["start_s"],
                             o["ready_s"], o["start_s"] + o["ready_s"], b["stop_s"],
                             o["stop_s"], b["rss_mb"], o["rss_mb"], b["mem_mb"], o["mem_mb"]])
                print(table(HEADERS, rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(HEADERS, rows))


HEADERS = ["datapath", "hosts", "spine x leaf", "switches", "bare start s", "ours start s",
           "ours/bare", "ctl ready s", "ours total s", "bare stop s", "ours stop s",
           "bare rss MiB", "ours rss MiB", "bare mem MiB", "ours mem MiB"]

if __name__ == "__main__":
    main()
