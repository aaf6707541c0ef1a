#!/usr/bin/env bash
# Tunnel scale with the load generator out of the figure (docs/performance.md).
#
# scripts/bench-scale.sh measures through espgw-loadgen over memif: two processes on two CPUs,
# and the generator's own cost and CPU share are part of what is measured. This script gives
# the same gateways the same traffic in one process, as scripts/bench.sh does: for each tunnel
# count N, scripts/loadgen.sh writes the N-tunnel gateway configuration, espgw-loadgen
# --write-pcap writes its traffic (packet k to tunnel k mod N, POOL packets) to a pcap, and
# the gateway replays it (net_pcap infinite_rx) into net_null, its worker alone on CPU 1.
# Throughput = packets out of the null port over WINDOW seconds (scripts/benchtool.py sample),
# the median of REPS runs, each with a fresh gateway; the runs of all tunnel counts alternate.
#
#   scripts/bench-scale-replay.sh [N...]     (default 1 32 1000 10000 100000; 1 is always run first)
#   REPS=3 WINDOW=3 WARMUP=1 SIZE=64|imix DIRECTIONS="encrypt decrypt" POOL=16384 KEEP=1
#   SKIP_SETUP=1 skips scripts/setup.sh (packages, hugepages, release build).
#   GATEWAY=<espgw-dataplane binary> runs another build instead of target/release's.
#   BASELINE=<espgw-dataplane binary> also runs that build (an earlier commit's) in every
#   repetition, right after the current one on the same pcap, and prints both with the
#   current build's rate over the baseline's. BASELINE_STRIP="max_tunnels max_sas" leaves
#   those `dataplane` fields out of the baseline's configuration (for a build older than them).
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
gw=${GATEWAY:-$PWD/target/release/espgw-dataplane}
BASELINE=${BASELINE:-}
BASELINE_STRIP=${BASELINE_STRIP:-}
builds=(current)
[ -z "$BASELINE" ] || builds+=(baseline)
lg=$PWD/target/release/espgw-loadgen
tool=$PWD/scripts/benchtool.py
work=$(mktemp -d /tmp/espgw-scale-replay.XXXXXX)
pid="" prefix=""

# Stops the running gateway by its PID: SIGINT, then SIGKILL after 10 s.
stop_gw() {
    [ -n "$pid" ] || return 0
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "/var/run/dpdk/$prefix"
    pid=
}
cleanup() {
    stop_gw
    if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

size_args=(--size "$SIZE")
[ "$SIZE" != imix ] || size_args=(--imix)
# benchtool's Gbps uses the frame size with FCS; the load generator's sizes are without.
fcs_size=imix
[ "$SIZE" = imix ] || fcs_size=$((SIZE + 4))

# Per N and direction: the pcap, and a configuration replaying it. A case that cannot be
# prepared is reported and left out; the others still run.
declare -A ready=()
for n in "${counts[@]}"; do
    dir=$work/$n
    if ! scripts/loadgen.sh config "$dir" "$n" 2>"$work/config-$n.err"; then
        echo "   $n tunnels: $(head -n1 "$work/config-$n.err")" >&2
        continue
    fi
    for d in $DIRECTIONS; do
        if ! "$lg" --gw-config "$dir/gw.json" --direction "$d" "${size_args[@]}" --pool "$POOL" \
            --write-pcap "$dir/$d.pcap" >"$dir/$d.pcap.log" 2>&1; then
            echo "   $n tunnels $d: $(tail -n1 "$dir/$d.pcap.log")" >&2
            continue
        fi
        # The EAL's memif vdevs replaced: port 0 = LAN, port 1 = WAN (vdevs take port ids in
        # command-line order), the pcap on the side the traffic enters. net_pcap holds the
        # whole file in mbufs of the gateway's pool, so the pool and the memory grow with it.
        (umask 077; BASELINE_STRIP=$BASELINE_STRIP python3 - "$dir" "$d" "$n" "$POOL" <<'PY'
import json, os, sys
d, direction, n, pool = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cfg = json.load(open(f"{d}/gw.json"))
eal, keep, i = cfg["dataplane"]["eal"], [], 0
while i < len(eal):
    if eal[i] in ("--vdev", "--file-prefix", "-m"):
        i += 2
    elif eal[i] in ("--no-telemetry", "--in-memory", "--no-huge"):
        i += 1
    else:
        keep.append(eal[i])
        i += 1
# Whole IMIX patterns of at least one packet per tunnel, as the load generator writes them.
mbufs = 16383 + max(pool, n) + 12
# mbufs, and the tables and SA pools sized for n tunnels (about 1 KB a tunnel, rounded up).
need_mb = mbufs * 2500 // 2**20 + n // 1024 + 128
free_mb = 2 * int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("HugePages_Free")))
mem = ["--in-memory"] if free_mb >= need_mb + 64 else ["--no-huge", "-m", str(need_mb + 256)]
pcap = ["--vdev", f"net_pcap0,rx_pcap={d}/{direction}.pcap,infinite_rx=1"]
null = ["--vdev", "net_null0,no-rx=1"]
cfg["dataplane"]["eal"] = keep + ["--file-prefix", f"espgw-scale-replay-{n}-{direction}"] + mem + (
    pcap + null if direction == "encrypt" else null + pcap)
cfg["dataplane"]["mbufs"] = mbufs
json.dump(cfg, open(f"{d}/{direction}.json", "w"))
for field in os.environ.get("BASELINE_STRIP", "").split():
    cfg["dataplane"].pop(field, None)
json.dump(cfg, open(f"{d}/{direction}.baseline.json", "w"))
PY
        ) && ready[$n.$d]=1
    done
done

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$REPS"); do
    for n in "${counts[@]}"; do
        for d in $DIRECTIONS; do
            [ -n "${ready[$n.$d]:-}" ] || continue
            for build in "${builds[@]}"; do
                dir=$work/$n
                rx=0 tx=1
                [ "$d" = encrypt ] || { rx=1 tx=0; }
                prefix=espgw-scale-replay-$n-$d
                bin=$gw config=$dir/$d.json
                [ "$build" = current ] || { bin=$BASELINE config=$dir/$d.baseline.json; }
                "$bin" --config "$config" >"$dir/$d.$build.$r.log" 2>&1 &
                pid=$!
                # The sampler on CPU 0, away from the worker.
                if out=$(taskset -c 0 python3 "$tool" sample "$prefix" --pid "$pid" --size "$fcs_size" \
                    --warmup "$WARMUP" --window "$WINDOW" --startup-timeout 300 --rx-port "$rx" \
                    --tx-port "$tx" --meta "{\"tunnels\": $n, \"dir\": \"$d\", \"rep\": $r, \"build\": \"$build\"}"); then
                    echo "$out" | head -n1 >>"$work/results.jsonl"
                else
                    echo "   $n tunnels $d $build run $r failed: ${out:-sampler error}" >&2
                    tail -n 15 "$dir/$d.$build.$r.log" >&2
                fi
                stop_gw
            done
        done
    done
done

echo
echo "load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Throughput through one worker, replayed in one process, ${SIZE}-byte frames (without FCS), median of $REPS x ${WINDOW}s:"
python3 - "$work/results.jsonl" "$REPS" "$DIRECTIONS" "${builds[*]}" "${counts[@]}" <<'PY'
import json, os, statistics, sys
path, reps, dirs, builds = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
counts = [int(c) for c in sys.argv[5:]]
rows = [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
print(f"{'tunnels':>8} {'dir':<8} {'build':<9} {'Mpps':>8} {'ns/pkt':>8} {'% of 1 tun':>11}  runs (Mpps)")
one, med = {}, {}
for n in counts:
    for d in dirs:
        for b in builds:
            ms = [r["mpps"] for r in rows if r.get("tunnels") == n and r.get("dir") == d
                  and r.get("build", "current") == b and "mpps" in r]
            if not ms:
                print(f"{n:>8} {d:<8} {b:<9} failed")
                continue
            # The lower middle, as scripts/bench-scale.sh takes it.
            m = med[n, d, b] = statistics.median_low(ms)
            if n == 1:
                one[d, b] = m
            pct = f"{100 * m / one[d, b]:.1f}" if (d, b) in one else "-"
            runs = " ".join(f"{x:.3f}" for x in ms) + ("" if len(ms) == reps else f" ({len(ms)}/{reps} runs)")
            print(f"{n:>8} {d:<8} {b:<9} {m:>8.3f} {1e3 / m:>8.1f} {pct:>11}  {runs}")
if "baseline" in builds:
    print()
    print("current / baseline, the same pcap in the same repetitions:")
    for n in counts:
        for d in dirs:
            if (n, d, "current") in med and (n, d, "baseline") in med:
                print(f"{n:>8} {d:<8} {med[n, d, 'current'] / med[n, d, 'baseline']:.3f}")
PY
