"""docs/notebook.ipynb runs: its code cells, in order, in one namespace, on the recorded run.

No Jupyter kernel is needed for that: the cells are plain Python (matplotlib on Agg), so the test
executes them as the notebook would and checks what they produced.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_notebook_code_cells_run_on_a_recorded_run(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    nb = json.loads((ROOT / "docs" / "notebook.ipynb").read_text())
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("FABRIC_RUN_DIR", str(ROOT / "tests" / "data" / "recorded-run"))
    monkeypatch.setenv("FABRIC_NOTEBOOK_OUT", str(tmp_path))
    ns: dict[str, object] = {"__name__": "__notebook__"}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "the notebook has no code cells"
    for i, cell in enumerate(code):
        exec(compile("".join(cell["source"]), f"notebook cell {i}", "exec"), ns)
    run = ns["run"]
    assert run.status == "complete" and run.flows  # type: ignore[attr-defined]
    assert ns["fct_workloads"]
    for png in ("fct_cdf.png", "link_util.png"):
        assert (tmp_path / png).stat().st_size > 5000
