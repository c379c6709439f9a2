"""One short end-to-end run of the traffic library on real Mininet + OVS: an inference workload
and a multi-channel all-to-all job together, with their per-workload results in the summary."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabric.run.engine import run_experiment
from fabric.plan.experiment import parse_experiment

pytestmark = pytest.mark.emulation


def test_inference_and_alltoall_results_per_workload(tmp_path):
    spec = parse_experiment({
        "name": "traffic", "seed": 2, "run": {"deadline_s": 40.0},
        "fabric": {"kind": "single", "hosts": 4, "host_rate_mbps": 20},
        "workload": [
            {"kind": "inference", "name": "llm", "model": "8b", "clients": ["h1"],
             "prefill": ["h2"], "decode": ["h3"], "requests": 3, "rate_per_s": 4.0,
             "prompt_tokens": 4, "prompt_sigma": 0.0, "output_tokens": 3, "output_sigma": 0.0,
             "decode_s_per_token": 0.05},
            {"kind": "alltoall", "name": "moe", "size_bytes": "800kB", "channels": 2,
             "iterations": 2, "gap_s": 0.1}]})
    summary = run_experiment(spec, None, tmp_path)
    assert summary.status == "complete", summary.error
    inf = summary.sections["inference"]["llm"]
    assert (inf.requests, inf.complete, inf.tokens) == (3, 3, 9)
    assert inf.kv_transfer_s.count == 3 and inf.kv_transfer_s.p50 > 0
    # 4 tokens * 131,072 B = 524 kB at 20 Mbit/s take >= 0.21 s on the wire
    assert inf.kv_transfer_s.min >= 4 * 131_072 * 8 / 20e6
    assert inf.token_gap_s.count == 6
    (job,) = summary.jobs
    assert (job.name, job.kind, job.channels, job.iterations, job.complete) == \
        ("moe", "alltoall", 2, 2, True)
    assert job.jct_s >= job.roofline_s * 0.9
    assert [c.kind for c in summary.collectives] == ["alltoall", "alltoall"]
    assert all(0 < c.busbw_efficiency <= 1.05 for c in summary.collectives)
    assert set(summary.fct_by_workload) == {"llm", "moe"}
    run = Path(summary.run_dir)
    assert len((run / "requests.csv").read_text().splitlines()) == 4
    saved = json.loads((run / "summary.json").read_text())
    assert saved["inference"]["llm"]["complete"] == 3 and saved["jobs"][0]["name"] == "moe"
