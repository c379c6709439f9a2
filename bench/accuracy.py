"""Accuracy: measured single-flow FCT and ring all-reduce busbw beside the ideal model.

    sudo .venv/bin/python -m bench.accuracy [--rate 20] [--flow-sizes 100kB 1MB 4MB 16MB]
                                            [--ring-sizes 1MB 4MB 16MB]

Single flow: h1 -> h3 across the spines of a 2x2 leaf/spine; the ideal is fabric.analysis.ideal's FCT of
the flow alone (wire overhead, handshake and store-and-forward included).
Ring all-reduce (one iteration) on non-blocking fabrics: 4 hosts on a 2x2 leaf/spine (the ring
h1->h2->h3->h4 crosses no shared uplink) and 8 hosts on one switch. busbw follows nccl-tests;
ideal busbw = S/ideal JCT * 2(n-1)/n, from fabric.analysis.ideal (max-min fluid, TCP/IP overhead and ACKs
included); 'bound' is the nccl-tests bound (busbw = line rate) for reference.
Every row is one engine run (fabric run), with its fidelity verdict.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from fabric.spec.units import parse_size

from bench.common import leafspine, print_facts, run_spec, table, verdict


def single_flow(rate: float, size: int, out: Path) -> list:
    s = run_spec({"name": "acc-flow", "fabric": leafspine(4, rate),
                  "workload": [{"kind": "flows", "name": "bulk",
                                "flows": [{"src": "h1", "dst": "h3", "size_bytes": size}]}]}, out)
    measured, ideal = s.fct_s.max, s.ideal.fct_s.max
    return ["flow h1->h3", "2x2 leaf/spine", size / 1e6, measured, ideal,
            (measured / ideal - 1) * 100, size * 8 / measured / 1e6, verdict(s)]


def allreduce(rate: float, size: int, hosts: int, out: Path) -> list:
    fabric = leafspine(hosts, rate) if hosts == 4 else {"kind": "single", "hosts": hosts,
                                                        "host_rate_mbps": rate}
    s = run_spec({"name": "acc-ring", "fabric": fabric,
                  "workload": [{"kind": "allreduce", "name": "ring", "size_bytes": size,
                                "hosts": [f"h{i + 1}" for i in range(hosts)]}]}, out)
    (c,) = s.collectives
    factor = c.busbw_mbps / c.algbw_mbps
    ideal_busbw = size * 8 / c.ideal_jct_s / 1e6 * factor
    return [f"ring all-reduce n={hosts}", "2x2 leaf/spine" if hosts == 4 else "1 switch",
            size / 1e6, c.jct_s, c.ideal_jct_s, (c.busbw_mbps / ideal_busbw - 1) * 100,
            c.busbw_mbps, ideal_busbw, c.busbw_efficiency * 100, verdict(s)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=20.0, help="link rate, Mbit/s")
    ap.add_argument("--flow-sizes", nargs="+", default=["100kB", "1MB", "4MB", "16MB"])
    ap.add_argument("--ring-sizes", nargs="+", default=["1MB", "4MB", "16MB"])
    ap.add_argument("--out", type=Path, default=None, help="keep run directories here")
    args = ap.parse_args()
    flow_sizes = [parse_size(x, "--flow-sizes") for x in args.flow_sizes]
    ring_sizes = [parse_size(x, "--ring-sizes") for x in args.ring_sizes]
    print_facts(f"accuracy vs the ideal model, {args.rate:g} Mbit/s links")
    with tempfile.TemporaryDirectory(prefix="bench-acc-") as tmp:
        out = args.out or Path(tmp)
        flows = [single_flow(args.rate, size, out) for size in flow_sizes]
        print(table(["workload", "fabric", "MB", "FCT s", "ideal s", "error %", "goodput Mbit/s",
                     "fidelity"], flows), flush=True)
        print()
        rings = [allreduce(args.rate, size, n, out) for n in (4, 8) for size in ring_sizes]
        print(table(["workload", "fabric", "MB", "JCT s", "ideal s", "busbw err %",
                     "busbw Mbit/s", "ideal busbw", "busbw % of line", "fidelity"], rings))


if __name__ == "__main__":
    main()
