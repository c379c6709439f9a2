"""From an experiment's workloads and a fabric model to one deterministic traffic plan."""
from __future__ import annotations

import networkx as nx

from topologies.model import hosts as fabric_hosts
from traffic import collectives, p2p
from traffic.plan import TrafficPlan

from .spec import AllReduceSpec, ExperimentSpec, FlowsSpec


def resolve_hosts(selection: tuple[str, ...], graph: nx.Graph) -> tuple[str, ...]:
    """("all",) means every host of the fabric, in order; otherwise the list as given."""
    return tuple(fabric_hosts(graph)) if selection == ("all",) else selection


def build_plan(spec: ExperimentSpec, graph: nx.Graph, seed: int | None = None) -> TrafficPlan:
    """One plan for all workloads of `spec` on `graph`; same spec + seed -> same plan."""
    seed = spec.seed if seed is None else seed
    plans = []
    for w in spec.workloads:
        if isinstance(w, AllReduceSpec):
            transfers, colls = collectives.ring_allreduce_iterations(
                resolve_hosts(w.hosts, graph), w.size_bytes, w.name, iterations=w.iterations,
                gap_s=w.gap_s, start_s=w.start_s, workload=w.name)
            plans.append(TrafficPlan(w.name, seed, tuple(transfers), tuple(colls)))
        elif isinstance(w, FlowsSpec):
            transfers = p2p.flows([(f.src, f.dst, f.size_bytes, f.start_s) for f in w.flows],
                                  workload=w.name)
            plans.append(TrafficPlan(w.name, seed, tuple(transfers)))
        else:  # pragma: no cover - spec loading admits only known kinds
            raise TypeError(f"no planner for workload {w!r}")
    plan = TrafficPlan.merge(*plans) if len(plans) > 1 else plans[0]
    plan = TrafficPlan(spec.name, seed, plan.transfers, plan.collectives)
    plan.validate(fabric_hosts(graph))
    return plan
