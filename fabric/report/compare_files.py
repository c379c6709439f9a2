"""The `fabric compare` report directory: the table as JSON/CSV/text, PNG plots, one HTML page.

    <out>/<UTC time>-<experiment>-compare/
        spec.toml          the experiment as given
        compare.json       Comparison.to_dict() (the `--json` document, README.md)
        compare.csv        one row per fabric x seed x workload (row_type "run"), one aggregate row
                           per fabric x workload (row_type "aggregate"), one row per fabric pair x
                           workload (row_type "pair": the head-to-head JCT ratio and its interval)
        compare.txt        the printed table
        head_to_head.png   every pair's JCT ratio with its 95% interval (log axis, 1 = no difference)
        jct_per_seed.png   JCT per seed per fabric, one panel per workload; runs left out of the
                           means drawn hollow
        fct_cdf.png        FCT CDF per fabric (every complete flow of every counted run)
        link_util.png      per fabric, every fabric-tier link direction's mean utilisation in each
                           seed, busiest first (a hot link stays visible whichever link it was)
        link_heatmap.png   utilisation of each fabric-tier link direction over time, one counted
                           run per fabric (the same seed where possible), one shared time axis
        index.html         the banner, verdicts, tables, cost line, setup table and the plots
        runs/              the run directories (fabric.run.rundir), one per fabric x seed

Every path written into these files is relative to the report directory, so the directory can be
moved or archived whole. Plots use matplotlib's Agg backend (no display needed), 100 dpi, at
most 1000 px wide, so the page shows them at their own size.
"""
from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path
from typing import Any

from fabric.analysis.comparison import Comparison, RunMetrics
from fabric.analysis.cost import assumptions, format_cost
from fabric.analysis.links import read_links_csv, series
from fabric.report.compare_text import (banner, cost_lines, drop_empty_columns, format_comparison,
                                        link_rows, run_rows, table_rows)

CSV_COLUMNS = ("row_type", "fabric", "kind", "seed", "status", "faithful", "counted",
               "fidelity_reasons", "workload", "jct_s", "iteration_jct_s", "busbw_mbps",
               "fct_p50_s", "fct_p99_s", "ideal_jct_s", "x_ideal", "ecmp_penalty", "runs",
               "runs_complete", "runs_faithful", "runs_counted", "jct_stdev_s", "jct_cv",
               "jct_min_s", "jct_max_s", "jct_ratio", "busbw_ratio", "fct_p99_ratio",
               "link_util_mean", "link_util_max", "link_mmr", "link_jain", "vs", "seeds",
               "ci_low", "ci_high", "resolved", "run_dir")
PLOTS = ("head_to_head.png", "jct_per_seed.png", "fct_cdf.png", "link_util.png",
         "link_heatmap.png")
DPI = 100
WIDTH_IN = 10.0  # 1000 px: the page's width, so no image is shrunk


def write_report(comp: Comparison, report_dir: Path) -> list[Path]:
    """Write every report file into `report_dir`; returns the files written."""
    report_dir = Path(report_dir)
    written = [report_dir / "compare.json", report_dir / "compare.csv", report_dir / "compare.txt"]
    written[0].write_text(json.dumps(comp.to_dict(), indent=2) + "\n")
    write_csv(comp, written[1])
    written[2].write_text(format_comparison(comp) + "\n")
    plots = write_plots(comp, report_dir)
    written += plots
    written.append(write_html(comp, report_dir, [p.name for p in plots]))
    return written


# ---------------------------------------------------------------- CSV

def _cell(x: Any) -> Any:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else x


def write_csv(comp: Comparison, path: Path) -> None:
    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, CSV_COLUMNS)
        out.writeheader()
        for r in comp.runs:
            bal = r.link_balance
            for w, m in r.workloads.items():
                ideal = r.ideal_jct_s.get(w)
                out.writerow({k: _cell(v) for k, v in {
                    "row_type": "run", "fabric": r.fabric, "kind": r.kind, "seed": r.seed,
                    "status": r.status, "faithful": r.faithful,
                    "counted": r.counts(comp.include_unfaithful),
                    "fidelity_reasons": "; ".join(r.fidelity_reasons), "workload": w,
                    "jct_s": m.jct_s, "iteration_jct_s": m.iteration_jct_s,
                    "busbw_mbps": m.busbw_mbps, "fct_p50_s": m.fct_p50_s,
                    "fct_p99_s": m.fct_p99_s, "ideal_jct_s": ideal,
                    "x_ideal": m.jct_s / ideal if m.jct_s and ideal else None,
                    "link_util_mean": bal and bal.util_mean, "link_util_max": bal and bal.util_max,
                    "link_mmr": bal and bal.mmr, "link_jain": bal and bal.jain,
                    "run_dir": comp.relative(r.run_dir)}.items()})
        for fab in comp.fabrics:
            L = fab.links
            for w, a in fab.workloads.items():
                out.writerow({k: _cell(v) for k, v in {
                    "row_type": "aggregate", "fabric": fab.name, "kind": fab.kind,
                    "status": "reference" if fab.reference else "", "workload": w,
                    "jct_s": a.jct_s.mean, "iteration_jct_s": a.iteration_jct_s.mean,
                    "busbw_mbps": a.busbw_mbps.mean, "fct_p50_s": a.fct_p50_s.mean,
                    "fct_p99_s": a.fct_p99_s.mean, "ideal_jct_s": a.ideal_jct_s,
                    "x_ideal": a.x_ideal, "ecmp_penalty": a.ecmp_penalty, "runs": fab.runs,
                    "runs_complete": fab.runs_complete, "runs_faithful": fab.runs_faithful,
                    "runs_counted": fab.runs_counted, "jct_stdev_s": a.jct_s.stdev,
                    "jct_cv": a.jct_s.cv, "jct_min_s": a.jct_s.min, "jct_max_s": a.jct_s.max,
                    "jct_ratio": a.jct_ratio, "busbw_ratio": a.busbw_ratio,
                    "fct_p99_ratio": a.fct_p99_ratio,
                    "link_util_mean": L and L.util_mean.mean, "link_util_max": L and L.util_max.mean,
                    "link_mmr": L and L.mmr.mean, "link_jain": L and L.jain.mean}.items()})
        for p in comp.pairs:
            out.writerow({k: _cell(v) for k, v in {
                "row_type": "pair", "fabric": p.a, "vs": p.b, "workload": p.workload,
                "seeds": " ".join(str(s) for s in p.seeds), "jct_ratio": p.ratio,
                "ci_low": p.low, "ci_high": p.high, "resolved": p.resolved}.items()})


# ---------------------------------------------------------------- plots

def _pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _counted(comp: Comparison, fabric: str) -> list[RunMetrics]:
    return [r for r in comp.runs if r.fabric == fabric and r.counts(comp.include_unfaithful)]


def _label(comp: Comparison, name: str) -> str:
    return f"{name} (reference)" if name == comp.reference else name


def _colours(comp: Comparison) -> dict[str, Any]:
    """One colour per fabric, the same in every plot."""
    plt = _pyplot()
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {f.name: cycle[i % len(cycle)] for i, f in enumerate(comp.fabrics)}


def write_plots(comp: Comparison, report_dir: Path) -> list[Path]:
    """The PNGs of PLOTS (each only when it has something to show)."""
    plt = _pyplot()
    out = []
    draws = (_head_to_head, _jct_per_seed, _fct_cdf, _link_util, _link_heatmap)
    for name, draw in zip(PLOTS, draws):
        fig = draw(plt, comp)
        if fig is None:
            continue
        fig.savefig(report_dir / name, dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        out.append(report_dir / name)
    return out


def _note(comp: Comparison) -> str:
    return ("" if not comp.not_faithful or comp.include_unfaithful
            else f" - {len(comp.not_faithful)} unfaithful run(s) left out")


def _head_to_head(plt: Any, comp: Comparison) -> Any:
    pairs = [p for p in comp.pairs if p.ratio is not None]
    if not pairs:
        return None
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.8, 0.32 * len(pairs) + 1.2))
    ys = list(range(len(pairs)))[::-1]
    for y, p in zip(ys, pairs):
        colour = "tab:green" if p.resolved else "tab:gray"
        if p.low is not None:
            ax.plot([p.low, p.high], [y, y], color=colour, linewidth=3, alpha=0.6)
        ax.plot([p.ratio], [y], "o", color=colour)
        ax.plot(p.ratios, [y] * len(p.ratios), "|", color="black", markersize=8)
    ax.axvline(1.0, color="black", linewidth=1, linestyle="--")
    ax.set_xscale("log")
    lo = min(min(p.ratios) for p in pairs) if pairs else 0.5
    hi = max(max(p.ratios) for p in pairs) if pairs else 2
    bounds = [b for p in pairs for b in (p.low, p.high) if b is not None]
    lo, hi = min([lo, *bounds, 0.9]), max([hi, *bounds, 1.1])
    ax.set_xlim(lo / 1.1, hi * 1.1)
    ticks = [t for t in (0.25, 0.33, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)
             if lo / 1.1 <= t <= hi * 1.1]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_yticks(ys, [f"{p.a} / {p.b}" + (f"  [{p.workload}]" if len(comp.workloads) > 1 else "")
                       for p in pairs])
    ax.set_xlabel("JCT ratio A / B (log scale; < 1: A faster).  dot: geometric mean; bar: 95% "
                  "interval; ticks: each seed")
    ax.set_title(f"{comp.experiment}: head to head (green: resolved, grey: the seeds cannot tell)"
                 + _note(comp), fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return fig


def _jct_per_seed(plt: Any, comp: Comparison) -> Any:
    n = len(comp.workloads)
    colours = _colours(comp)
    fig, axes = plt.subplots(n, 1, figsize=(WIDTH_IN, 3.4 * n), squeeze=False,
                             layout="constrained")
    for ax, w in zip(axes[:, 0], comp.workloads):
        for f in comp.fabrics:
            mine = [r for r in comp.runs if r.fabric == f.name and r.complete
                    and w in r.workloads and r.workloads[w].jct_s is not None]
            counted = [r for r in mine if r.counts(comp.include_unfaithful)]
            left_out = [r for r in mine if not r.counts(comp.include_unfaithful)]
            c = colours[f.name]
            if counted:
                ax.plot([r.seed for r in counted], [r.workloads[w].jct_s for r in counted],
                        marker="o", color=c, linestyle="--" if f.reference else "-",
                        label=_label(comp, f.name))
                mean = f.workloads[w].jct_s.mean
                if mean is not None:
                    ax.axhline(mean, color=c, alpha=0.35, linewidth=1)
            if left_out:
                ax.plot([r.seed for r in left_out], [r.workloads[w].jct_s for r in left_out],
                        marker="o", markerfacecolor="white", color=c, linestyle="none",
                        markersize=9, label=f"{f.name}: not faithful, not in means")
        failed = [r for r in comp.runs if not r.complete]
        note = f" ({len(failed)} incomplete run(s) not shown)" if failed else ""
        ax.set_title(f"{comp.experiment}: job completion time of '{w}' per seed{note}",
                     fontsize=10)
        ax.set_xlabel("seed (sets every transfer's TCP source port, hence the ECMP hash)")
        ax.set_ylabel("JCT (s)")
        ax.set_xticks(comp.seeds)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # outside the axes: it never hides a point
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
                      title="fabric (faint line: mean)", title_fontsize=9)
    return fig


def _fct_cdf(plt: Any, comp: Comparison) -> Any:
    colours = _colours(comp)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.2))
    drawn = 0
    for f in comp.fabrics:
        runs = _counted(comp, f.name)
        xs = sorted(x * 1e3 for r in runs for x in r.fct_s)
        if not xs:
            continue
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        ax.step(xs, ys, where="post", linestyle="--" if f.reference else "-", linewidth=1.8,
                color=colours[f.name],
                label=f"{_label(comp, f.name)}: {len(xs)} flows, {len(runs)} runs")
        drawn += 1
    ax.set_title(f"{comp.experiment}: flow completion time CDF (counted runs, all seeds)"
                 + _note(comp), fontsize=10)
    ax.set_xlabel("flow completion time (ms)")
    ax.set_ylabel("fraction of flows with FCT ≤ x")
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    else:
        ax.text(0.5, 0.5, "no counted run", ha="center", transform=ax.transAxes)
    return fig


def _link_util(plt: Any, comp: Comparison) -> Any:
    """Per fabric: each seed's link directions sorted busiest first. Averaging a link over seeds
    would hide ECMP's hot links (a different link is hot in each seed)."""
    fabs = [(f, f.links) for f in comp.fabrics if f.links is not None and f.links.per_seed]
    if not fabs:
        return None
    fig, axes = plt.subplots(len(fabs), 1, figsize=(WIDTH_IN, 2.7 * len(fabs) + 0.4),
                             squeeze=False, sharey=True, layout="constrained")
    for ax, (f, L) in zip(axes[:, 0], fabs):
        seeds = sorted(L.per_seed)
        nlinks = max(len(v) for v in L.per_seed.values())
        bars = nlinks * len(seeds) <= 160
        width = 0.8 / len(seeds)
        cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        colour = {s: cycle[comp.seeds.index(s) % len(cycle)] if s in comp.seeds else None
                  for s in seeds}  # a seed keeps its colour in every panel
        for i, s in enumerate(seeds):
            vals = sorted((u * 100 for u in L.per_seed[s].values()), reverse=True)
            xs = [k + 1 for k in range(len(vals))]
            if bars:
                ax.bar([x - 0.4 + width * (i + 0.5) for x in xs], vals, width=width,
                       label=f"seed {s}", color=colour[s])
            else:
                ax.step(xs, vals, where="mid", label=f"seed {s}", color=colour[s])
        mmr = "-" if L.mmr.mean is None else f"{L.mmr.mean:.2f}"
        jain = "-" if L.jain.mean is None else f"{L.jain.mean:.3f}"
        busiest = "-" if L.util_max.mean is None else f"{L.util_max.mean * 100:.0f}%"
        ax.set_title(f"{f.name} ({f.kind}, {f.policy}): {nlinks} fabric-tier link directions, "
                     f"busiest {busiest}, MMR {mmr}, Jain {jain} (means over seeds)", fontsize=10)
        ax.set_ylabel("utilisation (%)")
        ax.set_ylim(0, 105)
        ax.set_xlim(0.4, nlinks + 0.6)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axes[-1, 0].set_xlabel("link direction, ranked busiest first within each seed (mean "
                           "utilisation over the workload window; names in the heatmap)")
    return fig


def _heatmap_runs(comp: Comparison) -> list[tuple[Any, RunMetrics]]:
    """One counted run per fabric with fabric-tier links: the first seed every such fabric
    has a counted run for, else each fabric's first counted run."""
    fabs = [f for f in comp.fabrics if f.links is not None]
    runs = {f.name: {r.seed: r for r in _counted(comp, f.name) if r.link_balance is not None}
            for f in fabs}
    common = [s for s in comp.seeds if all(s in runs[f.name] for f in fabs)]
    out = []
    for f in fabs:
        if not runs[f.name]:
            continue
        seed = common[0] if common else min(runs[f.name])
        out.append((f, runs[f.name][seed]))
    return out


def _link_heatmap(plt: Any, comp: Comparison) -> Any:
    panels = []
    for f, run in _heatmap_runs(comp):
        links_csv = Path(run.run_dir) / "links.csv"
        if not links_csv.exists() or run.window is None:
            continue
        ser = {k: v for k, v in series(read_links_csv(links_csv), run.window,
                                       tier="fabric").items() if v}
        if ser:
            panels.append((f, run, run.window, ser))
    if not panels:
        return None
    heights = [min(3.6, 0.16 * len(ser) + 0.9) for _, _, _, ser in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(WIDTH_IN, sum(heights) + 0.8),
                             squeeze=False, sharex=True,
                             gridspec_kw={"height_ratios": heights})
    span = max(win[1] - win[0] for _, _, win, _ in panels)
    img = None
    for ax, (f, run, win, ser) in zip(axes[:, 0], panels):
        names = sorted(ser)
        t0 = win[0]
        length = min(len(ser[k]) for k in names)
        times = [t - t0 for t, _ in ser[names[0]][:length]]
        grid = [[u * 100 for _, u in ser[k][:length]] for k in names]
        step = times[1] - times[0] if len(times) > 1 else 0.25
        img = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0,
                        vmax=100, extent=(times[0], times[-1] + step, len(names) - 0.5, -0.5))
        every = max(1, math.ceil(len(names) / 16))
        ax.set_yticks(range(0, len(names), every),
                      [f"{a}→{b}" for a, b in names][::every], fontsize=8)
        ax.set_title(f"{f.name} ({f.kind}, {f.policy}), seed {run.seed}: JCT "
                     f"{win[1] - win[0]:.2f} s", fontsize=10, loc="left")
    axes[-1, 0].set_xlim(0, span)
    axes[-1, 0].set_xlabel("time since the run's first flow started (s); one axis for every "
                           "fabric, so a shorter row finished sooner")
    fig.colorbar(img, ax=list(axes[:, 0]), label="utilisation (% of line rate)", pad=0.01,
                 fraction=0.03)
    return fig


# ---------------------------------------------------------------- HTML

def _html_table(rows: list[list[tuple[str, str]]], highlight: list[bool] | None = None,
                link_column: str | None = None, bad: list[bool] | None = None) -> str:
    """An HTML table (cells escaped); cells of `link_column` become links to themselves."""
    if not rows:
        return "<p>(none)</p>"
    e = html.escape

    def cell(column: str, value: str) -> str:
        if column == link_column and value:
            return f"<td class=l><a href='{e(value)}/'>{e(value)}</a></td>"
        if column == "why":
            return f"<td class=why>{e(value)}</td>"
        if value in ("UNFAITHFUL", "not assessed"):
            return f"<td class=bad>{e(value)}</td>"
        return f"<td>{e(value)}</td>"
    head = "".join(f"<th>{e(c)}</th>" for c, _ in rows[0])
    body = "".join(
        f"<tr{' class=ref' if highlight and highlight[i] else ''}"
        f"{' class=badrow' if bad and bad[i] else ''}>"
        + "".join(cell(c, v) for c, v in r) + "</tr>" for i, r in enumerate(rows))
    return f"<div class=wide><table><tr>{head}</tr>{body}</table></div>"


STYLE = ("body{font-family:sans-serif;margin:1.5em auto;max-width:1060px;padding:0 1em;"
         "color:#222} table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}"
         "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right;white-space:nowrap} td.l{text-align:left}"
         "th{background:#eee;white-space:normal;vertical-align:bottom} .wide{overflow-x:auto}"
         "td.why{white-space:normal;text-align:left;max-width:28em} tr.ref{background:#eef6ff}"
         " tr.badrow{background:#fff0f0}"
         "td.bad{color:#b00;font-weight:bold} img{max-width:100%;border:1px solid #ddd;"
         "margin:0.5em 0} .banner{background:#fff3cd;border:2px solid #e0a800;padding:0.6em 1em;"
         "margin:1em 0} .verdict{font-size:16px;margin:0.3em 0} .resolved{font-weight:bold}"
         " p.small{font-size:13px;color:#555}")


def write_html(comp: Comparison, report_dir: Path, plots: list[str]) -> Path:
    e = html.escape
    counted = ("complete runs, faithful or not (--include-unfaithful)" if comp.include_unfaithful
               else "complete runs the fidelity monitor judged faithful")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>fabric compare: "
             f"{e(comp.experiment)}</title><style>{STYLE}</style></head><body>",
             f"<h1>fabric compare: {e(comp.experiment)}</h1>"]
    warn = banner(comp)
    if warn:
        parts.append("<div class=banner><b>" + e(warn[0]) + "</b><ul>"
                     + "".join(f"<li>{e(x.strip())}</li>" for x in warn[1:]) + "</ul></div>")
    parts.append(f"<p>seeds {comp.seeds[0]}..{comp.seeds[-1]} ({len(comp.seeds)} per fabric); "
                 f"reference: <b>{e(comp.reference or 'none (no ratios)')}</b>; "
                 f"{comp.elapsed_s:.0f} s in all" + ("; <b>INTERRUPTED</b>" if comp.interrupted
                                                     else "")
                 + f". Means over {counted}. This is an emulation (Mininet + Open vSwitch on one "
                 "machine, scaled link rates); every metric is defined in docs/metrics.md.</p>")
    if comp.pairs:
        parts.append("<h2>head to head</h2>")
        for p, v in zip(comp.pairs, comp.verdicts()):
            parts.append(f"<p class='verdict{' resolved' if p.resolved else ''}'>{e(v)}</p>")
        parts.append("<p class=small>JCT ratio of the two fabrics seed by seed (a seed gives both "
                     "the same plan and the same TCP source ports), geometric mean and 95% "
                     "confidence interval from Student's t on the log ratios; \"X% faster\" = "
                     "X% less job completion time.</p>")
        if "head_to_head.png" in plots:
            parts.append("<img src='head_to_head.png' alt='head-to-head JCT ratios'>")
    rows = table_rows(comp)
    for w in comp.workloads:
        parts.append(f"<h2>workload {e(w)}</h2>")
        parts.append(_html_table(drop_empty_columns([r for name, r in rows if name == w]),
                                 [f.reference for f in comp.fabrics]))
    parts.append("<p class=small>complete / faithful: runs that finished / that the fidelity "
                 "monitor judged faithful; ± = sample standard deviation over the counted runs; "
                 "cv = stdev/mean; xref = mean / reference mean; x ideal = mean JCT / the ideal "
                 "model's JCT on the same fabric; ECMP model x = the ideal model's "
                 "expected JCT under random ECMP path choices / its JCT with no collision.</p>")
    excluded = [(f.name, x) for f in comp.fabrics for x in f.excluded]
    if excluded:
        parts.append("<h3>excluded from every mean (not complete)</h3><ul>" + "".join(
            f"<li>{e(n)} seed {x['seed']}: {e(x['status'])} {e(x['error'] or '')}</li>"
            for n, x in excluded) + "</ul>")
    costs = cost_lines(comp)
    if costs:
        parts.append("<h2>cost per job</h2>" + "".join(f"<p>{e(format_cost(c))}</p>"
                                                       for c in costs)
                     + f"<p class=small>{e(assumptions(comp.cost))}</p>")
    for plot in plots:
        if plot == "head_to_head.png":
            continue
        parts.append(f"<h2>{e(CAPTIONS.get(plot, plot))}</h2><img src='{e(plot)}' "
                     f"alt='{e(CAPTIONS.get(plot, plot))}'>")
        if plot == "link_util.png":
            parts.append(_html_table(link_rows(comp)))
    keys = list(dict.fromkeys(k for f in comp.fabrics for k in f.setup))
    setup = [[("setup", k)] + [(f.name, str(f.setup.get(k, "-"))) for f in comp.fabrics]
             for k in keys]
    parts.append("<h2>setup</h2>" + _html_table(setup))
    runs = run_rows(comp)
    parts.append("<h2>runs</h2>" + _html_table(
        runs, link_column="run dir",
        bad=[(r.complete and not r.counts(comp.include_unfaithful)) or not r.complete
             for r in comp.runs]))
    parts.append("<p>Files: <a href='compare.json'>compare.json</a>, "
                 "<a href='compare.csv'>compare.csv</a>, <a href='compare.txt'>compare.txt</a>, "
                 "<a href='spec.toml'>spec.toml</a></p></body></html>")
    path = report_dir / "index.html"
    path.write_text("\n".join(parts) + "\n")
    return path


CAPTIONS = {"jct_per_seed.png": "Job completion time per seed",
            "fct_cdf.png": "Flow completion time CDF",
            "link_util.png": "Fabric-tier link utilisation, per seed, busiest first",
            "link_heatmap.png": "Fabric-tier link utilisation over time (one run per fabric)"}
