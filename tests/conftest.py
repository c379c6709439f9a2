"""Shared test fixtures and the gate for tests marked `emulation` (the marker is registered in setup.cfg).

Unit tests need no root. Tests marked `emulation` build real namespaces/OVS bridges: they are skipped
(with the reason) when not root or when Open vSwitch does not answer. In CI, .ci/run sets
FABRIC_REQUIRE_EMULATION=1: then the same condition stops the session with an error instead, so a broken
setup cannot pass as "all skipped".
"""

from __future__ import annotations

import os

import pytest

from fabric.run import datapath

REQUIRE_ENV = "FABRIC_REQUIRE_EMULATION"


def is_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture
def requires_root() -> None:
    """Use in a test (or `@pytest.mark.usefixtures('requires_root')`) that needs root but not OVS."""
    if not is_root():
        pytest.skip("needs root")


def emulation_blocker() -> str | None:
    """Why emulation tests cannot run here, or None when they can."""
    if not is_root():
        return "emulation tests need root (sudo .venv/bin/python -m pytest -q)"
    ovs = datapath.ovs_running()
    if not ovs:
        return f"Open vSwitch does not answer ({ovs.reason}): run sudo bash scripts/setup.sh"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    emulation = [item for item in items if item.get_closest_marker("emulation")]
    if not emulation:
        return
    reason = emulation_blocker()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        raise pytest.UsageError(f"{len(emulation)} emulation test(s) cannot run and {REQUIRE_ENV}=1: {reason}")
    skip = pytest.mark.skip(reason=reason)
    for item in emulation:
        item.add_marker(skip)
