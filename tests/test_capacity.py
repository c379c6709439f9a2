"""Capacity prediction (fabric.analysis.capacity), plan-size bounds and `fabric check` speed-ups."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fabric.analysis.capacity import frame_budget_per_s, frames_per_s, line_rate_bound_bps, predict
from fabric.plan.experiment import parse_experiment
from fabric.plan.traffic import build_plan
from topologies import model
from topologies.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent


def stride(mtu, rate, hosts_per_leaf=4, workload=None):
    return parse_experiment({
        "name": "c", "fabric": {"kind": "leafspine", "spines": 4, "leaves": 4,
                                "hosts_per_leaf": hosts_per_leaf, "host_rate_mbps": rate,
                                "fabric_rate_mbps": rate, "mtu": mtu},
        "workload": workload or {"kind": "stride", "stride": hosts_per_leaf, "size_bytes": "1MB"}})


def prediction(spec):
    g = spec.fabrics[0].build()
    return predict("f", g, build_plan(spec, g), "user")


def test_jumbo_frames_fit_where_standard_frames_do_not():
    # 16 hosts x 40 Mbit/s, every flow across 3 switches: ~1.9 Gbit/s of switch egress
    small, jumbo = prediction(stride(1500, 40)), prediction(stride(9000, 40))
    assert small.peak_forwarding_mbps == pytest.approx(jumbo.peak_forwarding_mbps, rel=0.05)
    assert not small.fits and "WARNING" in small.message()
    assert jumbo.fits and "WARNING" not in jumbo.message()
    assert small.method == jumbo.method == "ideal"


def test_bound_is_above_the_ideal_peak():
    spec = stride(1500, 10)
    g = spec.fabrics[0].build()
    plan = build_plan(spec, g)
    assert line_rate_bound_bps(g, plan) >= predict("f", g, plan).peak_forwarding_mbps * 1e6
    assert line_rate_bound_bps(g, plan) == pytest.approx(1.05 * 16 * 10e6 * 3)


def test_frames_and_unknown_datapath():
    assert frames_per_s(8 * 1514 * 1000, 1500) == pytest.approx(1000)
    spec = stride(1500, 10)
    g = spec.fabrics[0].build()
    p = predict("f", g, build_plan(spec, g), "kernel")
    assert p.fits and p.share is None and "no measured budget" in p.message()
    # frames delivered to hosts cost more (the receiving TCP's work runs in OVS's thread)
    assert frame_budget_per_s("user", 1500, 1.0) < frame_budget_per_s("user", 1500, 0.0)
    assert frame_budget_per_s("user", 9000, 1.0) < frame_budget_per_s("user", 1500, 1.0)
    assert frame_budget_per_s("kernel", 1500) is None


def single(mtu, rate, hosts=16):
    return parse_experiment({
        "name": "c", "fabric": {"kind": "single", "hosts": hosts, "host_rate_mbps": rate, "mtu": mtu},
        "workload": {"kind": "stride", "stride": 4, "size_bytes": "1MB"}})


@pytest.mark.parametrize("spec, faithful", [
    # bench.capacity, 16 hosts, 2-3 seeds each (docs/benchmarks.md, "Capacity")
    (lambda: stride(9000, 50), True), (lambda: stride(9000, 55), True),
    (lambda: stride(9000, 60), False), (lambda: stride(1500, 7.5), True),
    (lambda: stride(1500, 20), False),
    (lambda: single(9000, 80), True), (lambda: single(9000, 120), False)])
def test_prediction_matches_the_measured_capacity(spec, faithful):
    p = prediction(spec())
    assert p.fits == faithful, p.message()


def test_a_single_switch_delivers_every_frame_to_a_host():
    s, ls = prediction(single(9000, 40)), prediction(stride(9000, 40))
    assert s.peak_host_frames_per_s == pytest.approx(s.peak_frames_per_s)
    assert ls.peak_host_frames_per_s == pytest.approx(ls.peak_frames_per_s / 3, rel=0.05)
    assert "to hosts" in s.message()


def test_huge_plans_are_refused_naming_the_key():
    big = {"kind": "alltoall", "size_bytes": "1MB", "channels": 64, "iterations": 1000}
    with pytest.raises(SpecError, match=r"workload\[0\]: 15,360,000 transfers .* more than 200,000"):
        stride(1500, 10, workload=big)
    with pytest.raises(SpecError, match=r"workload\[0\]: .* more than 200,000"):
        stride(1500, 10, hosts_per_leaf=64, workload={**big, "iterations": 1})


def test_next_hop_table_matches_next_hops_also_after_a_link_fails():
    g = stride(1500, 10).fabrics[0].build()
    for removed in (None, model.fabric_links(g)[0]):
        if removed:
            g.remove_edge(*removed)
        table = model.next_hop_table(g)
        for sw in model.switches(g):
            for h in model.hosts(g):
                assert table[sw].get(h, ()) == tuple(model.next_hops(g, sw, h))


def test_check_prints_the_prediction(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text('name = "x"\n[fabric]\nkind = "single"\nhosts = 4\nhost_rate_mbps = 400\n'
                 '[[workload]]\nkind = "stride"\nsize_bytes = "1MB"\n')
    out = subprocess.run([sys.executable, "-m", "fabric", "check", str(f)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "capacity single:" in out.stdout and "WARNING" in out.stdout
