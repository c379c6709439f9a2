"""Find the DDC fabric speed-up at which the DDC stops beating leaf/spine + ECMP on a permutation.

    sudo .venv/bin/python examples/ddc_breakeven.py examples/sweep-ddc-speedup.toml \
        --lo 0.25 --hi 1.5 --steps 4 --seeds 2

The experiment needs one DDC fabric and one other fabric (ECMP), and one workload. At each
speed-up the script runs `fabric compare` through the Python API (fabric.api) with
`--set fabric[<ddc>].speedup=S` and compares mean JCTs: DDC / ECMP < 1 means the DDC wins.
It assumes the ratio falls as the speed-up grows and bisects [lo, hi] `steps` times. ECMP
varies from seed to seed (its hash), so use several seeds; the table says how much.
"""
from __future__ import annotations

import argparse
import sys

from fabric import api


def ratio_at(path: str, ddc: str, other: str, workload: str, speedup: float, seeds: int,
             out: str, extra: list[str]) -> float:
    spec = api.load(path, set=[*extra, f"fabric[{ddc}].speedup={speedup}"])
    comp = api.compare(spec, seeds=seeds, out=out)
    d, e = comp.mean(ddc, workload), comp.mean(other, workload)
    if d is None or e is None:
        raise SystemExit(f"speed-up {speedup}: a fabric has no complete run ({comp.report_dir})")
    print(f"speed-up {speedup:.3f}: DDC JCT {d:.3f} s, {other} {e:.3f} s, ratio {d / e:.3f}  "
          f"({comp.report_dir})", flush=True)
    return d / e


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("experiment")
    p.add_argument("--lo", type=float, default=0.25)
    p.add_argument("--hi", type=float, default=1.5)
    p.add_argument("--steps", type=int, default=4, help="bisection steps after the two ends")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--out", default="runs")
    p.add_argument("--set", action="append", default=[], help="more overrides, as fabric --set")
    args = p.parse_args(argv)
    spec = api.load(args.experiment, set=args.set)
    ddc = next(f.name for f in spec.fabrics if f.kind == "ddc")
    other = next(f.name for f in spec.fabrics if f.kind != "ddc")
    workload = spec.workloads[0].name

    def run(s: float) -> float:
        return ratio_at(args.experiment, ddc, other, workload, s, args.seeds, args.out, args.set)

    lo, hi = args.lo, args.hi
    r_lo, r_hi = run(lo), run(hi)
    if r_lo < 1 or r_hi >= 1:
        print(f"no crossing in [{lo}, {hi}]: ratio {r_lo:.3f} at {lo}, {r_hi:.3f} at {hi}")
        return 1
    for _ in range(args.steps):
        mid = (lo + hi) / 2
        if run(mid) >= 1:
            lo = mid
        else:
            hi = mid
    print(f"the DDC stops beating {other} between speed-up {lo:.3f} and {hi:.3f} "
          f"({workload}, {args.seeds} seed(s) per point)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
