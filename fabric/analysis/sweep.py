"""`fabric sweep`: the points of a parameter sweep and its results, one comparison per point.

    --vary KEY=V1,V2,...  (one per parameter)  ──► points: the cross product, or with --zip the
        i-th value of every parameter together; each point is a list of `--set` overrides
        (fabric.spec.overrides) applied to the experiment before it is validated
    per point: every fabric x seed run ──► RunMetrics ──► one Comparison (fabric.analysis.comparison)
    Sweep: the points with their comparisons ──► rows (fabric.analysis.results.MetricRow, with the
        point's settings in `params`), table, plots (fabric.report.sweep)

Values are written as on the command line (`1.0,1.25,1.5`, `1MB,4MB`, `"a,b",c`): a comma
separates values except inside quotes, brackets or braces; each value is a TOML value, else text.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fabric.analysis.comparison import Comparison
from fabric.analysis.metrics import to_jsonable
from fabric.analysis.results import MetricRow, comparison_rows
from fabric.spec.overrides import Override, parse_key, parse_override
from topologies.errors import SpecError

FORMAT = 1
METRICS = (("jct_s", "JCT (s)"), ("busbw_mbps", "bus bandwidth (Mbit/s)"),
           ("fct_p99_s", "FCT p99 (s)"))  # the primary metrics, plotted against the parameter


@dataclass(frozen=True)
class Vary:
    """One varied parameter: its key path and its values as written."""
    key: str
    values: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.key}={','.join(self.values)}"


@dataclass(frozen=True)
class Point:
    """One point of the sweep: (key, value as written) per varied parameter."""
    index: int
    settings: tuple[tuple[str, str], ...]

    @property
    def params(self) -> dict[str, str]:
        return dict(self.settings)

    def overrides(self) -> list[Override]:
        return [parse_override(f"{k}={v}", "--vary") for k, v in self.settings]

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings)


def split_values(text: str) -> list[str]:
    """Split on commas outside quotes, brackets and braces."""
    out, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    return out


def parse_vary(text: str) -> Vary:
    """`KEY=V1,V2,...` -> Vary; SpecError naming --vary when malformed."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError("--vary", f"{text!r} is not KEY=V1,V2,... (e.g. fabric[ddc].speedup=1.0,1.25)")
    parse_key(key, "--vary")
    vals = split_values(values)
    if any(v == "" for v in vals):
        raise SpecError("--vary", f"{text!r}: an empty value (values are separated by commas)")
    if len(set(vals)) != len(vals):
        raise SpecError("--vary", f"{text!r}: a value is given twice")
    return Vary(key, tuple(vals))


def sweep_points(varies: Sequence[Vary], zipped: bool = False) -> list[Point]:
    """The cross product of the values (the last parameter varies fastest), or with `zipped`
    the i-th value of every parameter together (all must have as many values)."""
    if not varies:
        raise SpecError("--vary", "give at least one --vary KEY=V1,V2,...")
    keys = [v.key for v in varies]
    if len(set(keys)) != len(keys):
        raise SpecError("--vary", f"a key is varied twice: {keys}")
    if zipped:
        lengths = {len(v.values) for v in varies}
        if len(lengths) > 1:
            raise SpecError("--zip", "every --vary needs as many values with --zip, got "
                                     + ", ".join(f"{v.key}: {len(v.values)}" for v in varies))
        combos: Sequence[tuple[str, ...]] = list(zip(*(v.values for v in varies)))
    else:
        combos = list(itertools.product(*(v.values for v in varies)))
    return [Point(i, tuple(zip(keys, combo))) for i, combo in enumerate(combos)]


@dataclass(frozen=True)
class PointResult:
    point: Point
    comparison: Comparison


@dataclass(frozen=True)
class Sweep:
    """A sweep's results so far: one comparison per point (points not yet run have none)."""
    experiment: str
    varies: list[Vary]
    zipped: bool
    seeds: int
    sets: list[str]
    points: list[PointResult]
    runs_total: int
    runs_done: int
    report_dir: str | None = None
    spec_path: str | None = None
    interrupted: bool = False
    elapsed_s: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.interrupted and self.runs_done == self.runs_total and all(
            p.comparison.all_complete for p in self.points)

    def rows(self) -> list[MetricRow]:
        """Every point's run and aggregate rows, `params` = the point's settings."""
        return [row for p in self.points
                for row in comparison_rows(p.comparison.to_dict(), p.point.params, p.point.index)]

    def to_dict(self) -> dict[str, Any]:
        """sweep.json: the sweep's parameters and every point's comparison document."""
        out: dict[str, Any] = to_jsonable({
            "format": FORMAT, "experiment": self.experiment, "spec_path": self.spec_path,
            "report_dir": self.report_dir, "vary": [{"key": v.key, "values": list(v.values)}
                                                    for v in self.varies],
            "zip": self.zipped, "seeds": self.seeds, "set": self.sets,
            "runs_total": self.runs_total, "runs_done": self.runs_done,
            "complete": self.complete, "interrupted": self.interrupted,
            "elapsed_s": self.elapsed_s,
            "points": [{"index": p.point.index, "params": p.point.params,
                        "comparison": p.comparison.to_dict()} for p in self.points],
        })
        return out


def _cell(x: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if x is None else f"{x * scale:.{digits}f}"


def _pm(mean: float | None, sd: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return _cell(mean, scale, digits) + ("" if mean is None or sd is None
                                         else f" ±{_cell(sd, scale, digits)}")


def table_rows(sweep: Sweep) -> list[tuple[str, list[tuple[str, str]]]]:
    """(workload, [(column, cell), ...]) per point x fabric: the printed sweep table."""
    out = []
    for row in sweep.rows():
        if row.row_type != "aggregate":
            continue
        runs = next(f for p in sweep.points if p.point.index == row.point
                    for f in p.comparison.fabrics if f.name == row.fabric)
        out.append((row.workload, [
            *[(k, v) for k, v in row.params.items()],
            ("fabric", row.fabric + (" (ref)" if row.status == "reference" else "")),
            ("runs ok", f"{runs.runs_complete}/{runs.runs}"),
            ("JCT s", _pm(row.jct_s, row.jct_stdev_s)),
            ("JCT xref", _cell(row.jct_ratio, digits=2)),
            ("busbw Mbit/s", _pm(row.busbw_mbps, row.busbw_stdev_mbps, digits=2)),
            ("FCT p99 ms", _pm(row.fct_p99_s, row.fct_p99_stdev_s, 1e3, 1)),
        ]))
    return out


def format_sweep(sweep: Sweep) -> str:
    """The human table `fabric sweep` prints (and sweep.txt holds)."""
    head = (f"fabric sweep: {sweep.experiment}, {len(sweep.points)} point(s) "
            f"({'zipped' if sweep.zipped else 'cross product'} of "
            f"{'; '.join(v.text for v in sweep.varies)}), {sweep.seeds} seed(s) per fabric; "
            f"runs {sweep.runs_done}/{sweep.runs_total}"
            + ("  [INTERRUPTED: resume with fabric sweep --resume "
               f"{sweep.report_dir}]" if sweep.interrupted else ""))
    lines = [head, ("means over complete runs; ± = sample stdev over seeds; xref = mean / "
                    "reference fabric's mean at the same point"), ""]
    rows = table_rows(sweep)
    for w in dict.fromkeys(name for name, _ in rows):
        mine = [r for name, r in rows if name == w]
        heads = [c for c, _ in mine[0]]
        widths = [max(len(h), *(len(r[i][1]) for r in mine)) for i, h in enumerate(heads)]
        lines.append(f"workload {w}")
        lines.append("  ".join(h.ljust(n) for h, n in zip(heads, widths)))
        lines += ["  ".join(c.ljust(n) for (_, c), n in zip(r, widths)) for r in mine]
        lines.append("")
    if sweep.report_dir:
        lines.append(f"report: {sweep.report_dir}  ({sweep.elapsed_s:.0f} s)")
    return "\n".join(lines)
