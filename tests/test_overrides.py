"""`--set KEY=VALUE` (fabric/spec/overrides.py): every kind of key path reaches the right table,
and a bad value fails with exactly the error the same value gives when written in the file."""
from __future__ import annotations

import copy
import tomllib

import pytest

from fabric import cli
from fabric.plan.experiment import load_experiment
from fabric.spec import tomlwrite
from fabric.spec.overrides import apply_overrides, parse_override, parse_value
from topologies.errors import SpecError

BASE = """
name = "ovr"
seed = 1

[run]
deadline_s = 60

[[fabric]]
kind = "leafspine"
name = "ls"
spines = 2
leaves = 2
hosts_per_leaf = 2

[[fabric]]
kind = "ddc"
name = "ddc"
ncps = 2
ncfs = 2
hosts_per_ncp = 2

[[fabric]]
kind = "single"
name = "big"
hosts = 4

[[workload]]
kind = "stride"
name = "perm"
stride = 2
size_bytes = "1MB"

[[workload]]
kind = "allreduce"
name = "ar"
hosts = ["h1", "h2", "h3", "h4"]
size_bytes = "1MB"

[[workload]]
kind = "flows"
flows = [{ src = "h1", dst = "h3", size_bytes = "1MB" }]

[[failure]]
at_s = 1.0
switch = "ncf1"
fabric = "ddc"
"""
ONE_FABRIC = """
name = "one"
[fabric]
kind = "leafspine"
spines = 2
leaves = 2
hosts_per_leaf = 2
[[workload]]
kind = "stride"
stride = 2
size_bytes = "1MB"
"""


def _f(i):  # the i-th [[fabric]]
    return lambda d: d["fabric"][i]


def _w(i):
    return lambda d: d["workload"][i]


# (override, the table the file would hold it in, key in that table, value, error key)
CASES = [
    ("seed=abc", lambda d: d, "seed", "abc", "seed"),                                    # top level
    ("sead=3", lambda d: d, "sead", 3, "sead"),                                          # unknown top-level key
    ("run.deadline_s=-1", lambda d: d["run"], "deadline_s", -1, "run.deadline_s"),       # a table's key
    ("run.datapath=fast", lambda d: d["run"], "datapath", "fast", "run.datapath"),
    ("fabric[1].ncfs=0", _f(1), "ncfs", 0, "fabric[1].ncfs"),                            # by index
    ("fabric[ddc].ncfs=x", _f(1), "ncfs", "x", "fabric[1].ncfs"),                        # by name
    ("fabric[single].hosts=1", _f(2), "hosts", 1, "fabric[2].hosts"),                    # by kind
    ("fabric.ddc.speedup=99", _f(1), "speedup", 99, "fabric[1].speedup"),                # dotted name
    ("fabric.speedup=99", _f(1), "speedup", 99, "fabric[1].speedup"),                    # the fabric that has the key
    ("fabric[ls].spinez=2", _f(0), "spinez", 2, "fabric[0].spinez"),                     # unknown key
    ("fabric[ls].policy_params.bogus=1", _f(0), "policy_params", {"bogus": 1},
     "fabric[0].policy_params.bogus"),                                                   # inline table
    ("fabric[ls].policy=nope", _f(0), "policy", "nope", "fabric[0].policy"),
    ("workload.perm.size_bytes=lots", _w(0), "size_bytes", "lots", "workload[0].size_bytes"),  # workload by name
    ("workload[stride].stride=4", _w(0), "stride", 4, "workload[0].stride"),                 # by kind
    ("workload[ar].hosts[1]=h99", lambda d: d["workload"][1]["hosts"], 1, "h99",
     "workload[1].hosts[1]"),                                                            # a list element
    ("workload[flows].flows[0].dst=h9", lambda d: d["workload"][2]["flows"][0], "dst", "h9",
     "workload[2].flows[0].dst"),                                                        # in a list of tables
    ("failure[0].at_s=-2", lambda d: d["failure"][0], "at_s", -2, "failure[0].at_s"),    # [[failure]]
]


@pytest.fixture
def base(tmp_path):
    p = tmp_path / "base.toml"
    p.write_text(BASE)
    return p


def test_base_loads(base):
    assert load_experiment(base).name == "ovr"


@pytest.mark.parametrize("override, table, key, value, error_key", CASES, ids=[c[0] for c in CASES])
def test_override_errors_are_the_files_errors(base, tmp_path, override, table, key, value, error_key):
    doc = tomllib.loads(BASE)
    edited = copy.deepcopy(doc)
    target = table(edited)
    if isinstance(target, dict) and isinstance(value, dict):
        target.setdefault(key, {}).update(value)
    else:
        target[key] = value
    file = tmp_path / "edited.toml"
    file.write_text(tomlwrite.dumps(edited))
    with pytest.raises(SpecError) as from_file:
        load_experiment(file)
    with pytest.raises(SpecError) as from_set:
        load_experiment(base, [override])
    assert from_file.value.key == error_key
    assert str(from_set.value) == str(from_file.value)


def test_single_fabric_table_bare_key(tmp_path):
    p = tmp_path / "one.toml"
    p.write_text(ONE_FABRIC)
    with pytest.raises(SpecError) as info:
        load_experiment(p, ["fabric.spines=0"])
    assert str(info.value) == "fabric[0].spines: must be >= 1, got 0"
    spec = load_experiment(p, ["fabric.spines=4", "workload.stride.size_bytes=8MB"])
    assert spec.fabrics[0].spines == 4 and spec.workloads[0].size_bytes == 8_000_000
    assert tomllib.loads(spec.source_toml)["fabric"]["spines"] == 4  # still one [fabric] table


@pytest.mark.parametrize("override, key", [
    ("fabric[nope].ncfs=8", "fabric[nope]"),
    ("fabric[7].ncfs=8", "fabric[7]"),
    ("workload[ar].hosts[9]=h1", "workload[1].hosts[9]"),
    ("workload[perm].hosts[0]=h1", "workload[0].hosts"),
    ("seed.x=1", "seed"),
    ("workload[0].size_bytes[x]=1", "workload[0].size_bytes[x]"),
    ("no-equals-sign", "--set"),
    ("a..b=1", "--set"),
    ("[0].x=1", "--set"),
])
def test_paths_that_reach_nothing_name_the_path(base, override, key):
    with pytest.raises(SpecError) as info:
        load_experiment(base, [override])
    assert info.value.key == key


def test_overrides_land_where_the_issue_says(base):
    spec = load_experiment(base, ["fabric.speedup=1.0", "workload.perm.size_bytes=8MB",
                                  "fabric[ddc].ncfs=4", "seed=3", "fabric.host_rate_mbps=40"])
    ls, ddc, big = spec.fabrics
    assert ddc.speedup == 1.0 and ddc.ncfs == 4 and ls.spines == 2
    assert spec.workloads[0].size_bytes == 8_000_000 and spec.seed == 3
    assert ls.host_rate_mbps == ddc.host_rate_mbps == big.host_rate_mbps == 40.0  # every fabric has it


def test_the_spec_copy_records_the_overrides(base):
    spec = load_experiment(base, ["fabric[ddc].ncfs=4", "seed=3"])
    assert "#   fabric[ddc].ncfs=4" in spec.source_toml and "#   seed=3" in spec.source_toml
    again = tomllib.loads(spec.source_toml)
    assert again["seed"] == 3 and again["fabric"][1]["ncfs"] == 4
    assert load_experiment(base).source_toml == BASE  # nothing overridden: the file as written


def test_later_overrides_win_and_the_document_is_not_changed():
    doc = tomllib.loads(BASE)
    before = copy.deepcopy(doc)
    out = apply_overrides(doc, [parse_override("seed=2"), parse_override("seed=4")])
    assert out["seed"] == 4 and doc == before


@pytest.mark.parametrize("text, value", [
    ("1.0", 1.0), ("8", 8), ("true", True), ('"x y"', "x y"), ("8MB", "8MB"), ("ecmp", "ecmp"),
    ('["h1", "h2"]', ["h1", "h2"]), ("{a = 1}", {"a": 1}), ("", ""), ("h1,h2", "h1,h2")])
def test_values_are_toml_else_text(text, value):
    assert parse_value(text) == value


def test_cli_check_takes_set(base, capsys):
    assert cli.main(["check", str(base), "--set", "fabric[ddc].ncfs=4"]) == 0
    assert cli.main(["check", str(base), "--set", "fabric[ddc].ncfs=x"]) == 2
    assert "fabric[1].ncfs: expected a whole number, got 'x'" in capsys.readouterr().err


def test_toml_writer_round_trips_every_example():
    from pathlib import Path
    for path in sorted(Path(__file__).resolve().parent.parent.joinpath("examples").glob("*.toml")):
        doc = tomllib.loads(path.read_text())
        assert tomllib.loads(tomlwrite.dumps(doc)) == doc, path.name
    odd = {"s": 'q"\\\n\x01é', "f": float("inf"), "nested": {"t": {"u": [{"v": 1}]}, "e": []},
           "k y": 2.5, "arr": [{"p": {"q": 1}}, {}]}
    assert tomllib.loads(tomlwrite.dumps(odd)) == odd
