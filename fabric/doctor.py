"""`fabric doctor`: what this machine offers the emulator, and how to fix what is missing.

`checks()` runs every probe (a second or so; the kernel probes need root and leave nothing behind, see
fabric.run.datapath). `main(argv)` prints them as an aligned table, or as JSON with `--json`, and returns 0
when every required check passed, 1 otherwise. Optional checks (netem, iperf3) are reported, never fatal.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Callable

from fabric.run import datapath

SETUP = "bash scripts/setup.sh"
MIN_PYTHON = (3, 10)
MIN_CPUS = 2
MIN_MEM_GIB = 2.0


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report. `fix` says what to do when not ok; optional checks never fail."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


def _check_root() -> Check:
    uid = os.geteuid()
    return Check("root", uid == 0, f"uid {uid}" + ("" if uid == 0 else ": namespaces, OVS, tc and nft need root"),
                 "run as root: sudo .venv/bin/fabric ...")


def _check_system_python() -> Check:
    exe = "/usr/bin/python3"
    here = f"this process: {sys.executable} {sys.version.split()[0]}"
    try:
        out = subprocess.run([exe, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        ver = out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        ver = ""
    if not ver:
        return Check("python3", False, f"{exe} missing; {here}", "apt-get install python3 python3-venv")
    ok = tuple(int(x) for x in ver.split(".")[:2]) >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    return Check("python3", ok, f"{exe} {ver} (Mininet's; need >= {need}); {here}",
                 f"use a distribution whose /usr/bin/python3 is >= {need} (Debian 12, Ubuntu 22.04/24.04)")


def _check_module(name: str, module: str, dist: str, fix: str, note: str = "") -> Check:
    try:
        mod = importlib.import_module(module)
    except Exception as e:
        return Check(name, False, f"not importable from {sys.executable}: {type(e).__name__}: {e}", fix)
    ver = _version(dist) or getattr(mod, "__version__", None) or getattr(mod, "VERSION", None) or "?"
    return Check(name, True, f"{dist} {ver}" + (f"; {note}" if note else ""), fix)


def _check_mininet() -> Check:
    return _check_module(
        "mininet", "mininet.net", "mininet",
        f"apt-get install mininet, then run from the venv made by {SETUP} "
        "(Debian's Mininet is only importable from /usr/bin/python3 and venvs with --system-site-packages)")


def _check_os_ken() -> Check:
    note = "the maintained Ryu fork (ryu 4.34 cannot run on Python >= 3.10)"
    if _version("ryu"):
        note += f"; ryu {_version('ryu')} is installed too and is not used"
    return _check_module("os-ken", "os_ken.base.app_manager", "os-ken", f"{SETUP} (pip install os-ken>=4.2)", note)


def _check_networkx() -> Check:
    return _check_module("networkx", "networkx", "networkx", f"{SETUP} (pip install networkx>=3.0)")


def _check_ovs_installed() -> Check:
    missing = [t for t in ("ovs-vsctl", "ovs-appctl", "ovs-vswitchd", "ovsdb-server") if not datapath.which(t)]
    if missing:
        return Check("openvswitch", False, f"missing: {', '.join(missing)}", "apt-get install openvswitch-switch")
    vsctl = datapath.which("ovs-vsctl") or "ovs-vsctl"
    return Check("openvswitch", True, _tool_version([vsctl, "--version"]) or "installed",
                 "apt-get install openvswitch-switch")


def _check_ovs_running() -> Check:
    return _check_probe("ovs running", datapath.ovs_running(),
                        f"{SETUP} (or /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random)")


def _check_datapath() -> Check:
    kernel = datapath.kernel_ovs_available()
    if kernel:
        return Check("ovs datapath", True, f"kernel ({kernel.reason})", "")
    user = datapath.userspace_ovs_available()
    detail = (f"userspace (netdev): {kernel.reason}; hosts need TCP checksum offload off (the engine does it)"
              if user else f"{kernel.reason}; userspace: {user.reason}")
    return Check("ovs datapath", bool(user), detail, f"apt-get install openvswitch-switch; {SETUP}")


def _check_probe(name: str, probe: datapath.Probe, fix: str, required: bool = True, uses: str = "") -> Check:
    if probe.reason == "needs root":
        return Check(name, False, "not probed: needs root", "run as root", required)
    return Check(name, probe.ok, probe.reason + (f": {uses}" if probe.ok and uses else ""), fix, required)


def _check_netem() -> Check:
    return _check_probe("netem", datapath.netem_available(),
                        "a kernel with sch_netem (modprobe sch_netem), e.g. the Vagrant VM (vagrant up); "
                        "links then get only HTB rate shaping and this machine's own latency",
                        required=False, uses="per-link delay/loss/jitter")


def _check_htb() -> Check:
    return _check_probe("htb shaping", datapath.htb_available(),
                        "a kernel with CONFIG_NET_SCH_HTB; apt-get install iproute2", uses="link rates")


def _check_nft_spray() -> Check:
    return _check_probe("nft spraying", datapath.nft_spray_available(),
                        "apt-get install nftables; a kernel with nf_tables netdev, nft_fwd_netdev, nft_numgen",
                        uses="per-packet spraying for DDC")


def _check_tool(name: str, argv: list[str], pkg: str, why: str, required: bool = True) -> Check:
    exe = datapath.which(argv[0])
    if not exe:
        return Check(name, False, f"{argv[0]} not found ({why})", f"apt-get install {pkg}", required)
    return Check(name, True, _tool_version([exe, *argv[1:]]) or "installed", f"apt-get install {pkg}", required)


def _check_ethtool() -> Check:
    return _check_tool("ethtool", ["ethtool", "--version"], "ethtool", "turns checksum offload off for TCP")


def _check_iptables() -> Check:
    exe = "iptables-legacy" if datapath.which("iptables-legacy") else "iptables"
    return _check_tool("iptables", [exe, "--version"], "iptables",
                       "the DDC's egress reassembly queues packets to NFQUEUE with it; "
                       "without it set reassembly = false", required=False)


def _check_iperf3() -> Check:
    return _check_tool("iperf3", ["iperf3", "--version"], "iperf3", "optional: baseline throughput checks",
                       required=False)


def _mem_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_resources() -> Check:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)
    mem = _mem_gib()
    ok = cpus >= MIN_CPUS and (mem is None or mem >= MIN_MEM_GIB)
    mem_s = "memory unknown" if mem is None else f"{mem:.1f} GiB memory"
    return Check("cpu/memory", ok, f"{cpus} CPUs, {mem_s} (need >= {MIN_CPUS}, >= {MIN_MEM_GIB:g} GiB)",
                 f"give the machine >= {MIN_CPUS} CPUs and >= {MIN_MEM_GIB:g} GiB (the Vagrant VM has 2 / 4 GiB)")


def _check_ovs_buffers() -> Check:
    """ovs-vswitchd's shared send socket buffer (fabric.analysis.ovsbuf) and its receive buffers."""
    from fabric.analysis.ovsbuf import RECOMMENDED_WMEM, skb_truesize_bytes
    from fabric.run import ovsbuf
    b = ovsbuf.buffers()
    send, wmem = b["send"], b["wmem_default"]
    have = send if send is not None else wmem
    fix = (f"{SETUP} (sets net.core.wmem_default={RECOMMENDED_WMEM} in /etc/sysctl.d), then "
           "restart OVS (/usr/share/openvswitch/scripts/ovs-ctl restart; cuts running emulations)")
    if have is None:
        return Check("ovs send buffer", False, "unreadable (needs root and a running OVS)", fix,
                     required=False)
    frames = ", ".join(f"{have // skb_truesize_bytes(m + 14):,} frames at MTU {m}"
                       for m in (1500, 9000))
    where = (f"send socket {have:,} B" if send is not None
             else f"send socket not created yet; will get net.core.wmem_default {have:,} B")
    recv = (f"; receive sockets {b['recv']:,} B each (overflow counted as ovs_rx_dropped)"
            if b["recv"] is not None else "")
    ok = have >= RECOMMENDED_WMEM
    detail = (f"{where} = {frames} queued in all OVS-port egress queues together{recv}"
              + ("" if ok else f"; smaller than {RECOMMENDED_WMEM:,} B: OVS drops packets "
                 "itself beyond it (`fabric check` compares it with each fabric's queues)"))
    if send is not None and wmem is not None and wmem != send:
        detail += (f"; net.core.wmem_default is now {wmem:,} B: OVS gets it when restarted")
    return Check("ovs send buffer", ok, detail, fix, required=False)


CHECKS: tuple[Callable[[], Check], ...] = (
    _check_root, _check_system_python, _check_mininet, _check_os_ken, _check_networkx,
    _check_ovs_installed, _check_ovs_running, _check_datapath, _check_ovs_buffers, _check_netem,
    _check_htb,
    _check_nft_spray, _check_ethtool, _check_iptables, _check_iperf3, _check_resources,
)


def checks() -> list[Check]:
    """Run every check, in report order. Never raises: a crashing check is reported as failed."""
    out = []
    for fn in CHECKS:
        try:
            out.append(fn())
        except Exception as e:
            name = fn.__name__.removeprefix("_check_").replace("_", " ")
            out.append(Check(name, False, f"check crashed: {type(e).__name__}: {e}", "report this as a bug"))
    return out


def passed(results: list[Check]) -> bool:
    """True when every required check is ok."""
    return all(c.ok for c in results if c.required)


def status(c: Check) -> str:
    return "OK" if c.ok else "MISSING"


def format_table(results: list[Check]) -> str:
    """An aligned table: status, name, detail, fix (fix only for what is missing), then a summary line."""
    rows = [(status(c), c.name + ("" if c.required else " (optional)"), c.detail, "" if c.ok else c.fix)
            for c in results]
    head = ("STATUS", "CHECK", "DETAIL", "FIX")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in [head, *rows]]
    lines = [ln.rstrip() for ln in lines]
    req = [c.name for c in results if c.required and not c.ok]
    opt = [c.name for c in results if not c.required and not c.ok]
    summary = (f"doctor: {len(req)} required check(s) missing: {', '.join(req)}" if req
               else "doctor: all required checks passed")
    if opt:
        summary += f"; optional missing (reported, not failing): {', '.join(opt)}"
    lines.append(summary)
    return "\n".join(lines)


def to_json(results: list[Check]) -> str:
    return json.dumps({"ok": passed(results), "checks": [asdict(c) for c in results]}, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fabric doctor",
                                     description="Check what this machine offers the emulator and how to fix "
                                                 "what is missing.")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    results = checks()
    print(to_json(results) if args.json else format_table(results))
    return 0 if passed(results) else 1


if __name__ == "__main__":
    sys.exit(main())
