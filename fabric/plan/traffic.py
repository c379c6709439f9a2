"""From an experiment's workloads and a fabric model to one deterministic traffic plan."""
from __future__ import annotations

import networkx as nx

from topologies.errors import SpecError
from topologies.model import host_rate_mbps
from topologies.model import hosts as fabric_hosts
from traffic.plan import TrafficPlan
from traffic.scaling import IDENTITY, Scale, fabric_scale

from fabric.spec.experiment import ExperimentSpec
from fabric.spec.workload import PlanContext


MAX_PLAN_TRANSFERS = 200_000  # transfers of one plan (README "Bounds"): each is a TCP connection


def check_plan_size(spec: ExperimentSpec, graph: nx.Graph, seed: int) -> None:
    """SpecError before planning when the plan would exceed MAX_PLAN_TRANSFERS, naming the
    workload (or `workload` for the sum) and the product that makes it that large."""
    total = 0
    for i, w in enumerate(spec.workloads):
        est = w.transfer_count(PlanContext(graph, seed))
        if est is None:
            continue
        count, how = est
        if count > MAX_PLAN_TRANSFERS:
            raise SpecError(f"workload[{i}]", f"{count:,} transfers ({how}), more than "
                                              f"{MAX_PLAN_TRANSFERS:,}: fewer of them")
        total += count
    if total > MAX_PLAN_TRANSFERS:
        raise SpecError("workload", f"{total:,} transfers in all, more than "
                                    f"{MAX_PLAN_TRANSFERS:,}")


def build_plan(spec: ExperimentSpec, graph: nx.Graph, seed: int | None = None) -> TrafficPlan:
    """One plan for all workloads of `spec` on `graph`; same spec + seed -> same plan.

    Each workload plans itself (Workload.plan); a SpecError it raises names a field of the
    workload, and gets the workload's key path in front (workload[i].<field>)."""
    seed = spec.seed if seed is None else seed
    check_plan_size(spec, graph, seed)
    scale = plan_scale(spec, graph)
    plans = []
    names: set[str] = set()
    for i, w in enumerate(spec.workloads):
        if w.name in names:
            raise SpecError(f"workload[{i}].name", f"{w.name!r} is taken: workload names must "
                                                   "differ (results are reported per workload)")
        names.add(w.name)
        ctx = PlanContext(graph, seed, scale.convert(w.units) if scale else IDENTITY)
        try:
            plans.append(w.plan(ctx))
        except SpecError as e:  # the traffic library names its own argument: add the path
            raise e.under(f"workload[{i}]") from None
    plan = TrafficPlan.merge(*plans) if len(plans) > 1 else plans[0]
    if len(plan.transfers) > MAX_PLAN_TRANSFERS:
        raise SpecError("workload", f"{len(plan.transfers):,} transfers in all, more than "
                                    f"{MAX_PLAN_TRANSFERS:,}")
    plan = TrafficPlan(spec.name, seed, plan.transfers, plan.collectives, plan.connections)
    plan.validate(fabric_hosts(graph))
    return plan


def plan_scale(spec: ExperimentSpec, graph: nx.Graph) -> Scale | None:
    """The experiment's [scale] on this fabric's host links (None without one)."""
    return fabric_scale(spec.scale, [host_rate_mbps(graph, h) for h in fabric_hosts(graph)])
