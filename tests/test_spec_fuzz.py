"""Property-based fuzzing of the experiment loader: any document either loads or raises the
project's bad-input error (SpecError), never anything else, within a bounded time.

Documents are drawn two ways: arbitrary TOML-shaped values (any keys, any nesting), and mutations
of a valid experiment (a known key given a hostile value: inf, nan, huge or negative numbers,
wrong types, long or control-character strings). Text is also fed to the TOML reader.
"""
from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fabric.plan.experiment import load_experiment, parse_experiment  # noqa: E402
from topologies.errors import SpecError  # noqa: E402

BASE = {"name": "fuzz", "fabric": [{"kind": "leafspine", "spines": 2, "leaves": 2,
                                    "hosts_per_leaf": 2}],
        "workload": [{"kind": "allreduce", "size_bytes": "1MB"}]}
KEYS = ["name", "seed", "kind", "spines", "leaves", "hosts_per_leaf", "hosts", "ncps", "ncfs",
        "host_rate_mbps", "fabric_rate_mbps", "queue_packets", "policy", "policy_params",
        "size_bytes", "iterations", "channels", "gap_s", "start_s", "algorithm", "flows", "src",
        "dst", "stride", "clients", "prefill", "decode", "requests", "rate_per_s", "cv",
        "arrivals", "load", "duration_s", "cdf", "trace", "units", "run", "deadline_s",
        "start_delay_s", "scale", "real_link_gbps", "time_dilation", "failure", "at_s",
        "switch", "link", "reference", "fabric", "workload", "latency_hosts", "speedup"]
KINDS = ["leafspine", "ddc", "single", "allreduce", "allgather", "reducescatter", "alltoall",
         "flows", "stride", "inference", "background"]
MAX_SECONDS_PER_DOC = 5.0

scalars = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30), st.sampled_from([10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=20), st.sampled_from(KINDS + ["all", "h1", "h2", "s1", "l1", "4MB",
                                                   "1000000TB", "h1\n", "\x1b[31m"]))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=12)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


@st.composite
def mutated(draw: st.DrawFn) -> dict:
    """The valid base document with 1-3 keys (at some depth) set to hostile values."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "fabric", "workload"]))
        tables = doc.get(where)
        ok = isinstance(tables, list) and tables and isinstance(tables[0], dict)
        table = tables[0] if where != "top" and ok else doc
        if where == "workload" and draw(st.booleans()):
            table["kind"] = draw(st.sampled_from(KINDS[3:]))
        if where == "fabric" and draw(st.booleans()):
            table["kind"] = draw(st.sampled_from(KINDS[:3]))
        table[draw(st.sampled_from(KEYS))] = draw(values)
    return doc


def _parse(doc: dict) -> None:
    start = time.monotonic()
    try:
        parse_experiment(doc)
    except SpecError:
        pass
    assert time.monotonic() - start < MAX_SECONDS_PER_DOC


FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(documents)
def test_any_document_loads_or_raises_spec_error(doc: dict) -> None:
    _parse(doc)


@FUZZ
@given(mutated())
def test_any_mutation_of_a_valid_document_loads_or_raises_spec_error(doc: dict) -> None:
    _parse(doc)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_file_loads_or_raises_spec_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "exp.toml"
    path.write_bytes(data)
    try:
        load_experiment(path)
    except SpecError as exc:
        assert all(e.key for e in exc.errors)


def test_fuzz_numbers_are_checked_finite() -> None:
    """A sanity anchor for the fuzzers: a non-finite rate is a SpecError, not accepted."""
    doc = copy.deepcopy(BASE)
    doc["fabric"][0]["host_rate_mbps"] = math.inf
    with pytest.raises(SpecError):
        parse_experiment(doc)
