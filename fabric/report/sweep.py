"""The `fabric sweep` report: the table as JSON/CSV/text and one plot per primary metric.

    sweep.json          Sweep.to_dict(): the parameters and every point's comparison document
    sweep.csv           one row per point x fabric x seed x workload (row_type "run") and per
                        point x fabric x workload (row_type "aggregate"); the varied keys are
                        columns (values as written), then fabric.analysis.results.MetricRow's fields
    sweep.txt           the printed table
    sweep_jct_s.png, sweep_busbw_mbps.png, sweep_fct_p99_s.png
                        mean (error bars: stdev over seeds) against the first varied parameter,
                        one line per fabric (and per value of the other varied parameters), one
                        panel per workload; a metric no run measured (busbw without collectives)
                        is not plotted
"""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

from fabric.analysis.results import MetricRow
from fabric.analysis.sweep import METRICS, Sweep, format_sweep
from fabric.spec.overrides import parse_value

ROW_FIELDS = [f.name for f in dataclasses.fields(MetricRow) if f.name != "params"]


def write_report(sweep: Sweep, report_dir: Path) -> list[Path]:
    report_dir = Path(report_dir)
    written = [report_dir / "sweep.json", report_dir / "sweep.csv", report_dir / "sweep.txt"]
    written[0].write_text(json.dumps(sweep.to_dict(), indent=2) + "\n")
    write_csv(sweep, written[1])
    written[2].write_text(format_sweep(sweep) + "\n")
    return written + write_plots(sweep, report_dir)


def write_csv(sweep: Sweep, path: Path) -> None:
    keys = [v.key for v in sweep.varies]
    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, ["point", *keys, *[c for c in ROW_FIELDS if c != "point"]])
        out.writeheader()
        for row in sweep.rows():
            d = dataclasses.asdict(row)
            params = d.pop("params")
            out.writerow({**{k: "" if v is None else v for k, v in d.items()}, **params})


def _x_values(texts: list[str]) -> tuple[list[float], bool]:
    """Numeric x positions when every value is a number or a size, else 0, 1, 2, ..."""
    from fabric.spec.units import parse_size
    xs = []
    for t in texts:
        v = parse_value(t)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            xs.append(float(v))
            continue
        try:
            xs.append(float(parse_size(v, "x")))
        except Exception:
            return [float(i) for i in range(len(texts))], False
    return xs, True


def write_plots(sweep: Sweep, report_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not sweep.varies:
        return []
    first = sweep.varies[0]
    xs, numeric = _x_values(list(first.values))
    x_of = dict(zip(first.values, xs))
    aggs = [r for r in sweep.rows() if r.row_type == "aggregate"]
    workloads = list(dict.fromkeys(r.workload for r in aggs))
    written = []
    for metric, label in METRICS:
        if not any(getattr(r, metric) is not None for r in aggs):
            continue
        fig, axes = plt.subplots(1, len(workloads), figsize=(max(7.0, 5.5 * len(workloads)), 4.2), squeeze=False)
        for ax, w in zip(axes[0], workloads):
            _plot_lines(ax, [r for r in aggs if r.workload == w], metric, first.key, x_of)
            ax.set_title(f"workload {w}")
            ax.set_xlabel(first.key)
            ax.set_ylabel(label)
            if not numeric:
                ax.set_xticks(xs, list(first.values))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"{sweep.experiment}: {label} vs {first.key} (mean ± stdev over seeds)", fontsize=10)
        fig.tight_layout()
        path = report_dir / f"sweep_{metric}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _plot_lines(ax: Any, rows: list[MetricRow], metric: str, xkey: str, x_of: dict[str, float]) -> None:
    stdev = {"jct_s": "jct_stdev_s", "busbw_mbps": "busbw_stdev_mbps",
             "fct_p99_s": "fct_p99_stdev_s"}[metric]
    lines: dict[str, list[MetricRow]] = {}
    for r in rows:
        others = ", ".join(f"{k}={v}" for k, v in r.params.items() if k != xkey)
        lines.setdefault(r.fabric + (f" ({others})" if others else ""), []).append(r)
    for name, mine in lines.items():
        pts = sorted((x_of[r.params[xkey]], getattr(r, metric), getattr(r, stdev)) for r in mine
                     if getattr(r, metric) is not None)
        if pts:
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts],
                        yerr=[p[2] or 0.0 for p in pts], marker="o", capsize=3, label=name)
