"""Packet capture of named links into pcap files (`[run] capture = ["l1-s1", "l2-h3"]`).

One thread per link reads a raw AF_PACKET socket bound to the link's switch-side interface (in
the root namespace, so it sees both directions of the cable) and appends each frame's first
SNAPLEN bytes to capture/<link>.pcap in the run directory: headers only, enough for
fabric.analysis.capture (which flow, which sequence number). Standard library only; no tcpdump
needed. Costs a few microseconds of CPU per packet: capture only the links you study.
"""
from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Sequence

log = logging.getLogger("fabric.run.capture")
ETH_P_ALL = 0x0003
SNAPLEN = 128
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1)  # LINKTYPE_ETHERNET


class PacketCapture:
    """Capture (link name, interface) pairs into `out_dir`/<link>.pcap while in the block."""

    def __init__(self, targets: Sequence[tuple[str, str]], out_dir: Path):
        self.targets = list(targets)
        self.out_dir = Path(out_dir)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.packets: dict[str, int] = {}

    def start(self) -> PacketCapture:
        if not self.targets:
            return self
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for link, intf in self.targets:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((intf, 0))
            sock.settimeout(0.2)
            th = threading.Thread(target=self._loop, args=(link, sock), name=f"capture-{link}",
                                  daemon=True)
            th.start()
            self._threads.append(th)
        log.info("capturing %s into %s", ", ".join(l for l, _ in self.targets), self.out_dir)
        return self

    def _loop(self, link: str, sock: socket.socket) -> None:
        n = 0
        with open(self.out_dir / f"{link}.pcap", "wb") as f, sock:
            f.write(PCAP_HEADER)
            while not self._stop.is_set():
                try:
                    frame = sock.recv(65535)
                except TimeoutError:
                    continue
                except OSError as exc:     # the interface went away (teardown, failure)
                    log.info("capture of %s ended: %s", link, exc)
                    break
                now = time.time()
                data = frame[:SNAPLEN]
                f.write(struct.pack("<IIII", int(now), int((now % 1) * 1e6), len(data),
                                    len(frame)))
                f.write(data)
                n += 1
        self.packets[link] = n

    def stop(self) -> dict[str, int]:
        self._stop.set()
        for th in self._threads:
            th.join(5)
        self._threads = []
        return dict(self.packets)

    def __enter__(self) -> PacketCapture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
