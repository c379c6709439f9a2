"""Probes of what this machine's kernel and Open vSwitch offer, and the choice of OVS datapath.

Used by the engine (which datapath to build switches on) and by `fabric doctor`. Every probe returns a
`Probe`, which is truthy exactly when the feature is usable and carries a one-line `reason`. Probes never
raise: a missing tool, a timeout or a refusal is a False probe whose reason says so. Probes that need
root answer `Probe(False, 'needs root')` when not root.

Probes that must touch the kernel (tc qdiscs, nftables) work on a throwaway veth pair `fdprobe0`/
`fdprobe1` inside a private network namespace made by `unshare --net` for that one command: they delete
what they made, and the namespace (with anything left in it) vanishes when the command exits, even if
it is killed. Nothing is ever created in the host's namespace, so probes cannot collide with a running
emulation or with each other.

Kernel OVS: OVS's own `datapath_types` lists `system` even on a kernel without the openvswitch module
(observed here), so it is not used. The reliable test is the one ovs-vswitchd itself does: is the
`ovs_datapath` generic-netlink family there? (Asking for it auto-loads a loadable module.)
"""

from __future__ import annotations

import gzip
import os
import platform
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass

from topologies.errors import SpecError

PROBE_LINKS = ("fdprobe0", "fdprobe1")
PROBE_NFT_TABLE = "fdprobe"
DATAPATH_PREFERENCES = ("auto", "kernel", "user")


@dataclass(frozen=True)
class Probe:
    """Outcome of one probe: truthy iff `ok`; `reason` says why, in one line."""

    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


# Root's tools live in sbin, which a non-root PATH (or a minimal CI environment) may lack.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", "/usr/bin:/bin"),
                               *(d for d in _SBIN if d not in os.environ.get("PATH", "").split(os.pathsep))])


def which(tool: str) -> str | None:
    """shutil.which over PATH plus the sbin directories."""
    return shutil.which(tool, path=SEARCH_PATH)


def _is_root() -> bool:
    return os.geteuid() == 0


def _run(argv: list[str], stdin: str | None = None, timeout: float = 15) -> tuple[int, str]:
    """Run a command; (exit code, stripped stdout+stderr). 127 = not found, 124 = timed out. Never raises."""
    exe = which(argv[0])
    if exe is None:
        return 127, f"{argv[0]} not found"
    try:
        p = subprocess.run([exe, *argv[1:]], input=stdin, capture_output=True, text=True, timeout=timeout,
                           stdin=None if stdin is not None else subprocess.DEVNULL,
                           env={**os.environ, "PATH": SEARCH_PATH})
    except FileNotFoundError:
        return 127, f"{argv[0]} not found"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]} timed out after {timeout:g} s"
    except OSError as e:
        return 126, f"{argv[0]}: {e}"
    return p.returncode, (p.stdout + p.stderr).strip()


def _last_line(text: str) -> str:
    """The telling line of a tool's error output: its last 'Error' line, else its last line (not nft's ^^^ marks)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip(" ^~\t")]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["no output"])[-1]


def _genl_family_exists(name: str) -> bool | None:
    """Ask the kernel for a generic-netlink family (CTRL_CMD_GETFAMILY). None if netlink itself failed.

    The kernel auto-loads a loadable module that provides the family (as for ovs-vswitchd).
    """
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16) as s:  # NETLINK_GENERIC
            s.settimeout(2)
            s.bind((0, 0))
            fam = name.encode() + b"\0"
            attr = struct.pack("=HH", 4 + len(fam), 2) + fam  # CTRL_ATTR_FAMILY_NAME
            attr += b"\0" * (-len(attr) % 4)
            payload = struct.pack("=BBH", 3, 1, 0) + attr  # CTRL_CMD_GETFAMILY, version 1
            # nlmsghdr: len, type GENL_ID_CTRL, flags NLM_F_REQUEST, seq, pid
            s.send(struct.pack("=IHHII", 16 + len(payload), 0x10, 1, 1, 0) + payload)
            data = s.recv(65536)
    except OSError:
        return None
    if len(data) < 16:
        return None
    (mtype,) = struct.unpack_from("=H", data, 4)
    if mtype == 2:  # NLMSG_ERROR: 0 would be an ack, -ENOENT means no such family
        (err,) = struct.unpack_from("=i", data, 16)
        return bool(err == 0)
    return bool(mtype == 0x10)


def _kernel_config(option: str) -> str | None:
    """'y', 'm', 'n' (is not set) for a kernel config option, or None when the config is not readable."""
    want = option + "="
    sources = ["/proc/config.gz", f"/boot/config-{platform.release()}"]
    for path in sources:
        try:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                for line in f:
                    if line.startswith(want):
                        return line.strip().split("=", 1)[1]
                    if line.startswith(f"# {option} is not set"):
                        return "n"
            return "n"
        except OSError:
            continue
    return None


def kernel_ovs_available() -> Probe:
    """Can OVS use the kernel datapath (openvswitch module loaded, built in, or loadable)?"""
    if os.path.isdir("/sys/module/openvswitch"):
        return Probe(True, "openvswitch kernel module loaded")
    if _genl_family_exists("ovs_datapath"):
        return Probe(True, "kernel has the ovs_datapath netlink family (openvswitch built in or auto-loaded)")
    if _is_root():
        rc, out = _run(["modprobe", "-q", "openvswitch"])
        if rc == 0 and _genl_family_exists("ovs_datapath"):
            return Probe(True, "openvswitch kernel module loaded (modprobe)")
    else:
        rc, out = _run(["modprobe", "-n", "-q", "openvswitch"])
        if rc == 0:
            return Probe(True, "openvswitch kernel module loadable (modprobe -n; loads when OVS starts)")
    config = _kernel_config("CONFIG_OPENVSWITCH")
    if config == "n":
        why = "CONFIG_OPENVSWITCH is not set"
    elif not os.path.exists("/proc/modules"):
        why = "module not built in and this kernel has no loadable-module support"
    else:
        why = "module not loaded and not loadable" + ("" if rc in (0, 1) else f" ({out})")
    return Probe(False, f"kernel lacks openvswitch ({why})")


def userspace_ovs_available() -> Probe:
    """Can OVS run the userspace (netdev) datapath: ovs-vswitchd present, /dev/net/tun, netdev type?"""
    if not which("ovs-vswitchd"):
        return Probe(False, "ovs-vswitchd not installed")
    if not os.path.exists("/dev/net/tun"):
        return Probe(False, "/dev/net/tun missing (the netdev datapath's internal ports are tap devices)")
    if _is_root():
        rc, out = _run(["ovs-vsctl", "--timeout=5", "get", "Open_vSwitch", ".", "datapath_types"])
        if rc == 0 and "netdev" not in out:
            return Probe(False, f"this OVS build does not offer the netdev datapath (datapath_types={out})")
    return Probe(True, "userspace datapath (datapath_type=netdev) with tap devices")


def choose_datapath(preference: str = "auto") -> str:
    """'kernel' or 'user' (Mininet's OVSSwitch `datapath=`). auto = kernel where available.

    Raises SpecError("run.datapath", ...) for an unknown preference, or when 'kernel' is demanded but absent.
    """
    if preference not in DATAPATH_PREFERENCES:
        raise SpecError("run.datapath",
                        f"unknown datapath {preference!r}; use one of {', '.join(DATAPATH_PREFERENCES)}")
    if preference == "user":
        return "user"
    probe = kernel_ovs_available()
    if probe:
        return "kernel"
    if preference == "kernel":
        raise SpecError("run.datapath", f"the kernel datapath was demanded, but the {probe.reason}; "
                                    "use datapath = \"auto\" or \"user\" (userspace OVS)")
    return "user"


def ovs_running() -> Probe:
    """Do ovsdb-server and ovs-vswitchd both answer?"""
    if not _is_root():
        return Probe(False, "needs root")
    if not which("ovs-vsctl"):
        return Probe(False, "ovs-vsctl not found (Open vSwitch not installed)")
    rc, out = _run(["ovs-vsctl", "--timeout=5", "show"])
    if rc != 0:
        return Probe(False, f"ovsdb-server does not answer: {_last_line(out)}")
    rc, out = _run(["ovs-appctl", "--timeout=5", "-t", "ovs-vswitchd", "version"])
    if rc != 0:
        return Probe(False, f"ovs-vswitchd does not answer: {_last_line(out)}")
    return Probe(True, f"ovsdb-server and ovs-vswitchd answer ({out.splitlines()[0].strip()})")


def _probe_in_netns(body: str, what: str) -> Probe:
    """Run `body` (sh, -e) in a private netns with the veth pair fdprobe0/fdprobe1; clean up either way."""
    if not _is_root():
        return Probe(False, "needs root")
    a, b = PROBE_LINKS
    script = (
        f"trap 'rc=$?; set +e; nft delete table netdev {PROBE_NFT_TABLE} 2>/dev/null; "
        f"ip link del {a} 2>/dev/null; exit $rc' EXIT\n"
        f"ip link add {a} type veth peer name {b}\n"
        f"{body}\n"
    )
    rc, out = _run(["unshare", "--net", "--", "sh", "-ec", script])
    if rc == 127:
        return Probe(False, f"cannot probe {what}: unshare not found (apt-get install util-linux)")
    if rc != 0:
        return Probe(False, f"{what} refused ({_last_line(out).removeprefix('Error: ').rstrip('.')})")
    return Probe(True, f"{what} accepted by this kernel")


def netem_available() -> Probe:
    """tc netem (per-link delay / loss / jitter)."""
    a = PROBE_LINKS[0]
    p = _probe_in_netns(f"tc qdisc add dev {a} root netem delay 1ms loss 0.1%\ntc qdisc del dev {a} root",
                        "tc netem")
    if not p and p.reason != "needs root":
        return Probe(False, f"this kernel lacks netem: no per-link delay, loss or jitter emulation; {p.reason}")
    return p


def htb_available() -> Probe:
    """tc HTB rate shaping (how links get their emulated rates)."""
    a = PROBE_LINKS[0]
    return _probe_in_netns(
        f"tc qdisc add dev {a} root handle 1: htb default 1\n"
        f"tc class add dev {a} parent 1: classid 1:1 htb rate 10mbit ceil 10mbit\n"
        f"tc qdisc del dev {a} root",
        "tc htb")


def nft_spray_available() -> Probe:
    """nftables per-packet spraying: netdev ingress hook + `fwd to numgen inc mod N map {...}`."""
    if _is_root() and not which("nft"):
        return Probe(False, "nft not found (apt-get install nftables)")
    a, b = PROBE_LINKS
    return _probe_in_netns(
        "nft -f - <<'EOF'\n"
        f"table netdev {PROBE_NFT_TABLE} {{\n"
        f"  chain ing {{\n"
        f"    type filter hook ingress device \"{a}\" priority 0;\n"
        f"    fwd to numgen inc mod 2 map {{ 0 : \"{b}\", 1 : \"{a}\" }};\n"
        f"  }}\n"
        f"}}\n"
        "EOF\n"
        f"nft delete table netdev {PROBE_NFT_TABLE}",
        "nft netdev ingress + fwd + numgen")
