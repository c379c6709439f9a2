"""DDC and failure injection on real Mininet + OVS: spraying really uses every NCF link (and
sends nothing twice), a fabric switch failing mid-run loses no flow, nothing is left behind."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from fabric.run.cleanup import leftovers, stray_nft_tables
from fabric.run.engine import run_experiment
from fabric.run.runlock import exclusive_run
from fabric.plan.experiment import parse_experiment

pytestmark = pytest.mark.emulation
DDC = {"kind": "ddc", "ncps": 2, "ncfs": 2, "hosts_per_ncp": 1, "host_rate_mbps": 20}


class SysfsSampler:
    """Last values of interface byte counters, read every 50 ms while a run is going on (the
    interfaces vanish at teardown, so the last read is what the run did)."""

    def __init__(self, counters: list[tuple[str, str]]):
        self.counters = counters
        self.last: dict[tuple[str, str], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for intf, name in self.counters:
                try:
                    self.last[intf, name] = int(
                        Path(f"/sys/class/net/{intf}/statistics/{name}").read_text())
                except (OSError, ValueError):
                    pass

    def __enter__(self) -> SysfsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def assert_clean() -> None:
    """Nothing of the run is left (checked under the run lock: other runs may be waiting)."""
    with exclusive_run():
        deadline = time.monotonic() + 5
        while leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stray_nft_tables() == []
        assert leftovers() == []


def test_ddc_sprays_over_every_ncf_link_without_duplicates(tmp_path):
    spec = parse_experiment({
        "name": "ddc-spray", "seed": 1, "run": {"deadline_s": 60},
        "fabric": DDC,
        "workload": {"kind": "flows", "flows": [{"src": "h1", "dst": "h2", "size_bytes": "2MB"}]},
    })
    # ncp1: h1 on port 1, uplinks to ncf1 / ncf2 on ports 2 / 3
    with SysfsSampler([("ncp1-eth1", "rx_bytes"), ("ncp1-eth2", "tx_bytes"),
                       ("ncp1-eth3", "tx_bytes")]) as s:
        summary = run_experiment(spec, None, tmp_path)
    assert summary.status == "complete", summary.error
    assert summary.flows_complete == summary.flows_planned == 1
    from_host = s.last["ncp1-eth1", "rx_bytes"]           # everything h1 sent (all remote)
    up1, up2 = s.last["ncp1-eth2", "tx_bytes"], s.last["ncp1-eth3", "tx_bytes"]
    assert from_host > 2_000_000
    # both NCF links carry the flow (round-robin: about half each) ...
    assert min(up1, up2) > 0.4 * (up1 + up2), (up1, up2)
    # ... and every packet crosses the fabric once: OVS's copy is dropped, not forwarded too
    assert 0.95 * from_host <= up1 + up2 <= 1.05 * from_host, (from_host, up1, up2)
    print(f"\nspraying: uplinks {up1} / {up2} bytes for {from_host} from h1; tcp {summary.tcp}")
    assert_clean()


@pytest.mark.parametrize("fabric, failure", [
    (DDC, {"switch": "ncf1"}),
    ({"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 1, "host_rate_mbps": 20,
      "fabric_rate_mbps": 20, "policy": "ecmp"}, {"link": ["l1", "s1"]}),
])
def test_fabric_failure_mid_run_delivers_every_flow(tmp_path, fabric, failure):
    spec = parse_experiment({
        "name": "fail", "seed": 1, "run": {"deadline_s": 60},
        "fabric": fabric,
        "workload": {"kind": "flows", "flows": [
            {"src": "h1", "dst": "h2", "size_bytes": "3MB"},
            {"src": "h2", "dst": "h1", "size_bytes": "3MB"}]},
        "failure": [{"at_s": 0.5, **failure}],
    })
    summary = run_experiment(spec, None, tmp_path)
    assert summary.status == "complete", summary.error
    assert summary.flows_complete == summary.flows_planned == 2
    (event,) = summary.failures
    assert event["error"] == "" and 0.5 <= event["applied_s"] < 1.5, event
    records_end = max(r["end"] for r in _flows(summary))
    assert event["time"] < records_end  # the failure hit flows in flight
    log = (Path(summary.run_dir) / "controller.log").read_text()
    assert "re-routed" in log
    assert_clean()


def _flows(summary):
    import csv
    with open(Path(summary.run_dir) / "flows.csv", newline="") as f:
        return [{"end": float(r["end"])} for r in csv.DictReader(f)]


def test_scheduled_ddc_incast_shares_the_port_by_credits_without_loss(tmp_path):
    """3 -> 1 incast across NCPs: the credit allocator gives each sender's VOQ a third of the
    receiver's port, the senders' TCP is held back by its VOQ instead of losing packets, and
    the VOQ devices are gone afterwards."""
    spec = parse_experiment({
        "name": "ddc-incast", "seed": 1, "run": {"deadline_s": 60},
        "fabric": {**DDC, "ncps": 4},
        "workload": {"kind": "incast", "receiver": "h4", "senders": ["h1", "h2", "h3"],
                     "size_bytes": "1MB"},
    })
    summary = run_experiment(spec, None, tmp_path)
    assert summary.status == "complete", summary.error
    credits = summary.ddc["credits"]
    assert credits["decisions"] > 10 and credits["voq_drops"] == 0, credits
    assert credits["voq_sent_bytes"] > 3_000_000
    assert all(tier["total"] == 0 for tier in summary.loss.values()), summary.loss
    assert summary.sections["incast"]["incast"].jain_mean >= 0.95
    import csv
    with open(Path(summary.run_dir) / "credits.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["dst"] == "h4"]
    by_time: dict[str, list[float]] = {}
    for r in rows:   # the VOQs with a backlog: sending at the decision (an idle VOQ is offered
        if int(r["backlog_bytes"]) > 0:   # the port's unallocated rate, each of them)
            by_time.setdefault(r["time_s"], []).append(float(r["rate_mbps"]))
    shared = [rates for rates in by_time.values() if len(rates) == 3]
    assert shared, rows                              # all three sending at once ...
    for rates in shared:                             # ... never granted more than the port
        assert sum(rates) <= 20 * 1.02, rates
    assert any(max(r) < 0.4 * 20 for r in shared)    # ... and each about a third of it
    assert_clean()
