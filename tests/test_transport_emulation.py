"""Persistent connections end to end on real Mininet + OVS: one connection per ring hop for the
whole job, opened before t0 from the seed's source port, with handshakes and base RTTs reported
apart; the same ring with a connection per transfer for contrast."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fabric.plan.experiment import parse_experiment
from fabric.run.engine import run_experiment
from traffic.plan import source_port

pytestmark = pytest.mark.emulation


def _ring(mode: str) -> dict:
    return {"name": f"conn-{mode}", "seed": 4, "run": {"deadline_s": 40.0},
            "fabric": {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2,
                       "host_rate_mbps": 20, "fabric_rate_mbps": 20},
            "workload": [{"kind": "allreduce", "name": "ring", "hosts": ["h1", "h3", "h2", "h4"],
                          "size_bytes": "400kB", "iterations": 2, "connections": mode}]}


def _rows(run: Path, suffix: str) -> list[dict[str, str]]:
    return [r for p in sorted((run / "agents").glob(f"*.{suffix}.csv"))
            for r in csv.DictReader(open(p, newline=""))]


def test_persistent_ring_keeps_one_connection_per_hop(tmp_path):
    summary = run_experiment(parse_experiment(_ring("persistent")), None, tmp_path)
    assert summary.status == "complete", summary.error
    run = Path(summary.run_dir)
    conns = _rows(run, "conn")
    assert len(conns) == 4 and {r["kind"] for r in conns} == {"persistent"}
    plan = json.loads((run / "plan.json").read_text())
    for r in conns:           # every step of both iterations rode the hop's one connection
        assert int(r["messages"]) == 2 * 6 and r["error"] == ""
        assert int(r["sport"]) == source_port(4, r["conn"])
    sends = _rows(run, "send")
    assert len(sends) == len(plan["transfers"])
    assert all(s["conn"] and int(s["sport"]) == source_port(4, s["conn"]) for s in sends)
    # handshakes happened before t0 (no FCT holds one); base RTT measured on every hop's path
    t = summary.transport
    assert (t.persistent, t.per_transfer, t.handshake_persistent_s.count) == (4, 0, 4)
    assert t.base_rtt_s.count == 4 and 0 < t.base_rtt_s.max < 0.05
    first_start = min(r.start for r in summary_records(run))
    assert all(float(r["established"]) < first_start for r in conns)
    assert summary.phases_s["connect_s"] >= 0
    assert json.loads((run / "summary.json").read_text())["transport"]["persistent"] == 4


def summary_records(run: Path):
    from traffic.records import read_csv
    return read_csv(run / "flows.csv")


def test_per_transfer_ring_opens_a_connection_per_transfer(tmp_path):
    summary = run_experiment(parse_experiment(_ring("per_transfer")), None, tmp_path)
    assert summary.status == "complete", summary.error
    t = summary.transport
    assert (t.persistent, t.per_transfer) == (0, 2 * 2 * 3 * 4)
    assert t.handshake_per_transfer_s.count == t.per_transfer
