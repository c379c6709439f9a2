"""The distutils stand-in Mininet needs on Python >= 3.12 (fabric.run.pycompat)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fabric.run.pycompat import StrictVersion

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("a, b", [("2.9.2", "2.17.9"), ("1.10", "3.1.0"), ("3.1", "3.1.1"),
                                  ("2.0.0-rc1", "2.1")])
def test_versions_compare_numerically(a, b):
    assert StrictVersion(a) < StrictVersion(b) and StrictVersion(b) > a
    assert StrictVersion("3.1") == StrictVersion("3.1.0")


def test_rejects_what_is_not_a_version():
    with pytest.raises(ValueError, match="invalid version"):
        StrictVersion("ovs")


def test_mininet_imports_when_distutils_is_gone():
    """As on Python 3.12: `import distutils` fails; the shim lets mininet.node and Cluster
    Edition import, and only then is it installed."""
    code = ("import sys; sys.modules['distutils'] = None\n"
            "from fabric.run.pycompat import ensure_strict_version\n"
            "assert ensure_strict_version() is True\n"
            "from distutils.version import StrictVersion\n"
            "assert StrictVersion('2.17') > StrictVersion('2.9')\n"
            "import mininet.node, mininet.examples.cluster\n"
            "print('imported')\n")
    pytest.importorskip("mininet.node")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and "imported" in res.stdout, res.stderr
