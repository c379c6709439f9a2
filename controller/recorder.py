"""CSV files the controller writes into the run directory (its view of the run).

* `port_stats.csv`: every `interval_s` the app asks each installed switch for its port
  counters; each reply becomes one row per fabric port:
  time, switch, port, peer, rx_bytes, tx_bytes, rx_dropped, tx_dropped.
  `time` is wall-clock epoch seconds (the clock flows.csv uses) when the reply arrived;
  `peer` is the node at the other end of the port's link in the fabric model. Counters are
  cumulative OpenFlow port counters as OVS sees them; packets that never cross OVS (e.g. the
  spray/ddc policies' nftables `fwd`, which moves packets between veths in the kernel's
  ingress hook) are missing here and only show in the engine's links.csv (/sys counters).
* the policy's report file (e.g. `moves.csv` for `adaptive`): a `time` column, then the
  fields of the policy's report dataclass.

Rows are flushed at once, so whatever was measured survives a killed controller.
"""
from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path
from typing import Any, Iterable, TextIO

import networkx as nx

PORT_COLUMNS = ("time", "switch", "port", "peer", "rx_bytes", "tx_bytes", "rx_dropped",
                "tx_dropped")


class RunRecorder:
    """Writes port_stats.csv and the policy's report CSV under `run_dir`."""

    def __init__(self, graph: nx.Graph, run_dir: str | Path, interval_s: float = 1.0):
        self.run_dir = Path(run_dir)
        self.interval_s = interval_s
        self.peers: dict[tuple[str, int], str] = {}
        for u, v, d in graph.edges(data=True):
            self.peers[u, d["ports"][u]] = v
            self.peers[v, d["ports"][v]] = u
        self.pending: set[tuple[int, int]] = set()    # (dpid, xid) of our stats requests
        self._files: dict[str, tuple[TextIO, Any]] = {}
        self._open("port_stats.csv", PORT_COLUMNS)

    def _open(self, name: str, columns: Iterable[str]) -> Any:
        if name not in self._files:
            f = open(self.run_dir / name, "w", newline="")  # noqa: SIM115 - open until close()
            writer = csv.writer(f)
            writer.writerow(list(columns))
            f.flush()
            self._files[name] = (f, writer)
        return self._files[name][1]

    def _flush(self, name: str) -> None:
        self._files[name][0].flush()

    def port_rows(self, switch: str, body: Iterable[Any], now: float | None = None) -> int:
        """One row per fabric port of a port-stats reply body; returns the rows written."""
        t = f"{time.time() if now is None else now:.6f}"
        writer = self._open("port_stats.csv", PORT_COLUMNS)
        n = 0
        for s in sorted(body, key=lambda s: s.port_no):
            peer = self.peers.get((switch, s.port_no))
            if peer is None:   # OFPP_LOCAL or a port the model does not know
                continue
            writer.writerow([t, switch, s.port_no, peer, s.rx_bytes, s.tx_bytes,
                             s.rx_dropped, s.tx_dropped])
            n += 1
        self._flush("port_stats.csv")
        return n

    def open_report(self, name: str, row_type: type) -> None:
        """Create the report CSV with its header now, so a run without rows still has it."""
        self._open(name, ["time", *(f.name for f in dataclasses.fields(row_type))])

    def report_rows(self, name: str, rows: Iterable[Any], now: float | None = None) -> int:
        """Append the policy's report dataclasses to `name`, with a time column first."""
        rows = list(rows)
        if not rows:
            return 0
        t = f"{time.time() if now is None else now:.6f}"
        fields = [f.name for f in dataclasses.fields(rows[0])]
        writer = self._open(name, ["time", *fields])
        for row in rows:
            writer.writerow([t, *(getattr(row, f) for f in fields)])
        self._flush(name)
        return len(rows)

    def close(self) -> None:
        for f, _ in self._files.values():
            f.close()
        self._files.clear()
