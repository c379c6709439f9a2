"""From an experiment's workloads and a fabric model to one deterministic traffic plan."""
from __future__ import annotations

import networkx as nx

from topologies.model import host_rate_mbps
from topologies.model import hosts as fabric_hosts
from traffic import background, inference, jobs, p2p, trace
from traffic.plan import TrafficPlan, Transfer

from topologies.errors import SpecError
from traffic.scaling import Convert, IDENTITY, Scale, fabric_scale
from fabric.spec.experiment import ExperimentSpec, FlowsSpec, StrideSpec
from fabric.spec.workloads import BackgroundSpec, CollectiveJob, InferenceSpec


def resolve_hosts(selection: tuple[str, ...], graph: nx.Graph) -> tuple[str, ...]:
    """("all",) means every host of the fabric, in order; otherwise the list as given."""
    return tuple(fabric_hosts(graph)) if selection == ("all",) else selection


MAX_PLAN_TRANSFERS = 200_000  # transfers of one plan (README "Bounds"): each is a TCP connection

# transfers of one collective instance over n ranks, per channel (traffic.collectives etc.)
_PER_INSTANCE = {
    ("allreduce", "ring"): lambda n: 2 * (n - 1) * n,
    ("allreduce", "halving-doubling"): lambda n: 2 * max(1, (n - 1).bit_length()) * n,
    ("allgather", "ring"): lambda n: (n - 1) * n,
    ("reducescatter", "ring"): lambda n: (n - 1) * n,
    ("alltoall", "concurrent"): lambda n: (n - 1) * n,
    ("alltoall", "phased"): lambda n: (n - 1) * n,
}


def estimate_transfers(w: object, graph: nx.Graph) -> tuple[int, str] | None:
    """(transfers, how) a workload will plan, computed without planning it; None when the
    workload bounds its own size (inference, background: traffic.inference, .background)."""
    if isinstance(w, CollectiveJob):
        n = len(resolve_hosts(w.hosts, graph))
        per = _PER_INSTANCE.get((w.kind, w.algorithm), lambda n: 2 * n * n)(n)
        return (per * w.channels * w.iterations,
                f"{per} per {w.kind} of {n} ranks x {w.channels} channels x {w.iterations} "
                "iterations")
    if isinstance(w, FlowsSpec):
        return len(w.flows), "flows"
    if isinstance(w, StrideSpec):
        return len(resolve_hosts(w.hosts, graph)), "hosts"
    return None


def check_plan_size(spec: ExperimentSpec, graph: nx.Graph) -> None:
    """SpecError before planning when the plan would exceed MAX_PLAN_TRANSFERS: names the
    workload (or `workload` for the sum), with the product that makes it that large."""
    total = 0
    for i, w in enumerate(spec.workloads):
        est = estimate_transfers(w, graph)
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
    """One plan for all workloads of `spec` on `graph`; same spec + seed -> same plan."""
    seed = spec.seed if seed is None else seed
    check_plan_size(spec, graph)
    scale = plan_scale(spec, graph)
    plans = []
    names: set[str] = set()
    for i, w in enumerate(spec.workloads):
        if w.name in names:
            raise SpecError(f"workload[{i}].name", f"{w.name!r} is taken: workload names must "
                                                   "differ (results are reported per workload)")
        names.add(w.name)
        try:  # the traffic library names its own argument: add the workload's path
            plans.append(_plan_workload(w, graph, seed, scale))
        except SpecError as e:
            raise e.under(f"workload[{i}]") from None
    plan = TrafficPlan.merge(*plans) if len(plans) > 1 else plans[0]
    if len(plan.transfers) > MAX_PLAN_TRANSFERS:
        raise SpecError("workload", f"{len(plan.transfers):,} transfers in all, more than "
                                    f"{MAX_PLAN_TRANSFERS:,}")
    plan = TrafficPlan(spec.name, seed, plan.transfers, plan.collectives)
    plan.validate(fabric_hosts(graph))
    return plan


def _plan_workload(w: object, graph: nx.Graph, seed: int, scale: Scale | None) -> TrafficPlan:
    """One workload's plan (SpecError keys relative to the workload's table)."""
    if isinstance(w, (CollectiveJob, InferenceSpec, BackgroundSpec)):
        return _plan_traffic(w, graph, seed, scale.convert(w.units) if scale else IDENTITY)
    if isinstance(w, FlowsSpec):
        transfers = p2p.flows([(f.src, f.dst, f.size_bytes, f.start_s) for f in w.flows],
                              workload=w.name)
        return TrafficPlan(w.name, seed, tuple(transfers))
    if isinstance(w, StrideSpec):
        return TrafficPlan(w.name, seed, tuple(stride_transfers(w, graph)))
    raise TypeError(f"no planner for workload {w!r}")  # pragma: no cover - loading admits known kinds


def stride_transfers(w: StrideSpec, graph: nx.Graph) -> list[Transfer]:
    """Host i of the selection sends to host (i + stride) mod n, all at t0 + start_s."""
    hs = resolve_hosts(w.hosts, graph)
    return p2p.flows([(h, hs[(i + w.stride) % len(hs)], w.size_bytes, w.start_s)
                      for i, h in enumerate(hs)], workload=w.name)


def plan_scale(spec: ExperimentSpec, graph: nx.Graph) -> Scale | None:
    """The experiment's [scale] on this fabric's host links (None without one)."""
    return fabric_scale(spec.scale, [host_rate_mbps(graph, h) for h in fabric_hosts(graph)])


def _plan_traffic(w: CollectiveJob | InferenceSpec | BackgroundSpec, graph: nx.Graph, seed: int,
                  convert: Convert) -> TrafficPlan:
    """Plan one traffic-library workload; sizes and times in emulated units via `convert`."""
    if isinstance(w, CollectiveJob):
        transfers, colls = jobs.training_job(
            w.kind, w.algorithm, resolve_hosts(w.hosts, graph), convert.bytes(w.size_bytes),
            w.name, iterations=w.iterations, gap_s=convert.seconds(w.gap_s),
            start_s=convert.seconds(w.start_s), channels=w.channels)
        return TrafficPlan(w.name, seed, tuple(transfers), tuple(colls))
    rng_seed = f"{seed}/{w.name}"  # same requests/flows whatever else the experiment runs
    if isinstance(w, InferenceSpec):
        if w.arrivals == "trace":
            rows = trace.replay(trace.read_azure_trace(w.trace), w.time_scale, w.rate_factor,
                                seed=rng_seed, max_requests=w.requests)
            requests = inference.trace_requests(rows, w.max_prompt_tokens, w.max_output_tokens)
        else:
            requests = inference.synthetic_requests(
                w.requests, w.rate_per_s, rng_seed, w.arrivals, w.cv, w.prompt_tokens,
                w.prompt_sigma, w.output_tokens, w.output_sigma, w.max_prompt_tokens,
                w.max_output_tokens)
        transfers = inference.request_transfers(
            requests, w.clients, w.prefill, w.decode, inference.profile(w.model),
            w.prompt_bytes_per_token, w.token_message_bytes, w.prefill_s_per_token,
            w.decode_s_per_token, convert, w.start_s, workload=w.name)
        return TrafficPlan(w.name, seed, tuple(transfers))
    hs = resolve_hosts(w.hosts, graph)
    transfers = background.poisson_flows(
        hs, background.load_cdf(w.cdf), w.load, min(host_rate_mbps(graph, h) for h in hs),
        convert.seconds(w.duration_s), rng_seed, convert.seconds(w.start_s),
        convert.size_factor, workload=w.name)
    return TrafficPlan(w.name, seed, tuple(transfers))
