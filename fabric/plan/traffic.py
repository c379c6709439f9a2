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


# Largest plan `fabric check` builds (~1 s here); bigger plans are refused before they are computed
# (a 256-host all-to-all with 64 channels and 1,000 iterations would be 4e9 transfers). The
# agents, one TCP connection per transfer, could not run such a plan either.
MAX_PLAN_TRANSFERS = 200_000


def estimated_transfers(w: CollectiveJob, n: int) -> int:
    """Transfers a collective job plans over `n` ranks (upper bound for halving-doubling)."""
    per_iteration = {"allreduce": 2 * (n - 1) * n, "allgather": (n - 1) * n,
                     "reducescatter": (n - 1) * n, "alltoall": n * (n - 1)}.get(w.kind, n * n)
    if getattr(w, "algorithm", "ring") == "halving-doubling":
        per_iteration = 2 * n * (max(1, (n - 1).bit_length()) + 1)
    return per_iteration * w.channels * w.iterations


def check_plan_size(w: CollectiveJob, n: int, key: str) -> None:
    """SpecError naming the key that makes the plan too large to compute (iterations first)."""
    count = estimated_transfers(w, n)
    if count <= MAX_PLAN_TRANSFERS:
        return
    culprit = "iterations" if w.iterations > 1 else "channels" if w.channels > 1 else "hosts"
    raise SpecError(f"{key}.{culprit}",
                    f"the plan would have {count:,} transfers ({n} ranks x {w.channels} channels "
                    f"x {w.iterations} iterations); at most {MAX_PLAN_TRANSFERS:,} are planned: "
                    f"lower {culprit}")


def resolve_hosts(selection: tuple[str, ...], graph: nx.Graph) -> tuple[str, ...]:
    """("all",) means every host of the fabric, in order; otherwise the list as given."""
    return tuple(fabric_hosts(graph)) if selection == ("all",) else selection


def build_plan(spec: ExperimentSpec, graph: nx.Graph, seed: int | None = None) -> TrafficPlan:
    """One plan for all workloads of `spec` on `graph`; same spec + seed -> same plan."""
    seed = spec.seed if seed is None else seed
    scale = plan_scale(spec, graph)
    plans = []
    names: set[str] = set()
    for i, w in enumerate(spec.workloads):
        if w.name in names:
            raise SpecError(f"workload[{i}].name", f"{w.name!r} is taken: workload names must "
                                                   "differ (results are reported per workload)")
        names.add(w.name)
        if isinstance(w, CollectiveJob):
            check_plan_size(w, len(resolve_hosts(w.hosts, graph)), f"workload[{i}]")
        if isinstance(w, (CollectiveJob, InferenceSpec, BackgroundSpec)):
            convert = scale.convert(w.units) if scale else IDENTITY
            try:
                plans.append(_plan_traffic(w, graph, seed, convert))
            except SpecError as e:  # the traffic library names its own argument: add the path
                raise SpecError(f"workload[{i}].{e.key}",
                                str(e).removeprefix(f"{e.key}: ")) from None
        elif isinstance(w, FlowsSpec):
            transfers = p2p.flows([(f.src, f.dst, f.size_bytes, f.start_s) for f in w.flows],
                                  workload=w.name)
            plans.append(TrafficPlan(w.name, seed, tuple(transfers)))
        elif isinstance(w, StrideSpec):
            plans.append(TrafficPlan(w.name, seed, tuple(stride_transfers(w, graph))))
        else:  # pragma: no cover - spec loading admits only known kinds
            raise TypeError(f"no planner for workload {w!r}")
    plan = TrafficPlan.merge(*plans) if len(plans) > 1 else plans[0]
    plan = TrafficPlan(spec.name, seed, plan.transfers, plan.collectives)
    plan.validate(fabric_hosts(graph))
    return plan


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
