"""Workload kinds behind one protocol and a registry: a new kind is one class, no stage edited."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import pytest

from fabric.analysis.summary import RunSummary
from fabric.analysis.workloads import summarise
from fabric.plan.experiment import parse_experiment
from fabric.plan.traffic import build_plan
from fabric.report.summary import format_summary
from fabric.spec.workload import (WORKLOADS, PlanContext, SummaryContext, Workload,
                                  WorkloadSummary, listed_hosts, register)
from topologies.errors import SpecError
from traffic import p2p
from traffic.plan import TrafficPlan
from traffic.records import FlowRecord

FABRIC = {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2}


@dataclass(frozen=True)
class FanInResult:
    """The toy kind's section: how many of its flows completed."""
    complete: int

    def lines(self, name: str, time_dilation: float | None) -> list[str]:
        return [f"fan-in {name}: {self.complete} flows complete", ""]


@dataclass(frozen=True)
class FanInSpec(Workload):
    """A toy kind, as a new module would write it: every host of `senders` sends to `target`."""
    kind: Literal["fanin"]
    target: str
    size_bytes: int
    senders: tuple[str, ...] = ("all",)
    name: str = "fanin"
    section = "fanin"

    def named_hosts(self) -> list[tuple[str, str]]:
        return [("target", self.target)] + listed_hosts("senders", self.senders)

    def check(self, key: str) -> None:
        if self.target in self.senders:
            raise SpecError(f"{key}.target", "must not be one of the senders")

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        srcs = [h for h in ctx.hosts(self.senders) if h != self.target]
        transfers = p2p.flows([(h, self.target, self.size_bytes) for h in srcs],
                              workload=self.name)
        return TrafficPlan(self.name, ctx.seed, tuple(transfers))

    def summarise(self, records: Sequence[FlowRecord], ctx: SummaryContext) -> WorkloadSummary:
        done = sum(r.complete for r in records)
        return WorkloadSummary(FanInResult(done), "fanin.csv", ("workload", "complete"),
                               ((self.name, done),))


@pytest.fixture
def fanin() -> Iterator[type[FanInSpec]]:
    cls = register(FanInSpec)
    try:
        yield cls
    finally:
        del WORKLOADS["fanin"]


def test_every_documented_kind_is_registered() -> None:
    assert set(WORKLOADS) >= {"allreduce", "allgather", "reducescatter", "alltoall", "flows",
                              "stride", "inference", "background"}
    assert all(issubclass(cls, Workload) for cls in WORKLOADS.values())


def test_a_new_kind_loads_plans_and_reports_through_the_registry(fanin, tmp_path) -> None:
    doc = {"name": "t", "fabric": FABRIC,
           "workload": [{"kind": "fanin", "target": "h4", "size_bytes": "1kB"}]}
    spec = parse_experiment(doc)
    assert isinstance(spec.workloads[0], fanin)
    graph = spec.fabrics[0].build()
    plan = build_plan(spec, graph)
    assert sorted((t.src, t.dst) for t in plan.transfers) == [("h1", "h4"), ("h2", "h4"),
                                                             ("h3", "h4")]
    records = [FlowRecord(t.id, t.src, t.dst, t.size_bytes, 0.0, 1.0, 1.0, t.workload,
                          None, None, True) for t in plan.transfers]
    summary = RunSummary("t", "leafspine", "ecmp", 1, str(tmp_path))
    summarise(spec, plan, records, graph, summary, tmp_path)
    assert summary.sections["fanin"]["fanin"] == FanInResult(3)
    assert summary.to_dict()["fanin"] == {"fanin": {"complete": 3}}
    assert "fan-in fanin: 3 flows complete" in format_summary(summary)
    assert (tmp_path / "fanin.csv").read_text() == "workload,complete\nfanin,3\n"


@pytest.mark.parametrize("workload, key", [
    ({"kind": "fanin", "target": "h9", "size_bytes": 1}, "workload[0].target"),
    ({"kind": "fanin", "target": "h1", "senders": ["h1", "h2"], "size_bytes": 1},
     "workload[0].target"),
    ({"kind": "fanin", "target": "h1", "size_bytes": 1, "colour": 2}, "workload[0].colour"),
    ({"kind": "fanin", "target": "h1"}, "workload[0].size_bytes"),
])
def test_a_new_kind_is_validated_by_key_path(fanin, workload, key) -> None:
    with pytest.raises(SpecError) as info:
        parse_experiment({"name": "t", "fabric": FABRIC, "workload": [workload]})
    assert info.value.key == key


def test_unknown_kinds_list_the_registry(fanin) -> None:
    with pytest.raises(SpecError, match=r"'nope' is not one of .*fanin") as info:
        parse_experiment({"name": "t", "fabric": FABRIC, "workload": [{"kind": "nope"}]})
    assert info.value.key == "workload[0].kind"


def test_register_refuses_twice_and_needs_a_literal_kind(fanin) -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register(FanInSpec)

    @dataclass(frozen=True)
    class NoKind(Workload):
        kind: str
    with pytest.raises(TypeError, match="Literal"):
        register(NoKind)


def test_planner_errors_get_the_workload_key_path() -> None:
    """Every planner's SpecError is prefixed with its workload's key, flows included."""
    doc = {"name": "t", "fabric": FABRIC, "workload": [
        {"kind": "allreduce", "size_bytes": 10},
        {"kind": "flows", "flows": [{"src": "h1", "dst": "h1", "size_bytes": 10}]}]}
    with pytest.raises(SpecError) as info:
        parse_experiment(doc)
    assert info.value.key == "workload[1].flows[0].dst"
