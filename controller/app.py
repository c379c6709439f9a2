"""The os-ken application: a thin event pump between OpenFlow switches and a Policy.

Handlers look the switch up in the fabric graph and hand off to the policy; this module only
tracks connections and install progress and reports it on stdout (one line each, flushed):

    CONNECTED <switch>                 a fabric switch connected; its state is being (re)installed
    INSTALLED <switch>                 the switch's full state is in (barrier reply received)
    READY                              every switch of the fabric is installed (once per round)
    DISCONNECTED <switch>              the switch's connection closed
    OFPERROR <switch> type=<t> code=<c>  the switch rejected a message

Everything else goes to the log. Why so defensive: with os-ken's default native hub,
`hub.TaskExit` is `Exception`, so an exception escaping a handler silently ends the app's event
thread (no more events, no log). Every handler is therefore wrapped by `_guarded`.
"""
from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from typing import Any, Callable, TextIO

import networkx as nx
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, HANDSHAKE_DISPATCHER,
                                       MAIN_DISPATCHER, set_ev_cls)
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from topologies.model import switches

from . import ofmsgs
from .policies import Policy, PortCounters, Stats

LOG = logging.getLogger("controller.app")

# Set by configure() before AppManager instantiates the app (os-ken builds apps by class).
_SETTINGS: dict[str, Any] = {}
_OUT_LOCK = threading.Lock()


def configure(graph: nx.Graph, policy: Policy, out: TextIO | None = None) -> None:
    """Give the app its fabric graph, policy and stdout stream (call before run_apps)."""
    _SETTINGS.update(graph=graph, policy=policy, out=out or sys.stdout)


def emit(line: str) -> None:
    """Write one protocol line to stdout and flush it at once (the engine waits on these)."""
    out = _SETTINGS.get("out", sys.stdout)
    with _OUT_LOCK:
        out.write(line + "\n")
        out.flush()


def _guarded(handler: Callable[..., None]) -> Callable[..., None]:
    """Log, never raise, whatever a handler throws (see the module docstring)."""
    @functools.wraps(handler)
    def wrapper(self: Any, ev: Any) -> None:
        try:
            handler(self, ev)
        except Exception:  # noqa: BLE001 - a controller must survive its own bugs
            LOG.exception("handler %s failed on %s", handler.__name__, type(ev).__name__)
    return wrapper


class FabricController(app_manager.OSKenApp):
    """Installs the policy's state on every switch of the fabric and reports progress."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if "policy" not in _SETTINGS:
            raise RuntimeError("controller.app.configure() was not called before run_apps")
        self.graph: nx.Graph = _SETTINGS["graph"]
        self.policy: Policy = _SETTINGS["policy"]
        self.all_switches = frozenset(switches(self.graph))
        self.lock = threading.RLock()       # event thread vs tick thread
        self.current: dict[int, Any] = {}   # dpid -> live datapath
        self.pending: dict[int, int] = {}   # dpid -> xid of the final install barrier
        self.installed: set[str] = set()
        self.ready_announced = False
        self.stats = Stats()
        self._flow_parts: dict[int, list[Any]] = {}

    def start(self) -> None:
        super().start()
        if self.policy.interval_s:
            self.threads.append(hub.spawn(self._tick_loop))
            LOG.info("policy %s ticks every %.3f s", self.policy.name, self.policy.interval_s)

    # ------------------------------------------------------------------ install
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    @_guarded
    def _switch_features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        name = self.policy.switch_name(dp.id)
        if name is None:
            LOG.warning("dpid %016x from %s is not in fabric %s: ignored",
                        dp.id, dp.address, self.graph.graph.get("name"))
            return
        with self.lock:
            old = self.current.get(dp.id)
            if old is not None and old is not dp:
                LOG.info("%s: new connection from %s replaces the previous one", name, dp.address)
            self.current[dp.id] = dp
            self._uninstall(name)
            msgs = self.policy.switch_up(dp, time.monotonic())
        LOG.info("%s (dpid %016x) connected from %s: sending %d messages from policy %s",
                 name, dp.id, dp.address, len(msgs), self.policy.name)
        emit(f"CONNECTED {name}")
        for msg in msgs:
            if not dp.send_msg(msg):
                LOG.warning("%s: connection closing, install aborted", name)
                return
        final = ofmsgs.barrier(dp)
        dp.set_xid(final)
        with self.lock:
            self.pending[dp.id] = final.xid
        dp.send_msg(final)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    @_guarded
    def _barrier_reply(self, ev: Any) -> None:
        dp = ev.msg.datapath
        with self.lock:
            if self.current.get(dp.id) is not dp or self.pending.get(dp.id) != ev.msg.xid:
                return  # an intermediate barrier, or a stale connection's
            del self.pending[dp.id]
            name = self.policy.switch_name(dp.id)
            self.installed.add(name)
            ready = self.installed == self.all_switches and not self.ready_announced
            if ready:
                self.ready_announced = True
        LOG.info("%s installed (%d/%d switches)", name, len(self.installed),
                 len(self.all_switches))
        emit(f"INSTALLED {name}")
        if ready:
            LOG.info("all %d switches installed: READY", len(self.all_switches))
            emit("READY")

    def _uninstall(self, name: str) -> None:
        """Mark a switch as not installed; the next full round announces READY again."""
        self.installed.discard(name)
        self.ready_announced = False

    # ------------------------------------------------------------------ failures
    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    @_guarded
    def _state_change(self, ev: Any) -> None:
        dp = ev.datapath
        if ev.state != DEAD_DISPATCHER:
            return
        if dp.id is None:
            LOG.info("connection from %s closed before the handshake finished", dp.address)
            return
        name = self.policy.switch_name(dp.id)
        with self.lock:
            if name is None or self.current.get(dp.id) is not dp:
                LOG.info("stale connection of dpid %016x (%s) closed", dp.id, name)
                return
            del self.current[dp.id]
            self.pending.pop(dp.id, None)
            self._uninstall(name)
            self.policy.switch_down(dp.id, time.monotonic())
        LOG.warning("%s (dpid %016x) disconnected", name, dp.id)
        emit(f"DISCONNECTED {name}")

    @set_ev_cls(ofp_event.EventOFPErrorMsg,
                [HANDSHAKE_DISPATCHER, CONFIG_DISPATCHER, MAIN_DISPATCHER])
    @_guarded
    def _error(self, ev: Any) -> None:
        msg = ev.msg
        dp = msg.datapath
        name = self.policy.switch_name(dp.id) if dp.id is not None else None
        who = name or (f"{dp.id:016x}" if dp.id is not None else str(dp.address))
        offending = ""
        data = bytes(msg.data or b"")
        if len(data) >= 8:  # the switch echoes the head of the rejected message
            offending = f" (offending msg type {data[1]} xid {int.from_bytes(data[4:8], 'big')})"
        LOG.error("%s: OFPT_ERROR type=%d code=%d%s", who, msg.type, msg.code, offending)
        emit(f"OFPERROR {who} type={msg.type} code={msg.code}")

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    @_guarded
    def _port_status(self, ev: Any) -> None:
        msg = ev.msg
        dp = msg.datapath
        LOG.info("%s: port %d status reason=%d state=%d", self.policy.switch_name(dp.id),
                 msg.desc.port_no, msg.reason, msg.desc.state)

    # ------------------------------------------------------------------ statistics
    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    @_guarded
    def _port_stats(self, ev: Any) -> None:
        now = time.monotonic()
        counters = {s.port_no: PortCounters(s.rx_packets, s.tx_packets, s.rx_bytes, s.tx_bytes,
                                            s.rx_dropped, s.tx_dropped, now)
                    for s in ev.msg.body}
        with self.lock:
            self.stats.ports.setdefault(ev.msg.datapath.id, {}).update(counters)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    @_guarded
    def _flow_stats(self, ev: Any) -> None:
        dp = ev.msg.datapath
        with self.lock:
            parts = self._flow_parts.setdefault(dp.id, [])
            parts.extend(ev.msg.body)
            if not ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
                self.stats.flows[dp.id] = self._flow_parts.pop(dp.id)

    def _tick_loop(self) -> None:
        """Every interval: ask installed switches for statistics, then let the policy act on the
        latest replies (so a tick sees statistics at most one interval old)."""
        interval = float(self.policy.interval_s or 0)
        while self.is_active:
            hub.sleep(interval)
            try:
                self._tick()
            except Exception:  # noqa: BLE001
                LOG.exception("policy tick failed")

    def _tick(self) -> None:
        with self.lock:
            live = [(dpid, dp) for dpid, dp in self.current.items()
                    if self.policy.switch_name(dpid) in self.installed]
        for _, dp in live:
            dp.send_msg(ofmsgs.port_stats_request(dp))
            if self.policy.wants_flow_stats:
                dp.send_msg(ofmsgs.flow_stats_request(dp))
        with self.lock:
            out = self.policy.tick(time.monotonic(), self.stats)
        for dpid, msg in out:
            dp = self.current.get(dpid)
            if dp is None:
                LOG.warning("tick: dpid %016x not connected, message %s dropped",
                            dpid, type(msg).__name__)
                continue
            dp.send_msg(msg)
        if out:
            LOG.info("tick: sent %d messages", len(out))
