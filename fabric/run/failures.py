"""FailureInjector: a thread that takes links down at t0 + at_s during a run (t0 = the agents'
shared start instant) and records when it did.

Both veth ends of each link are set down with `ip link`; the controller sees the OpenFlow
port-status messages and re-routes (controller.policies.base).
"""
from __future__ import annotations

import logging
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence


from topologies import model
from fabric.plan.failures import FailureAction


log = logging.getLogger("fabric.failures")


@dataclass
class FailureEvent:
    """A failure as applied: planned and actual offset from t0, wall-clock time, any error."""
    what: str
    at_s: float
    applied_s: float | None
    time: float | None
    interfaces: tuple[str, ...]
    error: str = ""


# ---------------------------------------------------------------- adapter

def link_batch(interfaces: Sequence[str], up: bool) -> str:
    """`ip -batch` lines setting each interface up|down; ValueError for a name that is not one
    of the model's interface names (nothing else reaches `ip`)."""
    for name in interfaces:
        if not model.INTF_NAME.match(name):
            raise ValueError(f"refusing to touch interface {name!r}")
    state = "up" if up else "down"
    return "".join(f"link set dev {name} {state}\n" for name in interfaces)


def set_links(interfaces: Sequence[str], up: bool) -> str:
    """`ip link set dev X up|down` for each interface in one `ip -batch`; '' or the error text."""
    res = subprocess.run(["ip", "-batch", "-"], input=link_batch(interfaces, up),
                         capture_output=True, text=True)
    return res.stderr.strip() if res.returncode else ""


def _set_down(interfaces: Sequence[str]) -> str:
    return set_links(interfaces, False)


class FailureInjector:
    """Applies FailureActions at t0 + at_s from a thread; stop() cancels what is still pending."""

    def __init__(self, actions: Sequence[FailureAction], t0: float,
                 set_down: Callable[[Sequence[str]], str] | None = None):
        self.actions = list(actions)
        self.t0 = t0
        self.set_down = set_down or _set_down  # injectable: tests never touch real links
        self.events: list[FailureEvent] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FailureInjector:
        if self.actions:
            self._thread = threading.Thread(target=self._run, name="failures", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        for a in self.actions:
            if self._stop.wait(max(0.0, self.t0 + a.at_s - time.time())):
                return
            now = time.time()
            try:
                error = self.set_down(a.interfaces)
            except (OSError, ValueError) as exc:
                error = str(exc)
            self.events.append(FailureEvent(a.what, a.at_s, now - self.t0, now, a.interfaces,
                                            error))
            if error:
                log.error("failure %s at t0+%.3f s: %s", a.what, now - self.t0, error)
            else:
                log.info("failure %s applied at t0+%.3f s (%s down)", a.what, now - self.t0,
                         ", ".join(a.interfaces))

    def stop(self) -> list[dict[str, Any]]:
        """Cancel pending failures; return every action as a dict (applied or not)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        rows = []
        for i, a in enumerate(self.actions):  # events[i] is actions[i], applied in order
            e = self.events[i] if i < len(self.events) else FailureEvent(
                a.what, a.at_s, None, None, a.interfaces, "not applied: the workload ended first")
            rows.append({**asdict(e), "interfaces": list(e.interfaces)})
        return rows
