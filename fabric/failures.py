"""Failure injection: take a fabric link or a fabric switch down in the middle of a run.

    [[failure]]                      [[failure]]
    at_s = 2.0                       at_s = 2.0
    switch = "ncf1"                  link = ["l1", "s1"]
    fabric = "ddc"   # optional: only the fabric of that name ("" = every fabric)

Pure part: validate failure specs against a fabric model (SpecError naming the key) and turn
them into FailureActions (which interfaces go down when). A switch failure downs every link of
the switch; the box itself keeps running (its OpenFlow connection stays up), as when a real
fabric box loses its links. Only fabric-tier elements may fail, and never so that hosts are cut
off: every flow must still be deliverable, which is what the failure test measures.

Adapter: FailureInjector, a thread that sets both veth ends of each link down with `ip link`
at t0 + at_s (t0 is the agents' shared start instant) and records when it did. The controller
sees the OpenFlow port-status messages and re-routes (controller.policies.base).

After the run, `impact` relates each failure to the collectives it hit (REFERENCE.md failure
test: the JCT overhead of the iteration that saw the failure, "zero impact" if that JCT stays
within the steady-state p99).
"""
from __future__ import annotations

import logging
import math
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Sequence

import networkx as nx

from topologies import model

from .errors import SpecError
from .metrics import percentile
from .specload import check_name

log = logging.getLogger("fabric.failures")


@dataclass(frozen=True)
class FailureAction:
    """What to take down at t0 + at_s: a description and the interfaces (both link ends)."""
    at_s: float
    what: str
    interfaces: tuple[str, ...]


@dataclass
class FailureEvent:
    """A failure as applied: planned and actual offset from t0, wall-clock time, any error."""
    what: str
    at_s: float
    applied_s: float | None
    time: float | None
    interfaces: tuple[str, ...]
    error: str = ""


# ---------------------------------------------------------------- validation (pure)

def applies_to(failure: Any, fabric_name: str) -> bool:
    return not failure.fabric or failure.fabric == fabric_name


def check_failures(failures: Sequence[Any], graph: nx.Graph, fabric_name: str,
                   fabric_names: Sequence[str], deadline_s: float) -> None:
    """Validate every failure that applies to this fabric; SpecError names the bad key."""
    failed_edges: set[frozenset[str]] = set()
    failed_nodes: set[str] = set()
    for i, f in enumerate(failures):
        key = f"failure[{i}]"
        if f.fabric and f.fabric not in fabric_names:
            raise SpecError(f"{key}.fabric", f"{f.fabric!r} names no fabric "
                                             f"(have: {', '.join(fabric_names)})")
        if not math.isfinite(f.at_s) or f.at_s >= deadline_s:
            raise SpecError(f"{key}.at_s", f"must be before the run's deadline_s ({deadline_s:g}), "
                                           f"got {f.at_s!r}")
        if bool(f.link) == bool(f.switch):
            raise SpecError(key, "give exactly one of link = [a, b] or switch = name")
        if not applies_to(f, fabric_name):
            continue
        where = f"fabric {fabric_name!r}"
        if f.link:
            if len(f.link) != 2:
                raise SpecError(f"{key}.link", f"a link is two switch names, got {list(f.link)}")
            for j, name in enumerate(f.link):
                check_name(name, f"{key}.link[{j}]")
                if name not in graph:
                    raise SpecError(f"{key}.link[{j}]", f"{name!r} is not in {where}")
            a, b = f.link
            if not graph.has_edge(a, b):
                raise SpecError(f"{key}.link", f"{where} has no link {a}-{b}")
            if graph.edges[a, b]["tier"] != "fabric":
                raise SpecError(f"{key}.link", f"{a}-{b} is a host link: only fabric links may "
                                               "fail (the host would lose its flows)")
            failed_edges.add(frozenset((a, b)))
        else:
            check_name(f.switch, f"{key}.switch")
            if f.switch not in graph or graph.nodes[f.switch]["role"] == model.HOST:
                raise SpecError(f"{key}.switch", f"{f.switch!r} is not a switch of {where}")
            if any(graph.nodes[n]["role"] == model.HOST for n in graph.neighbors(f.switch)):
                raise SpecError(f"{key}.switch", f"{f.switch} has hosts: only fabric switches "
                                                 "(spines, NCFs) may fail")
            failed_nodes.add(f.switch)
        survivors = graph.copy()
        survivors.remove_nodes_from(failed_nodes)
        survivors.remove_edges_from(tuple(e) for e in failed_edges)
        if not nx.is_connected(survivors):
            raise SpecError(key, f"with this failure {where} is partitioned: some flows could "
                                 "never be delivered")


# ---------------------------------------------------------------- planning (pure)

def _link_interfaces(graph: nx.Graph, a: str, b: str) -> tuple[str, str]:
    return (model.intf_name(a, model.port(graph, a, b)),
            model.intf_name(b, model.port(graph, b, a)))


def failure_actions(failures: Iterable[Any], graph: nx.Graph,
                    fabric_name: str) -> list[FailureAction]:
    """The (validated) failures of this fabric as interface actions, in time order."""
    out = []
    for f in failures:
        if not applies_to(f, fabric_name):
            continue
        if f.link:
            a, b = f.link
            out.append(FailureAction(f.at_s, f"link {a}-{b}", _link_interfaces(graph, a, b)))
        else:
            intfs = tuple(i for n in graph.neighbors(f.switch)
                          for i in _link_interfaces(graph, f.switch, n))
            out.append(FailureAction(f.at_s, f"switch {f.switch}", intfs))
    return sorted(out, key=lambda a: a.at_s)


def impact(events: Sequence[dict[str, Any]], collectives: Sequence[Any],
           records: Sequence[Any]) -> list[dict[str, Any]]:
    """Each applied failure with the collectives running at that instant and their JCT overhead.

    steady = collectives of the same workload that ended before the first failure;
    overhead = JCT(hit) / p50(steady JCT) - 1; zero_impact = JCT(hit) <= p99(steady JCT).
    When several workloads are hit, the row reports the hit collective with the largest overhead
    against its own workload's steady state (jobs of different sizes are never pooled).
    """
    spans: dict[str, tuple[float, float]] = {}
    owner: dict[str, str] = {}  # collective id -> its workload
    for r in records:
        if r.group is not None and r.complete:
            lo, hi = spans.get(r.group, (math.inf, -math.inf))
            spans[r.group] = (min(lo, r.start), max(hi, r.end))
            owner[r.group] = r.workload
    applied = [e["time"] for e in events if e.get("time") is not None]
    first = min(applied) if applied else math.inf
    steady_of: dict[str | None, list[float]] = {}  # workload -> steady-state JCTs
    for c in collectives:
        if c.id in spans and spans[c.id][1] < first and c.complete:
            steady_of.setdefault(owner.get(c.id), []).append(c.jct_s)
    out = []
    for e in events:
        row = dict(e)
        t = e.get("time")
        hit = [c for c in collectives if t is not None and c.id in spans
               and spans[c.id][0] <= t <= spans[c.id][1]]
        row["collectives_hit"] = [c.id for c in hit]
        judged = [(c.jct_s / percentile(steady_of[owner.get(c.id)], 50), c) for c in hit
                  if c.complete and steady_of.get(owner.get(c.id))]
        worst = max(judged, key=lambda x: x[0])[1] if judged else None
        steady = (steady_of[owner.get(worst.id)] if worst is not None
                  else [x for xs in steady_of.values() for x in xs])
        row["steady_jct_p50_s"] = percentile(steady, 50) if steady else None
        row["steady_jct_p99_s"] = percentile(steady, 99) if steady else None
        row["steady_samples"] = len(steady)
        if worst is not None:
            row["hit_jct_s"] = worst.jct_s
            row["jct_overhead"] = worst.jct_s / row["steady_jct_p50_s"] - 1
            row["zero_impact"] = worst.jct_s <= row["steady_jct_p99_s"]
        out.append(row)
    return out


# ---------------------------------------------------------------- adapter

def _set_down(interfaces: Sequence[str]) -> str:
    """`ip link set dev X down` for each interface in one `ip -batch`; '' or the error text."""
    for name in interfaces:
        if not model.INTF_NAME.match(name):
            raise ValueError(f"refusing to touch interface {name!r}")
    lines = "".join(f"link set dev {name} down\n" for name in interfaces)
    res = subprocess.run(["ip", "-batch", "-"], input=lines, capture_output=True, text=True)
    return res.stderr.strip() if res.returncode else ""


class FailureInjector:
    """Applies FailureActions at t0 + at_s from a thread; stop() cancels what is still pending."""

    def __init__(self, actions: Sequence[FailureAction], t0: float,
                 set_down: Callable[[Sequence[str]], str] | None = None):
        self.actions = list(actions)
        self.t0 = t0
        self.set_down = set_down or _set_down  # injectable: tests never touch real links
        self.events: list[FailureEvent] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "FailureInjector":
        if self.actions:
            self._thread = threading.Thread(target=self._run, name="failures", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        for a in self.actions:
            if self._stop.wait(max(0.0, self.t0 + a.at_s - time.time())):
                return
            now = time.time()
            try:
                error = self.set_down(a.interfaces)
            except (OSError, ValueError) as exc:
                error = str(exc)
            self.events.append(FailureEvent(a.what, a.at_s, now - self.t0, now, a.interfaces,
                                            error))
            if error:
                log.error("failure %s at t0+%.3f s: %s", a.what, now - self.t0, error)
            else:
                log.info("failure %s applied at t0+%.3f s (%s down)", a.what, now - self.t0,
                         ", ".join(a.interfaces))

    def stop(self) -> list[dict[str, Any]]:
        """Cancel pending failures; return every action as a dict (applied or not)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        rows = []
        for i, a in enumerate(self.actions):  # events[i] is actions[i], applied in order
            e = self.events[i] if i < len(self.events) else FailureEvent(
                a.what, a.at_s, None, None, a.interfaces, "not applied: the workload ended first")
            rows.append({**asdict(e), "interfaces": list(e.interfaces)})
        return rows
