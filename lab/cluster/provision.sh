#!/usr/bin/env bash
# Provision one machine of the cluster lab (lab/cluster/Vagrantfile; docs/cluster.md):
#
#   provision.sh ROLE NET PROJECT      ROLE: head | server; NET: e.g. 192.168.56; PROJECT: the
#                                      project's path (the same on every machine)
#
# Installs chrony, openssh-server, sudo and the project (scripts/setup.sh: OVS, Mininet, the .venv);
# names the lab's machines in /etc/hosts; authorises the lab key for root (its private half goes
# to every machine: the head reaches the servers, and the servers each other for tunnel = "ssh");
# lets sshd accept root by key, tunnels and many sessions; makes the servers' clocks follow the
# head's. Idempotent. LAB_ROOT=DIR writes every file under DIR instead of / and installs and
# starts nothing: the dry run the test suite makes (tests/test_cluster_lifecycle.py).
set -euo pipefail
role=${1:-} net=${2:-} project=${3:-}
root=${LAB_ROOT:-}
die() { echo "provision: $*" >&2; exit 2; }
[[ "$role" =~ ^(head|server)$ ]] || die "usage: provision.sh head|server NET PROJECT"
[[ "$net" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "NET: three octets, e.g. 192.168.56"
[ -d "$project" ] || die "no project at $project"
keys="$project/lab/cluster/.keys"
if [ ! -f "$keys/id_ed25519" ] || [ ! -f "$keys/id_ed25519.pub" ]; then
    die "no lab key in $keys (the Vagrantfile makes it)"
fi

# --- 1. packages and the project ------------------------------------------------------------
if [ -z "$root" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q chrony openssh-server sudo rsync
    bash "$project/scripts/setup.sh"
fi

# --- 2. names -------------------------------------------------------------------------------
mkdir -p "$root/etc"
touch "$root/etc/hosts"
for entry in "head 10" "srv1 11" "srv2 12"; do
    read -r host octet <<<"$entry"
    grep -qE "^${net}\.${octet}[[:space:]]+${host}\$" "$root/etc/hosts" || echo "$net.$octet $host" >>"$root/etc/hosts"
done

# --- 3. root's ssh ---------------------------------------------------------------------------
ssh_dir="$root/root/.ssh"
install -d -m 0700 "$ssh_dir"
install -m 0600 "$keys/id_ed25519" "$ssh_dir/aifabric_lab"
install -m 0644 "$keys/id_ed25519.pub" "$ssh_dir/aifabric_lab.pub"
touch "$ssh_dir/authorized_keys" "$ssh_dir/config"
chmod 0600 "$ssh_dir/authorized_keys" "$ssh_dir/config"
grep -qxF "$(cat "$keys/id_ed25519.pub")" "$ssh_dir/authorized_keys" ||
    cat "$keys/id_ed25519.pub" >>"$ssh_dir/authorized_keys"
if ! grep -q "^# aifabric lab" "$ssh_dir/config"; then
    cat >>"$ssh_dir/config" <<CONF
# aifabric lab
Host head srv1 srv2 $net.*
    User root
    IdentityFile /root/.ssh/aifabric_lab
    IdentitiesOnly yes
    StrictHostKeyChecking accept-new
    BatchMode yes
CONF
fi
mkdir -p "$root/etc/ssh/sshd_config.d"
cat >"$root/etc/ssh/sshd_config.d/aifabric-lab.conf" <<CONF
# aifabric lab: the head's engine logs in as root by key, opens one session per emulated node,
# reverse-forwards its controller (AllowTcpForwarding, the default), tunnel = "ssh" needs tunnels
PermitRootLogin prohibit-password
PermitTunnel yes
MaxSessions 200
MaxStartups 200
UseDNS no
CONF

# --- 4. clocks: the servers follow the head (the run checks each server's offset from it) -----
mkdir -p "$root/etc/chrony/conf.d"
if [ "$role" = head ]; then
    printf 'allow %s.0/24\nlocal stratum 8\n' "$net" >"$root/etc/chrony/conf.d/aifabric-lab.conf"
else
    printf 'server %s.10 iburst minpoll 2 maxpoll 4 prefer\nmakestep 0.1 -1\n' "$net" \
        >"$root/etc/chrony/conf.d/aifabric-lab.conf"
fi

if [ -z "$root" ]; then
    systemctl reload ssh || systemctl restart ssh
    systemctl restart chrony
    if [ "$role" = server ]; then chronyc -a makestep >/dev/null || true; fi
fi
echo "provision: $role ready ($(hostname))"
if [ "$role" = head ]; then
    echo "provision: run on the head: cd $project && sudo .venv/bin/fabric run examples/cluster-lab.toml"
fi
