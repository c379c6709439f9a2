"""Traffic-library spec tables, [scale], planning glue and per-workload metrics (no root)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from topologies.errors import SpecError
from fabric.analysis.ideal import WireModel
from fabric.analysis.metrics import job_results
from fabric.plan.traffic import build_plan, plan_scale
from fabric.analysis.summary import RunSummary
from fabric.report.summary import format_summary
from traffic.scaling import Scale
from fabric.plan.experiment import load_experiment, parse_experiment
from fabric.analysis.workloads import summarise
from fabric.workloads.background import fct_slowdown, ideal_fct_s
from fabric.workloads.inference import inference_result, request_results
from traffic.inference import STEP_KV, STEP_PROMPT, STEP_TOKEN0
from traffic.records import FlowRecord

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FABRIC = {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 4,
          "host_rate_mbps": 20, "fabric_rate_mbps": 20}
INFER = {"kind": "inference", "clients": ["h1"], "prefill": ["h2"], "decode": ["h6"],
         "requests": 4, "output_tokens": 3, "prompt_tokens": 100}


def doc(*workloads, **top):
    return {"name": "t", "seed": 4, "fabric": dict(FABRIC), "workload": list(workloads), **top}


def test_every_traffic_kind_loads_and_plans():
    spec = parse_experiment(doc(
        {"kind": "allreduce", "algorithm": "halving-doubling", "hosts": ["h1", "h2", "h3", "h4"],
         "size_bytes": "400kB", "channels": 2, "iterations": 2, "gap_s": 0.1},
        {"kind": "allgather", "name": "ag", "hosts": ["h5", "h6", "h7"], "size_bytes": 3000},
        {"kind": "reducescatter", "name": "rs", "hosts": ["h5", "h6"], "size_bytes": 3000},
        {"kind": "alltoall", "name": "a2a", "algorithm": "phased", "size_bytes": 8000},
        dict(INFER, name="llm", arrivals="gamma", cv=2.0),
        {"kind": "background", "name": "bg", "cdf": "datamining", "load": 0.5,
         "duration_s": 30.0}))
    plan = build_plan(spec, spec.fabrics[0].build())
    kinds = {(c.kind, c.algorithm, c.channels) for c in plan.collectives}
    assert kinds == {("allreduce", "halving-doubling", 2), ("allgather", "ring", 1),
                     ("reducescatter", "ring", 1), ("alltoall", "phased", 1)}
    assert {t.workload for t in plan.transfers} == {"allreduce", "ag", "rs", "a2a", "llm", "bg"}
    assert len({t.group for t in plan.transfers if t.workload == "llm"}) == 4
    assert plan == build_plan(spec, spec.fabrics[0].build())          # deterministic
    assert plan != build_plan(spec, spec.fabrics[0].build(), seed=5)


@pytest.mark.parametrize("workload, key", [
    ({"kind": "allreduce", "algorithm": "halving-doubling", "hosts": ["h1", "h2", "h3"],
      "size_bytes": "1MB"}, "workload[0].hosts"),
    ({"kind": "allgather", "hosts": ["h1"], "size_bytes": "1MB"}, "workload[0].hosts"),
    ({"kind": "alltoall", "algorithm": "ring", "size_bytes": "1MB"}, "workload[0].algorithm"),
    ({"kind": "allreduce", "size_bytes": 100, "channels": 64, "hosts": ["h1", "h2"]},
     "workload[0].channels"),
    ({"kind": "allreduce", "size_bytes": "1MB", "channels": 0}, "workload[0].channels"),
    ({"kind": "reducescatter", "size_bytes": "1MB", "hosts": ["h1", "h99"]},
     "workload[0].hosts[1]"),
    (dict(INFER, model="1t"), "workload[0].model"),
    (dict(INFER, decode=["h9"]), "workload[0].decode[0]"),
    (dict(INFER, decode=["h2"]), "workload[0].decode"),
    (dict(INFER, rate_per_s=0), "workload[0].rate_per_s"),
    (dict(INFER, rate_factor=2.0), "workload[0].rate_factor"),
    (dict(INFER, arrivals="trace"), "workload[0].trace"),
    (dict(INFER, arrivals="trace", trace="/nonexistent.csv"), "workload[0].trace"),
    (dict(INFER, decode_s_per_token=-0.1), "workload[0].decode_s_per_token"),
    (dict(INFER, units="real"), "workload[0].units"),
    (dict(INFER, token_message_bytes=0), "workload[0].token_message_bytes"),
    ({"kind": "background", "load": 1.5}, "workload[0].load"),
    ({"kind": "background", "cdf": "nope"}, "workload[0].cdf"),
    ({"kind": "background", "duration_s": 0}, "workload[0].duration_s"),
    ({"kind": "background", "hosts": ["h1", "$(reboot)"]}, "workload[0].hosts[1]"),
])
def test_bad_traffic_workloads_name_the_key(workload, key):
    with pytest.raises(SpecError) as info:
        parse_experiment(doc(workload))
    assert info.value.key == key


def test_duplicate_workload_names_and_bad_scale():
    with pytest.raises(SpecError) as info:
        parse_experiment(doc({"kind": "allreduce", "size_bytes": "1MB"},
                             {"kind": "allreduce", "size_bytes": "1MB"}))
    assert info.value.key == "workload[1].name"
    for scale, key in [({"real_link_gbps": 0}, "scale.real_link_gbps"),
                       ({"real_link_gbps": 400, "time_dilation": -1}, "scale.time_dilation"),
                       ({"time_dilation": 2}, "scale.real_link_gbps"),
                       ({"real_link_gbps": 400, "speed": 1}, "scale.speed")]:
        with pytest.raises(SpecError) as info:
            parse_experiment(doc({"kind": "allreduce", "size_bytes": "1MB"}, scale=scale))
        # an optional table reports the inner key in its message
        assert info.value.key in (key, "scale") and key in str(info.value)


def test_scale_converts_real_units_only_where_asked():
    real = {"kind": "allreduce", "name": "real", "hosts": ["h1", "h2"], "size_bytes": "1GB",
            "gap_s": 0.01, "units": "real"}
    emu = {"kind": "allreduce", "name": "emu", "hosts": ["h3", "h4"], "size_bytes": "1MB",
           "gap_s": 0.01}
    spec = parse_experiment(doc(real, emu, scale={"real_link_gbps": 400, "time_dilation": 5}))
    graph = spec.fabrics[0].build()
    scale = plan_scale(spec, graph)
    assert scale == Scale(400, 20.0, 5)
    assert scale.size_factor == pytest.approx(20e6 / 400e9 * 5)
    plan = build_plan(spec, graph)
    sizes = {c.id.split("/")[0]: c.size_bytes for c in plan.collectives}
    assert sizes == {"real": round(1e9 * 20e6 / 400e9 * 5), "emu": 1_000_000}
    gaps = {t.workload: t.gap_s for t in plan.transfers if t.gap_s}
    assert gaps == {"real": pytest.approx(0.05), "emu": pytest.approx(0.01)}
    assert scale.real_s(10.0) == 2.0 and scale.real_mbps(20.0) == pytest.approx(400e3)
    assert scale.describe({"real": "real", "emu": "emulated"})["workload_units"] == {
        "real": "real", "emu": "emulated"}


def test_trace_workload_plans_from_a_csv(tmp_path):
    p = tmp_path / "azure.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                 "2023-11-16 18:15:46.6805900,100,2\n2023-11-16 18:15:48.6805900,50,1\n")
    spec = parse_experiment(doc(dict(INFER, name="replay", arrivals="trace", trace=str(p),
                                     time_scale=0.5)))
    plan = build_plan(spec, spec.fabrics[0].build())
    kv = [t for t in plan.transfers if t.step == STEP_KV]
    assert [(t.size_bytes, t.start_s) for t in kv] == [(100 * 327_680, 0.0),
                                                        (50 * 327_680, 1.0)]
    assert sum(t.step is not None and t.step >= STEP_TOKEN0 for t in plan.transfers) == 3


@pytest.mark.parametrize("name", ["inference.toml", "inference-with-allreduce.toml",
                                  "single-allreduce-hd.toml", "single-alltoall.toml"])
def test_examples_plan_identical_requests(name):
    spec = load_experiment(EXAMPLES / name)
    plan = build_plan(spec, spec.fabrics[0].build())
    assert plan.transfers
    if name.startswith("inference"):
        alone = load_experiment(EXAMPLES / "inference.toml")
        llm = list(build_plan(alone, alone.fabrics[0].build()).transfers)
        assert [t for t in plan.transfers if t.workload == "llm"] == llm   # same ids too


# ---- metrics -------------------------------------------------------------------------------
def rec(fid, src, dst, size, start, end, workload="w", group=None, step=None, complete=True):
    return FlowRecord(fid, src, dst, size, start, end if complete else None,
                      (end - start) if complete else None, workload, group, step, complete)


def test_job_jct_includes_the_first_compute_gap():
    spec = parse_experiment(doc({"kind": "allreduce", "name": "job", "hosts": ["h1", "h2"],
                                 "size_bytes": 1000, "iterations": 2, "gap_s": 0.5,
                                 "start_s": 1.0}))
    plan = build_plan(spec, spec.fabrics[0].build())
    # 2 ranks: 2 steps x 2 ranks per iteration; fake a run with t0 = 100
    recs = []
    for t in plan.transfers:
        it = int(t.group[-1])
        start = 100 + 1.0 + 0.5 + it * 1.0 + t.step * 0.1
        recs.append(rec(t.id, t.src, t.dst, t.size_bytes, start, start + 0.1, "job", t.group,
                        t.step))
    (j,) = job_results(plan, recs, {"h1": 20.0, "h2": 20.0})
    assert (j.name, j.kind, j.ranks, j.iterations, j.compute_s) == ("job", "allreduce", 2, 2, 0.5)
    last_end = 100 + 1.0 + 0.5 + 1.0 + 0.1 + 0.1
    assert j.jct_s == pytest.approx(last_end - 101.0)             # from the compute start
    roof = 2 * (0.5 + 1000 * 8 / 20e6 * 1.0)
    assert j.roofline_s == pytest.approx(roof) and j.jct_ratio == pytest.approx(j.jct_s / roof)
    broken = [r if r.flow_id else rec(r.flow_id, r.src, r.dst, r.bytes, r.start, None, "job",
                                      r.group, r.step, complete=False) for r in recs]
    (j2,) = job_results(plan, broken, {"h1": 20.0, "h2": 20.0})
    assert not j2.complete and math.isnan(j2.jct_s)


def _request(gid, base, kv_s, token_ends, fid=0, complete_kv=True):
    rs = [rec(fid, "c", "p", 40, base, base + 0.01, "llm", gid, STEP_PROMPT),
          rec(fid + 1, "p", "d", 1000, base + 0.11, base + 0.11 + kv_s, "llm", gid, STEP_KV,
              complete=complete_kv)]
    for j, end in enumerate(token_ends):
        rs.append(rec(fid + 2 + j, "d", "c", 10, end - 0.002, end, "llm", gid, STEP_TOKEN0 + j))
    return rs


def test_inference_results_by_request():
    recs = (_request("llm/r0", 0.0, 0.2, [0.5, 0.6, 0.65], 0)
            + _request("llm/r1", 1.0, 0.4, [1.8, 1.75, 2.0], 10)       # token 1 before token 0
            + _request("llm/r2", 2.0, 0.3, [2.9], 20, complete_kv=False))
    r0, r1, r2 = request_results(recs)
    assert r0.kv_transfer_s == pytest.approx(0.2) and r0.prompt_s == pytest.approx(0.01)
    assert r0.ttft_network_s == pytest.approx(0.01 + 0.2 + 0.002)
    assert r0.ttft_s == pytest.approx(0.5) and r0.token_gaps_s == pytest.approx((0.1, 0.05))
    assert r1.token_gaps_s == pytest.approx((0.0, 0.2))        # in-order delivery at the client
    assert not r2.complete and math.isnan(r2.kv_transfer_s) and math.isnan(r2.ttft_network_s)
    inf = inference_result(recs)
    assert (inf.requests, inf.complete, inf.tokens) == (3, 2, 7)
    assert inf.kv_transfer_s.count == 2 and inf.kv_transfer_s.max == pytest.approx(0.4)
    assert inf.kv_transfer_s.p50 == pytest.approx(0.3)
    assert inf.token_gap_s.count == 4 and inf.ttft_s.count == 3
    assert inf.token_goodput_per_s == pytest.approx(7 / 2.9)


def test_fct_slowdown_bins_clamp_and_rtt():
    line = 8.0                                # Mbit/s: 1 MB = 1 s on the wire
    bare = WireModel.none()                   # textbook size/rate, for hand-computed values
    assert ideal_fct_s(1e6, line, 0.01, bare) == pytest.approx(1.01)
    framed = (1e6 + WireModel().header_bytes) * 1514 / 1448 * 8 / 8e6 + 0.01
    assert ideal_fct_s(1e6, line, 0.01) == pytest.approx(framed)      # default: wire bytes
    recs = [rec(0, "a", "b", 1000, 0, 0.011),              # ideal 0.011: slowdown 1
            rec(1, "a", "b", 1000, 0, 0.0101),             # faster than ideal: clamped to 1
            rec(2, "a", "b", 1_000_000, 0, 2.02),          # 2x
            rec(3, "a", "b", 20_000_000, 0, 60.03),        # 3x
            rec(4, "a", "b", 5000, 0, None, complete=False)]
    sd = fct_slowdown(recs, line, 0.01, wire=bare)
    assert [(b.label, b.count) for b in sd.bins] == [("<100KB", 2), ("100KB-10MB", 1),
                                                     (">=10MB", 1)]
    assert sd.bins[0].mean == 1.0 and sd.bins[1].mean == pytest.approx(2.0)
    assert sd.bins[2].p99 == pytest.approx(3.0) and sd.overall.count == 4
    est = fct_slowdown(recs, line, wire=bare)  # base RTT estimated from the fastest flow
    assert est.base_rtt_s == pytest.approx(0.0101 - 0.001) and "estimated" in est.base_rtt_source
    binned = fct_slowdown(recs, line, 0.01, bin_size_factor=0.01, wire=bare)  # input x100
    assert [b.count for b in binned.bins] == [0, 2, 2]


def test_summarise_fills_sections_and_prints_both_units(tmp_path):
    spec = parse_experiment(doc(
        dict(INFER, name="llm", units="real"),
        {"kind": "background", "name": "bg", "duration_s": 5.0, "load": 0.5,
         "base_rtt_s": 0.001},
        scale={"real_link_gbps": 400, "time_dilation": 10}))
    graph = spec.fabrics[0].build()
    plan = build_plan(spec, graph)
    recs = [rec(t.id, t.src, t.dst, t.size_bytes, 1.0 + t.start_s + t.gap_s,
                2.0 + t.start_s + t.gap_s + t.size_bytes * 8 / 20e6, t.workload, t.group,
                t.step) for t in plan.transfers]
    summary = RunSummary("t", "leafspine", "ecmp", 4, str(tmp_path))
    summarise(spec, plan, recs, graph, summary, tmp_path)
    assert set(summary.sections["inference"]) == {"llm"} and set(summary.sections["slowdown"]) == {"bg"}
    assert summary.sections["inference"]["llm"].complete == 4 and summary.jobs == []
    assert summary.scale["workload_units"] == {"llm": "real", "bg": "emulated"}
    assert summary.sections["slowdown"]["bg"].base_rtt_s == 0.001
    lines = (tmp_path / "requests.csv").read_text().splitlines()
    assert lines[0].startswith("workload,request") and len(lines) == 5
    text = format_summary(summary)
    assert "KV transfer" in text and "real p50/p99" in text and "FCT slowdown bg" in text
    assert "400 Gbit/s" in text
    assert summary.to_dict()["inference"]["llm"]["kv_transfer_s"]["count"] == 4
