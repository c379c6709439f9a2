"""The agent's line protocol (engine <-> traffic agent), in one place.

    agent  -> engine (stdout)   READY                 listening, the plan loaded
    engine -> agent  (stdin)    CONNECT               (optional) open the warm persistent
                                                      connections now, before t0
    agent  -> engine (stdout)   CONNECTED             they are open (or FAILED <reason>)
    engine -> agent  (stdin)    GO <t0>               start the schedule at epoch t0 (shared clock)
    agent  -> engine (stdout)   DONE                  every planned send and receipt done (exit 0)
                                FAILED <reason>       anything else (exit 1; 128+n on signal n)

The engine's side is fabric.run.agents.AgentGroup, the agent's traffic.agent.main.
"""
from __future__ import annotations

import math
import time

READY = "READY"
CONNECT = "CONNECT"
CONNECTED = "CONNECTED"
GO = "GO"
DONE = "DONE"
FAILED = "FAILED"


def go(t0: float) -> str:
    """The GO line releasing the agents at epoch t0 (microseconds kept)."""
    return f"{GO} {t0:.6f}"


def failed(reason: str) -> str:
    return f"{FAILED} {reason}"


def parse_go(line: str) -> float | None:
    """t0 from 'GO <epoch>' ('GO' alone: now); None if the line is not a GO."""
    words = line.split()
    if not words or words[0] != GO or len(words) > 2:
        return None
    if len(words) == 1:
        return time.time()
    try:
        t0 = float(words[1])
    except ValueError:
        return None
    return t0 if math.isfinite(t0) else None


def kind(line: str) -> str:
    """The first word of a line: READY, DONE, FAILED, ..."""
    return line.split(" ", 1)[0]


def say(line: str) -> None:
    """One line on stdout, flushed; a closed stdout (the engine gone) is not an error."""
    try:
        print(line, flush=True)
    except (OSError, ValueError):
        pass

