"""Loss accounting on real Mininet + OVS: an incast into a 5-packet queue drops packets, and the
drops are found where they happen (the switch's queue towards the receiver), per link in
links.csv and per tier in the summary; TCP's retransmissions are split into real and spurious."""
from __future__ import annotations

import pytest

from fabric.analysis.links import read_links_csv
from fabric.plan.experiment import parse_experiment
from fabric.run.engine import run_experiment

pytestmark = pytest.mark.emulation


def test_incast_drops_are_counted_at_the_receivers_queue(tmp_path):
    spec = parse_experiment({
        "name": "incast-loss", "seed": 1, "run": {"deadline_s": 60},
        "fabric": {"kind": "single", "hosts": 4, "host_rate_mbps": 10, "queue_packets": 5},
        "workload": {"kind": "incast", "receiver": "h1", "size_bytes": "1MB"},
    })
    summary = run_experiment(spec, None, tmp_path)
    assert summary.status == "complete", summary.error
    rows = [r for r in read_links_csv(tmp_path.joinpath(summary.run_dir, "links.csv"))
            if r.dst == "h1"]
    at_receiver = max(r.qdisc_dropped for r in rows) - min(r.qdisc_dropped for r in rows)
    assert at_receiver > 0                      # three senders overflow a 5-packet queue
    assert summary.loss["host"]["queue_drops"] >= at_receiver
    assert summary.tcp["retrans_real"] > 0      # lost packets, not reordering
    assert summary.tcp["retrans_real"] + summary.tcp["retrans_spurious"] == \
        summary.tcp["Tcp.RetransSegs"]
    (incast,) = summary.sections["incast"].values()
    assert incast.rounds[0].complete == 3 and incast.rounds[0].jain is not None
