"""Per-packet spraying in the kernel: nftables rulesets (pure text) and a thin `nft` adapter.

Why nftables: OpenFlow select groups hash per flow, so OVS cannot spray per packet. A netdev
ingress hook on a switch's host-facing interface can (measured on the project's machine, docs/benchmarks.md)::

    table netdev fabric_ncp1 {
        chain port1 {
            type filter hook ingress device "ncp1-eth1" priority 0; policy accept;
            ip daddr { 10.0.0.3, 10.0.0.4 } fwd to numgen inc mod 2 map { 0 : "ncp1-eth3", 1 : "ncp1-eth4" }
        }
    }

Packets from the host on ncp1-eth1 towards remote hosts leave round-robin over the uplinks,
packet by packet; everything else is accepted and switched by OVS as usual. One table per
switch, named ``fabric_<switch>`` (fabric.run.cleanup removes every ``fabric_*`` table), replaced
atomically: one `nft -f` transaction creates-if-missing, deletes and re-creates it, so no packet
ever sees a half-written ruleset. Interface names come from the fabric model, and are checked
against the model's naming pattern before they reach the text.
"""
from __future__ import annotations

import ipaddress
import logging
import subprocess
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from topologies.model import INTF_NAME, SWITCH_NAME

LOG = logging.getLogger("controller.nftables")
TABLE_PREFIX = "fabric_"  # the prefix fabric.run.cleanup looks for
NUMGEN_MODES = ("inc", "random")
# whose round-robin counter a sprayed packet advances: its ingress port's, or the switch's
COUNTERS = ("port", "switch")


class NftError(RuntimeError):
    """`nft` rejected a ruleset or is missing."""


@dataclass(frozen=True)
class SprayRule:
    """Packets for `dst_ips` leave over `out_intfs`: round-robin (or random) per packet when
    there are several, directly when there is one, dropped when there is none."""
    dst_ips: tuple[str, ...]
    out_intfs: tuple[str, ...]


def table_name(switch: str) -> str:
    if not SWITCH_NAME.match(switch):
        raise ValueError(f"{switch!r} is not a fabric switch name")
    return TABLE_PREFIX + switch


def _intf(name: str) -> str:
    if not INTF_NAME.match(name):
        raise ValueError(f"{name!r} is not a fabric interface name")
    return f'"{name}"'


def _verdict(out_intfs: Sequence[str], mode: str) -> str:
    if not out_intfs:
        return "drop"
    if len(out_intfs) == 1:
        return f"fwd to {_intf(out_intfs[0])}"
    targets = ", ".join(f"{i} : {_intf(o)}" for i, o in enumerate(out_intfs))
    return f"fwd to numgen {mode} mod {len(out_intfs)} map {{ {targets} }}"


def spray_ruleset(switch: str, in_intfs: dict[int, str], rules: Sequence[SprayRule],
                  mode: str = "inc", counter: str = "port") -> str:
    """`nft -f` text that (re)creates table fabric_<switch>. `counter` = "port": one ingress
    chain per host-facing interface (`in_intfs`: port number -> interface), each with every rule,
    so each port round-robins on its own; "switch": one chain hooked on all of them
    (`devices = {...}`), so all host ports share each rule's counter and the switch as a whole
    deals its packets round-robin over the uplinks (COUNTERS)."""
    if mode not in NUMGEN_MODES:
        raise ValueError(f"numgen mode must be one of {NUMGEN_MODES}, got {mode!r}")
    if counter not in COUNTERS:
        raise ValueError(f"counter must be one of {COUNTERS}, got {counter!r}")
    table = table_name(switch)
    lines = [f"# per-packet spraying at {switch} (controller.nftables)",
             f"table netdev {table}", f"delete table netdev {table}", f"table netdev {table} {{"]
    ports = sorted(in_intfs.items())
    chains = [ports] if counter == "switch" and ports else [[p] for p in ports]
    for chain in chains:
        if counter == "switch":
            devices = ", ".join(_intf(intf) for _, intf in chain)
            lines += ["\tchain ports {",
                      f"\t\ttype filter hook ingress devices = {{ {devices} }} priority 0; "
                      "policy accept;"]
        else:
            lines += [f"\tchain port{int(chain[0][0])} {{",
                      f"\t\ttype filter hook ingress device {_intf(chain[0][1])} priority 0; "
                      "policy accept;"]
        for rule in rules:
            if not rule.dst_ips:
                continue
            ips = ", ".join(str(ipaddress.IPv4Address(ip)) for ip in rule.dst_ips)
            lines.append(f"\t\tip daddr {{ {ips} }} {_verdict(rule.out_intfs, mode)}")
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# The sequence stamp: numgen yields a 32-bit host-order value that nft converts to network order
# (hton, 4 bytes) and of which it writes the first 2 bytes into the 16-bit ID, i.e. the counter's
# high half: without the shift every ID is 0 (seen on nft 1.0.6 / kernel 6.18, `nft --debug=netlink`).
# Shifted by 16 the ID is the counter itself; nft updates the IPv4 checksum.
STAMP = "ip id set numgen inc mod 65536 << 16"


def voq_ruleset(switch: str, in_intfs: dict[int, str], voq_in: str, voq_out: str,
                local: dict[str, str], remote_ips: Sequence[str], rules: Sequence[SprayRule],
                mode: str = "inc", stamp: bool = True) -> str:
    """`nft -f` text for a DDC NCP with VOQs (topologies.ddc): the host ports send every
    packet for a host into `voq_in`, whose HTB classes are the VOQs; what the VOQs release
    comes out of `voq_out`: packets for the NCP's own hosts (`local`: address -> host port)
    go straight to their port, the others get their sequence number (`stamp`: the IPv4 ID
    field, one counter per destination, i.e. per VOQ, for the egress reassembly) and are
    sprayed over the uplinks (`rules`, as in spray_ruleset, one counter for the NCP)."""
    if mode not in NUMGEN_MODES:
        raise ValueError(f"numgen mode must be one of {NUMGEN_MODES}, got {mode!r}")
    table = table_name(switch)
    ips = [str(ipaddress.IPv4Address(ip)) for ip in remote_ips]
    local_ips = {str(ipaddress.IPv4Address(ip)): intf for ip, intf in local.items()}
    devices = ", ".join(_intf(i) for _, i in sorted(in_intfs.items()))
    lines = [f"# VOQs and per-packet spraying at {switch} (controller.nftables)",
             f"table netdev {table}", f"delete table netdev {table}", f"table netdev {table} {{"]
    every = [*local_ips, *ips]
    if devices and every:
        lines += ["\tchain ports {",
                  f"\t\ttype filter hook ingress devices = {{ {devices} }} priority 0; "
                  "policy accept;",
                  f"\t\tip daddr {{ {', '.join(every)} }} fwd to {_intf(voq_in)}", "\t}"]
    lines += ["\tchain voq {",
              f"\t\ttype filter hook ingress device {_intf(voq_out)} priority 0; policy accept;"]
    lines += [f"\t\tip daddr {ip} fwd to {_intf(intf)}" for ip, intf in local_ips.items()]
    if stamp:
        lines += [f"\t\tip daddr {ip} {STAMP}" for ip in ips]
    for rule in rules:
        if rule.dst_ips:
            dst = ", ".join(str(ipaddress.IPv4Address(ip)) for ip in rule.dst_ips)
            lines.append(f"\t\tip daddr {{ {dst} }} {_verdict(rule.out_intfs, mode)}")
    lines += ["\t\tdrop", "\t}", "}"]
    return "\n".join(lines) + "\n"


def delete_ruleset(switch: str) -> str:
    """`nft -f` text that removes table fabric_<switch> if it exists."""
    table = table_name(switch)
    return f"table netdev {table}\ndelete table netdev {table}\n"


def run_nft(text: str, prefix: Sequence[str] = ()) -> None:
    """Apply `text` with `nft -f -` (one atomic transaction); NftError with nft's message.
    `prefix`: argv that runs `nft` elsewhere, e.g. the ssh command of the server owning the
    switch in cluster mode (fabric.run.cluster.ddc); empty: here."""
    try:
        res = subprocess.run([*prefix, "nft", "-f", "-"], input=text, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NftError(f"cannot run nft: {exc}") from None
    if res.returncode:
        raise NftError(f"nft failed (exit {res.returncode}): {res.stderr.strip()}")


class NftTables:
    """What the controller has applied per switch; applies only changes. The runner is
    injectable so the bookkeeping is testable without root. `prefixes`: per switch, the argv
    prefix that reaches the machine owning it (cluster mode: its server's ssh command); a
    switch without one is applied here, by `runner`."""

    def __init__(self, runner: Callable[[str], None] = run_nft,
                 prefixes: Mapping[str, Sequence[str]] | None = None,
                 remote: Callable[[str, Sequence[str]], None] = run_nft):
        self.runner = runner
        self.remote = remote
        self.prefixes = {k: tuple(v) for k, v in (prefixes or {}).items()}
        self.applied: dict[str, str] = {}

    def _apply(self, switch: str, text: str) -> None:
        prefix = self.prefixes.get(switch)
        if prefix:
            self.remote(text, prefix)
        else:
            self.runner(text)

    def sync(self, switch: str, text: str | None) -> bool:
        """Make the switch's table `text` (None: no table). True if anything was applied."""
        if text == self.applied.get(switch):
            return False
        if text is None:
            self._apply(switch, delete_ruleset(switch))
            del self.applied[switch]
        else:
            self._apply(switch, text)
            self.applied[switch] = text
        LOG.info("nft table %s%s %s", TABLE_PREFIX, switch,
                 "removed" if text is None else "applied")
        return True
