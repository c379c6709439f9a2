"""`fabric up` driven through its CLI in a real terminal (tmux): ping across the spines, run a
workload, fail and restore a spine, look at the controller, leave by `exit`, by Ctrl-C at the
prompt, or by closing the terminal; nothing of the fabric may be left behind."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_engine_emulation import assert_clean

pytestmark = [pytest.mark.emulation,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")]
ROOT = Path(__file__).resolve().parent.parent
# the 2x2 leaf/spine at 20 Mbit/s of the examples, as a TOML [fabric] table
FABRIC_2X2 = """
[fabric]
kind = "leafspine"
spines = 2
leaves = 2
hosts_per_leaf = 2
host_rate_mbps = 20
fabric_rate_mbps = 20
"""
SPEC = """
name = "up"
seed = 1
""" + FABRIC_2X2 + """
[[workload]]
kind = "flows"
name = "pair"
flows = [{ src = "h1", dst = "h3", size_bytes = "1MB" }, { src = "h2", dst = "h4", size_bytes = "1MB" }]
"""
LOCK_WAIT_S = 1200   # another engineer's emulation may hold the run lock


class Terminal:
    """A tmux server of our own (its own socket) running one command in a 200x60 pane."""

    def __init__(self, command: str):
        self.sock = f"fabric-test-{os.getpid()}-{time.monotonic_ns()}"
        self._tmux("new-session", "-d", "-s", "t", "-x", "200", "-y", "60", command)
        self._tmux("set-option", "-t", "t", "remain-on-exit", "on")  # keep what a crash printed
        self.pid = int(self._tmux("display-message", "-p", "-t", "t", "#{pane_pid}").strip())

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True,
                              check=True).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-t", "t", "-S", "-3000")

    def send(self, keys: str, enter: bool = True) -> None:
        self._tmux("send-keys", "-t", "t", keys, *(["Enter"] if enter else []))

    def wait_for(self, text: str, timeout_s: float = 60, count: int = 1) -> str:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            screen = self.screen()
            if screen.count(text) >= count:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} (x{count}) never appeared; screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


def _running(pid: int) -> bool:
    """True while `pid` has not exited. A zombie has exited: tmux (its parent, with
    remain-on-exit) sometimes reaps it only at its next event, seen >60 s later on a busy machine."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while _running(pid) and time.monotonic() < end:
        time.sleep(0.2)
    assert not _running(pid), f"fabric up (pid {pid}) is still running"


def _start(tmp_path: Path) -> Terminal:
    spec = tmp_path / "up.toml"
    spec.write_text(SPEC)
    env = f"PYTHONPATH={ROOT}"
    term = Terminal(f"cd {ROOT} && {env} exec {sys.executable} -m fabric up {spec} "
                    f"--out {tmp_path / 'runs'}")
    term.wait_for("fabric> ", LOCK_WAIT_S)
    return term


def test_up_ping_workload_fail_restore_exit(tmp_path):
    term = _start(tmp_path)
    try:
        screen = term.screen()
        assert "live view: http://127.0.0.1:" in screen
        term.send("h1 ping -c 2 h3")                     # h1 on l1, h3 on l2: via a spine
        term.wait_for("2 received")
        term.send("controller")
        screen = term.wait_for("to h3: ECMP group")
        assert "READY (4/4 switches installed)" in screen
        term.send("workload pair")
        screen = term.wait_for("workload pair finished: 2/2 flows complete")
        # the live view follows the session: its state names the workload and its start
        url = re.search(r"live view: (http://127\.0\.0\.1:\d+/)", screen).group(1)
        state = json.loads(urllib.request.urlopen(url + "state.json", timeout=10).read())
        assert state["status"] == "workload pair finished"
        assert any(e["what"] == "workload pair started (2 flows)" for e in state["events"])
        assert {l["link"] for l in state["links"]} >= {"l1-s1", "l2-s2"}
        term.send("paths")
        screen = term.wait_for("flow    1 h2->h4")
        assert "h1->l1->s" in screen
        term.send("fail s1")                             # every link of spine s1 down
        screen = term.wait_for("s1: down (4 interfaces)")
        assert "partitioned" not in screen
        time.sleep(0.5)                                  # the port-status reaches the controller
        term.send("h1 ping -c 2 h3")
        term.wait_for("2 received", count=2)             # re-routed through s2
        term.send("controller")
        screen = term.wait_for("to h3: -> s2")
        term.send("fail l1 h1")                         # host links cannot fail
        term.wait_for("l1-h1 is a host link")
        term.send("restore s1")
        term.wait_for("s1: up (4 interfaces)")
        term.send("util")
        term.wait_for("l1->s1")
        term.send("exit")
        term.wait_for("everything removed", 60)
        _wait_gone(term.pid)
    finally:
        term.close()
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "links.csv").exists() and (run / "workloads" / "1-pair" / "flows.csv").exists()
    assert_clean()


@pytest.mark.parametrize("how", ["ctrl-c", "hangup"])
def test_up_leaves_nothing_on_ctrl_c_or_a_closed_terminal(tmp_path, how):
    term = _start(tmp_path)
    try:
        if how == "ctrl-c":
            term.send("C-c", enter=False)
            term.wait_for("Ctrl-C: leaving")
        else:
            subprocess.run(["tmux", "-L", term.sock, "kill-session", "-t", "t"], check=True)
        _wait_gone(term.pid)
    finally:
        term.close()
    (run,) = (tmp_path / "runs").iterdir()
    log = (run / "engine.log").read_text()
    assert "tearing the fabric down" in log
    assert ("leaving on signal 1" in log) == (how == "hangup")
    assert_clean()
