"""Project errors. A SpecError is bad input: the CLI prints it and exits 2, before anything is built.

A file may hold several mistakes: `SpecErrors` carries all of them (up to `MAX_ERRORS`), and
`Collector` gathers them while a loader goes on checking the rest of the file.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

MAX_ERRORS = 20  # errors reported for one file; the rest are counted


class FabricError(Exception):
    """Base of every error this project raises on purpose."""


class SpecError(FabricError):
    """An experiment spec (or plan) is invalid; `key` names the offending key path."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)

    @property
    def errors(self) -> list[SpecError]:
        """Every error this one stands for (itself, or the members of a SpecErrors)."""
        return [self]

    def under(self, prefix: str) -> SpecError:
        """The same error with its key placed under `prefix` (e.g. workload[0])."""
        errs = [SpecError(_join(prefix, e.key), e.message) for e in self.errors]
        return errs[0] if len(errs) == 1 else SpecErrors(errs)


class SpecErrors(SpecError):
    """Several SpecErrors found in one document, in the order they were found."""

    def __init__(self, errors: list[SpecError], more: int = 0):
        flat = [e for err in errors for e in err.errors]
        self._errors = flat[:MAX_ERRORS]
        self.more = more + len(flat) - len(self._errors)
        super().__init__(self._errors[0].key, self._errors[0].message)

    @property
    def errors(self) -> list[SpecError]:
        return list(self._errors)


def _join(prefix: str, key: str) -> str:
    if not prefix:
        return key
    if not key:
        return prefix
    return f"{prefix}{key}" if key.startswith("[") else f"{prefix}.{key}"


class Collector:
    """Collects SpecErrors raised inside `with collector.check():` blocks; `raise_any()` raises
    them together. Lets a loader report every bad key of a file, not only the first."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []

    @contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except SpecError as exc:
            self.errors.extend(exc.errors)

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise SpecErrors(self.errors)


class RunError(FabricError):
    """An emulation run failed (controller died, agents timed out, ...)."""
