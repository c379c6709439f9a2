"""The run summary: one dataclass, written as summary.json (printed by fabric.report.summary)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabric.analysis.metrics import CollectiveResult, Distribution, JobResult, to_jsonable


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
    setup: dict[str, Any] = field(default_factory=dict)
    phases_s: dict[str, float] = field(default_factory=dict)
    flows_planned: int = 0
    flows_complete: int = 0
    fct_s: Distribution | None = None
    fct_by_workload: dict[str, Distribution] = field(default_factory=dict)
    collectives: list[CollectiveResult] = field(default_factory=list)
    tcp: dict[str, int] = field(default_factory=dict)  # fabric.tcpstats.total over all hosts
    failures: list[dict[str, Any]] = field(default_factory=list)  # fabric.failures (+ impact)
    jobs: list[JobResult] = field(default_factory=list)        # per training job (JCT, roofline)
    # per-workload sections (fabric.spec.workload.Workload.section): "inference" -> {workload
    # -> InferenceResult}, "slowdown" -> {workload -> SlowdownResult}, ...; in summary.json each
    # section is a top-level key after "jobs"
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    scale: dict[str, Any] | None = None                       # fabric.scaling.Scale.describe
    ideal: Any = None        # fabric.ideal.IdealSummary: the max-min fluid model beside the run
    fidelity: Any = None     # fabric.fidelity.Fidelity: did the emulation keep up (CPU, links)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = to_jsonable(self)
        sections = d.pop("sections")
        out: dict[str, Any] = {}
        for key, value in d.items():
            out[key] = value
            if key == "jobs":
                out.update(sections)
        return out
