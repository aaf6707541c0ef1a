#!/usr/bin/env bash
# Tunnel scale with the load generator out of the figure (docs/performance.md).
#
# scripts/bench-scale.sh measures through espgw-loadgen over memif: two processes on two CPUs,
# and the generator's own cost and CPU share are part of what is measured. This script gives
# the same gateways the same traffic in one process, as scripts/bench.sh does: for each tunnel
# count N, scripts/loadgen.sh writes the N-tunnel gateway configuration, espgw-loadgen
# --write-pcap writes its traffic (packet k to tunnel k mod N, --pool packets) to a pcap, and
# the gateway replays it (net_pcap infinite_rx) into net_null, its worker alone on CPU 1.
# Throughput = packets out of the null port over WINDOW seconds (scripts/benchtool.py sample),
# median of REPS runs, each with a fresh gateway; the runs of the tunnel counts alternate.
#
#   scripts/bench-scale-replay.sh [N...]     (default 1 32 1000 10000 100000; 1 is always run first)
#   REPS=3 WINDOW=3 WARMUP=1 SIZE=64|imix DIRECTIONS="encrypt decrypt" POOL=16384
#   SKIP_SETUP=1 skips scripts/setup.sh (packages, hugepages, release build).
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(32 1000 10000 100000)
# 1 first: it is the reference for the others.
counts=(1)
for n in "${args[@]}"; do [ "$n" = 1 ] || counts+=("$n"); done
REPS=${REPS:-3}
WINDOW=${WINDOW:-3}
WARMUP=${WARMUP:-1}
SIZE=${SIZE:-64}
DIRECTIONS=${DIRECTIONS:-encrypt decrypt}
POOL=${POOL:-16384}

[ "$(id -u)" = 0 ] || { echo "bench-scale-replay.sh: run as root (EAL)" >&2; exit 1; }
[ "${SKIP_SETUP:-}" = 1 ] || scripts/setup.sh >/dev/null
gw=$PWD/target/release/espgw-dataplane
lg=$PWD/target/release/espgw-loadgen
tool=$PWD/scripts/benchtool.py
work=$(mktemp -d /tmp/espgw-scale-replay.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

size_args=(--size "$SIZE")
[ "$SIZE" != imix ] || size_args=(--imix)
# benchtool's Gbps uses the frame size with FCS; the load generator's sizes are without.
fcs_size=imix
[ "$SIZE" = imix ] || fcs_size=$((SIZE + 4))

# Per N and direction: the pcap and a configuration replaying it (the EAL's memif vdevs
# replaced: port 0 = LAN, port 1 = WAN; the pcap feeds the side the traffic enters).
for n in "${counts[@]}"; do
    dir=$work/$n
    scripts/loadgen.sh config "$dir" "$n"
    for d in $DIRECTIONS; do
        "$lg" --gw-config "$dir/gw.json" --direction "$d" "${size_args[@]}" --pool "$POOL" \
            --write-pcap "$dir/$d.pcap" >/dev/null
        (umask 077; python3 - "$dir" "$d" "$n" "$POOL" <<'PY'
import json, sys
d, direction, n, pool = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = json.load(open(f"{d}/gw.json"))
eal = cfg["dataplane"]["eal"]
keep, i = [], 0
while i < len(eal):
    if eal[i] == "--vdev":
        i += 2
        continue
    if eal[i] == "--no-telemetry":
        i += 1
        continue
    if eal[i] == "--file-prefix":
        keep += ["--file-prefix", f"espgw-scale-replay-{n}-{direction}"]
        i += 2
        continue
    keep.append(eal[i])
    i += 1
pcap = ["--vdev", f"net_pcap0,rx_pcap={d}/{direction}.pcap,infinite_rx=1"]
null = ["--vdev", "net_null0,no-rx=1"]
cfg["dataplane"]["eal"] = keep + (pcap + null if direction == "encrypt" else null + pcap)
# net_pcap holds the whole file in mbufs of the gateway's pool: max(POOL, N) frames, rounded up
# to a whole IMIX pattern.
cfg["dataplane"]["mbufs"] = 16383 + max(pool, int(n)) + 12
json.dump(cfg, open(f"{d}/{direction}.json", "w"))
PY
        )
    done
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$REPS"); do
    for n in "${counts[@]}"; do
        for d in $DIRECTIONS; do
            dir=$work/$n
            rx=0 tx=1
            [ "$d" = encrypt ] || { rx=1 tx=0; }
            "$gw" --config "$dir/$d.json" >"$dir/$d.$r.log" 2>&1 &
            pid=$!
            python3 "$tool" sample "espgw-scale-replay-$n-$d" --pid "$pid" --size "$fcs_size" \
                --warmup "$WARMUP" --window "$WINDOW" --startup-timeout 300 --rx-port "$rx" \
                --tx-port "$tx" --meta "{\"tunnels\": $n, \"dir\": \"$d\", \"rep\": $r}" \
                >>"$work/results.jsonl" || echo "   $n tunnels $d run $r failed: $(tail -n1 "$work/results.jsonl")" >&2
            kill -INT "$pid" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            pid=
        done
    done
done

echo
echo "load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Throughput through one worker, replayed in one process, ${SIZE}-byte frames (without FCS), median of $REPS x ${WINDOW}s:"
python3 - "$work/results.jsonl" "$DIRECTIONS" "${counts[@]}" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
dirs, counts = sys.argv[2].split(), [int(c) for c in sys.argv[3:]]
print(f"{'tunnels':>8} {'dir':<8} {'Mpps':>8} {'ns/pkt':>8} {'% of 1 tun':>11} {'runs (Mpps)':<}")
base = {}
for n in counts:
    for d in dirs:
        ms = [r["mpps"] for r in rows if r.get("tunnels") == n and r.get("dir") == d and "mpps" in r]
        if not ms:
            print(f"{n:>8} {d:<8} failed")
            continue
        m = statistics.median(ms)
        if n == 1:
            base[d] = m
        pct = f"{100 * m / base[d]:.1f}" if base.get(d) else "-"
        print(f"{n:>8} {d:<8} {m:>8.3f} {1e3 / m:>8.1f} {pct:>11} {' '.join(f'{x:.3f}' for x in ms)}")
PY
