"""Controller process entry point.

    python -m controller.main --fabric FABRIC.json --policy ecmp --params '{}' \
        --port PORT --log LOGFILE [--run-dir DIR [--stats-interval-s 1]] [--watch-stdin]
        [--nft-remote PREFIXES.json]

Reads the fabric description, builds the policy (bad input: `ERROR <message>` on stdout, exit 2,
before listening), then runs the os-ken app on 127.0.0.1:PORT only. stdout carries the protocol
lines (controller.protocol), `LISTENING <port>` once the OpenFlow socket is up; everything else
goes to the log file. With --run-dir the controller writes port_stats.csv (port counters every
--stats-interval-s) and the policy's report CSV (e.g. moves.csv) there (controller.recorder).

Stopping: os-ken 4.x's run_apps ends with `t.kill()`, which native hub threads lack, so the
process never returns from run_apps cleanly; SIGTERM/SIGINT log 'stopping', flush and
`os._exit(0)`. With --watch-stdin the process also exits when its stdin reaches EOF, i.e. when the
parent that started it dies, so no controller outlives its engine.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from controller import protocol
from controller.protocol import emit
from topologies.errors import FabricError
from topologies.model import from_description

LOG = logging.getLogger("controller.main")
LISTEN_HOST = "127.0.0.1"
LISTEN_TIMEOUT_S = 10.0
ECHO_INTERVAL_S = 0.5          # bound on how late a switch disconnect is noticed
ECHO_MAX_UNREPLIED = 1 << 30   # never drop a switch for slow echo replies


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m controller.main", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fabric", required=True, help="fabric description JSON (to_description)")
    ap.add_argument("--policy", required=True, help="policy name, e.g. ecmp")
    ap.add_argument("--params", default="{}", help="policy parameters as a JSON object")
    ap.add_argument("--port", type=int, required=True, help="OpenFlow TCP port on 127.0.0.1")
    ap.add_argument("--log", required=True, help="log file (appended)")
    ap.add_argument("--debug", action="store_true", help="log at DEBUG level")
    ap.add_argument("--run-dir", help="directory for port_stats.csv and the policy's reports")
    ap.add_argument("--stats-interval-s", type=float, default=1.0,
                    help="period of the port counter records in --run-dir (default 1 s)")
    ap.add_argument("--nft-remote", help="JSON file: switch -> argv prefix that runs `nft` on "
                    "the server owning it (cluster mode); other switches: here")
    ap.add_argument("--watch-stdin", action="store_true",
                    help="exit when stdin reaches EOF (the parent died)")
    return ap.parse_args(argv)


def setup_logging(path: str, debug: bool) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s.%(msecs)03d %(levelname)s %(name)s [%(threadName)s] %(message)s",
        "%H:%M:%S"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)


def stop_now(signum: int, _frame: Any) -> None:
    """Signal handler: the only clean way out of os-ken 4.x's run_apps (see module doc)."""
    LOG.info("stopping (signal %s)", signal.Signals(signum).name)
    _exit(0)


def _exit(code: int) -> None:
    logging.shutdown()
    try:
        sys.stdout.flush()
    finally:
        os._exit(code)


def port_is_free(port: int) -> bool:
    """Whether os-ken will be able to listen on 127.0.0.1:port (same SO_REUSEADDR bind)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LISTEN_HOST, port))
        except OSError:
            return False
    return True


def own_listener(port: int) -> bool:
    """Whether this process holds a LISTEN socket on 127.0.0.1:port (/proc, no connection made,
    so no fake switch ever talks to the controller)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        for row in f.readlines()[1:]:
            cols = row.split()
            if cols[1] == want and cols[3] == "0A" and cols[9] in inodes:
                return True
    return False


def watch_listener(port: int) -> None:
    """Announce LISTENING once os-ken's server socket is up; give up loudly if it never is."""
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while time.monotonic() < deadline:
        if own_listener(port):
            LOG.info("listening on %s:%d", LISTEN_HOST, port)
            emit(protocol.LISTENING, port)
            return
        time.sleep(0.02)
    LOG.error("OpenFlow listener on %s:%d not up after %.0f s", LISTEN_HOST, port,
              LISTEN_TIMEOUT_S)
    emit(protocol.ERROR, f"OpenFlow listener on {LISTEN_HOST}:{port} did not come up (see log)")
    _exit(1)


def watch_stdin() -> None:
    """Exit when the parent closes our stdin (it died or forgot us)."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except OSError:
        pass
    LOG.warning("stdin closed: parent gone, stopping")
    _exit(0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log, args.debug)
    LOG.info("controller starting: pid %d, fabric %s, policy %s, params %s, port %d",
             os.getpid(), args.fabric, args.policy, args.params, args.port)
    try:
        graph, policy, recorder = load_inputs(args)
        prefixes = load_nft_remote(args.nft_remote, graph)
    except (FabricError, OSError, ValueError, KeyError, TypeError) as exc:
        LOG.error("bad input: %s", exc)
        emit(protocol.ERROR, exc)
        logging.shutdown()
        return 2
    if not port_is_free(args.port):
        LOG.error("port %s:%d is already in use", LISTEN_HOST, args.port)
        emit(protocol.ERROR, f"port {LISTEN_HOST}:{args.port} is already in use")
        logging.shutdown()
        return 1
    signal.signal(signal.SIGTERM, stop_now)
    signal.signal(signal.SIGINT, stop_now)
    serve(args, graph, policy, recorder, prefixes)
    return 0  # not reached: serve() leaves through _exit


def load_inputs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The fabric graph, the policy and (with --run-dir) the run recorder; raises on bad input."""
    from controller.policies import make_policy  # imports os-ken message modules only
    with open(args.fabric) as f:
        graph = from_description(json.load(f))
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--params is not JSON: {exc}") from None
    policy = make_policy(args.policy, graph, params)
    if not args.stats_interval_s > 0:
        raise ValueError(f"--stats-interval-s must be > 0, got {args.stats_interval_s}")
    recorder = None
    if args.run_dir:
        from controller.recorder import RunRecorder
        recorder = RunRecorder(graph, args.run_dir, args.stats_interval_s)
    return graph, policy, recorder


def load_nft_remote(path: str | None, graph: Any) -> dict[str, list[str]]:
    """--nft-remote's map (switch -> argv prefix, e.g. `ssh ... root@server`), checked: every
    key a switch of the fabric, every value a non-empty list of strings."""
    if not path:
        return {}
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError("--nft-remote: not a JSON object")
    for sw, argv in data.items():
        if sw not in graph or graph.nodes[sw].get("role") == "host":
            raise ValueError(f"--nft-remote: {sw!r} is not a switch of the fabric")
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            raise ValueError(f"--nft-remote: {sw}: not a list of strings")
    return data


def configure_os_ken(port: int) -> None:
    """os-ken's config: listen on 127.0.0.1:port only, and notice closed connections."""
    from os_ken import cfg
    cfg.CONF(args=["--ofp-listen-host", LISTEN_HOST, "--ofp-tcp-listen-port", str(port)],
             project="os_ken")
    # With the native hub a closed connection never reaches DEAD_DISPATCHER unless something
    # wakes its send thread (blocked forever in send_q.get(), so Datapath.serve's joinall never
    # returns). The echo loop does: its next echo fails on the closed socket, the send thread
    # exits, close() runs. os-ken's default (0 unreplied echoes) disables that loop. The limit is
    # huge so a switch busy forwarding is never dropped for slow echo replies: OVS's own
    # inactivity probe closes a really dead connection, and that close is what we detect.
    cfg.CONF.set_override("echo_request_interval", ECHO_INTERVAL_S)
    cfg.CONF.set_override("maximum_unreplied_echo_requests", ECHO_MAX_UNREPLIED)


def serve(args: argparse.Namespace, graph: Any, policy: Any, recorder: Any,
          nft_prefixes: dict[str, list[str]] | None = None) -> None:
    """Run the os-ken app until a signal (or stdin EOF with --watch-stdin) ends the process."""
    # app_manager first: importing os_ken.controller.controller first is a circular import.
    from os_ken.base.app_manager import AppManager
    import os_ken.controller.controller  # noqa: F401  registers the --ofp-* CLI options

    from controller import app, ofguard
    from controller.nftables import NftTables
    ofguard.install()   # malformed or unexpected messages are logged and dropped, not parsed
    configure_os_ken(args.port)
    app.configure(graph, policy, sys.stdout, recorder,
                  NftTables(prefixes=nft_prefixes) if nft_prefixes else None)
    LOG.info("policy %s ready for %d switches", policy.name, len(policy.dpid_to_switch))
    threading.Thread(target=watch_listener, args=(args.port,), name="listen-watch",
                     daemon=True).start()
    if args.watch_stdin:
        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    try:
        AppManager.run_apps(["controller.app"])
    except Exception:
        LOG.exception("os-ken stopped with an error")
        _exit(1)
    _exit(0)


if __name__ == "__main__":
    sys.exit(main())
