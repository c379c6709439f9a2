"""The largest aggregate emulated throughput that stays faithful on this machine, per datapath.

    sudo .venv/bin/python -m bench.throughput [--rates 10 20 40 80 160 320] [--seconds 3]

Two series, each a ramp of the link rate with a fixed set of concurrent bulk flows sized to last
`seconds` on the ideal fabric:
  leafspine  2x2 leaf/spine, 4 hosts, h1<->h3 and h2<->h4 (4 flows, each crossing 3 switches);
             fabric links at twice the host rate, so an ECMP collision costs nothing
  single     one switch, 8 hosts, ring h1->h2->...->h8->h1 (8 flows, each crossing 1 switch)
Per run: offered load (flows x rate), achieved aggregate goodput (bytes / span of the flows),
achieved / ideal (ideal FCT / measured FCT, median over flows; fabric.analysis.ideal), switch-hop
throughput (goodput x switches crossed: the userspace datapath's work), peak ovs-vswitchd cores,
peak machine CPU and the run's fidelity verdict (fabric.analysis.fidelity). The largest faithful aggregate
is the highest goodput of a run judged faithful with achieved/ideal >= 95%.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from bench.common import datapaths, leafspine, print_facts, run_spec, table, verdict

SERIES = {
    "leafspine": (lambda rate: leafspine(4, rate, 2 * rate),
                  [("h1", "h3"), ("h3", "h1"), ("h2", "h4"), ("h4", "h2")], 3),
    "single": (lambda rate: {"kind": "single", "hosts": 8, "host_rate_mbps": rate},
               [(f"h{i + 1}", f"h{(i + 1) % 8 + 1}") for i in range(8)], 1),
}
FAITHFUL_RATIO = 0.95


def one(series: str, rate: float, seconds: float, dp: str, out: Path) -> list[Any]:
    fabric, pairs, hops = SERIES[series]
    size = int(rate * 1e6 / 8 * seconds)
    s = run_spec({"name": f"tput-{series}", "run": {"datapath": dp, "deadline_s": 20 * seconds},
                  "fabric": fabric(rate),
                  "workload": [{"kind": "flows", "name": "bulk", "flows": [
                      {"src": a, "dst": b, "size_bytes": size} for a, b in pairs]}]}, out)
    recs = [r for r in _records(s) if r.complete]
    span = max(r.end for r in recs) - min(r.start for r in recs) if recs else float("nan")
    goodput = sum(r.bytes for r in recs) * 8 / span / 1e6 if recs else float("nan")
    ratio = 1 / s.ideal.fct_ratio.p50 if s.ideal and s.ideal.fct_ratio.count else float("nan")
    cpu = s.fidelity.cpu if s.fidelity else None
    return [dp, series, rate, len(pairs) * rate, goodput, ratio * 100, goodput * hops,
            cpu.ovs_vswitchd_cores_peak if cpu else float("nan"),
            cpu.machine_busy_peak * 100 if cpu else float("nan"),
            s.tcp.get("retransmit_ppm", "-"), verdict(s)]


def _records(summary: Any) -> list[Any]:
    from traffic.records import read_csv
    return read_csv(Path(summary.run_dir) / "flows.csv")


HEADERS = ["datapath", "series", "link Mbit/s", "offered Mbit/s", "goodput Mbit/s",
           "% of ideal", "switch-hop Mbit/s", "ovs cores peak", "cpu % peak", "retx ppm",
           "fidelity"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[10, 20, 40, 80, 160, 320])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--series", nargs="+", default=list(SERIES), choices=list(SERIES))
    ap.add_argument("--out", type=Path, default=None, help="keep run directories here")
    args = ap.parse_args()
    print_facts("largest faithful aggregate throughput (ramp of link rates, bulk flows)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-tput-") as tmp:
        for dp in datapaths():
            for series in args.series:
                for rate in args.rates:
                    rows.append(one(series, rate, args.seconds, dp, args.out or Path(tmp)))
                    print(table(HEADERS, rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(HEADERS, rows))
    for dp in {r[0] for r in rows}:
        for series in args.series:
            ok = [r for r in rows if r[0] == dp and r[1] == series and r[-1] == "faithful"
                  and r[5] >= FAITHFUL_RATIO * 100]
            best = max(ok, key=lambda r: r[4], default=None)
            print(f"largest faithful ({dp}, {series}): " + (
                f"{best[4]:.0f} Mbit/s goodput at {best[2]:g} Mbit/s links "
                f"({best[6]:.0f} Mbit/s of switch-hop traffic)" if best else "none"))


if __name__ == "__main__":
    main()
