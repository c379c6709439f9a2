"""Failure specs: validation against each fabric's model, the interface plan, JCT impact.
Pure: no root (the injector's `ip link` step is exercised by the emulation tests)."""
from __future__ import annotations

import time

import pytest

from topologies.errors import SpecError
from fabric.plan.failures import FailureAction, failure_actions
from fabric.run.failures import FailureInjector
from fabric.analysis.failures import impact
from fabric.analysis.metrics import CollectiveResult
from fabric.plan.experiment import parse_experiment
from traffic.records import FlowRecord

LEAFSPINE = {"kind": "leafspine", "name": "ls", "spines": 2, "leaves": 2, "hosts_per_leaf": 2}
DDC = {"kind": "ddc", "name": "ddc", "ncps": 2, "ncfs": 2, "hosts_per_ncp": 2}
DDC3 = {**DDC, "ncfs": 3}


def experiment(failure, fabric=(DDC,), deadline_s=60.0):
    return {"name": "x", "fabric": list(fabric), "run": {"deadline_s": deadline_s},
            "workload": {"kind": "allreduce", "size_bytes": "1MB"}, "failure": failure}


def test_switch_and_link_failures_load():
    spec = parse_experiment(experiment([{"at_s": 1.5, "switch": "ncf1"},
                                        {"at_s": 2, "link": ["ncp2", "ncf1"]}]))
    assert [(f.at_s, f.switch, f.link) for f in spec.failures] == [
        (1.5, "ncf1", ()), (2.0, "", ("ncp2", "ncf1"))]


def test_no_failures_by_default():
    doc = experiment([])
    del doc["failure"]
    assert parse_experiment(doc).failures == ()


@pytest.mark.parametrize("failure, key", [
    ({"at_s": 1.0, "switch": "ncf9"}, "failure[0].switch"),          # unknown switch
    ({"at_s": 1.0, "switch": "ncp1"}, "failure[0].switch"),          # has hosts
    ({"at_s": 1.0, "switch": "h1"}, "failure[0].switch"),            # not a switch
    ({"at_s": 1.0, "switch": "n;rm -rf"}, "failure[0].switch"),      # unsafe name
    ({"at_s": 1.0, "link": ["ncp1", "ncf7"]}, "failure[0].link[1]"),  # unknown end
    ({"at_s": 1.0, "link": ["ncp1", "ncp2"]}, "failure[0].link"),     # no such link
    ({"at_s": 1.0, "link": ["h1", "ncp1"]}, "failure[0].link"),       # host link
    ({"at_s": 1.0, "link": ["ncp1"]}, "failure[0].link"),             # one end only
    ({"at_s": 1.0}, "failure[0]"),                                    # neither link nor switch
    ({"at_s": 1.0, "switch": "ncf1", "link": ["ncp1", "ncf1"]}, "failure[0]"),  # both
    ({"at_s": 99.0, "switch": "ncf1"}, "failure[0].at_s"),            # after the deadline
    ({"at_s": -1.0, "switch": "ncf1"}, "failure[0].at_s"),
    ({"switch": "ncf1"}, "failure[0].at_s"),                          # missing
    ({"at_s": 1.0, "switch": "ncf1", "fabric": "nope"}, "failure[0].fabric"),
    ({"at_s": 1.0, "switch": "ncf1", "when": 3}, "failure[0].when"),  # unknown key
])
def test_bad_failures_name_the_key(failure, key):
    with pytest.raises(SpecError) as err:
        parse_experiment(experiment([failure]))
    assert err.value.key == key


def test_failures_that_partition_the_fabric_are_refused():
    with pytest.raises(SpecError) as err:
        parse_experiment(experiment([{"at_s": 1.0, "switch": "ncf1"},
                                     {"at_s": 2.0, "switch": "ncf2"}]))
    assert err.value.key == "failure[1]"
    assert "partitioned" in str(err.value)


def test_a_failure_applies_to_every_fabric_unless_it_names_one():
    with pytest.raises(SpecError) as err:  # ncf1 is not in the leaf/spine
        parse_experiment(experiment([{"at_s": 1.0, "switch": "ncf1"}], fabric=(LEAFSPINE, DDC)))
    assert err.value.key == "failure[0].switch" and "'ls'" in str(err.value)
    spec = parse_experiment(experiment([{"at_s": 1.0, "switch": "ncf1", "fabric": "ddc"},
                                        {"at_s": 1.0, "switch": "s1", "fabric": "ls"}],
                                       fabric=(LEAFSPINE, DDC)))
    ls, ddc = spec.fabrics
    assert [a.what for a in failure_actions(spec.failures, ls.build(), "ls")] == ["switch s1"]
    assert [a.what for a in failure_actions(spec.failures, ddc.build(), "ddc")] == ["switch ncf1"]


def test_actions_name_both_ends_of_every_link_in_time_order():
    spec = parse_experiment(experiment([{"at_s": 3.0, "switch": "ncf2"},
                                        {"at_s": 1.0, "link": ["ncf1", "ncp2"]}],
                                       fabric=(DDC3,)))
    g = spec.fabric().build()
    acts = failure_actions(spec.failures, g, "ddc")
    assert acts == [
        FailureAction(1.0, "link ncf1-ncp2", ("ncf1-eth2", "ncp2-eth3")),
        FailureAction(3.0, "switch ncf2", ("ncf2-eth1", "ncp1-eth4", "ncf2-eth2", "ncp2-eth4")),
    ]


def test_injector_applies_due_failures_and_reports_the_rest():
    downed = []

    def fake_down(interfaces):  # never touch real links in a unit test
        downed.append(tuple(interfaces))
        return ""
    t0 = time.time()
    inj = FailureInjector([FailureAction(0.0, "link a-b", ("ncf1-eth1", "ncp1-eth3")),
                           FailureAction(3600.0, "switch ncf2", ("ncf2-eth1",))], t0, fake_down)
    inj.start()
    deadline = time.monotonic() + 5
    while not downed and time.monotonic() < deadline:
        time.sleep(0.01)
    first, second = inj.stop()
    assert downed == [("ncf1-eth1", "ncp1-eth3")]
    assert first["applied_s"] >= 0 and first["time"] >= t0 and first["error"] == ""
    assert second["applied_s"] is None and second["time"] is None
    assert "not applied" in second["error"]


def record(group, start, end):
    return FlowRecord(0, "h1", "h2", 1, start, end, end - start, "w", group, 0, True)


def coll(cid, jct):
    return CollectiveResult(cid, "allreduce", "ring", 4, 1, 1, True, jct, 1.0, 1.5, 0.5, 0.9)


def test_impact_compares_the_hit_iteration_with_steady_state():
    records = [record("it0", 100.0, 101.0), record("it1", 101.0, 102.0),
               record("it2", 102.0, 104.0), record("it3", 104.0, 105.5)]
    colls = [coll("it0", 1.0), coll("it1", 1.0), coll("it2", 2.0), coll("it3", 1.5)]
    (row,) = impact([{"what": "switch ncf1", "time": 102.5, "applied_s": 2.5}], colls, records)
    assert row["collectives_hit"] == ["it2"]
    assert row["steady_samples"] == 2 and row["steady_jct_p50_s"] == pytest.approx(1.0)
    assert row["hit_jct_s"] == 2.0 and row["jct_overhead"] == pytest.approx(1.0)
    assert row["zero_impact"] is False
    (row,) = impact([{"what": "x", "time": None, "applied_s": None}], colls, records)
    assert row["collectives_hit"] == [] and "jct_overhead" not in row


def test_impact_judges_each_hit_collective_against_its_own_workloads_steady_state():
    def rec(workload, group, start, end):
        return FlowRecord(0, "h1", "h2", 1, start, end, end - start, workload, group, 0, True)
    # job "big" steady at 4 s per iteration, job "small" at 1 s; the failure hits one of each
    records = [rec("big", "b0", 100.0, 104.0), rec("big", "b1", 104.0, 108.5),
               rec("small", "s0", 100.0, 101.0), rec("small", "s1", 108.0, 110.0)]
    colls = [coll("b0", 4.0), coll("b1", 4.5), coll("s0", 1.0), coll("s1", 2.0)]
    (row,) = impact([{"what": "link l1-s1", "time": 108.2, "applied_s": 8.2}], colls, records)
    assert sorted(row["collectives_hit"]) == ["b1", "s1"]
    # s1 doubled against small's 1 s; pooling with big's 4 s would have hidden it
    assert row["hit_jct_s"] == 2.0 and row["steady_samples"] == 1
    assert row["jct_overhead"] == pytest.approx(1.0) and row["zero_impact"] is False
