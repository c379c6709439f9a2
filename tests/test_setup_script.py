"""scripts/setup.sh and .ci/run: shell syntax, refusal without root, and that a repeated setup is a no-op."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SETUP = REPO / "scripts" / "setup.sh"


@pytest.mark.parametrize("script", ["scripts/setup.sh", ".ci/run"])
def test_shell_syntax(script):
    subprocess.run(["bash", "-n", str(REPO / script)], check=True)


def test_setup_refuses_to_run_without_root():
    argv = ["bash", str(SETUP)]
    if os.geteuid() == 0:  # drop to nobody for this one run
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode != 0
    assert "must run as root" in p.stderr


@pytest.mark.emulation
def test_second_setup_run_is_a_fast_no_op():
    def run() -> tuple[str, float]:
        t0 = time.monotonic()
        p = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=1800, cwd="/")
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout, time.monotonic() - t0

    run()  # brings the machine up to date if it was not (CI has just run it: then a no-op too)
    out, seconds = run()
    steps = {line.split(":")[1].strip(): line for line in out.splitlines() if line.startswith("setup: ")}
    for step in ("packages", "venv", "python", "openvswitch"):
        assert "already" in steps[step], out
    assert steps["datapath"].split(":", 2)[2].strip().startswith(("kernel", "userspace")), out
    assert seconds < 30, f"second run took {seconds:.1f} s"
