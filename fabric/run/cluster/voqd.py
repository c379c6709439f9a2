"""The VOQ agent on a cluster server: reads and sets the HTB classes of that server's NCPs' VOQs
for the head's credit loop (fabric.run.voq.CreditLoop through fabric.run.cluster.ddc.RemoteVoqs).

    python -m fabric.run.cluster.voqd RUN_DIR NCP [NCP ...]

RUN_DIR only names the run (cleanup matches it in the command line). A line protocol on
stdin/stdout, one line each way per credit decision, so the head decides for the whole fabric
(every egress port's VOQs on every server) and each server only measures and applies:

    -> "ready" once every NCP's VOQ device is found (else "error: ..." and exit 1)
    <- "R"                                   -> {"c": {ncp: [[handle, sent_bytes, overlimits,
                                                  drops, backlog_bytes], ...]}, "e": errors,
                                                  "m": "last error"}
    <- "S <ncp> <handle> <rate_Bps> <burst_B> <quantum_B>"   (no answer; failures counted in e)
    <- EOF (the head closed the session, or died): exit 0
"""
from __future__ import annotations

import json
import socket
import sys
from typing import IO

from topologies.ddc import voq_intfs
from topologies.model import SWITCH_NAME

from fabric.run.tcnl import NetlinkError, TcNetlink

HTB_ROOT = 0x10000   # handle 1: (fabric.run.voq.HTB_ROOT)


def serve(ncps: list[str], inp: IO[str], out: IO[str]) -> int:
    """Answer the head's lines until EOF (see the module docstring)."""
    try:
        ifindex = {ncp: socket.if_nametoindex(voq_intfs(ncp)[0]) for ncp in ncps}
        nl = TcNetlink()
    except OSError as exc:
        out.write(f"error: {exc}\n")
        out.flush()
        return 1
    out.write("ready\n")
    out.flush()
    errors, last = 0, ""
    try:
        for line in inp:
            f = line.split()
            if not f:
                continue
            try:
                if f[0] == "R":
                    classes = {ncp: [[c.handle, c.sent_bytes, c.overlimits, c.drops,
                                      c.backlog_bytes] for c in nl.classes(idx)]
                               for ncp, idx in ifindex.items()}
                    out.write(json.dumps({"c": classes, "e": errors, "m": last},
                                         separators=(",", ":")) + "\n")
                    out.flush()
                elif f[0] == "S" and len(f) == 6 and f[1] in ifindex:
                    nl.set_htb_rate(ifindex[f[1]], int(f[2]), HTB_ROOT, float(f[3]), int(f[4]),
                                    int(f[5]))
                else:
                    raise ValueError(f"bad line {line.strip()[:80]!r}")
            except (OSError, NetlinkError, ValueError) as exc:
                errors += 1
                last = str(exc)[:200]
                if f[0] == "R":   # the head waits for an answer
                    out.write(json.dumps({"c": {}, "e": errors, "m": last}) + "\n")
                    out.flush()
    except BrokenPipeError:
        pass
    finally:
        nl.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or not all(SWITCH_NAME.match(n) for n in args[1:]):
        print("usage: python -m fabric.run.cluster.voqd RUN_DIR NCP [NCP ...]", file=sys.stderr)
        return 2
    return serve(args[1:], sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
