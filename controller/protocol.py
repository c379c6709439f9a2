"""The controller's stdout line protocol (controller -> engine), in one place.

The controller process (controller.main, controller.app) writes one line per event, flushed at
once; the engine's ControllerProcess (controller.process) reads them:

    LISTENING <port>                    the OpenFlow socket on 127.0.0.1:<port> is up
    CONNECTED <switch>                  a fabric switch connected; its state is being (re)installed
    INSTALLED <switch>                  the switch's full state is in (barrier reply received)
    READY                               every switch of the fabric is installed (once per round)
    DISCONNECTED <switch>               the switch's connection closed
    OFPERROR <switch> type=<t> code=<c>  the switch rejected a message
    ERROR <message>                     bad input or a broken controller (the process exits)

Everything else the controller says goes to its log file.
"""
from __future__ import annotations

import sys
import threading
from typing import TextIO

LISTENING = "LISTENING"
CONNECTED = "CONNECTED"
INSTALLED = "INSTALLED"
READY = "READY"
DISCONNECTED = "DISCONNECTED"
OFPERROR = "OFPERROR"
ERROR = "ERROR"


def line(kind: str, arg: object = "") -> str:
    """One protocol line (without its newline): `KIND` or `KIND <arg>`."""
    text = str(arg)
    return f"{kind} {text}" if text else kind


def parse(text: str) -> tuple[str, str]:
    """(kind, argument) of a line; argument "" when there is none."""
    kind, _, arg = text.rstrip("\n").partition(" ")
    return kind, arg


class Writer:
    """Writes protocol lines to a stream, whole and flushed, from any thread."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out
        self._lock = threading.Lock()

    def __call__(self, kind: str, arg: object = "") -> None:
        out = self.out if self.out is not None else sys.stdout
        with self._lock:
            out.write(line(kind, arg) + "\n")
            out.flush()


# The controller process's one writer: main.py and app.py share it (and so its lock).
emit = Writer()
