"""docs/api.md's examples run: the plain ```python blocks without root, every block (```python
root too), in order, as an emulation test on its tiny fabrics."""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest

from fabric.run.cleanup import leftovers
from fabric.run.runlock import exclusive_run

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
BLOCK = re.compile(r"^```python( root)?\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(with_root: bool) -> list[str]:
    return [code for root, code in BLOCK.findall(DOC.read_text()) if with_root or not root]


@contextlib.contextmanager
def inside(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_blocks(codes: list[str], where: Path) -> dict:
    namespace: dict = {"__name__": "api_doc"}
    with inside(where):
        for i, code in enumerate(codes):
            exec(compile(code, f"{DOC.name} block {i + 1}", "exec"), namespace)
    return namespace


def test_root_free_examples_run(tmp_path, capsys):
    assert len(blocks(False)) >= 2 and len(blocks(True)) > len(blocks(False))
    ns = run_blocks(blocks(False), tmp_path)
    out = capsys.readouterr().out
    assert "['ecmp', 'ddc'] 500000" in out
    assert "fabric[1].speedup: must be <= 16, got 99.0" in out
    assert ns["slow"].fabric("ddc").speedup == 0.5


@pytest.mark.emulation
def test_every_example_runs(tmp_path, capsys):
    run_blocks(blocks(True), tmp_path)
    out = capsys.readouterr().out
    assert "complete" in out
    reports = list((tmp_path / "api-runs").glob("*-sweep"))
    assert len(reports) == 1 and (reports[0] / "sweep.csv").exists()
    with exclusive_run():  # another run (holding the lock) may legitimately have a network up
        assert not [x for x in leftovers() if not x.startswith("process ")]
