"""Metric definitions checked on hand-computed cases."""
import math
from types import SimpleNamespace as NS

import pytest

from fabric.analysis.metrics import Distribution, busbw_factor, collective_result, percentile, to_jsonable


def test_percentile_interpolates():
    xs = [1, 2, 3, 4]
    assert percentile(xs, 50) == 2.5
    assert percentile(xs, 0) == 1 and percentile(xs, 100) == 4
    assert math.isnan(percentile([], 50))


def test_distribution_counts():
    d = Distribution.of(range(1, 101))
    assert d.count == 100 and d.min == 1 and d.max == 100 and d.p50 == pytest.approx(50.5)
    assert Distribution.of([]).count == 0


def test_busbw_factors_follow_nccl_tests():
    assert busbw_factor("allreduce", 4) == pytest.approx(1.5)
    assert busbw_factor("allgather", 4) == pytest.approx(0.75)
    assert busbw_factor("alltoall", 8) == pytest.approx(7 / 8)
    with pytest.raises(ValueError):
        busbw_factor("gossip", 4)


def rec(group, start, end, complete=True):
    return NS(group=group, start=start, end=end, complete=complete, fct_s=end - start)


def test_collective_result_by_hand():
    # S = 4 MB over 4 ranks in 2.4 s: algbw = 13.33 Mbit/s, busbw = 20 Mbit/s = line rate
    coll = NS(id="ar", kind="allreduce", algorithm="ring", hosts=("a", "b", "c", "d"),
              size_bytes=4_000_000)
    recs = [rec("ar", 10.0, 11.0), rec("ar", 10.5, 12.4), rec("other", 0, 100)]
    r = collective_result(coll, recs, line_rate_mbps=20)
    assert r.complete and r.transfers == 2
    assert r.jct_s == pytest.approx(2.4)
    assert r.algbw_mbps == pytest.approx(4e6 * 8 / 2.4 / 1e6)
    assert r.busbw_mbps == pytest.approx(20.0)
    assert r.lower_bound_s == pytest.approx(2.4)
    assert r.busbw_efficiency == pytest.approx(1.0)


def test_incomplete_collective_has_no_jct():
    coll = NS(id="ar", kind="allreduce", algorithm="ring", hosts=("a", "b"), size_bytes=10)
    r = collective_result(coll, [rec("ar", 0, 1), rec("ar", 0, math.nan, complete=False)], 20)
    assert not r.complete and math.isnan(r.jct_s)
    assert to_jsonable(r)["jct_s"] is None
