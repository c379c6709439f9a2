"""The fidelity monitor: /proc readers on a fake /proc, the verdict rules on hand-made samples."""
from __future__ import annotations

import pytest

from fabric.run import samplers
from fabric.run.samplers import CLK_TCK, CpuSampler, read_machine, read_process
from fabric.analysis.fidelity import (CpuSample, active_utilisation, assess, best_utilisation, cpu_stats,
                                      kernel_drops, read_cpu_csv, windows)
from fabric.report.summary import format_fidelity
from fabric.analysis.links import LinkSample


def fake_proc(tmp_path, machine=(100, 0, 50, 800, 10, 0, 5, 0), procs=None):
    """A /proc with a stat file and per-pid stat files; times in clock ticks."""
    (tmp_path / "stat").write_text("cpu  " + " ".join(map(str, machine)) + " 0 0\ncpu0 1 2 3\n")
    for pid, (utime, stime) in (procs or {}).items():
        d = tmp_path / str(pid)
        d.mkdir(exist_ok=True)
        # comm with a space and a parenthesis: fields are counted after the last ')'
        fields = ["S"] + ["0"] * 10 + [str(utime), str(stime)] + ["0"] * 30
        (d / "stat").write_text(f"{pid} (odd (name)) " + " ".join(fields) + "\n")
    return tmp_path


def test_proc_readers(tmp_path):
    proc = fake_proc(tmp_path, procs={42: (300, 100)})
    busy, total, softirq = read_machine(proc)
    assert busy == pytest.approx(155 / CLK_TCK) and total == pytest.approx(965 / CLK_TCK)
    assert softirq == pytest.approx(5 / CLK_TCK)
    assert read_process(42, proc) == pytest.approx(400 / CLK_TCK)
    assert read_process(43, proc) is None


def test_sampler_writes_cumulative_rows_and_keeps_exited_agents(tmp_path):
    (tmp_path / "p").mkdir()
    proc = fake_proc(tmp_path / "p", procs={1: (10, 0), 2: (20, 0)})
    groups = {"ovs_vswitchd": [1], "controller": [], "agents": [2]}
    s = CpuSampler(tmp_path / "cpu.csv", lambda: groups, interval_s=3600, proc=proc)
    s.start()
    fake_proc(proc, machine=(300, 0, 50, 900, 10, 0, 5, 0), procs={1: (110, 0), 2: (70, 0)})
    s.sample()
    (proc / "2" / "stat").unlink()           # the agent exited: its last reading stays
    s.stop()
    rows = read_cpu_csv(tmp_path / "cpu.csv")
    assert len(rows) == 3 and rows[0].ovs_vswitchd_s == 0
    assert rows[1].ovs_vswitchd_s == pytest.approx(100 / CLK_TCK)
    assert rows[1].agents_s == pytest.approx(50 / CLK_TCK) == rows[2].agents_s
    assert rows[1].machine_busy_s == pytest.approx(200 / CLK_TCK)
    assert rows[1].machine_total_s == pytest.approx(300 / CLK_TCK)


def test_windows_span_at_least_the_window():
    assert windows([0, 0.25, 0.5, 0.75, 1.0, 1.25]) == [(0, 4), (1, 5)]
    assert windows([0, 0.3, 0.6]) == [(0, 2)]    # shorter than a window: the whole span
    assert windows([5.0]) == []


def cpu_run(busy_frac, ovs_cores, seconds=4, cores=2):
    """Samples every 0.5 s of a machine `busy_frac` busy with ovs-vswitchd at `ovs_cores`."""
    return [CpuSample(t * 0.5, t * 0.5 * cores * busy_frac, t * 0.5 * cores, 0.0,
                      t * 0.5 * ovs_cores, 0.01 * t, 0.1 * t) for t in range(int(seconds * 2) + 1)]


def test_cpu_stats_means_and_peaks():
    st = cpu_stats(cpu_run(0.5, 0.8))
    assert st.cores == 2 and st.machine_busy_mean == pytest.approx(0.5)
    assert st.machine_busy_peak == pytest.approx(0.5)
    assert st.ovs_vswitchd_cores_mean == pytest.approx(0.8) == st.ovs_vswitchd_cores_peak
    assert st.agents_cores_mean == pytest.approx(0.2)
    assert cpu_stats(cpu_run(0.5, 0.8)[:1]) is None


def link_rows(src, dst, util, seconds=4, rate=8, dropped_total=0, idle_s=0.0, tail=()):
    """links.csv rows of a direction of an 8 Mbit/s (= 1 MB/s) link, sampled every 0.25 s:
    idle for idle_s, then at `util` for `seconds`, then at each utilisation of `tail` for 0.25 s,
    then idle for 0.5 s."""
    steps = [0.0] * int(idle_s * 4) + [util] * int(seconds * 4) + list(tail) + [0.0, 0.0]
    rows, tx = [], 0.0
    for i in range(len(steps) + 1):
        rows.append(LinkSample(i * 0.25, f"{src}-{dst}", src, dst, "host", rate, round(tx),
                               dropped_total * i // len(steps)))
        if i < len(steps):
            tx += steps[i] * 0.25 * 1e6
    return rows


def test_active_utilisation_skips_idle_time_and_stretch_edges():
    # idle 1 s, 2 s at 80%, one interval at 30% (the stretch ends mid-interval), idle
    u = active_utilisation(link_rows("l1", "h1", 0.8, seconds=2, idle_s=1, tail=[0.3]))
    rate, util, secs = u[("l1", "h1")]
    assert rate == 8 and util == pytest.approx(0.8) and secs == pytest.approx(1.75)
    # a shared bottleneck: 3 s at 60%, then 1 s at full rate once the others are done
    rows = link_rows("l1", "h1", 0.6, seconds=3, tail=[1.0] * 4)
    assert active_utilisation(rows)[("l1", "h1")][1] == pytest.approx((11 * 0.6 + 3 * 1.0) / 14)
    assert best_utilisation(rows)[("l1", "h1")] == pytest.approx(1.0)  # looks healthy


def test_best_utilisation_and_drops():
    rows = link_rows("l1", "h1", 0.5) + link_rows("l2", "h2", 1.0, dropped_total=40)
    best = best_utilisation(rows)
    assert best[("l1", "h1")] == pytest.approx(0.5) and best[("l2", "h2")] == pytest.approx(1.0)
    dropped, sent = kernel_drops(rows)
    assert dropped == 40 and sent == pytest.approx(6e6 / 1514)


BUSY = {("l1", "h1"): 1.0, ("l2", "h2"): 1.0}   # ideal utilisation while active


def test_cpu_saturated_and_short_link_is_unfaithful():
    links = link_rows("l1", "h1", 0.6) + link_rows("l2", "h2", 0.97)
    f = assess(cpu_run(0.95, 0.5), links, BUSY)
    assert not f.faithful and "machine 95% busy" in f.reasons[0]
    assert "l1->h1 60% (ideal 100%)" in f.reasons[0] and "l2->h2" not in f.reasons[0]
    # the datapath thread at a full core counts as saturated CPU too (one core of two busy)
    g = assess(cpu_run(0.6, 0.99), links, BUSY)
    assert not g.faithful and "ovs-vswitchd at 0.99 cores" in g.reasons[0]
    assert "UNFAITHFUL" in format_fidelity(g)[0] and "l1->h1" in format_fidelity(g)[1]


def test_saturated_ovs_with_links_at_rate_is_faithful_with_a_note():
    links = link_rows("l1", "h1", 0.98) + link_rows("l2", "h2", 0.97)
    f = assess(cpu_run(0.6, 0.98), links, BUSY)
    assert f.faithful and f.reasons == [] and any("no spare capacity" in w for w in f.warnings)
    assert [c.measured_util for c in f.busy_links] == pytest.approx([0.98, 0.97], rel=1e-4)
    assert format_fidelity(f)[0].startswith("fidelity: FAITHFUL")


def test_shortfall_behind_a_fabric_bottleneck_is_explained():
    links = (link_rows("l1", "h1", 0.5) + link_rows("l2", "h2", 0.97)
             + link_rows("s1", "l1", 0.99))
    f = assess(cpu_run(0.95, 0.99), links, BUSY, {("l1", "h1"): {("s1", "l1"), ("l1", "h1")}})
    assert f.faithful and any("fabric bottleneck" in w for w in f.warnings)


def test_short_link_without_cpu_saturation_is_a_warning():
    links = link_rows("l1", "h1", 0.6) + link_rows("l2", "h2", 0.97)
    f = assess(cpu_run(0.4, 0.5), links, BUSY)
    assert f.faithful and any("TCP did not fill" in w for w in f.warnings)


def test_a_link_short_of_a_partial_ideal_load_is_judged_against_it():
    # the ideal fabric has this link 60% loaded while active: 57% measured is fine, 40% is not
    ok = assess(cpu_run(0.95, 0.99), link_rows("l1", "h1", 0.57), {("l1", "h1"): 0.6})
    assert ok.faithful
    bad = assess(cpu_run(0.95, 0.99), link_rows("l1", "h1", 0.4), {("l1", "h1"): 0.6})
    assert not bad.faithful


def test_links_not_checked_without_a_busy_link_or_a_long_enough_activity():
    f = assess(cpu_run(0.95, 0.99), link_rows("l1", "h1", 0.3), {})
    assert f.faithful and f.busy_links == [] and any("not checked" in w for w in f.warnings)
    # 0.75 s of activity: a quarter second of whole intervals, too little to judge
    g = assess(cpu_run(0.95, 0.99), link_rows("l1", "h1", 0.3, seconds=0.75), BUSY)
    assert g.faithful and g.busy_links == []


def test_kernel_drops_above_the_fraction_are_unfaithful():
    few = assess(cpu_run(0.4, 0.5), link_rows("l1", "h1", 1.0, dropped_total=2), BUSY)
    assert few.faithful and few.kernel_dropped == 2
    many = assess(cpu_run(0.4, 0.5), link_rows("l1", "h1", 1.0, dropped_total=500), BUSY)
    assert not many.faithful and "softirq" in many.reasons[0]


def test_packets_ovs_never_read_above_the_fraction_are_unfaithful():
    """ovs_rx_dropped (a port's receive socket overflowed: the datapath fell behind) is the
    machine's loss, judged like the kernel's: a warning when rare, unfaithful above 0.1%."""
    from dataclasses import replace

    def unread(total):
        rows = link_rows("l1", "h1", 1.0)
        return [replace(r, ovs_rx_dropped=total * i // (len(rows) - 1)) for i, r in enumerate(rows)]
    few = assess(cpu_run(0.4, 0.5), unread(2), BUSY)
    assert few.faithful and any("unread by ovs-vswitchd" in w for w in few.warnings)
    many = assess(cpu_run(0.4, 0.5), unread(500), BUSY)
    assert not many.faithful and "unread by ovs-vswitchd" in many.reasons[0]
    assert assess(cpu_run(0.4, 0.5), unread(0), BUSY).warnings == []


def test_no_cpu_samples_is_not_measured():
    f = assess([], [], {})
    assert not f.faithful and "not measured" in f.reasons[0]


def test_ovs_pids_from_pidfile_or_comm(tmp_path):
    proc = tmp_path / "proc"
    for pid, comm in ((7, "ovs-vswitchd"), (8, "bash"), (9, "ovs-vswitchd")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(comm + "\n")
    pidfile = tmp_path / "ovs.pid"
    pidfile.write_text("9\n")
    assert samplers.ovs_vswitchd_pids(proc, pidfile) == [9]
    assert sorted(samplers.ovs_vswitchd_pids(proc, tmp_path / "missing")) == [7, 9]
