"""The ``[cluster]`` table: run a fabric split over several servers (docs/cluster.md).

    [cluster]
    servers = ["10.250.0.11", "lab2"]   # IPv4 addresses or ssh host names (ssh_config Host)
    user = "root"                       # the ssh user on every server (root, or passwordless sudo)
    tunnel = "vxlan"                    # vxlan (default) | gretap (kernel ip_gre) | ssh (fallback)
    underlay_mtu = 1500                 # the servers' network MTU
    ssh_config = ""                     # optional ssh client config file (ssh -F)
    max_clock_skew_ms = 10              # refuse a run when a server's clock is further off

The fabric's `mtu` must fit the tunnel (VXLAN: underlay - 50 = 1450 on a 1500 underlay), checked
before anything is built (check_cluster). Server names reach ssh's command line: they are checked
here (an address, or a host name of letters, digits, '.', '-').
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

import networkx as nx

from topologies.errors import SpecError
from topologies.placement import tunnel_mtu
from topologies.queues import graph_mtu

from fabric.spec.load import bounded, positive

LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"{LABEL}(?:\.{LABEL})*")
USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
MAX_SERVERS = 16


@dataclass(frozen=True)
class ClusterSpec:
    """Servers the fabric is split over and how they are reached (see the module docstring)."""
    servers: tuple[str, ...]
    user: str = "root"
    tunnel: Literal["vxlan", "gretap", "ssh"] = "vxlan"
    underlay_mtu: int = positive(1280, 9216, default=1500)
    ssh_config: str = ""
    max_clock_skew_ms: float = bounded(0, 10000, default=10.0)

    def check(self, key: str) -> None:
        """Names safe for ssh's command line, no server twice (SpecError naming the key)."""
        if not self.servers:
            raise SpecError(f"{key}.servers", "give at least one server")
        if len(self.servers) > MAX_SERVERS:
            raise SpecError(f"{key}.servers", f"{len(self.servers)} servers, more than {MAX_SERVERS}")
        for i, s in enumerate(self.servers):
            if not is_server_name(s):
                raise SpecError(f"{key}.servers[{i}]", f"{s[:60]!r} is neither an IPv4 address nor "
                                                       "a host name (letters, digits, '.', '-')")
            if s in self.servers[:i]:
                raise SpecError(f"{key}.servers[{i}]", f"{s!r} is listed twice")
        if not USER.fullmatch(self.user):
            raise SpecError(f"{key}.user", f"{self.user[:40]!r} is not a user name")
        if self.ssh_config and (len(self.ssh_config) > 4096
                                or any(ord(c) < 32 for c in self.ssh_config)):
            raise SpecError(f"{key}.ssh_config", "not a file name")


def is_server_name(s: str) -> bool:
    """An IPv4 address or a DNS/ssh host name (never an option: no leading '-')."""
    try:
        ipaddress.IPv4Address(s)
        return True
    except ValueError:
        return len(s) <= 253 and bool(HOSTNAME.fullmatch(s))


def check_cluster(cluster: ClusterSpec | None, graph: nx.Graph, fabric_key: str) -> None:
    """The fabric fits the tunnels: its MTU at most the tunnel's (SpecError naming fabric[i].mtu)."""
    if cluster is None or len(cluster.servers) < 2:
        return
    fit = tunnel_mtu(cluster.tunnel, cluster.underlay_mtu)
    mtu = graph_mtu(graph)
    if mtu > fit:
        raise SpecError(f"{fabric_key}.mtu", f"{mtu} does not fit a {cluster.tunnel} tunnel on a "
                        f"{cluster.underlay_mtu}-byte underlay (at most {fit}): set mtu = {fit} "
                        "(the same in the one-server run you compare with)")
