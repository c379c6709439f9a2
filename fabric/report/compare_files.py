"""The `fabric compare` report directory: the table as JSON/CSV/text, PNG plots, one HTML page.

    <out>/<UTC time>-<experiment>-compare/
        spec.toml         the experiment as given
        compare.json      Comparison.to_dict() (the `--json` document, README.md)
        compare.csv       one row per fabric x seed x workload (row_type "run"), plus one
                          aggregate row per fabric x workload (row_type "aggregate")
        compare.txt       the printed table
        fct_cdf.png       FCT CDF per fabric (every complete flow of every complete run)
        jct_per_seed.png  JCT per seed per fabric, one panel per workload
        link_util.png     mean utilisation of each fabric-tier link direction per fabric, MMR/Jain
        link_heatmap.png  utilisation of each fabric-tier link direction over time (one run per
                          fabric): collisions show as one link saturated while its twin idles
        index.html        the tables, the setup table and the plots
        runs/             the run directories (fabric.analysis.summary), one per fabric x seed

Plots use matplotlib's Agg backend (no display needed).
"""
from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Any

from fabric.analysis.comparison import Comparison, RunMetrics
from fabric.report.compare_text import format_comparison, link_rows, table_rows
from fabric.analysis.links import read_links_csv, series

CSV_COLUMNS = ("row_type", "fabric", "kind", "seed", "status", "workload", "jct_s",
               "iteration_jct_s", "busbw_mbps", "fct_p50_s", "fct_p99_s", "runs", "runs_complete",
               "jct_stdev_s", "jct_cv", "jct_min_s", "jct_max_s", "jct_ratio", "busbw_ratio",
               "fct_p99_ratio", "link_util_mean", "link_util_max", "link_mmr", "link_jain",
               "run_dir")
PLOTS = ("fct_cdf.png", "jct_per_seed.png", "link_util.png", "link_heatmap.png")


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
    return "" if x is None else x


def write_csv(comp: Comparison, path: Path) -> None:
    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, CSV_COLUMNS)
        out.writeheader()
        for r in comp.runs:
            bal = r.link_balance
            for w, m in r.workloads.items():
                out.writerow({k: _cell(v) for k, v in {
                    "row_type": "run", "fabric": r.fabric, "kind": r.kind, "seed": r.seed,
                    "status": r.status, "workload": w, "jct_s": m.jct_s,
                    "iteration_jct_s": m.iteration_jct_s, "busbw_mbps": m.busbw_mbps,
                    "fct_p50_s": m.fct_p50_s, "fct_p99_s": m.fct_p99_s,
                    "link_util_mean": bal and bal.util_mean, "link_util_max": bal and bal.util_max,
                    "link_mmr": bal and bal.mmr, "link_jain": bal and bal.jain,
                    "run_dir": r.run_dir}.items()})
        for fab in comp.fabrics:
            L = fab.links
            for w, a in fab.workloads.items():
                out.writerow({k: _cell(v) for k, v in {
                    "row_type": "aggregate", "fabric": fab.name, "kind": fab.kind,
                    "status": "reference" if fab.reference else "", "workload": w,
                    "jct_s": a.jct_s.mean, "iteration_jct_s": a.iteration_jct_s.mean,
                    "busbw_mbps": a.busbw_mbps.mean, "fct_p50_s": a.fct_p50_s.mean,
                    "fct_p99_s": a.fct_p99_s.mean, "runs": fab.runs,
                    "runs_complete": fab.runs_complete, "jct_stdev_s": a.jct_s.stdev,
                    "jct_cv": a.jct_s.cv, "jct_min_s": a.jct_s.min, "jct_max_s": a.jct_s.max,
                    "jct_ratio": a.jct_ratio, "busbw_ratio": a.busbw_ratio,
                    "fct_p99_ratio": a.fct_p99_ratio,
                    "link_util_mean": L and L.util_mean.mean, "link_util_max": L and L.util_max.mean,
                    "link_mmr": L and L.mmr.mean, "link_jain": L and L.jain.mean}.items()})


# ---------------------------------------------------------------- plots

def _pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _complete(comp: Comparison, fabric: str) -> list[RunMetrics]:
    return [r for r in comp.runs if r.fabric == fabric and r.complete]


def _label(comp: Comparison, name: str) -> str:
    return f"{name} (reference)" if name == comp.reference else name


def write_plots(comp: Comparison, report_dir: Path) -> list[Path]:
    """The PNGs of PLOTS (the link plots only when some fabric has fabric-tier links)."""
    plt = _pyplot()
    out = []
    for name, draw in zip(PLOTS, (_fct_cdf, _jct_per_seed, _link_util, _link_heatmap)):
        fig = draw(plt, comp)
        if fig is None:
            continue
        fig.tight_layout()
        fig.savefig(report_dir / name, dpi=110)
        plt.close(fig)
        out.append(report_dir / name)
    return out


def _fct_cdf(plt: Any, comp: Comparison) -> Any:
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    drawn = 0
    for f in comp.fabrics:
        runs = _complete(comp, f.name)
        xs = sorted(x * 1e3 for r in runs for x in r.fct_s)
        if not xs:
            continue
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        ax.step(xs, ys, where="post", linestyle="--" if f.reference else "-", linewidth=1.8,
                label=f"{_label(comp, f.name)}: {len(xs)} flows, {len(runs)} runs")
        drawn += 1
    ax.set_title(f"{comp.experiment}: flow completion time CDF (complete runs, all seeds)")
    ax.set_xlabel("flow completion time (ms)")
    ax.set_ylabel("fraction of flows with FCT ≤ x")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no complete run", ha="center", transform=ax.transAxes)
    return fig


def _jct_per_seed(plt: Any, comp: Comparison) -> Any:
    n = len(comp.workloads)
    fig, axes = plt.subplots(n, 1, figsize=(7.5, 3.6 * n), squeeze=False)
    for ax, w in zip(axes[:, 0], comp.workloads):
        for f in comp.fabrics:
            pts = [(r.seed, r.workloads[w].jct_s) for r in _complete(comp, f.name)
                   if w in r.workloads and r.workloads[w].jct_s is not None]
            if not pts:
                continue
            line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                            linestyle="--" if f.reference else "-", label=_label(comp, f.name))
            mean = f.workloads[w].jct_s.mean
            ax.axhline(mean, color=line.get_color(), alpha=0.3, linewidth=1)
        failed = [(r.fabric, r.seed) for r in comp.runs if not r.complete]
        note = f" ({len(failed)} incomplete run(s) not shown)" if failed else ""
        ax.set_title(f"{comp.experiment}: job completion time of '{w}' per seed{note}")
        ax.set_xlabel("seed (sets every transfer's TCP source port, hence the ECMP hash)")
        ax.set_ylabel("JCT (s)")
        ax.set_xticks(comp.seeds)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", title="fabric (faint line: mean)")
    return fig


def _link_util(plt: Any, comp: Comparison) -> Any:
    fabs = [(f, f.links) for f in comp.fabrics if f.links is not None and f.links.per_link]
    if not fabs:
        return None
    fig, axes = plt.subplots(len(fabs), 1, figsize=(max(7.5, 0.45 * max(len(L.per_link)
                                                                          for _, L in fabs) + 2),
                                                     3.4 * len(fabs)), squeeze=False)
    for ax, (f, L) in zip(axes[:, 0], fabs):
        names = sorted(L.per_link)
        vals = [L.per_link[k] * 100 for k in names]
        ax.bar(range(len(names)), vals, color="tab:blue")
        mean = sum(vals) / len(vals)
        ax.axhline(mean, color="tab:red", linestyle="--", linewidth=1, label=f"mean {mean:.1f}%")
        ax.set_xticks(range(len(names)), [k.replace(">", "→") for k in names], rotation=45,
                      ha="right", fontsize=8)
        mmr = "-" if L.mmr.mean is None else f"{L.mmr.mean:.2f}"
        jain = "-" if L.jain.mean is None else f"{L.jain.mean:.3f}"
        ax.set_title(f"{f.name} ({f.kind}, {f.policy}): fabric-tier link utilisation, "
                     f"MMR {mmr}, Jain {jain}")
        ax.set_ylabel("mean utilisation (% of line rate)")
        ax.set_xlabel("link direction (sender → receiver), mean over complete runs, workload window")
        ax.set_ylim(0, 105)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(loc="upper right")
    return fig


def _link_heatmap(plt: Any, comp: Comparison) -> Any:
    panels = []
    for f in comp.fabrics:
        run = next((r for r in _complete(comp, f.name) if r.link_balance is not None), None)
        if run is None or not (links_csv := Path(run.run_dir) / "links.csv").exists():
            continue
        ser = series(read_links_csv(links_csv), run.window, tier="fabric")
        ser = {k: v for k, v in ser.items() if v}
        if ser:
            panels.append((f, run, ser))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 0.35 * sum(len(p[2]) for p in panels)
                                                     + 1.6 * len(panels)), squeeze=False)
    for ax, (f, run, ser) in zip(axes[:, 0], panels):
        names = sorted(ser)
        t0 = run.window[0] if run.window else min(t for v in ser.values() for t, _ in v)
        length = min(len(ser[k]) for k in names)
        times = [t - t0 for t, _ in ser[names[0]][:length]]
        grid = [[u * 100 for _, u in ser[k][:length]] for k in names]
        step = times[1] - times[0] if len(times) > 1 else 0.25
        img = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0,
                        vmax=100, extent=(times[0], times[-1] + step, len(names) - 0.5, -0.5))
        ax.set_yticks(range(len(names)), [f"{a}→{b}" for a, b in names], fontsize=8)
        ax.set_title(f"{f.name} ({f.kind}, {f.policy}), seed {run.seed}: fabric-tier link "
                     f"utilisation over time")
        ax.set_xlabel("time since the first flow started (s)")
        ax.set_ylabel("link direction")
        fig.colorbar(img, ax=ax, label="utilisation (% of line rate)", pad=0.01)
    return fig


# ---------------------------------------------------------------- HTML

def _html_table(rows: list[list[tuple[str, str]]], highlight: list[bool] | None = None,
                link_column: str | None = None) -> str:
    """An HTML table (cells escaped); cells of `link_column` become links to themselves."""
    if not rows:
        return "<p>(none)</p>"
    e = html.escape

    def cell(column: str, value: str) -> str:
        if column == link_column and value:
            return f"<td><a href='{e(value)}'>{e(value)}</a></td>"
        return f"<td>{e(value)}</td>"
    head = "".join(f"<th>{e(c)}</th>" for c, _ in rows[0])
    body = "".join(
        f"<tr{' class=ref' if highlight and highlight[i] else ''}>"
        + "".join(cell(c, v) for c, v in r) + "</tr>" for i, r in enumerate(rows))
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(comp: Comparison, report_dir: Path, plots: list[str]) -> Path:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>fabric compare: "
             f"{e(comp.experiment)}</title><style>body{{font-family:sans-serif;margin:2em;"
             "max-width:1200px} table{border-collapse:collapse;margin:0.5em 0 1.5em}"
             "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
             "th{background:#eee} tr.ref{background:#eef6ff} img{max-width:100%;"
             "border:1px solid #ddd;margin:0.5em 0}</style></head><body>",
             f"<h1>fabric compare: {e(comp.experiment)}</h1>",
             f"<p>seeds {comp.seeds[0]}..{comp.seeds[-1]} ({len(comp.seeds)} per fabric); reference: "
             f"<b>{e(comp.reference or 'none (no ratios)')}</b>; {comp.elapsed_s:.0f} s in all"
             + ("; <b>INTERRUPTED</b>" if comp.interrupted else "") + ". Means over complete runs "
             "only; ± is the sample standard deviation over seeds; cv = stdev/mean; xref = mean / "
             "reference mean. JCT = first flow start to last flow end of the workload; iter JCT "
             "and busbw are means over its collective iterations. This is an emulation "
             "(Mininet + Open vSwitch on one machine, scaled link rates).</p>"]
    rows = table_rows(comp)
    for w in comp.workloads:
        parts.append(f"<h2>workload {e(w)}</h2>")
        parts.append(_html_table([r for name, r in rows if name == w],
                                 [f.reference for f in comp.fabrics]))
    excluded = [(f.name, x) for f in comp.fabrics for x in f.excluded]
    if excluded:
        parts.append("<h3>excluded from every mean (not complete)</h3><ul>" + "".join(
            f"<li>{e(n)} seed {x['seed']}: {e(x['status'])} {e(x['error'] or '')}</li>"
            for n, x in excluded) + "</ul>")
    parts.append("<h2>fabric-tier links</h2><p>Per link direction: mean utilisation over the "
                 "workload window (first flow start to last flow end), from kernel byte counters "
                 "(links.csv); MMR = busiest / mean, Jain = (Σx)²/(N·Σx²).</p>")
    parts.append(_html_table(link_rows(comp)))
    keys = list(dict.fromkeys(k for f in comp.fabrics for k in f.setup))
    setup = [[("setup", k)] + [(f.name, str(f.setup.get(k, "-"))) for f in comp.fabrics]
             for k in keys]
    parts.append("<h2>setup</h2>" + _html_table(setup))
    captions = {"fct_cdf.png": "Flow completion time CDF per fabric",
                "jct_per_seed.png": "Job completion time per seed per fabric",
                "link_util.png": "Mean utilisation of each fabric-tier link direction per fabric",
                "link_heatmap.png": "Fabric-tier link utilisation over time (first complete run "
                                    "of each fabric; 0.25 s samples)"}
    parts.append("<h2>plots</h2>")
    for p in plots:
        parts.append(f"<h3>{e(captions.get(p, p))}</h3><img src='{e(p)}' alt='{e(captions.get(p, p))}'>")
    if "link_util.png" not in plots:
        parts.append("<p>No fabric has fabric-tier links (or no complete run): no link plot.</p>")
    parts.append("<h2>runs</h2>" + _html_table([[
        ("fabric", r.fabric), ("seed", str(r.seed)), ("status", r.status),
        ("elapsed s", f"{r.elapsed_s:.1f}"), ("error", r.error or ""),
        ("run dir", _relative(r.run_dir, report_dir))] for r in comp.runs], link_column="run dir"))
    parts.append("<p>Files: <a href='compare.json'>compare.json</a>, "
                 "<a href='compare.csv'>compare.csv</a>, <a href='compare.txt'>compare.txt</a>, "
                 "<a href='spec.toml'>spec.toml</a></p></body></html>")
    path = report_dir / "index.html"
    path.write_text("\n".join(parts) + "\n")
    return path


def _relative(path: str, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return path
