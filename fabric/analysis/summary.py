"""The run summary: one dataclass, written as summary.json (printed by fabric.report.summary)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabric.analysis.fidelity import Fidelity
from fabric.analysis.ideal import IdealSummary
from fabric.analysis.metrics import CollectiveResult, Distribution, JobResult, to_jsonable
from fabric.analysis.transport import TransportResult


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")


@dataclass
class RunSummary:
    """Everything a run measured; `status` is complete, partial (some flows missing) or failed."""
    experiment: str
    fabric: str
    policy: str
    seed: int
    run_dir: str
    status: str = "failed"
    error: str | None = None
    datapath: str = ""
    t0: float | None = None  # epoch s when every agent was released: the run files' common start
    setup: dict[str, Any] = field(default_factory=dict)
    phases_s: dict[str, float] = field(default_factory=dict)
    flows_planned: int = 0
    flows_complete: int = 0
    fct_s: Distribution | None = None
    fct_by_workload: dict[str, Distribution] = field(default_factory=dict)
    collectives: list[CollectiveResult] = field(default_factory=list)
    tcp: dict[str, float] = field(default_factory=dict)  # fabric.analysis.tcp.total over all hosts
    loss: dict[str, dict[str, int]] = field(default_factory=dict)  # fabric.analysis.loss, per tier
    failures: list[dict[str, Any]] = field(default_factory=list)  # fabric.failures (+ impact)
    jobs: list[JobResult] = field(default_factory=list)        # per training job (JCT, roofline)
    # per-workload sections (fabric.spec.workload.Workload.section): "inference" -> {workload
    # -> InferenceResult}, "slowdown" -> {workload -> SlowdownResult}, ...; in summary.json each
    # section is a top-level key after "jobs"
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    scale: dict[str, Any] | None = None                       # fabric.scaling.Scale.describe
    ideal: IdealSummary | None = None  # the max-min fluid model beside the run
    fidelity: Fidelity | None = None   # did the emulation keep up (CPU, links)
    transport: TransportResult | None = None  # connections, handshakes, base RTTs
    collisions: list[str] = field(default_factory=list)  # fabric.analysis.paths, busiest first
    ddc: dict[str, Any] | None = None  # a scheduled DDC's credits and reassembly (ddc.json)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = to_jsonable(self)
        sections = d.pop("sections")
        out: dict[str, Any] = {}
        for key, value in d.items():
            out[key] = value
            if key == "jobs":
                out.update(sections)
        return out
