#!/usr/bin/env bash
# Two gateways back to back in network namespaces, a host behind each:
#
#   NAME-a            NAME-gw1                          NAME-gw2             NAME-b
#   eth0 10.1.0.10 -- lan [espgw 10.1.0.1 | 192.0.2.1] wan -- wan [192.0.2.2 | 10.2.0.1] lan -- eth0 10.2.0.10
#
# The gateways' interfaces carry no kernel addresses: espgw-dataplane owns them through
# net_af_packet (qdisc_bypass=0, so a capture on a port also sees what espgw sends). `up` also
# writes the two gateways' configurations (mirrored manual SAs with fresh random keys, mode
# 0600) and tunnel.env (the SPIs and keys, for decoding captures with decode.sh).
#
#   topology.sh up NAME DIR [raw|natt]
#   topology.sh down NAME
set -euo pipefail

cmd=${1:-}
name=${2:-}
[ -n "$cmd" ] && [ -n "$name" ] || { echo "usage: $0 up NAME DIR [raw|natt] | down NAME" >&2; exit 2; }

ns() { ip netns exec "$name-$1" "${@:2}"; }

down() {
    for n in a gw1 gw2 b; do
        ip netns del "$name-$n" 2>/dev/null || true
    done
}

if [ "$cmd" = down ]; then
    down
    rm -rf "/var/run/dpdk/$name-gw1" "/var/run/dpdk/$name-gw2"
    exit 0
fi
[ "$cmd" = up ] || { echo "unknown command $cmd" >&2; exit 2; }
dir=${3:?DIR}
mode=${4:-raw}
case "$mode" in raw|natt) ;; *) echo "mode must be raw or natt" >&2; exit 2 ;; esac

down
for n in a gw1 gw2 b; do
    ip netns add "$name-$n"
    ns "$n" ip link set lo up
done
ip link add eth0 netns "$name-a" type veth peer name lan netns "$name-gw1"
ip link add wan netns "$name-gw1" type veth peer name wan netns "$name-gw2"
ip link add lan netns "$name-gw2" type veth peer name eth0 netns "$name-b"

for g in gw1 gw2; do
    for i in lan wan; do
        # The kernel must stay quiet on the gateway's ports: no addresses, no IPv6 chatter.
        ns "$g" sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1"
        ns "$g" ip link set "$i" up
        ns "$g" ethtool -K "$i" gro off >/dev/null 2>&1 || true
    done
done
host() { # ns addr gw
    ns "$1" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
    ns "$1" ip addr add "$2" dev eth0
    ns "$1" ip link set eth0 up
    ns "$1" ip route add default via "$3"
    # Complete checksums in the frames the gateway reads (veth leaves them partial).
    ns "$1" ethtool -K eth0 tx off >/dev/null 2>&1 || true
}
host a 10.1.0.10/24 10.1.0.1
host b 10.2.0.10/24 10.2.0.1

key() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
K1=$(key 20) # gw1 -> gw2, aes-128-gcm: 16-byte key || 4-byte salt
K2=$(key 36) # gw2 -> gw1, aes-256-gcm: 32-byte key || 4-byte salt

# Hugepages if there are enough free, else plain memory (slower, but works anywhere).
free_pages=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
if [ "${free_pages:-0}" -ge 128 ]; then mem='"--in-memory"'; else mem='"--no-huge", "-m", "256"'; fi
udp=""
[ "$mode" = natt ] && udp=', "udp_encap": {"local_port": 4500, "remote_port": 4500}'

gateway() { # file prefix main-lcore worker lan-addr wan-addr peer remote-net out-spi out-alg out-key in-spi in-alg in-key
    umask 077
    cat > "$1" <<JSON
{
  "dataplane": {
    "eal": ["-l", "0,1", "--main-lcore", "$3", $mem, "--no-pci", "--file-prefix", "$2",
            "--vdev", "net_af_packet0,iface=lan,qdisc_bypass=0", "--vdev", "net_af_packet1,iface=wan,qdisc_bypass=0"],
    "workers": [$4],
    "poll_sleep_us": 20
  },
  "interfaces": [{"name": "lan0", "port": 0, "address": "$5"},
                 {"name": "wan0", "port": 1, "address": "$6/24"}],
  "tunnels": [{"name": "st0.0", "local": "$6", "remote": "$7"$udp}],
  "routes": [{"prefix": "$8", "via": "st0.0"}],
  "manual_sas": [
    {"tunnel": "st0.0", "direction": "out", "spi": "$9", "algorithm": "${10}", "key": "${11}", "esn": ${15}},
    {"tunnel": "st0.0", "direction": "in", "spi": "${12}", "algorithm": "${13}", "key": "${14}", "esn": ${16}, "replay_window": 4096}
  ]
}
JSON
}
mkdir -p "$dir"
# Each gateway's worker gets its own CPU: gw1 polls on 1, gw2 on 0.
gateway "$dir/gw1.json" "$name-gw1" 0 1 10.1.0.1/24 192.0.2.1 192.0.2.2 10.2.0.0/16 0x1001 aes-128-gcm "$K1" 0x2001 aes-256-gcm "$K2" false true
gateway "$dir/gw2.json" "$name-gw2" 1 0 10.2.0.1/24 192.0.2.2 192.0.2.1 10.1.0.0/16 0x2001 aes-256-gcm "$K2" 0x1001 aes-128-gcm "$K1" true false
(umask 077; printf 'MODE=%s\nSPI_1TO2=0x1001\nKEY_1TO2=%s\nSPI_2TO1=0x2001\nKEY_2TO1=%s\n' "$mode" "$K1" "$K2" > "$dir/tunnel.env")
