"""A background thread that appends rows to a CSV file at a fixed interval (base of the samplers).

Subclasses implement `sample()`, writing rows with `self._writer` and flushing; rows are flushed
per sample so a crashed run keeps what was sampled. Use as a context manager around the workload.
"""
from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import Any, Sequence


class CsvSampler:
    """start(): header + first sample + thread; stop(): last sample, close (safe to call twice)."""

    thread_name = "sampler"

    def __init__(self, path: Path, columns: Sequence[str], interval_s: float):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file: Any = None
        self._writer: Any = None

    def sample(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> "CsvSampler":
        self._file = open(self.path, "w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.columns)
        self.sample()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        try:
            self.sample()
        finally:
            self._file.close()

    def __enter__(self) -> "CsvSampler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
