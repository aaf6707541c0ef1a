#!/usr/bin/env bash
# Worker scaling and handoff cost, measured in one run (docs/performance.md).
#
# Each worker's RX queue replays a pcap of cleartext frames to TUNNELS tunnels (net_pcap,
# infinite_rx=1); the gateway encrypts into net_null (opened with no-rx=1: it only sinks).
# Tunnels alternate between the two workers as they are anchored (even -> worker 1, odd ->
# worker 2). Four setups, each REPS times:
#   1w           one worker, every tunnel
#   2w-direct    two workers; each queue carries only the tunnels its worker owns: no handoff
#   2w-mixed     two workers; each queue carries every tunnel: half the packets are handed off
#   2w-crossed   two workers; each queue carries only the other worker's tunnels: every packet
#                is handed off
# Rate = encrypted packets / active seconds. Busy ns/rx = worker busy time summed / packets
# received from the port. Handoff cost = busy ns/rx of 2w-crossed - of 2w-direct: the same
# work, plus one handoff per packet.
#
#   scripts/bench-workers.sh [SIZE...]        (frame sizes, default 64 1400)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(64 1400)
TUNNELS=${TUNNELS:-64}
REPS=${REPS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}

[ "$(id -u)" = 0 ] || { echo "bench-workers.sh: run as root (EAL)" >&2; exit 1; }
scripts/setup.sh >/dev/null
bin=$PWD/target/release/espgw-dataplane
dir=$(mktemp -d /tmp/espgw-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT

config() { # out workers pcap...
    local out=$1 workers=$2
    shift 2
    python3 - "$out" "$workers" "$TUNNELS" "$$" "$@" <<'PY'
import json, os, sys
out, workers, tunnels, pid, pcaps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
free = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("HugePages_Free")))
mem = ["--in-memory"] if free >= 128 else ["--no-huge", "-m", "512"]
lcores = ["0@0"] + [f"{w}@{w % 2}" for w in range(1, workers + 1)]
rx = ",".join(f"rx_pcap={p}" for p in pcaps)
eal = ["--lcores", ",".join(lcores), "--main-lcore", "0", "--no-pci", "--no-telemetry",
       "--file-prefix", f"espgw-bench-{pid}"] + mem + ["--vdev", f"net_pcap0,{rx},infinite_rx=1", "--vdev", "net_null0,no-rx=1"]
cfg = {
    "dataplane": {"eal": eal, "workers": list(range(1, workers + 1)), "mbufs": 32767},
    "interfaces": [{"name": "lan0", "port": 0, "address": "10.1.0.1/16", "mac": "02:00:00:00:01:01"},
                   {"name": "wan0", "port": 1, "address": "192.0.2.1/24"}],
    "neighbors": [{"address": "192.0.2.2", "mac": "02:00:00:00:02:02"}],
    "tunnels": [{"name": f"st0.{t}", "local": "192.0.2.1", "remote": "192.0.2.2"} for t in range(tunnels)],
    "routes": [{"prefix": f"10.2.{t}.0/24", "via": f"st0.{t}"} for t in range(tunnels)],
    "manual_sas": [{"tunnel": f"st0.{t}", "direction": "out", "spi": 0x1001 + t, "algorithm": "aes-128-gcm",
                    "key": os.urandom(20).hex()} for t in range(tunnels)],
}
with open(out, "w") as f:
    json.dump(cfg, f)
os.chmod(out, 0o600)
PY
}

run() { # config -> "mpps busy_ns_per_rx_pkt handoff_fraction congestion_drops"
    local stats=$dir/stats.json
    "$bin" --config "$1" --stats-file "$stats" >"$dir/log" 2>&1 &
    local pid=$!
    sleep "$SECONDS_PER_RUN"
    kill -INT "$pid"
    # A clean stop takes well under a second; never leave a gateway behind.
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" || { cat "$dir/log" >&2; exit 1; }
    python3 - "$stats" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
pkts = s["global"]["encrypted_packets"]
rx = s["global"]["rx_packets"]
active = max(w["active_seconds"] for w in s["workers"])
busy = sum(w["busy_seconds"] for w in s["workers"])
handed = sum(sum(w["handoff"]["sent"].values()) + sum(w["handoff"]["congestion_drops"].values()) for w in s["workers"])
drops = sum(sum(w["handoff"]["congestion_drops"].values()) for w in s["workers"])
print(f"{pkts / active / 1e6:.3f} {busy / rx * 1e9:.1f} {handed / max(rx, 1):.3f} {drops}")
PY
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-6s %-12s %10s %14s %10s %10s\n' size setup Mpps "busy ns/rx" handoff% cong.drops
for size in "${sizes[@]}"; do
    scripts/pcapgen.py "$dir/all.pcap" --size "$size" --tunnels "$TUNNELS"
    scripts/pcapgen.py "$dir/even.pcap" --size "$size" --tunnels "$TUNNELS" --only even
    scripts/pcapgen.py "$dir/odd.pcap" --size "$size" --tunnels "$TUNNELS" --only odd
    config "$dir/1w.json" 1 "$dir/all.pcap"
    config "$dir/2w-direct.json" 2 "$dir/even.pcap" "$dir/odd.pcap"
    config "$dir/2w-mixed.json" 2 "$dir/all.pcap" "$dir/all.pcap"
    config "$dir/2w-crossed.json" 2 "$dir/odd.pcap" "$dir/even.pcap"
    declare -A busy=()
    for setup in 1w 2w-direct 2w-mixed 2w-crossed; do
        : >"$dir/results"
        for _ in $(seq "$REPS"); do run "$dir/$setup.json" >>"$dir/results"; done
        mpps=$(cut -d' ' -f1 "$dir/results" | median)
        busy[$setup]=$(cut -d' ' -f2 "$dir/results" | median)
        frac=$(cut -d' ' -f3 "$dir/results" | median)
        drops=$(cut -d' ' -f4 "$dir/results" | median)
        printf '%-6s %-12s %10s %14s %10s %10s\n' "$size" "$setup" "$mpps" "${busy[$setup]}" \
            "$(awk -v f="$frac" 'BEGIN {printf "%.1f", f * 100}')" "$drops"
    done
    awk -v a="${busy[2w-crossed]}" -v b="${busy[2w-direct]}" -v s="$size" \
        'BEGIN {printf "%-6s handoff cost: %.1f ns per handed-off packet\n", s, a - b}'
done
