"""The live view's state: what the fabric is doing now, read from the files a run already writes.

The emulation's samplers and agents write their rows as they go (links.csv every 0.25 s, each
host's arrivals in agents/<host>.recv.csv, the adaptive policy's moves.csv); `LiveState` reads the
new lines of those files on every snapshot and turns them into one JSON-able dict that the live
page (fabric.run.live) draws: every link direction's utilisation over the last sampling
interval, whether the link is down, the flows in flight with their paths, the flows sharing a
fabric link right now, each collective's progress and the events (failures, restores, moves).
Nothing here touches the network: link liveness comes from a callable the adapter supplies.
"""
from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import networkx as nx

from topologies import model

from .links import directions
from .paths import FlowPath

REFRESH_MS = 250


class _Tail:
    """Complete new lines of a growing CSV file, as dicts (header read once)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.header: list[str] | None = None
        self.partial = ""

    def rows(self) -> list[dict[str, str]]:
        try:
            with open(self.path, newline="") as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except OSError:
            return []
        data = self.partial + data
        lines = data.split("\n")
        self.partial = lines.pop()   # a line without its newline yet
        out = []
        for row in csv.reader(io.StringIO("\n".join(lines))):
            if not row:
                continue
            if self.header is None:
                self.header = row
                continue
            if len(row) == len(self.header):
                out.append(dict(zip(self.header, row)))
        return out


@dataclass
class Watched:
    """A workload being followed: its plan, its agents' directory, its start t0 (epoch)."""
    plan: Any
    agents_dir: Path
    t0: float
    paths: dict[int, FlowPath]


def _layer(graph: nx.Graph, node: str) -> int:
    """Drawing row: 2 hosts, 1 switches with hosts (leaves, NCPs), 0 the others (spines, NCFs)."""
    if graph.nodes[node]["role"] == model.HOST:
        return 2
    return 1 if any(graph.nodes[n]["role"] == model.HOST for n in graph.neighbors(node)) else 0


class LiveState:
    """Snapshots of a running fabric for the live page; thread-safe enough for one poller
    (snapshot() is called from the HTTP server's threads under its own lock)."""

    def __init__(self, graph: nx.Graph, run_dir: Path, title: str,
                 link_up: Callable[[str], bool] | None = None, refresh_ms: int = REFRESH_MS):
        self.graph = graph
        self.run_dir = Path(run_dir)
        self.title = title
        self.link_up = link_up or (lambda intf: True)
        self.refresh_ms = refresh_ms
        self.status = "starting"
        self.events: list[tuple[float, str]] = []
        self.sources: list[Callable[[], list[tuple[float, str]]]] = []
        self.watched: Watched | None = None
        self._links = _Tail(self.run_dir / "links.csv")
        self._moves = _Tail(self.run_dir / "moves.csv")
        self._last: dict[tuple[str, str], tuple[float, int]] = {}
        self._util: dict[tuple[str, str], float] = {}
        self._sample_time: float | None = None
        self._arrived: set[int] = set()
        self._recv: dict[str, _Tail] = {}
        self._moved: dict[int, tuple[str, ...]] = {}
        self._dirs = directions(graph)
        self._nodes = [{"name": n, "role": d["role"], "layer": _layer(graph, n)}
                       for n, d in graph.nodes(data=True)]
        self._fabric_nodes = set(model.switches(graph))

    # ------------------------------------------------------------ inputs
    def event(self, what: str, when: float | None = None) -> None:
        self.events.append((time.time() if when is None else when, what))

    def add_source(self, source: Callable[[], list[tuple[float, str]]]) -> None:
        """A callable giving (epoch time, text) events, read at every snapshot."""
        self.sources.append(source)

    def watch(self, plan: Any, agents_dir: Path, t0: float,
              paths: Iterable[FlowPath] = ()) -> None:
        """Follow a workload from now on (the previous one is forgotten)."""
        self.watched = Watched(plan, Path(agents_dir), t0, {p.flow_id: p for p in paths})
        self._arrived, self._recv, self._moved = set(), {}, {}

    # ------------------------------------------------------------ reading
    def _read_links(self) -> None:
        for row in self._links.rows():
            try:
                key, t, tx = (row["src"], row["dst"]), float(row["time"]), int(row["tx_bytes"])
                rate = float(row["rate_mbps"]) * 1e6
            except (KeyError, ValueError):
                continue
            prev = self._last.get(key)
            if prev is not None and t > prev[0]:
                self._util[key] = max(0, tx - prev[1]) * 8 / (t - prev[0]) / rate
            self._last[key] = (t, tx)
            self._sample_time = t

    def _read_arrivals(self) -> None:
        w = self.watched
        if w is None:
            return
        for f in sorted(w.agents_dir.glob("*.recv.csv")):
            tail = self._recv.setdefault(f.name, _Tail(f))
            for row in tail.rows():
                try:
                    self._arrived.add(int(row["id"]))
                except (KeyError, ValueError):
                    continue

    def _read_moves(self) -> None:
        by_sport = {}
        if self.watched is not None:
            by_sport = {(p.src, p.sport): p for p in self.watched.paths.values()}
        ip_host = {d["ip"]: n for n, d in self.graph.nodes(data=True) if "ip" in d}
        for row in self._moves.rows():
            try:
                t = float(row["time"])
                src_ep = row["flow"].split(">")[0]
                ip, _, port = src_ep.rpartition(":")
                hops = tuple(row["new_path"].split(">"))
            except (KeyError, ValueError):
                continue
            who = f"{row.get('src', '?')}->{row.get('dst', '?')}"
            self.event(f"adaptive moved {who} from {row.get('old_path', '?')} to "
                       f"{row.get('new_path', '?')}", t)
            p = by_sport.get((ip_host.get(ip, ""), int(port) if port.isdigit() else -1))
            if p is not None:
                self._moved[p.flow_id] = (p.path[0], *hops, p.path[-1])

    # ------------------------------------------------------------ output
    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        self._read_links()
        self._read_arrivals()
        self._read_moves()
        links = []
        for u, v, d in model.iter_links(self.graph):
            dirs = [x for x in self._dirs if x.link == f"{u}-{v}"]
            down = d["tier"] == "fabric" and not all(self.link_up(x.intf) for x in dirs)
            links.append({"link": f"{u}-{v}", "a": u, "b": v, "tier": d["tier"],
                          "rate_mbps": d["rate_mbps"], "down": down,
                          "dirs": [{"src": x.src, "dst": x.dst,
                                    "util": round(self._util.get((x.src, x.dst), 0.0), 4)}
                                   for x in dirs]})
        down = {(d["src"], d["dst"]) for l in links if l["down"] for d in l["dirs"]}
        flows, collectives, shared = self._flows(now, down)
        w = self.watched
        return {"title": self.title, "status": self.status, "time": now,
                "sample_time": self._sample_time, "refresh_ms": self.refresh_ms,
                "t_s": None if w is None else now - w.t0,
                "nodes": self._nodes, "links": links, "flows": flows,
                "collisions": shared, "collectives": collectives,
                "events": [{"time": t, "t_s": None if w is None else t - w.t0, "what": e}
                           for t, e in sorted(self._all_events())[-50:]]}

    def _all_events(self) -> list[tuple[float, str]]:
        out = list(self.events)
        for source in self.sources:
            try:
                out += source()
            except Exception:
                continue
        return out

    def _flows(self, now: float, down: set[tuple[str, str]]
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """Flows in flight (due, inputs arrived, not arrived themselves), the fabric directions
        several of them share, collective progress. A traced path over a link that is down
        no longer holds (the controller re-routed it): it is shown as re-routed, not shared."""
        w = self.watched
        if w is None:
            return [], [], []
        active = []
        for t in w.plan.transfers:
            if t.id in self._arrived or now < w.t0 + t.start_s:
                continue
            if all(a in self._arrived for a in t.after):
                active.append(t)
        users: dict[tuple[str, str], list[str]] = {}
        flows = []
        for t in active:
            p = w.paths.get(t.id)
            path = self._moved.get(t.id) or (p.path if p is not None else ())
            via = p.via if p is not None else ""
            if any((a, b) in down for a, b in zip(path, path[1:])):
                path, via = (), "re-routed around a failed link"
            for a, b in zip(path, path[1:]):
                if a in self._fabric_nodes and b in self._fabric_nodes:
                    users.setdefault((a, b), []).append(f"{t.src}->{t.dst} (#{t.id})")
            flows.append({"id": t.id, "src": t.src, "dst": t.dst, "bytes": t.size_bytes,
                          "workload": t.workload, "group": t.group,
                          "path": list(path), "via": via})
        shared = [f"{' and '.join(names)} share {a}->{b}"
                  for (a, b), names in sorted(users.items()) if len(names) > 1]
        colls = []
        for c in w.plan.collectives:
            members = [t for t in w.plan.transfers if t.group == c.id]
            total = sum(t.size_bytes for t in members) or 1
            done = sum(t.size_bytes for t in members if t.id in self._arrived)
            colls.append({"id": c.id, "kind": c.kind, "fraction": round(done / total, 4)})
        return flows, colls, shared
