"""Largest aggregate host goodput emulated FAITHFULLY, per fabric kind and MTU.

    sudo .venv/bin/python -m bench.capacity [--hosts 16] [--mtus 1500 9000] [--seeds 1]

A full-bisection permutation (stride = hosts per leaf: every flow crosses the spine/NCF tier; on
the single switch every flow crosses the one switch) of bulk flows sized to last `seconds` on the
ideal fabric, ramped over per-host rates until a run is no longer faithful. Fabrics: `leafspine`:
ECMP with every uplink as fast as all its leaf's hosts together, so no hash collision limits the
goodput (the machine does); `spray`: leaf/spine with per-packet spraying and `ddc`, both at exactly
full bisection (uplinks at host rate x hosts per leaf / spines); `single`. A rate counts as
faithful when, on every seed, the run completed, the fidelity verdict is FAITHFUL and the median
flow reached >= 95% of its ideal rate (ideal FCT / measured FCT, as bench.throughput); `% ideal
span` is the stricter aggregate: goodput over the span from the first start to the last end against
the ideal model's makespan (the slowest flow counts). The table's last column is the capacity
prediction `fabric check` would print, so the budget in fabric.analysis.capacity can be checked
against what was measured.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.common import SHAPES, print_facts, run_spec, table, verdict

FAITHFUL_RATIO = 0.95
RATES: dict[int, list[float]] = {1500: [5, 7.5, 10, 15, 20], 9000: [30, 40, 50, 55, 60, 70, 80]}
KINDS = ("leafspine", "spray", "ddc", "single")


def fabric(kind: str, hosts: int, rate: float, mtu: int, queue: str) -> dict[str, Any]:
    spines, leaves, per_leaf = SHAPES[hosts]
    common = {"host_rate_mbps": rate, "mtu": mtu, "queue": queue}
    fab_rate = rate * per_leaf / spines
    if kind == "leafspine":  # ECMP, every uplink able to carry all its leaf's flows: no hash
        return {"kind": "leafspine", "spines": spines, "leaves": leaves,  # collision can limit
                "hosts_per_leaf": per_leaf, "fabric_rate_mbps": rate * per_leaf,
                "policy": "ecmp", **common}
    if kind == "spray":
        return {"kind": "leafspine", "spines": spines, "leaves": leaves, "hosts_per_leaf": per_leaf,
                "fabric_rate_mbps": fab_rate, "policy": "spray", **common}
    if kind == "single":
        return {"kind": "single", "hosts": hosts, **common}
    if kind == "ddc":
        return {"kind": "ddc", "ncps": leaves, "ncfs": spines, "hosts_per_ncp": per_leaf,
                "fabric_rate_mbps": fab_rate, **common}
    raise ValueError(kind)


def one(kind: str, hosts: int, rate: float, mtu: int, seed: int, seconds: float, queue: str,
        out: Path) -> dict[str, Any]:
    per_leaf = SHAPES[hosts][2]
    size = int(rate * 1e6 / 8 * seconds)
    s = run_spec({"name": f"cap-{kind}-{mtu}", "seed": seed,
                  "run": {"deadline_s": 15 * seconds},
                  "fabric": fabric(kind, hosts, rate, mtu, queue),
                  "workload": [{"kind": "stride", "name": "perm", "stride": per_leaf,
                                "size_bytes": size}]}, out)
    from traffic.records import read_csv
    recs = [r for r in read_csv(Path(s.run_dir) / "flows.csv") if r.complete]
    ends = [r.end for r in recs if r.end is not None]
    starts = [r.start for r in recs if r.start is not None]
    span = max(ends) - min(starts) if ends and starts else float("nan")
    goodput = sum(r.bytes for r in recs) * 8 / span / 1e6 if recs else float("nan")
    ideal = (s.ideal.makespan_s if s.ideal else float("nan"))
    ideal_goodput = hosts * size * 8 / ideal / 1e6 if ideal == ideal and ideal > 0 else float("nan")
    cpu = s.fidelity.cpu if s.fidelity else None
    fct = 1 / s.ideal.fct_ratio.p50 if s.ideal and s.ideal.fct_ratio.count else float("nan")
    return {"goodput": goodput, "ratio": fct, "span_ratio": goodput / ideal_goodput,
            "verdict": verdict(s),
            "ovs": cpu.ovs_vswitchd_cores_mean if cpu else float("nan"),
            "ppm": s.tcp.get("retransmit_ppm", float("nan")),
            "peak_mbps": (s.fidelity.ideal_peak_forwarding_mbps or float("nan")) if s.fidelity else float("nan")}


HEADERS = ["fabric", "mtu", "host Mbit/s", "offered", "goodput mean", "min", "% ideal min",
           "% ideal span min",
           "ovs cores", "retx ppm", "switch egress Mbit/s", "kframes/s", "verdicts"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=16, choices=sorted(SHAPES))
    ap.add_argument("--mtus", type=int, nargs="+", default=[1500, 9000])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--queue", default="150KB", help="every egress queue (bytes or time)")
    ap.add_argument("--rates", type=float, nargs="+", default=None, help="per-host Mbit/s")
    ap.add_argument("--out", type=Path, default=None, help="keep run directories here")
    args = ap.parse_args()
    print_facts(f"capacity: largest faithful aggregate goodput, {args.hosts}-host permutation")
    rows, best = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-cap-") as tmp:
        for mtu in args.mtus:
            for kind in args.kinds:
                for rate in args.rates or RATES.get(mtu, RATES[1500]):
                    runs = [one(kind, args.hosts, rate, mtu, 1 + i, args.seconds, args.queue,
                                args.out or Path(tmp)) for i in range(args.seeds)]
                    goodputs = [r["goodput"] for r in runs]
                    ok = all(r["verdict"] == "faithful" and r["ratio"] >= FAITHFUL_RATIO
                             for r in runs)
                    peak = statistics.mean(r["peak_mbps"] for r in runs)
                    rows.append([kind, mtu, rate, rate * args.hosts, statistics.mean(goodputs),
                                 min(goodputs), 100 * min(r["ratio"] for r in runs),
                                 100 * min(r["span_ratio"] for r in runs),
                                 statistics.mean(r["ovs"] for r in runs),
                                 statistics.mean(r["ppm"] for r in runs), peak,
                                 peak * 1e6 / 8 / (mtu + 14) / 1e3,
                                 ",".join(r["verdict"] for r in runs)])
                    print(table(HEADERS, rows[-1:]).splitlines()[-1], flush=True)
                    if ok:
                        best[(kind, mtu)] = rows[-1]
                    else:
                        break  # the ramp stops at the first rate that is not faithful
    print()
    print(table(HEADERS, rows))
    print()
    for (kind, mtu), r in sorted(best.items()):
        print(f"largest faithful ({kind}, MTU {mtu}): {r[4]:.0f} Mbit/s aggregate host goodput "
              f"at {r[2]:g} Mbit/s per host ({r[11]:.1f}k frames/s of switch egress)")


if __name__ == "__main__":
    main()
