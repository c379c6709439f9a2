#!/usr/bin/env bash
# Install everything the emulator needs and start Open vSwitch. CI (.ci/run) and the Vagrant VM both
# provision with this script. Run as root from anywhere: `sudo bash scripts/setup.sh`.
# Supported: Debian 12, Ubuntu 22.04 / 24.04. Needs no stdin. Idempotent: a second run changes
# nothing, only reports "already ...", and takes about a second.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
stamp="$venv/.aifabric-setup-stamp"
packages=(mininet openvswitch-switch iperf3 ethtool nftables iptables iputils-ping python3-venv python3-pip iproute2 procps)
ovs_ctl=/usr/share/openvswitch/scripts/ovs-ctl

say() { printf 'setup: %-14s %s\n' "$1:" "$2"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (sudo bash scripts/setup.sh)"
exec </dev/null  # nothing below may wait for input
export DEBIAN_FRONTEND=noninteractive

# --- 1. distribution -------------------------------------------------------------------------
os_id=unknown os_ver=unknown
if [ -r /etc/os-release ]; then
    os_id=$(. /etc/os-release && echo "${ID:-unknown}")
    os_ver=$(. /etc/os-release && echo "${VERSION_ID:-unknown}")
fi
case "$os_id $os_ver" in
    "debian 12" | "ubuntu 22.04" | "ubuntu 24.04") say os "$os_id $os_ver (supported)" ;;
    *) command -v apt-get >/dev/null || die "$os_id $os_ver: no apt-get; supported are Debian 12, Ubuntu 22.04/24.04"
       say os "$os_id $os_ver is not tested (supported: Debian 12, Ubuntu 22.04/24.04); trying anyway" ;;
esac

# --- 2. system packages ----------------------------------------------------------------------
missing=()
for p in "${packages[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || missing+=("$p")
done
if [ ${#missing[@]} = 0 ]; then
    say packages "already installed (${packages[*]})"
else
    say packages "installing ${missing[*]} (apt-get update + install)"
    apt-get update -q
    apt-get install -y -q \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
    say packages "installed ${missing[*]}"
fi

# --- 3. virtualenv ---------------------------------------------------------------------------
# Debian/Ubuntu's Mininet module exists only for /usr/bin/python3: the venv must be made from that
# interpreter and see the system site-packages.
venv_ok() {
    [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import mininet.net' 2>/dev/null
}
if venv_ok; then
    say venv "already present ($venv, sees Mininet)"
else
    if [ -e "$venv" ]; then
        say venv "$venv exists but cannot import Mininet: recreating it"
        /usr/bin/python3 -m venv --clear --system-site-packages "$venv"
    else
        /usr/bin/python3 -m venv --system-site-packages "$venv"
    fi
    venv_ok || die "$venv still cannot import mininet (is the mininet package installed for /usr/bin/python3?)"
    say venv "created $venv from /usr/bin/python3 ($("$venv/bin/python" -V 2>&1)) with system site-packages"
fi

# --- 4. the project itself (editable, with the test extra) ------------------------------------
# The stamp holds a hash of what decides the install: packaging files, interpreter, repo location.
want=$( { cat "$repo/setup.cfg" "$repo/pyproject.toml" 2>/dev/null; "$venv/bin/python" -V 2>&1; echo "$repo"; } \
        | sha256sum | cut -d' ' -f1)
installed_version() {
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("aifabric-emulator"))' 2>/dev/null
}
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && version=$(installed_version); then
    say python "already installed: aifabric-emulator $version (editable, [test]; setup.cfg unchanged)"
else
    rm -f "$stamp"
    # pip.conf on some machines names local index folders that lack most projects; pip warns once per
    # project ("Location 'file:///...' is ignored: it is neither a file nor a directory"): harmless, hidden.
    (cd "$repo" && "$venv/bin/python" -m pip install -q -e '.[test]' 2>&1) |
        { grep -v "is ignored: it is neither a file nor a directory" || true; }
    version=$(installed_version) || die "pip install finished but aifabric-emulator is not importable"
    echo "$want" >"$stamp"
    say python "installed aifabric-emulator $version (editable, [test]) into $venv"
fi

# --- 5. Open vSwitch's send buffer -----------------------------------------------------------
# The userspace datapath sends every packet through ONE AF_PACKET socket, and every packet waiting
# in any OVS port's egress queue is charged to its send buffer, fixed at net.core.wmem_default when
# the socket is made. The kernel default (212,992 B, ~90 full 1500-byte frames for ALL ports
# together) makes OVS drop packets silently as soon as queues fill. 32 MiB holds every OVS-port
# queue of a 64-host leaf/spine at the default 100 packets full at once at MTU 1500 (128 x 100 x
# 2,304 B), or ~2,600 jumbo frames; memory is charged only while packets wait
# (fabric/analysis/ovsbuf.py; `fabric check` compares it with each fabric's queues).
wmem=33554432
sysctl_file=/etc/sysctl.d/60-aifabric-emulator.conf
line="net.core.wmem_default = $wmem"
if [ "$(cat "$sysctl_file" 2>/dev/null)" = "$line" ]; then
    say sendbuffer "already persistent ($sysctl_file: $line)"
else
    echo "$line" >"$sysctl_file"
    say sendbuffer "wrote $sysctl_file ($line)"
fi
if [ "$(sysctl -n net.core.wmem_default)" = "$wmem" ]; then
    say sendbuffer "already set (net.core.wmem_default = $wmem)"
else
    sysctl -q -w net.core.wmem_default="$wmem"
    say sendbuffer "set net.core.wmem_default = $wmem (was the kernel default)"
fi

# --- 6. Open vSwitch -------------------------------------------------------------------------
ovs_up() {
    # ovs-vsctl only talks to ovsdb-server; ask ovs-vswitchd too.
    timeout 10 ovs-vsctl --timeout=5 show >/dev/null 2>&1 &&
        timeout 10 ovs-appctl --timeout=5 -t ovs-vswitchd version >/dev/null 2>&1
}
kernel_module=no
if { command -v modprobe >/dev/null && modprobe -q openvswitch 2>/dev/null; } || [ -d /sys/module/openvswitch ]; then
    kernel_module=yes
fi
if ovs_up; then
    say openvswitch "already running ($(ovs-vsctl --version | head -n1))"
else
    if [ "$kernel_module" = yes ] && [ -d /run/systemd/system ]; then
        how="systemctl start openvswitch-switch"
        systemctl start openvswitch-switch
    else
        # Without the kernel module ovs-ctl still starts both daemons (userspace datapath). Daemons that
        # already run are left alone ("... is already running").
        how="ovs-ctl start"
        "$ovs_ctl" start --system-id=random ||
            say openvswitch "ovs-ctl start returned $? (kernel module missing?)"
        if ! timeout 10 ovs-appctl --timeout=5 -t ovs-vswitchd version >/dev/null 2>&1; then
            how="$how + ovs-vswitchd --detach"
            ovs-vswitchd --pidfile --detach --log-file unix:/var/run/openvswitch/db.sock
        fi
    fi
    for _ in $(seq 1 30); do ovs_up && break; sleep 1; done
    ovs_up || die "Open vSwitch did not answer 30 s after '$how' (see /var/log/openvswitch/)"
    say openvswitch "started with $how ($(ovs-vsctl --version | head -n1))"
fi

# OVS keeps the send buffer its socket got when made: say so when it is smaller, never restart it
# here (a restart cuts every emulation running on the machine).
# (grep finds nothing before OVS's first send; under pipefail that must not end the script.)
ovs_tb=$(ss -0 -m -n -p 2>/dev/null | { grep '\[0\]:\*.*"ovs-vswitchd"' || true; } |
    sed -n 's/.*[(,]tb\([0-9]*\).*/\1/p' | head -n1)
if [ -z "$ovs_tb" ]; then
    say sendbuffer "ovs-vswitchd has not sent yet: its send socket will get $wmem B"
elif [ "$ovs_tb" -ge "$wmem" ]; then
    say sendbuffer "ovs-vswitchd sends with a $ovs_tb B buffer"
else
    say sendbuffer "WARNING: ovs-vswitchd still sends with a $ovs_tb B buffer (set before $sysctl_file):"
    say sendbuffer "  it drops packets silently once queues fill; when no emulation is running, restart OVS:"
    say sendbuffer "  $ovs_ctl restart --system-id=random   (or systemctl restart openvswitch-switch)"
fi

# --- 7. datapath -----------------------------------------------------------------------------
# fabric.run.datapath decides for the emulator; ask it so this line can never disagree with a run.
dp=$("$venv/bin/python" -c '
from fabric.run.datapath import choose_datapath, kernel_ovs_available
probe = kernel_ovs_available()
kind = choose_datapath("auto")
print(("kernel" if kind == "kernel" else "userspace (datapath_type=netdev)") + " - " + probe.reason)
') || die "could not run fabric.run.datapath.choose_datapath"
say datapath "$dp"
