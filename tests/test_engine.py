"""Engine pieces that need no root: the teardown runs every step whatever happens."""
import pytest

from fabric.run.engine import _teardown


def test_teardown_runs_every_step_and_reraises_the_first_interrupt():
    done = []

    def interrupted():
        done.append("agents")
        raise KeyboardInterrupt("second Ctrl-C")

    def broken():
        done.append("net")
        raise RuntimeError("mininet")

    with pytest.raises(KeyboardInterrupt, match="second Ctrl-C"):
        _teardown(None, interrupted, broken, lambda: done.append("controller"))
    assert done == ["agents", "net", "controller"]


def test_teardown_without_errors_returns():
    done = []
    _teardown(lambda: done.append(1), None, lambda: done.append(2))
    assert done == [1, 2]
