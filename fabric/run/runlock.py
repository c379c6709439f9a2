"""One emulation at a time per machine: runs share switch and interface names (l1, h1-eth0...).

`fabric run`, `fabric compare` and the emulation tests take an exclusive flock on LOCK_PATH for
the whole life of an emulated network; a second run waits for the first, saying so. The holder
records what it creates in its registry file (fabric.run.registry), which `fabric clean` reads.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from topologies.errors import RunError

from fabric.run import registry
from fabric.run.registry import LOCK_PATH


_depth = 0  # exclusive_run() nesting in this process (the inner ones hold the outer's lock)


@contextmanager
def exclusive_run(timeout_s: float = 1800.0) -> Iterator[None]:
    """Hold the machine-wide emulation lock; wait up to timeout_s for another run to finish.
    Re-entrant within a process: a test may set things up and run the engine in one hold."""
    global _depth
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    _depth = 1
    try:
        with _lock(timeout_s):
            yield
    finally:
        _depth = 0


@contextmanager
def _lock(timeout_s: float) -> Iterator[None]:
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_PATH, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            print(f"fabric: another emulation (pid {holder}) is running; waiting for it",
                  file=sys.stderr)
            end = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > end:
                        raise RunError(f"another emulation (pid {holder}) held {LOCK_PATH} for "
                                       f"more than {timeout_s:.0f} s") from None
                    time.sleep(0.2)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        registry.open_record()  # what this holder creates is recorded by name (fabric clean)
        try:
            yield
        finally:
            try:
                registry.close_record(_still_there())
            finally:
                f.seek(0)
                f.truncate()
                fcntl.flock(f, fcntl.LOCK_UN)


def _still_there() -> list[str]:
    """What the current run registered and is still present (empty: drop its record)."""
    rec = registry.current()
    if rec is None:
        return []
    left = registry.present(rec.data)
    deadline = time.monotonic() + 3  # shells and agents may take a moment to exit and be reaped
    while left and time.monotonic() < deadline and all(i.startswith("process ") for i in left):
        time.sleep(0.1)
        left = registry.present(rec.data)
    return left


def holder() -> str | None:
    """The pid holding the run lock, or None when no run holds it."""
    if not LOCK_PATH.exists():
        return None
    with open(LOCK_PATH, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            return f.read().strip() or "?"
        fcntl.flock(f, fcntl.LOCK_UN)
        return None
