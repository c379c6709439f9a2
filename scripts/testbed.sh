#!/usr/bin/env bash
# A one-machine test bed of "servers" for cluster mode (docs/cluster.md): a management LAN
# (a Linux bridge in its own network namespace), a head namespace and N server namespaces on
# 10.250.0.0/24. Each server runs in its own network, mount AND PID namespace with a tmpfs on
# /run, so OVS's default socket paths reach that server's own ovsdb-server + ovs-vswitchd
# (userspace datapath) and never the machine's OVS; its sshd listens on its management address
# only and is the namespace's PID 1: killing it ends every process of that server.
#
#   sudo bash scripts/testbed.sh up   [N]   # N servers (default 2): tb1 10.250.0.11, tb2 .12, ...
#   sudo bash scripts/testbed.sh down       # everything gone (only the test bed's own names)
#   sudo bash scripts/testbed.sh status
#
# Run a cluster experiment from the head:  ip netns exec aftb-head .venv/bin/fabric run X.toml
# with `ssh_config = "/tmp/aifabric-testbed/ssh_config"` in its [cluster] table (servers tb1, tb2).
# Environment: TESTBED_DIR (default /tmp/aifabric-testbed), TESTBED_PREFIX (default aftb).
set -euo pipefail
DIR=${TESTBED_DIR:-/tmp/aifabric-testbed}
P=${TESTBED_PREFIX:-aftb}
NET=10.250.0
SSHD=/usr/sbin/sshd

[[ "$P" =~ ^[a-z][a-z0-9]{0,7}$ ]] || { echo "testbed: bad TESTBED_PREFIX" >&2; exit 2; }

server_body() {  # runs as PID 1 of server $1's PID namespace (via unshare, below)
    local k=$1
    mount -t tmpfs -o mode=0755 tmpfs /run
    mkdir -p /run/openvswitch /run/sshd /run/lock
    local rundir=/run/openvswitch
    ovsdb-tool create $rundir/conf.db /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server $rundir/conf.db --remote=punix:$rundir/db.sock --pidfile=$rundir/ovsdb-server.pid \
        --detach --no-chdir --log-file=$rundir/ovsdb-server.log
    ovs-vsctl --no-wait init
    ovs-vswitchd --pidfile=$rundir/ovs-vswitchd.pid --detach --no-chdir \
        --log-file=$rundir/ovs-vswitchd.log unix:$rundir/db.sock
    ip link set lo up
    exec $SSHD -D -f "$DIR/sshd_config.$k" -E "$DIR/sshd.$k.log"
}

up() {
    local n=${1:-2}
    [[ "$n" =~ ^[1-8]$ ]] || { echo "testbed: 1..8 servers" >&2; exit 2; }
    if ip netns list | grep -qw "$P-lan"; then echo "testbed: already up (down first)" >&2; exit 1; fi
    command -v $SSHD >/dev/null || { echo "testbed: needs openssh-server (apt-get install openssh-server sudo)" >&2; exit 1; }
    install -d -m 0700 "$DIR"
    [ -f "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C aifabric-testbed -f "$DIR/id_ed25519"
    [ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C aifabric-testbed-host -f "$DIR/host_ed25519"
    cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
    : >"$DIR/ssh_config"
    ip netns add "$P-lan"
    ip -n "$P-lan" link add br0 type bridge
    ip -n "$P-lan" link set br0 up
    ip -n "$P-lan" link set lo up
    attach() {  # attach NS ADDR: a veth from the LAN bridge into namespace NS, eth0 = ADDR
        ip -n "$P-lan" link add "p-$1" type veth peer name eth0 netns "$1"
        ip -n "$P-lan" link set "p-$1" master br0 up
        ip -n "$1" addr add "$2/24" dev eth0
        ip -n "$1" link set eth0 up
        ip -n "$1" link set lo up
    }
    ip netns add "$P-head"
    attach "$P-head" "$NET.1"
    for k in $(seq 1 "$n"); do
        local ns="$P-$k" addr="$NET.$((10 + k))"
        ip netns add "$ns"
        attach "$ns" "$addr"
        cat >"$DIR/sshd_config.$k" <<EOF
ListenAddress $addr
HostKey $DIR/host_ed25519
AuthorizedKeysFile $DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes no
PermitTunnel yes
MaxSessions 200
MaxStartups 200
PidFile none
EOF
        cat >>"$DIR/ssh_config" <<EOF
Host tb$k
    HostName $addr
EOF
        setsid ip netns exec "$ns" unshare --mount --pid --fork --kill-child --mount-proc \
            --propagation private bash "$0" _server "$k" </dev/null >"$DIR/server.$k.out" 2>&1 &
        echo $! >"$DIR/server.$k.pid"
    done
    cat >>"$DIR/ssh_config" <<EOF
Host tb* $NET.*
    User root
    IdentityFile $DIR/id_ed25519
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    BatchMode yes
EOF
    echo "$n" >"$DIR/servers"
    for k in $(seq 1 "$n"); do   # wait until every sshd answers (at most ~10 s)
        for _ in $(seq 100); do
            ip netns exec "$P-head" ssh -F "$DIR/ssh_config" "tb$k" true 2>/dev/null && break
            sleep 0.1
        done
        ip netns exec "$P-head" ssh -F "$DIR/ssh_config" "tb$k" true ||
            { echo "testbed: server tb$k does not answer (see $DIR/server.$k.out)" >&2; down; exit 1; }
    done
    echo "testbed: up, $n server(s): $(sed -n 's/^Host \(tb[0-9]\)$/\1/p' "$DIR/ssh_config" | tr '\n' ' ')(ssh -F $DIR/ssh_config)"
}

down() {
    local f pid
    for f in "$DIR"/server.*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        # the unshare process: its child is the PID namespace's init (sshd). unshare --fork
        # blocks SIGTERM while it waits, so the init is killed (by parent pid, never by name):
        # that ends every process of the server, and unshare exits with it.
        if [[ "$pid" =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ] && grep -q unshare "/proc/$pid/cmdline" 2>/dev/null; then
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        fi
        rm -f "$f"
    done
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$P-(lan|head|[0-9]+)$" || true); do
        ip netns del "$ns"
    done
    echo "testbed: down"
}

status() {
    ip netns list | awk '{print $1}' | grep -E "^$P-" || echo "testbed: no namespaces"
}

case "${1:-}" in
    up) up "${2:-2}" ;;
    down) down ;;
    status) status ;;
    _server) server_body "$2" ;;
    *) echo "usage: $0 up [N] | down | status" >&2; exit 2 ;;
esac
