"""Large fabrics start: a single switch with many ports, jumbo frames end to end."""
from __future__ import annotations

import pytest

from fabric.plan.experiment import parse_experiment
from fabric.run.engine import run_experiment

pytestmark = pytest.mark.emulation


def test_single_switch_with_64_hosts_runs(tmp_path):
    # 64 ports: Mininet typed this switch's one ovs-vsctl command into a shell, which cut it at
    # 4095 characters; the bridge never existed and the controller waited 30 s for it.
    spec = parse_experiment({
        "name": "single64", "seed": 1, "run": {"deadline_s": 60},
        "fabric": {"kind": "single", "hosts": 64, "host_rate_mbps": 5},
        "workload": [{"kind": "stride", "stride": 32, "size_bytes": "100kB"}],
    })
    summary = run_experiment(spec, None, tmp_path)
    assert summary.status == "complete", summary.error
    assert summary.flows_complete == summary.flows_planned == 64
