"""fabric.doctor (report, exit code, JSON) and fabric.run.datapath (probes, datapath choice).

The unit tests replace the checks/probes and need no root; the emulation-marked test runs the real probes.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from fabric.run import datapath
from fabric import doctor
from fabric.run.datapath import Probe
from fabric.doctor import Check
from topologies.errors import SpecError

ALL_OK = [
    Check("root", True, "uid 0", "run as root"),
    Check("ovs running", True, "ovsdb-server and ovs-vswitchd answer", "bash scripts/setup.sh"),
    Check("netem", True, "tc netem accepted", "a kernel with sch_netem", required=False),
]


def use_checks(monkeypatch, results: list[Check]) -> None:
    monkeypatch.setattr(doctor, "checks", lambda: list(results))


def run_main(capsys, argv: list[str]) -> tuple[int, str]:
    rc = doctor.main(argv)
    return rc, capsys.readouterr().out


# ---- doctor report ---------------------------------------------------------------------------

def test_all_required_ok_exits_0(monkeypatch, capsys):
    use_checks(monkeypatch, ALL_OK)
    rc, out = run_main(capsys, [])
    assert rc == 0
    assert "MISSING" not in out
    assert out.splitlines()[-1] == "doctor: all required checks passed"


def test_missing_optional_is_reported_but_not_failing(monkeypatch, capsys):
    netem = Check("netem", False, "this kernel lacks netem: no per-link delay", "use the Vagrant VM", required=False)
    use_checks(monkeypatch, [*ALL_OK[:2], netem])
    rc, out = run_main(capsys, [])
    assert rc == 0
    row = next(line for line in out.splitlines() if "netem" in line and "lacks" in line)
    assert row.startswith("MISSING") and "(optional)" in row and row.endswith("use the Vagrant VM")
    assert "optional missing (reported, not failing): netem" in out.splitlines()[-1]


def test_missing_required_exits_1_and_names_it_with_its_fix(monkeypatch, capsys):
    broken = Check("ovs running", False, "ovsdb-server does not answer", "bash scripts/setup.sh")
    use_checks(monkeypatch, [ALL_OK[0], broken, ALL_OK[2]])
    rc, out = run_main(capsys, [])
    assert rc == 1
    row = next(line for line in out.splitlines() if line.startswith("MISSING"))
    assert "ovs running" in row and row.endswith("bash scripts/setup.sh")
    assert out.splitlines()[-1] == "doctor: 1 required check(s) missing: ovs running"


def test_table_is_aligned_and_fix_only_shown_when_missing(monkeypatch, capsys):
    results = [Check("root", True, "uid 0", "FIX-ROOT"),
               Check("a much longer name", False, "short", "FIX-LONG"),
               Check("x", True, "a rather longer detail text", "FIX-X")]
    use_checks(monkeypatch, results)
    _, out = run_main(capsys, [])
    header, *rows = out.splitlines()[:4]
    assert header.split() == ["STATUS", "CHECK", "DETAIL", "FIX"]
    for col in ("CHECK", "DETAIL"):
        start = header.index(col)
        # every row has a column boundary (two spaces before a non-space) at the header's offset
        assert all(row[start - 2:start] == "  " and row[start] != " " for row in rows), (col, rows)
    fix_col = header.index("FIX")
    assert rows[1][fix_col:] == "FIX-LONG"
    assert "FIX-ROOT" not in out and "FIX-X" not in out


def test_json_lists_every_check_and_the_verdict(monkeypatch, capsys):
    broken = dataclasses.replace(ALL_OK[1], ok=False)
    use_checks(monkeypatch, [ALL_OK[0], broken, ALL_OK[2]])
    rc, out = run_main(capsys, ["--json"])
    data = json.loads(out)
    assert rc == 1 and data["ok"] is False
    assert [c["name"] for c in data["checks"]] == ["root", "ovs running", "netem"]
    assert data["checks"][1] == {"name": "ovs running", "ok": False, "detail": broken.detail,
                                 "fix": broken.fix, "required": True}


def test_check_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ALL_OK[0].ok = False  # type: ignore[misc]


def test_a_crashing_check_is_reported_not_raised(monkeypatch):
    def _check_boom() -> Check:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(doctor, "CHECKS", (lambda: ALL_OK[0], _check_boom))
    results = doctor.checks()
    assert results[0] == ALL_OK[0]
    assert results[1].name == "boom" and not results[1].ok and "kaboom" in results[1].detail
    assert not doctor.passed(results)


def test_probes_needing_root_say_so_and_doctor_says_run_as_root(monkeypatch):
    monkeypatch.setattr(datapath, "_is_root", lambda: False)
    for probe in (datapath.ovs_running, datapath.netem_available, datapath.htb_available,
                  datapath.nft_spray_available):
        assert probe() == Probe(False, "needs root"), probe.__name__
    monkeypatch.setattr(doctor.os, "geteuid", lambda: 1000)
    by_name = {c.name: c for c in doctor.checks()}
    assert not by_name["root"].ok
    for name in ("ovs running", "htb shaping", "nft spraying", "netem"):
        assert by_name[name] == Check(name, False, "not probed: needs root", "run as root",
                                      required=name != "netem")


def test_missing_netem_says_what_it_means(monkeypatch):
    monkeypatch.setattr(datapath, "_probe_in_netns",
                        lambda body, what: Probe(False, f"{what} refused (Specified qdisc kind is unknown)"))
    p = datapath.netem_available()
    assert not p and "this kernel lacks netem: no per-link delay" in p.reason
    check = doctor._check_netem()
    assert not check.ok and not check.required and "lacks netem" in check.detail


# ---- datapath --------------------------------------------------------------------------------

def test_probe_truthiness():
    assert Probe(True, "yes") and not Probe(False, "no")


@pytest.mark.parametrize("kernel, preference, expected", [
    (True, "auto", "kernel"), (False, "auto", "user"),
    (True, "user", "user"), (False, "user", "user"),
    (True, "kernel", "kernel"),
])
def test_choose_datapath(monkeypatch, kernel, preference, expected):
    monkeypatch.setattr(datapath, "kernel_ovs_available", lambda: Probe(kernel, "probe says so"))
    assert datapath.choose_datapath(preference) == expected


def test_demanding_an_absent_kernel_datapath_is_a_spec_error(monkeypatch):
    monkeypatch.setattr(datapath, "kernel_ovs_available",
                        lambda: Probe(False, "kernel lacks openvswitch (CONFIG_OPENVSWITCH is not set)"))
    with pytest.raises(SpecError) as err:
        datapath.choose_datapath("kernel")
    assert err.value.key == "run.datapath" and "CONFIG_OPENVSWITCH is not set" in str(err.value)


def test_unknown_datapath_preference_is_a_spec_error():
    with pytest.raises(SpecError) as err:
        datapath.choose_datapath("netdevx")
    assert err.value.key == "run.datapath"


def test_missing_tools_never_raise():
    rc, out = datapath._run(["fabric-no-such-tool-xyz", "--version"])
    assert rc == 127 and "not found" in out


def test_missing_unshare_is_a_false_probe_with_a_reason(monkeypatch):
    monkeypatch.setattr(datapath, "_is_root", lambda: True)
    monkeypatch.setattr(datapath, "_run", lambda argv, **kw: (127, f"{argv[0]} not found"))
    p = datapath.htb_available()
    assert not p and "unshare not found" in p.reason


def test_kernel_probe_never_raises():
    p = datapath.kernel_ovs_available()
    assert isinstance(p, Probe) and p.reason


# ---- the real probes -------------------------------------------------------------------------

def _root_ns_state() -> tuple[str, str]:
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return links, tables


@pytest.mark.emulation
def test_real_probes_leave_nothing_behind_and_do_not_collide():
    results = doctor.checks()
    by_name = {c.name: c for c in results}
    assert by_name["root"].ok and by_name["ovs running"].ok, results
    # Required on every supported machine (this CI kind and the Vagrant VM alike).
    assert by_name["htb shaping"].ok, by_name["htb shaping"]
    assert by_name["nft spraying"].ok, by_name["nft spraying"]
    assert by_name["ovs datapath"].ok, by_name["ovs datapath"]
    # The same probe names run at once: each probe has its own namespace, so none collides.
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda f: f(), [datapath.nft_spray_available, datapath.htb_available] * 3))
    assert all(outcomes), outcomes
    links, tables = _root_ns_state()
    for name in datapath.PROBE_LINKS:
        assert f" {name}:" not in links and f" {name}@" not in links
    assert f"netdev {datapath.PROBE_NFT_TABLE}\n" not in tables + "\n"
