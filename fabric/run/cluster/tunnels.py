"""The `ssh` tunnel kind: a fabric link between two servers as a pair of tap devices joined by
an ssh Ethernet tunnel (`ssh -w N:N -o Tunnel=ethernet`), Cluster Edition's RemoteSSHLink
fixed for this project:

- a tap unit of its own per link (Cluster Edition reuses tap9 for every link);
- the ssh client runs on the first server with the run's ssh config (-F) and BatchMode, and
  carries the run directory in its command line (SetEnv), so the run's removal on that server
  (pkill -f on the run directory, fabric.run.cluster.lifecycle) ends it;
- the tap names are registered before they are made.

The first server must reach the second with ssh as the run's user (a key of its own, or the
ssh config's IdentityFile readable there) and the second's sshd must allow `PermitTunnel`.
A stream over TCP: no MTU limit from the underlay, but every frame crosses two user-space ssh
processes (slower than VXLAN; docs/cluster.md).
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from topologies.errors import RunError

from fabric.run.cluster import lifecycle

FIRST_UNIT = 60   # tap60, tap61, ...: clear of the small units other software picks


def ssh_link_class(ce: Any, ssh_config: str, run_dir: Path) -> Any:
    """A RemoteLink subclass of Cluster Edition's module `ce` making ssh Ethernet tunnels."""

    class SSHLink(ce.RemoteLink):
        unit = FIRST_UNIT - 1

        def makeTunnel(self, node1: Any, node2: Any, intfname1: str, intfname2: str,
                       addr1: Any = None, addr2: Any = None) -> Any:
            type(self).unit += 1
            n = type(self).unit
            tap = f"tap{n}"
            for node in (node1, node2):
                lifecycle.register_on(node.server, interfaces=[tap])
            for node in (node1, node2):
                out = node.rcmd(f"ip tuntap add dev {tap} mode tap")
                if out.strip():
                    raise RunError(f"making {tap} on {node.server}: {out.strip()[:200]}")
            cfg = ["-F", ssh_config] if ssh_config else []
            argv = ["ssh", *cfg, "-n", "-o", "BatchMode=yes", "-o", "Tunnel=ethernet",
                    "-o", "ServerAliveInterval=5", "-o", f"SetEnv=AIFABRIC_RUN={run_dir}",
                    "-w", f"{n}:{n}", f"{node2.user}@{node2.serverIP}", "echo @"]
            # over the head's ssh to node1 (no sudo: the run's user is root there)
            tunnel = node1.rpopen(shlex.join(argv), sudo=False, tt=False)
            first = tunnel.stdout.read(1)
            first = first.decode(errors="replace") if isinstance(first, bytes) else first
            if first != "@":
                rest = tunnel.stdout.read()
                rest = rest.decode(errors="replace") if isinstance(rest, bytes) else rest
                tunnel.kill()
                raise RunError(f"ssh tunnel {node1.server}:{intfname1} -> {node2.server}:"
                               f"{intfname2} failed: {(first + rest).strip()[:300]} "
                               f"(does {node1.server} reach {node2.server} over ssh with a key? "
                               "PermitTunnel yes in its sshd_config?)")
            for node, intf, addr in ((node1, intfname1, addr1), (node2, intfname2, addr2)):
                out = node.rcmd(f"ip link set {tap} name {intf}"
                                + (f" address {addr}" if addr else "") + f" && ip link set {intf} up")
                if out.strip():
                    raise RunError(f"renaming {tap} on {node.server}: {out.strip()[:200]}")
            return tunnel

        def stop(self) -> None:
            tunnel = getattr(self, "tunnel", None)
            if tunnel:
                tunnel.terminate()
                for intf in (self.intf1, self.intf2):
                    intf.node.rcmd(f"ip link del {intf.name}")
                self.tunnel = None
            else:
                ce.Link.stop(self)

        def status(self) -> str:
            return f"({self.intf1.name}, {self.intf2.name}) {'ssh tunnel' if self.tunnel else 'OK'}"

    return SSHLink
