#!/usr/bin/env bash
# The control process's figures (docs/performance.md, "The control process"):
#
#  1. Installing N tunnels (default 10 000) with their SAs and routes over the channel while
#     the gateway forwards: one `espgw commit` from a 1-tunnel configuration to the N-tunnel
#     one; the time until every change is in force on the worker, and the longest pause the
#     worker took between two bursts to apply changes (`longest_change_pause_us`).
#  2. Forwarding with the control attached and `/metrics` scraped every second, against the
#     dataplane alone, in alternating runs: REPS of each, WINDOW seconds each.
#
# The gateway replays a 1-tunnel encrypt pcap (net_pcap infinite_rx) into net_null, its worker
# alone on CPU 1; the control, the scraper and the sampler run on CPU 0.
#
#   scripts/bench-control.sh            N=10000 REPS=3 WINDOW=3 WARMUP=1 SKIP_SETUP=1 KEEP=1
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
REPS=${REPS:-3}
WINDOW=${WINDOW:-3}
WARMUP=${WARMUP:-1}
[ "$(id -u)" = 0 ] || { echo "bench-control.sh: run as root (EAL)" >&2; exit 1; }
[ "${SKIP_SETUP:-}" = 1 ] || scripts/setup.sh >/dev/null
rel=$PWD/target/release
tool=$PWD/scripts/benchtool.py
work=$(mktemp -d /tmp/espgw-bench-control.XXXXXX)
prefix=espgw-bench-control
shm=/dev/shm/$prefix
port=18443
dp="" ctl="" scraper=""
stop() { # PID
    [ -n "$1" ] || return 0
    kill -INT "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
stop_all() {
    stop "$scraper"; stop "$ctl"; stop "$dp"
    scraper="" ctl="" dp=""
    rm -rf "/var/run/dpdk/$prefix" "$shm"
}
cleanup() {
    stop_all
    if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

scripts/loadgen.sh config "$work/big" "$N" >/dev/null
scripts/loadgen.sh config "$work/one" 1 >/dev/null
"$rel/espgw-loadgen" --gw-config "$work/one/gw.json" --direction encrypt --size 64 --pool 16384 \
    --write-pcap "$work/enc.pcap" >"$work/pcap.log" 2>&1
(umask 077; head -c 32 /dev/urandom | base64 >"$work/token")
(umask 077; python3 - "$work" "$N" "$prefix" "$shm" "$port" <<'PY'
import json, sys
work, n, prefix, shm, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
big = json.load(open(f"{work}/big/gw.json"))
one = json.load(open(f"{work}/one/gw.json"))
eal, keep, i = big["dataplane"]["eal"], [], 0
while i < len(eal):
    if eal[i] in ("--vdev", "--file-prefix", "-m"):
        i += 2
    elif eal[i] in ("--no-telemetry", "--in-memory", "--no-huge"):
        i += 1
    else:
        keep.append(eal[i]); i += 1
free = 2 * int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("HugePages_Free")))
mem = ["--in-memory"] if free >= 768 else ["--no-huge", "-m", "1024"]
dataplane = dict(big["dataplane"])
dataplane["eal"] = keep + ["--file-prefix", prefix] + mem + [
    "--vdev", f"net_pcap0,rx_pcap={work}/enc.pcap,infinite_rx=1", "--vdev", "net_null0,no-rx=1"]
dataplane["mbufs"] = 16383 + 16384 + 12
control = {"listen": f"127.0.0.1:{port}", "token_file": f"{work}/token", "state_dir": f"{work}/state"}
def write(name, net, channel):
    cfg = dict(net)
    cfg["dataplane"] = dict(dataplane)
    if channel:
        cfg["dataplane"]["channel"] = shm
        cfg["control"] = control
    json.dump(cfg, open(f"{work}/{name}.json", "w"))
write("standalone", one, False)
write("control-one", one, True)
write("control-big", big, True)
PY
)
export ESPGW_URL=http://127.0.0.1:$port ESPGW_TOKEN_FILE=$work/token

start_dp() { # CONFIG LOG
    "$rel/espgw-dataplane" --config "$1" >"$2" 2>&1 &
    dp=$!
}
start_ctl() { # CONFIG LOG
    rm -rf "$work/state"
    taskset -c 0 "$rel/espgw-control" --config "$1" >"$2" 2>&1 &
    ctl=$!
    for _ in $(seq 600); do grep -q "resync:" "$2" 2>/dev/null && return 0; sleep 0.1; done
    echo "bench-control.sh: no resync"; cat "$2"; exit 1
}
sample() { # META
    taskset -c 0 python3 "$tool" sample "$prefix" --pid "$dp" --size 68 --warmup "$WARMUP" \
        --window "$WINDOW" --startup-timeout 300 --rx-port 0 --tx-port 1 --meta "$1"
}

echo "== 1. installing $N tunnels over the channel while forwarding"
start_dp "$work/control-one.json" "$work/install.dp.log"
start_ctl "$work/control-one.json" "$work/install.ctl.log"
sample '{"phase": "one tunnel"}' | head -n1 >"$work/install.jsonl"
"$rel/espgw" --json commit "$work/control-big.json" >"$work/commit-big.json"
sleep 0.5
"$rel/espgw" --json show security ipsec security-associations >"$work/sas.json"
curl -s -H "Authorization: Bearer $(cat "$work/token")" "$ESPGW_URL/v1/workers" >"$work/workers.json"
"$rel/espgw" --json commit "$work/control-one.json" >"$work/commit-one.json"
python3 - "$work" "$N" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
add = json.load(open(f"{work}/commit-big.json"))
rem = json.load(open(f"{work}/commit-one.json"))
sas = json.load(open(f"{work}/sas.json"))
workers = json.load(open(f"{work}/workers.json"))
pause = max(w["longest_change_pause_us"] for w in workers)
p99 = max(w["p99_change_pause_us"] for w in workers)
print(f"  commit of {n} tunnels: {add['changes']} changes in force in {add['apply_ms']} ms "
      f"({add['apply_ms'] * 1000 / max(add['changes'], 1):.1f} us a change); {len(sas)} SAs installed")
print(f"  commit back to 1 tunnel: {rem['changes']} changes in force in {rem['apply_ms']} ms")
print(f"  pauses of the worker between two bursts to apply changes: 99 % under {p99:.0f} us, "
      f"longest {pause:.1f} us")
PY
stop_all

echo "== 2. forwarding with the control attached and /metrics scraped every second, against alone"
for r in $(seq "$REPS"); do
    start_dp "$work/standalone.json" "$work/alone.$r.log"
    sample "{\"case\": \"alone\", \"rep\": $r}" | head -n1 >>"$work/metrics.jsonl"
    stop_all
    start_dp "$work/control-one.json" "$work/attached.$r.log"
    start_ctl "$work/control-one.json" "$work/attached.$r.ctl.log"
    (while sleep 1; do
        taskset -c 0 curl -s -o /dev/null -H "Authorization: Bearer $(cat "$work/token")" "$ESPGW_URL/metrics"
    done) &
    scraper=$!
    sample "{\"case\": \"attached\", \"rep\": $r}" | head -n1 >>"$work/metrics.jsonl"
    stop_all
done
python3 - "$work/metrics.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = {}
for case in ("alone", "attached"):
    ms = [r["mpps"] for r in rows if r.get("case") == case and "mpps" in r]
    med[case] = statistics.median_low(ms) if ms else float("nan")
    print(f"  {case:<9} {med[case]:.3f} Mpps  runs {' '.join(f'{x:.3f}' for x in ms)}")
print(f"  attached / alone: {med['attached'] / med['alone']:.3f}")
PY
