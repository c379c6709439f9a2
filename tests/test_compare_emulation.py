"""`fabric compare` end to end on real Mininet + OVS: two tiny fabrics, two seeds, one report."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fabric.run.cleanup import leftovers
from fabric.analysis.links import read_links_csv
from fabric.run.runlock import exclusive_run

pytestmark = pytest.mark.emulation
ROOT = Path(__file__).resolve().parent.parent

SPEC = """
name = "tiny-compare"
seed = 7
reference = "one"

[[fabric]]
kind = "leafspine"
name = "ls"
spines = 2
leaves = 2
hosts_per_leaf = 2
host_rate_mbps = 20
fabric_rate_mbps = 20

[[fabric]]
kind = "single"
name = "one"
hosts = 4
host_rate_mbps = 20

[[workload]]
kind = "allreduce"
name = "ar"
hosts = ["h1", "h3", "h2", "h4"]
size_bytes = "1MB"
"""


def test_compare_two_fabrics_two_seeds(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    out = tmp_path / "reports"
    res = subprocess.run([sys.executable, "-m", "fabric", "compare", str(spec), "--seeds", "2",
                          "--out", str(out), "--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=900)  # waits for the machine-wide run lock
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    (report,) = out.iterdir()
    assert data["report_dir"] == str(report) and data["seeds"] == [7, 8] and data["all_complete"]
    for name in ("compare.json", "compare.csv", "compare.txt", "index.html", "spec.toml",
                 "fct_cdf.png", "jct_per_seed.png", "link_util.png", "link_heatmap.png"):
        assert (report / name).exists(), name
    assert json.loads((report / "compare.json").read_text()) == data
    ls, one = data["fabrics"]
    assert (ls["name"], one["name"], one["reference"]) == ("ls", "one", True)
    assert ls["runs_complete"] == one["runs_complete"] == 2
    ar = ls["workloads"]["ar"]
    # the ring cannot beat the all-reduce bound on either fabric; ECMP can only add to it
    # means count the complete runs the fidelity monitor judged faithful (a shared machine may
    # spoil one); every run says which it was
    assert ar["jct_s"]["n"] == ls["runs_counted"] == ls["runs_faithful"]
    assert all(r["faithful"] in (True, False) and r["counted"] == r["faithful"]
               for r in data["runs"])
    assert ar["jct_s"]["n"] == 0 or ar["jct_ratio"] is None or ar["jct_ratio"] >= 0.95
    assert one["workloads"]["ar"]["jct_ratio"] == 1.0 and one["links"] is None
    # every ring hop crosses the spines: the fabric tier carried the collective's bytes
    assert ls["links"]["links"] == 8 and ls["links"]["util_mean"]["mean"] > 0.05
    assert len(data["runs"]) == 4 and [r["seed"] for r in data["runs"]] == [7, 7, 8, 8]
    for r in data["runs"]:
        assert not Path(r["run_dir"]).is_absolute()  # relative to the report directory
        samples = read_links_csv(report / r["run_dir"] / "links.csv")
        assert samples and {s.tier for s in samples} == ({"host", "fabric"} if r["fabric"] == "ls"
                                                        else {"host"})
    page = (report / "index.html").read_text()
    assert "src='link_heatmap.png'" in page and "tiny-compare" in page
    with exclusive_run():  # another run (holding the lock) may legitimately have a network up
        deadline = time.monotonic() + 5
        while leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert leftovers() == []
