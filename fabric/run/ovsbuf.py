"""Readings of ovs-vswitchd's shared send socket (fabric.analysis.ovsbuf): its buffer, the sysctl
it came from, and the send failures its log records while a run's workload is going."""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from fabric.analysis import loss
from fabric.analysis.ovsbuf import SendFailures, send_failures, ss_buffers
from fabric.run.samplers import ovs_vswitchd_pids

log = logging.getLogger(__name__)
DEFAULT_LOG = Path("/var/log/openvswitch/ovs-vswitchd.log")
MAX_LOG_READ = 64 * 2**20      # a run's stretch of the log; more is a flood, counted as far as read


def sysctl_int(name: str, root: Path = Path("/proc/sys")) -> int | None:
    """An integer sysctl such as net.core.wmem_default (None when unreadable)."""
    try:
        return int((root / name.replace(".", "/")).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def buffers() -> dict[str, int | None]:
    """{"send": ovs-vswitchd's send socket buffer (bytes; None before its first send or when
    unreadable), "recv": its smallest per-port receive buffer, "wmem_default", "rmem_default"}."""
    try:
        out = subprocess.run(list(loss.OVS_SOCKETS_COMMAND), capture_output=True, text=True,
                             timeout=10, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    return {**ss_buffers(out), "wmem_default": sysctl_int("net.core.wmem_default"),
            "rmem_default": sysctl_int("net.core.rmem_default")}


def send_buffer_bytes() -> int | None:
    """The buffer OVS sends with: its socket's, else (socket not created yet) what it will get."""
    b = buffers()
    return b["send"] if b["send"] is not None else b["wmem_default"]


def log_path(proc: Path = Path("/proc")) -> Path:
    """ovs-vswitchd's log file: its `--log-file=` argument, else Debian's default."""
    for pid in ovs_vswitchd_pids(proc):
        try:
            args = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for a in args:
            if a.startswith(b"--log-file="):
                return Path(a.split(b"=", 1)[1].decode(errors="replace"))
    return DEFAULT_LOG


class SendFailureWatch:
    """Counts the send failures ovs-vswitchd logs between `start()` and `stop()` (the log is
    read from the size it had at start: the run lock keeps other runs' ports out of it)."""

    def __init__(self, path: Path | None = None):
        self.path = path or log_path()
        self.offset: int | None = None

    def start(self) -> SendFailureWatch:
        try:
            self.offset = self.path.stat().st_size
        except OSError as e:
            log.info("OVS send failures not counted: %s", e)
            self.offset = None
        return self

    def stop(self) -> SendFailures | None:
        """The failures logged since start (None: the log could not be read)."""
        if self.offset is None:
            return None
        try:
            with self.path.open("rb") as f:
                if f.seek(0, 2) < self.offset:   # rotated meanwhile: read the new file
                    self.offset = 0
                f.seek(self.offset)
                text = f.read(MAX_LOG_READ).decode(errors="replace")
        except OSError as e:
            log.info("OVS send failures not counted: %s", e)
            return None
        return send_failures(text)
