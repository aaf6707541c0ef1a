#!/usr/bin/env bash
# Tunnel scale and latency under load, in one run (docs/performance.md).
#
# For each tunnel count N: a fresh gateway (one worker, scripts/loadgen.sh's memif setup) with
# N tunnels, each an outbound and an inbound SA; espgw-loadgen sends SIZE-byte frames as fast
# as the gateway takes them, spread round-robin over all N tunnels, REPS times per direction.
# Throughput = the median of the received rates. Then, on the 1-tunnel gateway, latency at 50 %
# and 90 % of its measured maximum rate.
#
# These machines are shared. The gateway worker polls without pause, so over a run it should
# get all of its CPU: the script reads the worker thread's CPU time around every run, retries
# runs where it got less than MIN_SHARE % (up to 3 x REPS runs in all), marks the rows where
# that was not enough, and also reports the rate per second of worker CPU.
#
# Memory per SA: the gateway's VmRSS + HugetlbPages (/proc/PID/status), read after its
# throughput runs (steady state, every SA touched), minus the same for the 1-tunnel gateway,
# divided by the 2 (N - 1) extra SAs. It counts everything the process holds for a tunnel: the
# two SAs, their keys and counters, the tunnel, its route and its share of the configuration the
# process keeps, and whatever the allocator kept from parsing the file: an upper bound.
#
#   scripts/bench-scale.sh [N...]          (default 1 1000 10000 100000; 1 is always run first)
#   REPS=3 SECONDS_PER_RUN=3 SIZE=64|imix DIRECTIONS="encrypt decrypt" LAT_SECONDS=3 MIN_SHARE=95
#   SKIP_SETUP=1 skips scripts/setup.sh (packages, hugepages, release build).
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 1000 10000 100000)
REPS=${REPS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
SIZE=${SIZE:-64}
DIRECTIONS=${DIRECTIONS:-encrypt decrypt}
LAT_SECONDS=${LAT_SECONDS:-3}
MIN_SHARE=${MIN_SHARE:-95}

[ "$(id -u)" = 0 ] || { echo "bench-scale.sh: run as root (EAL)" >&2; exit 1; }
[ "${SKIP_SETUP:-}" = 1 ] || scripts/setup.sh >/dev/null
lg=$PWD/target/release/espgw-loadgen
work=$(mktemp -d /tmp/espgw-scale.XXXXXX)
current=
cleanup() {
    [ -z "$current" ] || scripts/loadgen.sh stop "$current"
    rm -rf "$work"
}
trap cleanup EXIT

size_args=(--size "$SIZE")
[ "$SIZE" != imix ] || size_args=(--imix)

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); [v:=v[k] for k in sys.argv[2].split(".")]; print(v)' "$@"; }

# CPU ticks (user + system) of the gateway's worker lcore thread so far. It polls without
# pause, so over a run it should get all of its CPU; less means something else ran there.
worker_ticks() { # dir
    local pid t
    pid=$(cat "$1/gw.pid")
    for t in /proc/"$pid"/task/*; do
        if [ "$(cat "$t/comm" 2>/dev/null)" = rte-worker-1 ]; then
            awk '{print $14 + $15}' "$t/stat"
            return
        fi
    done
    echo 0
}

loadgen() { # dir json direction extra-args...
    local dir=$1 out=$2 direction=$3 try
    shift 3
    # Rarely a memif client cannot connect to the gateway for a while after the previous one
    # left (seen under heavy CPU contention): try again rather than lose the whole run.
    for try in 1 2 3; do
        "$lg" --gw-config "$dir/gw.json" --direction "$direction" "${size_args[@]}" \
            --json "$out" "$@" >"$out.log" 2>&1 && return 0
        echo "   loadgen failed (try $try): $(grep -v '^EAL\|mp action\|Failed to connect' "$out.log" | tail -n1)" >&2
        sleep 2
    done
    cat "$out.log" >&2
    return 1
}

# Results: results[N.direction] = "mpps gbps"; mem[N] = "rss_kB huge_kB"; up[N] = start seconds.
declare -A results=() mem=() up=() failed=() maxrate=() noisy=()
# 1 first: it is the reference for the others.
ordered=(1)
for n in "${counts[@]}"; do [ "$n" = 1 ] || ordered+=("$n"); done

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for n in "${ordered[@]}"; do
    dir=$work/$n
    echo "== $n tunnel(s)" >&2
    scripts/loadgen.sh config "$dir" "$n"
    t0=$(date +%s.%N)
    if ! scripts/loadgen.sh start "$dir" 2>"$dir/start.err"; then
        failed[$n]=$(grep -m1 'espgw-dataplane:' "$dir/gw.log" 2>/dev/null || head -n1 "$dir/start.err")
        echo "   $n tunnels: ${failed[$n]}" >&2
        continue
    fi
    current=$dir
    up[$n]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    for d in $DIRECTIONS; do
        # Runs whose gateway worker had its CPU to itself count; others are retried (up to
        # 3 x REPS runs in all). If too few are clean, all runs count and the row is marked.
        : >"$dir/$d.clean"
        : >"$dir/$d.all"
        clean=0
        r=0
        while [ "$clean" -lt "$REPS" ] && [ "$r" -lt $((3 * REPS)) ]; do
            r=$((r + 1))
            t0=$(worker_ticks "$dir")
            w0=$(date +%s.%N)
            loadgen "$dir" "$dir/$d.$r.json" "$d" --duration "$SECONDS_PER_RUN"
            share=$(awk -v a="$t0" -v b="$(worker_ticks "$dir")" -v s="$w0" -v e="$(date +%s.%N)" \
                -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", 100 * (b - a) / hz / (e - s)}')
            line="$(field "$dir/$d.$r.json" received.mpps) $(field "$dir/$d.$r.json" received.gbps) $share"
            echo "$line" >>"$dir/$d.all"
            if [ "$share" -ge "$MIN_SHARE" ]; then
                echo "$line" >>"$dir/$d.clean"
                clean=$((clean + 1))
            fi
            loss=$(field "$dir/$d.$r.json" loss_packets)
            fails=$(field "$dir/$d.$r.json" rx.samples_failed)
            [ "$loss" = 0 ] && [ "$fails" = 0 ] ||
                echo "   note: $n tunnels $d run $r: loss $loss, failed samples $fails" >&2
        done
        used=$dir/$d.clean
        noisy[$n.$d]=
        if [ "$clean" -lt "$REPS" ]; then
            used=$dir/$d.all
            noisy[$n.$d]="*"
        fi
        results[$n.$d]="$(cut -d' ' -f1 "$used" | median) $(cut -d' ' -f2 "$used" | median) $(cut -d' ' -f3 "$used" | median) $(awk '$3 > 0 {print $1 * 100 / $3}' "$used" | median)"
        echo "   $d: $(cut -d' ' -f1 <<<"${results[$n.$d]}") Mpps; runs (Mpps, worker CPU %): $(awk '{printf "%.3f/%s ", $1, $3}' "$dir/$d.all")" >&2
    done
    mem[$n]=$(scripts/loadgen.sh mem "$dir")
    if [ "$n" = 1 ]; then
        for d in $DIRECTIONS; do
            max=$(awk -v m="${results[1.$d]%% *}" 'BEGIN {printf "%d", m * 1e6}')
            maxrate[$d]=$max
            for pct in 50 90; do
                rate=$((max * pct / 100))
                t0=$(worker_ticks "$dir")
                w0=$(date +%s.%N)
                loadgen "$dir" "$dir/$d.lat$pct.json" "$d" --rate "$rate" --duration "$LAT_SECONDS"
                awk -v a="$t0" -v b="$(worker_ticks "$dir")" -v s="$w0" -v e="$(date +%s.%N)" \
                    -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f\n", 100 * (b - a) / hz / (e - s)}' \
                    >"$dir/$d.lat$pct.share"
            done
        done
    fi
    scripts/loadgen.sh stop "$dir"
    current=
done

# These machines are shared: say what else was running.
echo
echo "load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg); busiest other processes now:"
ps -eo pcpu,comm --sort=-pcpu | awk 'NR > 1 && NR <= 4 {printf "  %s %% %s\n", $1, $2}'
echo
echo "Throughput through one worker, ${SIZE}-byte frames (Ethernet without FCS), median of $REPS x ${SECONDS_PER_RUN}s:"
printf '%-8s %-8s %8s %8s %11s %9s %10s %8s %8s %9s %8s\n' tunnels dir Mpps Gbps "% of 1 tun" "wrk CPU%" "Mpps/CPU" "RSS MB" "huge MB" "bytes/SA" "start s"
for n in "${ordered[@]}"; do
    if [ -n "${failed[$n]:-}" ]; then
        printf '%-8s %s\n' "$n" "${failed[$n]}"
        continue
    fi
    read -r rss huge <<<"${mem[$n]}"
    read -r rss1 huge1 <<<"${mem[1]}"
    per_sa=$(awk -v n="$n" -v a="$rss" -v b="$huge" -v c="$rss1" -v d="$huge1" \
        'BEGIN {if (n > 1) printf "%.0f", (a + b - c - d) * 1024 / (2 * (n - 1)); else print "-"}')
    for d in $DIRECTIONS; do
        read -r mpps gbps share per_cpu <<<"${results[$n.$d]}"
        pct=$(awk -v a="$mpps" -v b="${results[1.$d]%% *}" 'BEGIN {if (b > 0) printf "%.1f", 100 * a / b; else print "-"}')
        printf '%-8s %-8s %8.3f %8.3f %11s %9s %10.3f %8.1f %8.1f %9s %8s\n' "$n" "$d" "$mpps" "$gbps" "$pct" \
            "$share${noisy[$n.$d]}" "$per_cpu" \
            "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$(awk -v k="$huge" 'BEGIN {print k / 1024}')" \
            "$per_sa" "${up[$n]}"
    done
done
echo "(wrk CPU%: median share of its CPU the gateway worker got during the runs; * = fewer than"
echo " REPS runs reached MIN_SHARE=$MIN_SHARE %, so all runs count: something else used that CPU."
echo " Mpps/CPU: the rate divided by that share, what the worker does per second of CPU it gets.)"
if [ -n "${results[10000.${DIRECTIONS%% *}]:-}" ]; then
    for d in $DIRECTIONS; do
        # When either row is marked, compare the rates per second of worker CPU instead.
        read -r a _ _ a_cpu <<<"${results[10000.$d]}"
        read -r b _ _ b_cpu <<<"${results[1.$d]}"
        basis="rate"
        if [ -n "${noisy[10000.$d]}${noisy[1.$d]}" ]; then
            a=$a_cpu b=$b_cpu basis="rate per worker CPU (noisy runs)"
        fi
        awk -v a="$a" -v b="$b" -v d="$d" -v basis="$basis" \
            'BEGIN {p = 100 * a / b; printf "acceptance (%s): 10000 tunnels keep %.1f %% of the 1-tunnel %s (>= 85 %%): %s\n", d, p, basis, (p >= 85 ? "PASS" : "FAIL")}'
    done
fi

echo
echo "Latency through one tunnel at 50 % and 90 % of its maximum rate (${LAT_SECONDS}s; the share of"
echo "their CPUs the gateway worker and the load generator got: below 100, the tail is noise):"
printf '%-8s %6s %12s %10s %10s %10s %10s %10s %8s %8s\n' dir load "rate pps" "rx Mpps" "p50 us" "p99 us" "p99.9 us" "max us" "wrk CPU%" "lg CPU%"
for d in $DIRECTIONS; do
    for pct in 50 90; do
        f=$work/1/$d.lat$pct.json
        [ -f "$f" ] || continue
        python3 - "$f" "$d" "$pct" "$(cat "$work/1/$d.lat$pct.share")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency"]
print(f"{sys.argv[2]:<8} {sys.argv[3] + ' %':>6} {r['params']['rate_pps']:>12} {r['received']['mpps']:>10.3f} "
      f"{l['p50_ns'] / 1e3:>10.1f} {l['p99_ns'] / 1e3:>10.1f} {l['p999_ns'] / 1e3:>10.1f} {l['max_ns'] / 1e3:>10.1f}"
      f" {sys.argv[4]:>8} {r['cpu_share'] * 100:>8.0f}")
PY
    done
done
