#!/usr/bin/env bash
# shellcheck disable=SC2054 # commas inside EAL arguments are not array separators
# espgw-dataplane side by side with DPDK's ipsec-secgw, measured in one run on the same setup
# (method and columns: docs/performance.md, "Side by side with DPDK's ipsec-secgw").
#
#   scripts/bench.sh [--sizes 64,512,1400,imix] [--algos aes-128-gcm,aes-256-gcm]
#                    [--dirs encrypt,decrypt] [--reps N] [--window S] [--warmup S] [--tunnels N]
#                    [--markdown FILE] [--json FILE] [--no-check] [--no-io] [--no-huge] [--keep]
#
# The same options as environment variables: SIZES ALGOS DIRS REPS WINDOW WARMUP TUNNELS (flags
# win). --tunnels N (1..256, default 1): N tunnels (SA pairs) on both gateways, one per
# destination subnet, and the frames go to them in turn, so every packet of a burst has another
# SA than the one before it.
# Also: CRYPTO_OPS (dpdk-test-crypto-perf ops per size, default 4000000), SECGW_ARGS (extra
# ipsec-secgw application options, e.g. "-l" for its librte_ipsec code path), ESPGW_BACKENDS
# (e.g. "ring,cryptodev": extra espgw runs with dataplane.crypto set; a binary without that
# field rejects the config, and those runs are reported as failed), ESPGW_BASELINE (another
# espgw-dataplane binary, e.g. an earlier commit's, measured beside the current one in every
# repetition: an A/B of a change in the same minutes).
#
# Frame sizes count the 4-byte FCS (RFC 2544, pktgen): 64 is a 60-byte frame in the pcap; imix
# is 7:4:1 of 64/570/1518.
# Every case: one forwarding lcore on CPU 1, a pcap replayed by net_pcap (infinite_rx=1) into
# port 0, port 1 a net_null sink (no-rx=1); the null port's TX packet counter is read over DPDK
# telemetry after a warm-up, twice, WINDOW seconds apart. Median of REPS runs. Exit status 1 if
# any run failed (the table still prints, with the failures listed under it).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '6,8p' "$0" | sed 's/^# \{0,2\}//' >&2; exit 2; }

SIZES=${SIZES:-64,512,1400,imix}
ALGOS=${ALGOS:-aes-128-gcm,aes-256-gcm}
DIRS=${DIRS:-encrypt,decrypt}
REPS=${REPS:-3}
WINDOW=${WINDOW:-3}
WARMUP=${WARMUP:-1}
TUNNELS=${TUNNELS:-1}
CRYPTO_OPS=${CRYPTO_OPS:-4000000}
SECGW_ARGS=${SECGW_ARGS:-}
ESPGW_BACKENDS=${ESPGW_BACKENDS:-}
ESPGW_BASELINE=${ESPGW_BASELINE:-}
markdown="" json="" check=1 io=1 keep=0 nohuge=0
cmdline="scripts/bench.sh $*"
while [ $# -gt 0 ]; do
    case $1 in
    --sizes) SIZES=$2; shift 2 ;;
    --algos) ALGOS=$2; shift 2 ;;
    --dirs) DIRS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --tunnels) TUNNELS=$2; shift 2 ;;
    --markdown) markdown=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --no-check) check=0; shift ;;
    --no-io) io=0; shift ;;
    --no-huge) nohuge=1; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage ;;
    *) echo "bench.sh: unknown argument $1" >&2; usage ;;
    esac
done
IFS=, read -ra sizes <<<"$SIZES"
IFS=, read -ra algos <<<"$ALGOS"
IFS=, read -ra dirs <<<"$DIRS"
for s in "${sizes[@]}"; do
    [ "$s" = imix ] || { [ "$s" -ge 64 ] 2>/dev/null && [ "$s" -le 1518 ]; } ||
        { echo "bench.sh: size $s: 64..1518 or imix" >&2; exit 2; }
done
for a in "${algos[@]}"; do
    case $a in aes-128-gcm | aes-256-gcm) ;; *) echo "bench.sh: algorithm $a: aes-128-gcm or aes-256-gcm" >&2; exit 2 ;; esac
done
for d in "${dirs[@]}"; do
    case $d in encrypt | decrypt) ;; *) echo "bench.sh: direction $d: encrypt or decrypt" >&2; exit 2 ;; esac
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: --reps must be a positive integer" >&2; exit 2; }
{ [[ $TUNNELS =~ ^[1-9][0-9]*$ ]] && [ "$TUNNELS" -le 256 ]; } ||
    { echo "bench.sh: --tunnels must be 1..256" >&2; exit 2; }

[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root (EAL)" >&2; exit 1; }
scripts/setup.sh >/dev/null
secgw=$(scripts/secgw.sh build)
espgw=$PWD/target/release/espgw-dataplane
tool=$PWD/scripts/benchtool.py

work=$(mktemp -d /tmp/espgw-sbs.XXXXXX) # mode 0700: it holds the keys
mkdir "$work/logs"
declare -A live=() # PIDs this script started and has not reaped yet
failed=0
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local rc=$? pid
    for pid in "${!live[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    # Each process left its EAL runtime directory (telemetry socket) behind.
    rm -rf /var/run/dpdk/espgw-sbs-$$-*
    if [ "$keep" = 1 ]; then
        echo "bench.sh: kept $work" >&2
    else
        if [ "$failed" = 1 ] || [ "$rc" != 0 ]; then # the logs (no keys in them) say why
            logs=$(mktemp -d /tmp/espgw-sbs-logs.XXXXXX)
            mv "$work/logs" "$logs/"
            [ ! -f "$work/results.jsonl" ] || mv "$work/results.jsonl" "$logs/"
            echo "bench.sh: logs of this run in $logs" >&2
        fi
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Hugepages (--in-memory) when enough are free, else --no-huge for every run, so both sides
# always get the same kind of memory. ipsec-secgw alone takes about 155 2-MiB pages (its LPM6,
# SA and session tables); the runs are sequential, so 200 free pages are enough. Like setup.sh,
# raise the reservation when other processes hold too many. --no-huge forces the fallback.
need=200
hp_free() { awk '/^HugePages_Free/ {print $2}' /proc/meminfo; }
if [ "$nohuge" = 0 ] && [ "$(hp_free)" -lt $need ]; then
    echo $(($(cat /proc/sys/vm/nr_hugepages) + need - $(hp_free))) >/proc/sys/vm/nr_hugepages 2>/dev/null || true
fi
if [ "$nohuge" = 0 ] && [ "$(hp_free)" -ge $need ]; then
    mem=(--in-memory)
else
    mem=(--no-huge -m 1024)
    [ "$nohuge" = 1 ] || echo "bench.sh: fewer than $need free hugepages; every run uses ${mem[*]} (slower)" >&2
fi

runs=0
results=$work/results.jsonl
: >"$results"

fail_line() { # impl dir algo size rep message
    printf '{"impl":"%s","dir":"%s","algo":"%s","size":"%s","rep":%s,"error":"%s"}\n' "$@" >>"$results"
    failed=1
}

# Stops a process this script started: SIGINT, then SIGKILL after 10 s. Returns its status.
stop() {
    local pid=$1 rc=0
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "bench.sh: pid $pid ignored SIGINT for 10 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" || rc=$?
    unset "live[$pid]"
    return "$rc"
}

# One measured run. The command is everything after the 5 labels; PREFIX in it is replaced by
# this run's EAL file prefix.
measure() { # impl dir algo size rep command...
    local impl=$1 dir=$2 algo=$3 size=$4 rep=$5
    shift 5
    runs=$((runs + 1))
    local prefix=espgw-sbs-$$-$runs log=$work/logs/$runs-$impl-$dir-$algo-$size.log
    local args=("${@//PREFIX/$prefix}") out rc=0 src=0 meta
    meta=$(printf '{"impl":"%s","dir":"%s","algo":"%s","size":"%s","rep":%s}' "$impl" "$dir" "$algo" "$size" "$rep")
    echo "+ ${args[*]}" >"$log"
    "${args[@]}" </dev/null >>"$log" 2>&1 &
    local pid=$!
    live[$pid]=1
    out=$(python3 "$tool" sample "$prefix" --pid "$pid" --size "$size" --warmup "$WARMUP" \
        --window "$WINDOW" --meta "$meta") || rc=$?
    stop "$pid" || src=$?
    [ -z "$out" ] || echo "$out" >>"$results"
    if [ $rc != 0 ] || [ $src != 0 ]; then
        # The sampler's error line is in the results already; else say how the process ended.
        if [ $rc = 0 ] || [ -z "$out" ]; then
            fail_line "$impl" "$dir" "$algo" "$size" "$rep" "exit status $src after SIGINT"
        fi
        failed=1
        echo "bench.sh: $impl $dir $algo $size rep $rep failed: ${out:-no measurement}, exit status $src; log $log:" >&2
        tail -n 15 "$log" >&2
    fi
}

# EAL arguments both sides share: the replay, the sink, the crypto PMD (ipsec-secgw needs it;
# espgw ignores it until its cryptodev backend lands, which then finds it). Sets eal=(...).
eal_common() { # prefix pcap
    eal=(--no-pci --file-prefix "$1" "${mem[@]}"
         --vdev "net_pcap0,rx_pcap=$2,infinite_rx=1" --vdev net_null0,no-rx=1 --vdev crypto_aesni_gcm0)
}

# The commands of the measured runs, in cmd=(...). PREFIX stands for the run's EAL file prefix.
espgw_cmd() { # config pcap [binary]
    eal_common PREFIX "$2"
    cmd=("${3:-$espgw}" --config "$1" -- --lcores 0@0,1@1 --main-lcore 0 "${eal[@]}")
}
secgw_cmd() { # config pcap unprotected-port-mask
    # One lcore (0, on CPU 1) polls both ports and does the crypto; ipsec-secgw needs no separate
    # main lcore. Its "unprotected" port is the ESP side. --mtu 2000: frames of IMIX's 1514
    # bytes encapsulate to 1570 and would be dropped at the default 1500; 2000 still fits the
    # default mbuf, so the example keeps its single-segment path.
    local extra=()
    read -ra extra <<<"$SECGW_ARGS"
    eal_common PREFIX "$2"
    cmd=("$secgw" --lcores 0@1 "${eal[@]}" -- -p 0x3 -P -u "$3" -f "$1"
         --config "(0,0,0),(1,0,0)" --mtu 2000 "${extra[@]}")
}
testpmd_cmd() { # pcap
    # The I/O floor: the same replay forwarded as is (io mode, port 0 -> port 1), no lookup.
    # --stats-period keeps testpmd running without a terminal until SIGINT.
    eal_common PREFIX "$1"
    # A pool of espgw's size (its default one takes 370 MB of hugepages).
    cmd=(dpdk-testpmd --lcores 0@0,1@1 --main-lcore 0 "${eal[@]}" -- --forward-mode=io --nb-cores=1
         --total-num-mbufs=16384 --stats-period 10)
}

# espgw offline over net_pcap (no replay): encrypts pcap $2 with config $1 into $3.
espgw_offline() { # config in out
    local empty=$work/empty.pcap stats=$work/offline.stats.json
    python3 -c 'import struct,sys; open(sys.argv[1],"wb").write(struct.pack("<IHHiIII",0xA1B2C3D4,2,4,0,0,65535,1))' "$empty"
    timeout 60 "$espgw" --config "$1" --exit-when-idle 500 --stats-file "$stats" -- \
        --lcores 0@0,1@1 --main-lcore 0 --no-pci --no-huge -m 512 --no-telemetry \
        --file-prefix "espgw-sbs-$$-offline" \
        --vdev "net_pcap0,rx_pcap=$2,tx_pcap=$work/discard.pcap" \
        --vdev "net_pcap1,rx_pcap=$empty,tx_pcap=$3" >"$work/logs/offline.log" 2>&1 ||
        { cat "$work/logs/offline.log" >&2; return 1; }
    python3 - "$stats" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["global"]
n = s["rx_packets"]
if n == 0 or s["encrypted_packets"] != n:
    sys.exit(f"espgw offline: {s['encrypted_packets']} of {n} packets of {sys.argv[2]} encrypted")
PY
}

# ipsec-secgw encrypting a finite pcap into a pcap file ($3), for the cross-check. It does not
# stop by itself: wait until it has sent as many packets as the file holds.
secgw_offline() { # config in out
    local prefix=espgw-sbs-$$-check pid rc=0
    "$secgw" --lcores 0@1 --no-pci --file-prefix "$prefix" --no-huge -m 1024 \
        --vdev "net_pcap0,rx_pcap=$2" --vdev "net_pcap1,tx_pcap=$3" --vdev crypto_aesni_gcm0 -- \
        -p 0x3 -P -u 0x2 -f "$1" --config "(0,0,0),(1,0,0)" --mtu 2000 </dev/null >"$work/logs/secgw-check.log" 2>&1 &
    pid=$!
    live[$pid]=1
    python3 "$tool" wait-tx "$prefix" --pid "$pid" --pcap "$2" || rc=$?
    stop "$pid" || rc=$?
    [ $rc = 0 ] || { tail -n 15 "$work/logs/secgw-check.log" >&2; return 1; }
}

# ---- header ----
{
    echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname): $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "# command: REPS=$REPS WINDOW=$WINDOW WARMUP=$WARMUP ${ESPGW_BACKENDS:+ESPGW_BACKENDS=$ESPGW_BACKENDS }${ESPGW_BASELINE:+ESPGW_BASELINE=$ESPGW_BASELINE }${SECGW_ARGS:+SECGW_ARGS=\"$SECGW_ARGS\" }$cmdline"
    echo "# sizes $SIZES; algorithms $ALGOS; directions $DIRS; tunnels $TUNNELS; EAL memory: ${mem[*]}"
    echo "# espgw $(git describe --always --dirty 2>/dev/null || echo '?'); DPDK $(dpkg-query -W -f='${Version}' dpdk 2>/dev/null); ipsec-secgw from dpdk-doc + scripts/secgw/vdev.patch"
} | tee "$work/header.txt"

python3 "$tool" configs "$work" --tunnels "$TUNNELS" ${ESPGW_BACKENDS:+--backends "$ESPGW_BACKENDS"}
IFS=, read -ra backends <<<"$ESPGW_BACKENDS"

# Cleartext pcaps, one per size (1024 frames; IMIX 1032), and per algorithm the ESP pcap that
# espgw makes of it offline: the decrypt runs of both gateways replay that same file. Sizes
# count the FCS, which a pcap does not hold: a 64-byte frame is 60 bytes in the file.
clear_pcap() { echo "$work/clear-$1.pcap"; }
esp_pcap() { echo "$work/$2/esp-$1.pcap"; }
for size in "${sizes[@]}"; do
    if [ "$size" = imix ]; then gen=(--imix); else gen=(--size $((size - 4))); fi
    scripts/pcapgen.py "$(clear_pcap "$size")" "${gen[@]}" --tunnels "$TUNNELS"
    if [[ " ${dirs[*]} " == *" decrypt "* ]]; then
        for algo in "${algos[@]}"; do
            espgw_offline "$work/$algo/espgw-encrypt.json" "$(clear_pcap "$size")" "$(esp_pcap "$size" "$algo")"
        done
    fi
done

# The cross-check: ipsec-secgw encrypts an IMIX pcap with the same SA; both must produce the
# same ESP bytes (same keys, IV = sequence number in both, from 1).
if [ "$check" = 1 ]; then
    scripts/pcapgen.py "$work/check.pcap" --imix --count 120 --tunnels "$TUNNELS"
    for algo in "${algos[@]}"; do
        espgw_offline "$work/$algo/espgw-encrypt.json" "$work/check.pcap" "$work/$algo/check-espgw.pcap"
        secgw_offline "$work/$algo/secgw-encrypt.cfg" "$work/check.pcap" "$work/$algo/check-secgw.pcap"
        same=$(python3 "$tool" compare-esp "$work/$algo/check-espgw.pcap" "$work/$algo/check-secgw.pcap") ||
            { echo "bench.sh: espgw and ipsec-secgw disagree on $algo ESP (above); not benchmarking" >&2; exit 1; }
        echo "# check $algo: $same" | tee -a "$work/header.txt"
    done
fi

# ---- the runs ----
# Repetitions are the inner loop and the implementations alternate inside each, so slow drift
# of the shared machine hits both sides alike.
for dir in "${dirs[@]}"; do
    if [ "$dir" = encrypt ]; then role=encrypt umask=0x2; else role=decrypt umask=0x1; fi
    for size in "${sizes[@]}"; do
        if [ "$dir" = encrypt ]; then route_pcap=$(clear_pcap "$size"); else route_pcap=$(esp_pcap "$size" "${algos[0]}"); fi
        for rep in $(seq "$REPS"); do
            espgw_cmd "$work/espgw-route-$role.json" "$route_pcap"
            measure route "$dir" - "$size" "$rep" "${cmd[@]}"
            if [ "$io" = 1 ]; then
                testpmd_cmd "$route_pcap"
                measure io "$dir" - "$size" "$rep" "${cmd[@]}"
            fi
            for algo in "${algos[@]}"; do
                if [ "$dir" = encrypt ]; then pcap=$(clear_pcap "$size"); else pcap=$(esp_pcap "$size" "$algo"); fi
                espgw_cmd "$work/$algo/espgw-$role.json" "$pcap"
                measure espgw "$dir" "$algo" "$size" "$rep" "${cmd[@]}"
                for b in "${backends[@]}"; do
                    espgw_cmd "$work/$algo/espgw-$role.$b.json" "$pcap"
                    measure "espgw:crypto=$b" "$dir" "$algo" "$size" "$rep" "${cmd[@]}"
                done
                if [ -n "$ESPGW_BASELINE" ]; then
                    espgw_cmd "$work/$algo/espgw-$role.json" "$pcap" "$ESPGW_BASELINE"
                    measure "espgw:baseline" "$dir" "$algo" "$size" "$rep" "${cmd[@]}"
                fi
                secgw_cmd "$work/$algo/secgw-$role.cfg" "$pcap" "$umask"
                measure secgw "$dir" "$algo" "$size" "$rep" "${cmd[@]}"
            done
        done
    done
    # The bare AEAD over the ESP payload of each size, in the same run (same CPU, same load).
    for algo in "${algos[@]}"; do
        bufs=$(for size in "${sizes[@]}"; do python3 "$tool" esp-len "$size"; done | sort -un | paste -sd,)
        keysz=16
        [ "$algo" = aes-256-gcm ] && keysz=32
        for rep in $(seq "$REPS"); do
            log=$work/logs/crypto-perf-$dir-$algo-$rep.log
            if timeout 300 dpdk-test-crypto-perf --lcores 0@0,1@1 --main-lcore 0 --no-pci "${mem[@]}" \
                --file-prefix "espgw-sbs-$$-cperf" --no-telemetry --vdev crypto_aesni_gcm0 -- \
                --ptest throughput --devtype crypto_aesni_gcm --optype aead --aead-algo aes-gcm \
                --aead-op "$dir" --aead-key-sz "$keysz" --aead-iv-sz 12 --aead-aad-sz 8 --digest-sz 16 \
                --buffer-sz "$bufs" --burst-sz 32 --total-ops "$CRYPTO_OPS" --silent --csv-friendly \
                </dev/null >"$log" 2>&1 && parsed=$(python3 "$tool" cryptoperf "$log"); then
                while read -r buf mops; do
                    printf '{"impl":"crypto-perf","dir":"%s","algo":"%s","size":"%s","rep":%s,"mpps":%s}\n' \
                        "$dir" "$algo" "$buf" "$rep" "$mops" >>"$results"
                done <<<"$parsed"
                echo "  crypto-perf      $dir $algo rep $rep: $(echo "$parsed" | awk '{printf "%s B %s Mops  ", $1, $2}')" >&2
            else
                fail_line crypto-perf "$dir" "$algo" "$bufs" "$rep" "dpdk-test-crypto-perf failed"
                echo "bench.sh: dpdk-test-crypto-perf $dir $algo failed; log $log:" >&2
                tail -n 15 "$log" >&2
            fi
        done
    done
done

# ---- the table ----
echo
cat "$work/header.txt"
table_args=()
[ -z "$json" ] || table_args+=(--json "$json")
python3 "$tool" table "$results" --markdown "$work/table.md" "${table_args[@]}"
if [ -n "$markdown" ]; then
    { echo '```'; cat "$work/header.txt"; echo '```'; echo; cat "$work/table.md"; } >"$markdown"
fi
if [ -n "$json" ]; then
    # The raw runs go with the medians.
    python3 - "$json" "$results" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["runs"] = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
json.dump(d, open(sys.argv[1], "w"), indent=1)
PY
fi
exit "$failed"
