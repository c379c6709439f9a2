"""`fabric compare` as text: the comparison table printed and written to compare.txt."""
from __future__ import annotations
from fabric.analysis.comparison import Comparison, Stat





# ---------------------------------------------------------------- the table

def _num(x: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if x is None else f"{x * scale:.{digits}f}"


def _pm(s: Stat, scale: float = 1.0, digits: int = 3) -> str:
    if s.mean is None:
        return "-"
    return _num(s.mean, scale, digits) + ("" if s.stdev is None else f" ±{_num(s.stdev, scale, digits)}")


def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def table_rows(comp: Comparison) -> list[tuple[str, list[tuple[str, str]]]]:
    """(workload, [(column, cell), ...] per fabric): the side-by-side table, shared by text and HTML."""
    out = []
    for w in comp.workloads:
        for f in comp.fabrics:
            a = f.workloads[w]
            out.append((w, [
                ("fabric", f.name + (" (ref)" if f.reference else "")), ("kind", f.kind),
                ("runs ok", f"{f.runs_complete}/{f.runs}"),
                ("JCT s", _pm(a.jct_s)), ("cv", _pct(a.jct_s.cv)),
                ("min..max s", "-" if a.jct_s.min is None
                 else f"{a.jct_s.min:.3f}..{a.jct_s.max:.3f}"),
                ("JCT xref", _num(a.jct_ratio, digits=2)),
                ("iter JCT s", _num(a.iteration_jct_s.mean)),
                ("busbw Mbit/s", _pm(a.busbw_mbps, digits=2)),
                ("FCT p50 ms", _num(a.fct_p50_s.mean, 1e3, 1)),
                ("FCT p99 ms", _pm(a.fct_p99_s, 1e3, 1)),
                ("p99 xref", _num(a.fct_p99_ratio, digits=2)),
            ]))
    return out


def link_rows(comp: Comparison) -> list[list[tuple[str, str]]]:
    out = []
    for f in comp.fabrics:
        L = f.links
        out.append([("fabric", f.name), ("fabric links", "0" if L is None else str(L.links)),
                    ("util mean", "-" if L is None else _pct(L.util_mean.mean)),
                    ("busiest", "-" if L is None else _pct(L.util_max.mean)),
                    ("MMR", "-" if L is None else _pm(L.mmr, digits=2)),
                    ("Jain", "-" if L is None else _pm(L.jain, digits=3))])
    return out


def _render(rows: list[list[tuple[str, str]]]) -> list[str]:
    heads = [c for c, _ in rows[0]]
    widths = [max(len(h), *(len(r[i][1]) for r in rows)) for i, h in enumerate(heads)]
    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(heads)] + [line([v for _, v in r]) for r in rows]


def format_comparison(comp: Comparison) -> str:
    """The human table `fabric compare` prints (and compare.txt holds)."""
    seeds = comp.seeds
    lines = [f"fabric compare: {comp.experiment}, seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} per "
             f"fabric), reference: {comp.reference or 'none (no ratios)'}"
             + ("  [INTERRUPTED]" if comp.interrupted else ""),
             "means over complete runs only; ± = sample stdev over seeds; cv = stdev/mean; "
             "xref = mean / reference mean", ""]
    rows = table_rows(comp)
    for w in comp.workloads:
        lines.append(f"workload {w}  (JCT: first flow start -> last flow end; iter JCT, busbw: "
                     f"mean over collective iterations)")
        lines += _render([r for name, r in rows if name == w]) + [""]
    excluded = [(f.name, e) for f in comp.fabrics for e in f.excluded]
    if excluded:
        lines.append("excluded from every mean (not complete):")
        lines += [f"  {name} seed {e['seed']}: {e['status']}" + (f" ({e['error']})" if e["error"] else "")
                  for name, e in excluded]
        lines.append("")
    lines.append("fabric-tier links (per-direction mean utilisation over the workload window, "
                 "mean over runs; MMR = busiest/mean)")
    lines += _render(link_rows(comp)) + [""]
    for f in comp.fabrics:
        lines.append(f"setup {f.name}: " + "  ".join(f"{k}={v}" for k, v in f.setup.items()))
    lines.append(f"\nreport: {comp.report_dir}  ({comp.elapsed_s:.0f} s)")
    return "\n".join(lines)
