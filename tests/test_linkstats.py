"""Link counters: the sampler (against a fake sysfs) and the utilisation maths on hand-made links.csv."""
from __future__ import annotations

import csv
import shutil

import pytest

from fabric.analysis.links import COLUMNS, balance, directions, read_links_csv, series, utilisation
from fabric.run.samplers import LinkSampler
from topologies.leafspine import build_leaf_spine
from topologies.single import build_single_switch

# rate 8 Mbit/s = 1,000,000 bytes/s: byte counts below read directly as fractions of line rate
HEADER = ",".join(COLUMNS)


def write(tmp_path, rows):
    path = tmp_path / "links.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return path


def row(t, src, dst, tx, dropped=0, tier="fabric", rate=8):
    link = "-".join(sorted((src, dst)))
    return f"{t},{link},{src},{dst},{tier},{rate},{tx},{dropped},{src}-eth9"


def test_directions_are_switch_ends_of_every_edge():
    g = build_leaf_spine(2, 2, 1, 20, 10)
    dirs = directions(g)
    # host links: only the switch end (leaf -> host); fabric links: both directions
    assert {(d.src, d.dst) for d in dirs if d.tier == "host"} == {("l1", "h1"), ("l2", "h2")}
    fabric = {(d.src, d.dst) for d in dirs if d.tier == "fabric"}
    assert fabric == {("l1", "s1"), ("s1", "l1"), ("l1", "s2"), ("s2", "l1"),
                      ("l2", "s1"), ("s1", "l2"), ("l2", "s2"), ("s2", "l2")}
    l1s1 = next(d for d in dirs if (d.src, d.dst) == ("l1", "s1"))
    assert l1s1.link == "l1-s1" and l1s1.rate_mbps == 10 and l1s1.intf == "l1-eth2"
    s1l1 = next(d for d in dirs if (d.src, d.dst) == ("s1", "l1"))
    assert s1l1.link == "l1-s1" and s1l1.intf == "s1-eth1"


def test_mean_p95_max_and_window_pro_rata(tmp_path):
    # l1->s1: 1 s at 100 %, 1 s at 50 %, 1 s at 0 %; l1->s2: 50 % throughout
    path = write(tmp_path, [row(0, "l1", "s1", 0), row(0, "l1", "s2", 0),
                            row(1, "l1", "s1", 1_000_000), row(1, "l1", "s2", 500_000),
                            row(2, "l1", "s1", 1_500_000), row(2, "l1", "s2", 1_000_000),
                            row(3, "l1", "s1", 1_500_000, dropped=7), row(3, "l1", "s2", 1_500_000)])
    samples = read_links_csv(path)
    u = {x.src + x.dst: x for x in utilisation(samples)}
    assert u["l1s1"].util_mean == pytest.approx(0.5)
    assert u["l1s1"].util_max == pytest.approx(1.0)
    assert u["l1s1"].util_p95 == pytest.approx(0.95)  # linear between 0.5 and 1.0
    assert u["l1s1"].bytes == 1_500_000 and u["l1s1"].dropped == 7
    assert u["l1s2"].util_mean == pytest.approx(0.5) and u["l1s2"].duration_s == 3
    # window [0.5, 1.5]: half of the 100 % second and half of the 50 % second
    w = {x.src + x.dst: x for x in utilisation(samples, (0.5, 1.5))}
    assert w["l1s1"].util_mean == pytest.approx(0.75) and w["l1s1"].duration_s == pytest.approx(1)
    # a window outside every sample leaves nothing
    assert utilisation(samples, (10, 20)) == []


def test_counter_reset_counts_zero_and_torn_line_is_skipped(tmp_path):
    path = write(tmp_path, [row(0, "l1", "s1", 5_000_000), row(1, "l1", "s1", 100),
                            row(2, "l1", "s1", 1_000_100), "3,l1-s1,l1,s1,fab"])
    samples = read_links_csv(path)
    assert len(samples) == 3
    (u,) = utilisation(samples)
    assert u.util_mean == pytest.approx(0.5)  # 0 then 100 %


def test_balance_mmr_and_jain(tmp_path):
    path = write(tmp_path, [row(0, "l1", "s1", 0), row(0, "l1", "s2", 0),
                            row(0, "l1", "h1", 0, tier="host"),
                            row(1, "l1", "s1", 900_000), row(1, "l1", "s2", 300_000),
                            row(1, "l1", "h1", 1_000_000, tier="host")])
    utils = utilisation(read_links_csv(path))
    b = balance(utils, "fabric")
    assert b.links == 2 and b.util_mean == pytest.approx(0.6) and b.util_max == pytest.approx(0.9)
    assert b.mmr == pytest.approx(0.9 / 0.6)
    assert b.jain == pytest.approx(1.2 ** 2 / (2 * (0.81 + 0.09)))
    assert balance(utils, "nosuchtier") is None


def test_balance_of_an_idle_tier_is_undefined(tmp_path):
    path = write(tmp_path, [row(0, "l1", "s1", 0), row(1, "l1", "s1", 0)])
    b = balance(utilisation(read_links_csv(path)))
    assert b.links == 1 and b.util_mean == 0 and b.mmr is None and b.jain is None


def test_series_per_interval(tmp_path):
    path = write(tmp_path, [row(0, "l1", "s1", 0), row(1, "l1", "s1", 250_000),
                            row(2, "l1", "s1", 1_250_000), row(0, "l1", "h1", 0, tier="host"),
                            row(1, "l1", "h1", 9, tier="host")])
    s = series(read_links_csv(path), tier="fabric")
    assert list(s) == [("l1", "s1")]
    assert s[("l1", "s1")] == [(0.0, pytest.approx(0.25)), (1.0, pytest.approx(1.0))]


def test_sampler_reads_fake_sysfs_and_writes_links_csv(tmp_path):
    g = build_single_switch(2, 8)
    sysfs = tmp_path / "sys"
    for intf in ("sw1-eth1", "sw1-eth2"):
        (sysfs / intf / "statistics").mkdir(parents=True)
        (sysfs / intf / "statistics" / "tx_bytes").write_text("1000\n")
        (sysfs / intf / "statistics" / "tx_dropped").write_text("0\n")
    sampler = LinkSampler(g, tmp_path / "links.csv", interval_s=0.02, sysfs=sysfs)
    with sampler:
        (sysfs / "sw1-eth1" / "statistics" / "tx_bytes").write_text("501000\n")
        shutil.rmtree(sysfs / "sw1-eth2")  # an interface that vanishes is left out, not fatal
    sampler.stop()  # idempotent
    with open(tmp_path / "links.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    eth1 = [r for r in rows if r["intf"] == "sw1-eth1"]
    assert eth1[0]["tx_bytes"] == "1000" and eth1[-1]["tx_bytes"] == "501000"
    assert {r["link"] for r in eth1} == {"sw1-h1"} and eth1[0]["src"] == "sw1"
    assert eth1[0]["dst"] == "h1" and eth1[0]["tier"] == "host" and eth1[0]["rate_mbps"] == "8"
    times = [float(r["time"]) for r in eth1]
    assert times == sorted(times) and times[-1] > times[0]
    (u1,) = [u for u in utilisation(read_links_csv(tmp_path / "links.csv")) if u.dst == "h1"]
    assert u1.bytes == 500_000
