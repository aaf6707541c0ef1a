#!/usr/bin/env bash
# The main job: sets everything up, then runs two espgw gateways back to back in network
# namespaces (topology.sh), has a host behind one ping a host behind the other, shows the ESP
# on the wire and what tshark decrypts from it, the gateways' counters, and tears it all down.
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
gw_pids=()
cap_pid=""
cleanup() {
    [ -n "$cap_pid" ] && kill -INT "$cap_pid" 2>/dev/null || true
    for p in "${gw_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/topology.sh down "$name"
    rm -rf "$dir"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "topology: host a - gw1 - ($mode ESP) - gw2 - host b, in network namespaces"
scripts/topology.sh up "$name" "$dir" "$mode"

step "starting espgw-dataplane on both gateways"
for g in gw1 gw2; do
    ip netns exec "$name-$g" "$bin" --config "$dir/$g.json" --stats-file "$dir/$g.stats.json" >"$dir/$g.log" 2>&1 &
    gw_pids+=($!)
done
for g in gw1 gw2; do
    for _ in $(seq 100); do
        grep -q "forwarding on" "$dir/$g.log" && break
        sleep 0.2
    done
    grep -q "forwarding on" "$dir/$g.log" || { echo "$g did not start:"; cat "$dir/$g.log"; exit 1; }
    grep '^espgw' "$dir/$g.log" | sed "s/^/  $g: /"
done

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

step "live counters from DPDK telemetry: /espgw/stats on gw1"
# The non-zero counters, one per line (the full set is in the report at exit).
echo /espgw/stats | dpdk-telemetry.py -f "$name-gw1" 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    if line.lstrip().startswith("{") and "/espgw/stats" in line:
        for k, v in json.loads(line)["/espgw/stats"].items():
            if v:
                print(f"  {k:24} {v}")' || true
echo
step "the tunnel map on gw1 (/espgw/tunnel_map)"
echo /espgw/tunnel_map | dpdk-telemetry.py -f "$name-gw1" 2>/dev/null | grep -o '{"/espgw/tunnel_map.*' || true

kill -INT "$cap_pid" 2>/dev/null || true
wait "$cap_pid" 2>/dev/null || true
cap_pid=""

step "on the wire between the gateways (tshark, no keys)"
tshark -n -r "$dir/wan.pcap" -Y esp 2>/dev/null | head -12

step "the same packets decrypted by tshark with the tunnel keys"
scripts/decode.sh "$dir/wan.pcap" "$dir" -Y icmp 2>/dev/null | head -12

step "stopping the gateways: their counters"
for p in "${gw_pids[@]}"; do kill -TERM "$p"; done
wait "${gw_pids[@]}" 2>/dev/null || true
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
