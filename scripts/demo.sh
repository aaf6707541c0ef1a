#!/usr/bin/env bash
# The main job: sets everything up, then runs two espgw gateways back to back in network
# namespaces (topology.sh), each as two processes: espgw-dataplane, and espgw-control, which
# pushes the tunnels, routes and SAs into it over the shared-memory channel. A host behind one
# gateway pings a host behind the other; the demo shows the ESP on the wire and what tshark
# decrypts from it, the gateways' state through the espgw CLI, and tears it all down.
#
#   scripts/demo.sh            raw ESP (IP protocol 50)
#   scripts/demo.sh --natt     ESP in UDP 4500 (RFC 3948)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=raw
[ "${1:-}" = --natt ] && mode=natt

scripts/setup.sh

name=espgw-demo
dir=$(mktemp -d /tmp/espgw-demo.XXXXXX)
bin=$PWD/target/release/espgw-dataplane
ctl=$PWD/target/release/espgw-control
cli=$PWD/target/release/espgw
gw_pids=()
ctl_pids=()
cap_pid=""
cleanup() {
    [ -n "$cap_pid" ] && kill -INT "$cap_pid" 2>/dev/null || true
    for p in "${ctl_pids[@]}" "${gw_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/topology.sh down "$name"
    rm -rf "$dir"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "topology: host a - gw1 - ($mode ESP) - gw2 - host b, in network namespaces"
CONTROL=1 scripts/topology.sh up "$name" "$dir" "$mode"

wait_log() { # file text what
    for _ in $(seq 100); do
        grep -q "$2" "$1" && return 0
        sleep 0.2
    done
    echo "$3 did not start:"; cat "$1"; exit 1
}

step "starting espgw-dataplane on both gateways (ports and workers; it waits for its control)"
for g in gw1 gw2; do
    ip netns exec "$name-$g" "$bin" --config "$dir/$g.json" --stats-file "$dir/$g.stats.json" >"$dir/$g.log" 2>&1 &
    gw_pids+=($!)
done
for g in gw1 gw2; do
    wait_log "$dir/$g.log" "ready for the control process" "$g's dataplane"
    grep '^espgw' "$dir/$g.log" | sed "s/^/  $g: /"
done

step "starting espgw-control on both gateways: each pushes its configuration over the channel"
for g in gw1 gw2; do
    ip netns exec "$name-$g" "$ctl" --config "$dir/$g.json" >"$dir/$g.ctl.log" 2>&1 &
    ctl_pids+=($!)
done
for g in gw1 gw2; do
    wait_log "$dir/$g.ctl.log" "espgw-control: resync:" "$g's control"
    sed "s/^/  $g: /" "$dir/$g.ctl.log"
done
espgw() { ip netns exec "$name-gw1" "$cli" --token-file "$dir/token" "$@"; }

ip netns exec "$name-gw1" tshark -q -n -i wan -a duration:60 -w "$dir/wan.pcap" 2>"$dir/tshark.log" &
cap_pid=$!
for _ in $(seq 50); do grep -q "Capturing on" "$dir/tshark.log" 2>/dev/null && break; sleep 0.2; done
# dumpcap announces the capture a moment before its socket sees packets.
sleep 0.5

step "each host pings its own gateway (answered by espgw's main lcore)"
ip netns exec "$name-a" ping -n -c 2 -i 0.2 -W 2 10.1.0.1 | tail -2
ip netns exec "$name-b" ping -n -c 2 -i 0.2 -W 2 10.2.0.1 | tail -2

step "host a (10.1.0.10) pings host b (10.2.0.10) through the tunnel"
ok=0
ip netns exec "$name-a" ping -n -c 5 -i 0.2 -W 2 10.2.0.10 && ok=1

sleep 0.5
step "gw1: espgw show security ipsec security-associations"
espgw show security ipsec security-associations
step "gw1: espgw show security ipsec statistics"
espgw show security ipsec statistics
step "gw1: espgw show security ike tunnel-map"
espgw show security ike tunnel-map
step "gw1: espgw show status"
espgw show status

kill -INT "$cap_pid" 2>/dev/null || true
wait "$cap_pid" 2>/dev/null || true
cap_pid=""

step "on the wire between the gateways (tshark, no keys)"
tshark -n -r "$dir/wan.pcap" -Y esp 2>/dev/null | head -12

step "the same packets decrypted by tshark with the tunnel keys"
scripts/decode.sh "$dir/wan.pcap" "$dir" -Y icmp 2>/dev/null | head -12

step "stopping the gateways: their counters"
for p in "${ctl_pids[@]}" "${gw_pids[@]}"; do kill -TERM "$p"; done
wait "${ctl_pids[@]}" "${gw_pids[@]}" 2>/dev/null || true
ctl_pids=()
gw_pids=()
for g in gw1 gw2; do
    echo "--- $g"
    sed -n '/^ESP Statistics/,$p' "$dir/$g.log"
done

if [ "$ok" = 1 ]; then
    step "done: traffic crossed the tunnel both ways"
else
    step "FAILED: host b did not answer host a"
    exit 1
fi
