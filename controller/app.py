"""The os-ken application: a thin event pump between OpenFlow switches and a Policy.

Handlers look the switch up in the fabric graph and hand off to the policy; this module only
tracks connections and install progress and reports it on stdout (one line each, flushed:
CONNECTED, INSTALLED, READY, DISCONNECTED, OFPERROR; the protocol: controller.protocol).

Everything else goes to the log. With a run directory the app also records port counters every
`stats_interval_s` and the policy's reports (controller.recorder); packet-ins from the policy's
own rules go to policy.packet_in. Why so defensive: with os-ken's default native hub,
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

from controller import ofmsgs, protocol
from controller.nftables import NftError, NftTables
from controller.policies import Policy, PortCounters, Stats
from controller.recorder import RunRecorder

LOG = logging.getLogger("controller.app")

# Set by configure() before AppManager instantiates the app (os-ken builds apps by class).
_SETTINGS: dict[str, Any] = {}
emit = protocol.emit  # the protocol's writer (controller.protocol), shared with controller.main


def configure(graph: nx.Graph, policy: Policy, out: TextIO | None = None,
              recorder: RunRecorder | None = None, nft: NftTables | None = None) -> None:
    """Give the app its fabric graph, policy, stdout stream and (optionally) the recorder of
    the run directory's CSV files and the nft adapter (tests pass one with a fake runner);
    call before run_apps."""
    _SETTINGS.update(graph=graph, policy=policy, recorder=recorder, nft=nft)
    emit.out = out or sys.stdout


def packet_fields(data: bytes) -> dict[str, Any]:
    """IPv4/TCP header fields of a packet-in's data, by OXM name ({} if not IPv4)."""
    from os_ken.lib.packet import ipv4, packet, tcp
    pkt = packet.Packet(bytes(data))
    ip = pkt.get_protocol(ipv4.ipv4)
    if ip is None:
        return {}
    fields: dict[str, Any] = {"ipv4_src": ip.src, "ipv4_dst": ip.dst, "ip_proto": ip.proto}
    seg = pkt.get_protocol(tcp.tcp)
    if seg is not None:
        fields.update(tcp_src=seg.src_port, tcp_dst=seg.dst_port, tcp_flags=seg.bits)
    return fields


def _guarded(handler: Callable[..., None]) -> Callable[..., None]:
    """Log, never raise, whatever a handler throws (see the module docstring)."""
    @functools.wraps(handler)
    def wrapper(self: Any, ev: Any) -> None:
        try:
            handler(self, ev)
        except Exception:
            LOG.exception("handler %s failed on %s", handler.__name__, type(ev).__name__)
    return wrapper


class FabricController(app_manager.OSKenApp):
    """Installs the policy's state on every switch of the fabric and reports progress."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]  # noqa: RUF012 - os-ken reads this class attribute

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
        self.nft: NftTables = _SETTINGS.get("nft") or NftTables()  # kernel spraying state
        self._flow_parts: dict[int, list[Any]] = {}
        self.recorder: RunRecorder | None = _SETTINGS.get("recorder")
        if self.recorder is not None and self.policy.REPORT_FILE and self.policy.REPORT_ROW:
            self.recorder.open_report(self.policy.REPORT_FILE, self.policy.REPORT_ROW)

    def start(self) -> None:
        super().start()
        if self.policy.interval_s:
            self.threads.append(hub.spawn(self._tick_loop))
            LOG.info("policy %s ticks every %.3f s", self.policy.name, self.policy.interval_s)
        if self.recorder is not None:
            self.threads.append(hub.spawn(self._record_loop))
            LOG.info("recording port counters every %.3f s into %s", self.recorder.interval_s,
                     self.recorder.run_dir)

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
            if not self._sync_nft(name):
                return
        LOG.info("%s (dpid %016x) connected from %s: sending %d messages from policy %s",
                 name, dp.id, dp.address, len(msgs), self.policy.name)
        emit(protocol.CONNECTED, name)
        for msg in msgs:
            if not dp.send_msg(msg):
                LOG.warning("%s: connection closing, install aborted", name)
                return
        final = ofmsgs.barrier(dp)
        dp.set_xid(final)
        with self.lock:
            self.pending[dp.id] = final.xid
        dp.send_msg(final)

    def _live(self, dp: Any) -> bool:
        """Whether `dp` is the switch's current connection (not a stale, replaced one)."""
        return self.current.get(dp.id) is dp

    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    @_guarded
    def _barrier_reply(self, ev: Any) -> None:
        dp = ev.msg.datapath
        with self.lock:
            if not self._live(dp) or self.pending.get(dp.id) != ev.msg.xid:
                return  # an intermediate barrier, or a stale connection's
            del self.pending[dp.id]
            name = self.policy.switch_name(dp.id)
            if name is None:
                return
            self.installed.add(name)
            ready = self.installed == self.all_switches and not self.ready_announced
            if ready:
                self.ready_announced = True
        LOG.info("%s installed (%d/%d switches)", name, len(self.installed),
                 len(self.all_switches))
        emit(protocol.INSTALLED, name)
        if ready:
            LOG.info("all %d switches installed: READY", len(self.all_switches))
            emit(protocol.READY)

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
            if name is None or not self._live(dp):
                LOG.info("stale connection of dpid %016x (%s) closed", dp.id, name)
                return
            del self.current[dp.id]
            self.pending.pop(dp.id, None)
            self._flow_parts.pop(dp.id, None)   # a multipart reply cut off by the close
            self._uninstall(name)
            self.policy.switch_down(dp.id, time.monotonic())
        LOG.warning("%s (dpid %016x) disconnected", name, dp.id)
        emit(protocol.DISCONNECTED, name)

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
        if name is not None:   # a stray connection's errors say nothing about the fabric
            emit(protocol.OFPERROR, f"{who} type={msg.type} code={msg.code}")

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    @_guarded
    def _port_status(self, ev: Any) -> None:
        """A port changed: let the policy re-route around (or back onto) its link, then push
        the changed nft rulesets and the OpenFlow difference (controller.statediff)."""
        msg = ev.msg
        dp, ofp, desc = msg.datapath, msg.datapath.ofproto, msg.desc
        live = not desc.state & ofp.OFPPS_LINK_DOWN and not desc.config & ofp.OFPPC_PORT_DOWN
        name = self.policy.switch_name(dp.id)
        LOG.info("%s: port %d status reason=%d state=%d config=%d -> %s", name, desc.port_no,
                 msg.reason, desc.state, desc.config, "up" if live else "down")
        with self.lock:
            # A deleted port is the network being torn down (or rebuilt), not a link failure.
            if name is None or not self._live(dp) or msg.reason == ofp.OFPPR_DELETE:
                return
            out = self.policy.port_status(dp.id, desc.port_no, live, time.monotonic())
            for sw in sorted(self.nft.applied):
                self._sync_nft(sw, fatal=False)
        self._send(out, "port-status")
        if out:
            LOG.info("%s port %d %s: re-routed, %d OpenFlow messages sent", name, desc.port_no,
                     "up" if live else "down", len(out))

    def _sync_nft(self, name: str, fatal: bool = True) -> bool:
        """Apply the policy's nft ruleset for `name` if it changed; False if that failed.
        At install (`fatal`) a failure is reported as ERROR, so the engine fails the run
        instead of measuring incomplete forwarding; later (re-routing, or ports vanishing at
        teardown) it is logged, and any harm shows as flows that do not complete."""
        try:
            if self.nft.sync(name, self.policy.nft_ruleset(name)):
                LOG.info("%s: nftables ruleset applied", name)
        except (NftError, ValueError) as exc:
            LOG.error("%s: nftables ruleset not applied: %s", name, exc)
            if fatal:
                emit(protocol.ERROR, f"nftables ruleset for {name} not applied: {exc}")
            return False
        return True

    # ------------------------------------------------------------------ statistics
    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    @_guarded
    def _port_stats(self, ev: Any) -> None:
        now = time.monotonic()
        counters = {s.port_no: PortCounters(s.rx_packets, s.tx_packets, s.rx_bytes, s.tx_bytes,
                                            s.rx_dropped, s.tx_dropped, now)
                    for s in ev.msg.body}
        dp = ev.msg.datapath
        with self.lock:
            self.stats.ports.setdefault(dp.id, {}).update(counters)
        rec = self.recorder
        if rec is not None and (dp.id, ev.msg.xid) in rec.pending:
            if not ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
                rec.pending.discard((dp.id, ev.msg.xid))
            rec.port_rows(self.policy.switch_name(dp.id) or f"{dp.id:016x}", ev.msg.body)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    @_guarded
    def _flow_stats(self, ev: Any) -> None:
        dp = ev.msg.datapath
        with self.lock:
            parts = self._flow_parts.setdefault(dp.id, [])
            parts.extend(ev.msg.body)
            if not ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
                self.stats.flows[dp.id] = self._flow_parts.pop(dp.id)
                self.stats.flow_times[dp.id] = time.monotonic()

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    @_guarded
    def _packet_in(self, ev: Any) -> None:
        """A packet the policy's rules copied to the controller: hand its headers over."""
        msg = ev.msg
        dp = msg.datapath
        fields = packet_fields(msg.data)
        with self.lock:
            if not self._live(dp):
                return
            out = self.policy.packet_in(dp.id, msg.match.get("in_port", 0), fields,
                                        time.monotonic())
        self._send(out, "packet-in")

    def _send(self, out: list[tuple[int, Any]], what: str) -> None:
        """Send a policy's (dpid, message) pairs, then log and record its reports."""
        for dpid, msg in out:
            dp = self.current.get(dpid)
            if dp is None:
                LOG.warning("%s: dpid %016x not connected, message %s dropped",
                            what, dpid, type(msg).__name__)
                continue
            dp.send_msg(msg)
        with self.lock:   # the policy is only ever touched under the lock (tick vs events)
            rows = self.policy.take_reports()
        for row in rows:
            LOG.info("%s %s: %s", self.policy.name, type(row).__name__, row)
        if rows and self.recorder is not None and self.policy.REPORT_FILE:
            self.recorder.report_rows(self.policy.REPORT_FILE, rows)

    def _record_loop(self) -> None:
        """Every recorder interval: ask installed switches for port counters (the replies
        become port_stats.csv rows in _port_stats)."""
        assert self.recorder is not None
        while self.is_active:
            hub.sleep(self.recorder.interval_s)
            try:
                self._request_records()
            except Exception:
                LOG.exception("port statistics request failed")

    def _request_records(self) -> None:
        """One port-stats request per installed switch, remembered as the recorder's."""
        assert self.recorder is not None
        for dp in self._installed_datapaths():
            req = ofmsgs.port_stats_request(dp)
            dp.set_xid(req)
            self.recorder.pending.add((dp.id, req.xid))
            dp.send_msg(req)

    def _tick_loop(self) -> None:
        """Every interval: ask installed switches for statistics, then let the policy act on the
        latest replies (so a tick sees statistics at most one interval old)."""
        interval = float(self.policy.interval_s or 0)
        while self.is_active:
            hub.sleep(interval)
            try:
                self._tick()
            except Exception:
                LOG.exception("policy tick failed")

    def _installed_datapaths(self) -> list[Any]:
        """Live datapaths of the switches whose full state is installed."""
        with self.lock:
            return [dp for dpid, dp in self.current.items()
                    if self.policy.switch_name(dpid) in self.installed]

    def _tick(self) -> None:
        for dp in self._installed_datapaths():
            dp.send_msg(ofmsgs.port_stats_request(dp))
            if self.policy.wants_flow_stats:
                dp.send_msg(ofmsgs.flow_stats_request(dp))
        with self.lock:
            out = self.policy.tick(time.monotonic(), self.stats)
        self._send(out, "tick")
        if out:
            LOG.info("tick: sent %d messages", len(out))
