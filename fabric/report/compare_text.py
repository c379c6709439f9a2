"""`fabric compare` as text: the comparison table printed and written to compare.txt."""
from __future__ import annotations
from fabric.analysis.comparison import Comparison, Stat
from fabric.analysis.cost import CostLine, assumptions, cost_line, format_cost





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
                ("fabric", f.name + (" (ref)" if f.reference else "")),
                ("kind", f.kind + ("" if f.kind == "single" else f"/{f.policy}")),
                ("complete", f"{f.runs_complete}/{f.runs}"),
                ("faithful", f"{f.runs_faithful}/{f.runs}"),
                ("in means", str(f.runs_counted)),
                ("JCT s", _pm(a.jct_s)), ("cv", _pct(a.jct_s.cv)),
                ("min..max s", "-" if a.jct_s.min is None
                 else f"{a.jct_s.min:.3f}..{a.jct_s.max:.3f}"),
                ("JCT xref", _num(a.jct_ratio, digits=2)),
                ("x ideal", _num(a.x_ideal, digits=2)),
                ("ECMP model x", _num(a.ecmp_penalty, digits=2)),
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


def drop_empty_columns(rows: list[list[tuple[str, str]]]) -> list[list[tuple[str, str]]]:
    """Leave out the columns where every cell is "-" (e.g. busbw of a workload without
    collectives)."""
    if not rows:
        return rows
    keep = [i for i in range(len(rows[0])) if any(r[i][1] != "-" for r in rows)]
    return [[r[i] for i in keep] for r in rows]


def banner(comp: Comparison) -> list[str]:
    """The warning shown above every table when a complete run was not faithful."""
    bad = comp.not_faithful
    if not bad:
        return []
    total = sum(1 for r in comp.runs if r.complete)
    how = ("they ARE counted in means, ratios and verdicts (--include-unfaithful)"
           if comp.include_unfaithful else
           "they are left out of every mean, ratio and verdict (--include-unfaithful counts them)")
    return [f"WARNING: {len(bad)} of {total} complete runs not faithful (the machine, not the "
            f"fabric, may have set their numbers); {how}:"] + [
        f"  {r.fabric} seed {r.seed}: {r.fidelity}"
        + (f" ({'; '.join(r.fidelity_reasons)})" if r.fidelity_reasons else "") for r in bad]


def cost_lines(comp: Comparison) -> list[CostLine]:
    """Cost lines of the resolved pairs of real fabrics (the one-switch ideal is left out)."""
    kinds = {f.name: f.kind for f in comp.fabrics}
    return [c for p in comp.pairs
            if kinds.get(p.a) != "single" and kinds.get(p.b) != "single"
            and (c := cost_line(p, comp.cost)) is not None]


def run_rows(comp: Comparison) -> list[list[tuple[str, str]]]:
    """One row per run: status, fidelity, whether it is in the means."""
    return [[("fabric", r.fabric), ("seed", str(r.seed)), ("status", r.status),
             ("fidelity", r.fidelity), ("in means", "yes" if r.counts(comp.include_unfaithful)
                                         else "no"),
             ("elapsed s", f"{r.elapsed_s:.1f}"), ("run dir", comp.relative(r.run_dir)),
             ("why", "; ".join(([r.error] if r.error else []) + list(r.fidelity_reasons)) or "-")]
            for r in comp.runs]


def _render(rows: list[list[tuple[str, str]]]) -> list[str]:
    rows = drop_empty_columns(rows)
    heads = [c for c, _ in rows[0]]
    widths = [max(len(h), *(len(r[i][1]) for r in rows)) for i, h in enumerate(heads)]
    left = {0, 1} | {i for i, h in enumerate(heads) if h in ("run dir", "why")}

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return [line(heads)] + [line([v for _, v in r]) for r in rows]


def format_comparison(comp: Comparison) -> str:
    """The human table `fabric compare` prints (and compare.txt holds)."""
    seeds = comp.seeds
    counted = ("complete runs, faithful or not" if comp.include_unfaithful
               else "complete, faithful runs only")
    lines = [f"fabric compare: {comp.experiment}, seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} per "
             f"fabric), reference: {comp.reference or 'none (no ratios)'}"
             + ("  [INTERRUPTED]" if comp.interrupted else "")]
    lines += banner(comp)
    lines += [f"means over {counted}; ± = sample stdev over seeds; cv = stdev/mean; "
              "xref = mean / reference mean; x ideal = mean / the ideal model's JCT on this fabric; "
              "ECMP model x = the ideal model's expected ECMP JCT / its no-collision JCT (docs/metrics.md)", ""]
    if comp.pairs:
        lines.append("head to head (JCT ratio seed by seed, 95% CI; docs/metrics.md):")
        lines += [f"  {v}" for v in comp.verdicts()] + [""]
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
    costs = cost_lines(comp)
    if costs:
        lines.append("cost per job (measured JCT ratio -> accelerator-hours and dollars):")
        lines += [f"  {format_cost(c)}" for c in costs]
        lines += [f"  {assumptions(comp.cost)}", ""]
    lines.append("runs")
    lines += _render(run_rows(comp)) + [""]
    for f in comp.fabrics:
        lines.append(f"setup {f.name}: " + "  ".join(f"{k}={v}" for k, v in f.setup.items()))
    lines.append(f"\nreport: {comp.report_dir}  ({comp.elapsed_s:.0f} s)")
    return "\n".join(lines)
