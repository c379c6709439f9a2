"""Every case of the malformed-input corpus (tests/malformed_corpus.py) is rejected cleanly by the
`fabric` command: exit 2, one printable line per error naming the exact key path, nothing built.

Runs in-process and without root: `fabric run` / `fabric compare` are stubbed so that a case
which slipped through validation fails the test instead of building a network.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from fabric import cli
from tests.malformed_corpus import CASES, Case, spec_text

LINE = re.compile(r"^fabric: error in (.*?): ")


def _prepare(case: Case, scratch: Path) -> list[str]:
    for name, content in case.files.items():
        p = scratch / name
        if content == "@dir":
            p.mkdir()
        elif isinstance(content, str) and content.startswith("@/"):
            p.symlink_to(content[1:])
        else:
            p.write_bytes(content.encode() if isinstance(content, str) else content)
    text = spec_text(case, str(scratch))
    if text is not None:
        (scratch / "exp.toml").write_bytes(text)
    return [a.replace("{spec}", str(scratch / "exp.toml")).replace("{dir}", str(scratch))
            for a in case.argv]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        rc = cli.main(argv)
    except SystemExit as exc:  # argparse errors
        rc = exc.code if isinstance(exc.code, int) else 1
    return rc, capsys.readouterr().err


@pytest.fixture
def no_emulation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("bad input reached the emulation")
    import fabric.run.compare
    import fabric.run.engine
    monkeypatch.setattr(fabric.run.engine, "run_experiment", refuse)
    monkeypatch.setattr(fabric.run.compare, "run_comparison", refuse)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input_is_rejected_cleanly(case: Case, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str],
                                             no_emulation: None) -> None:
    monkeypatch.chdir(tmp_path)
    argv = _prepare(case, tmp_path)
    rc, err = _run(argv, capsys)
    assert rc == 2, err
    assert "Traceback" not in err
    assert all(c.isprintable() for c in err.replace("\n", "")), repr(err)
    for bad in case.forbid:
        assert bad not in err
    lines = err.rstrip("\n").split("\n")
    expected = [k.replace("{spec}", str(tmp_path / "exp.toml")).replace("{dir}", str(tmp_path))
                for k in (case.keys or (case.key,))]
    expected = [k if k.isprintable() else repr(k) for k in expected]
    named = [m.group(1) if (m := LINE.match(line)) else None for line in lines]
    assert named[:len(expected)] == expected, err
    rest = lines[len(expected):]
    assert rest == [] or (len(rest) == 1 and "more error" in rest[0]), err


def test_interrupted_check_claims_no_cleanup(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import fabric.plan.experiment

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(fabric.plan.experiment, "load_checked", interrupted)
    rc, err = _run(["check", "examples/default.toml"], capsys)
    assert rc == 130
    assert err.strip() == "fabric: interrupted"


def test_valid_examples_still_pass(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parent.parent
    for path in sorted((root / "examples").glob("*.toml")):
        rc, err = _run(["check", str(path)], capsys)
        assert rc == 0, f"{path.name}: {err}"
