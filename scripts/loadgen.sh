#!/usr/bin/env bash
# The gateway side of espgw-loadgen (docs/performance.md): a gateway configuration for two
# net_memif links, starting and stopping that gateway, and one complete run.
#
#   loadgen.sh config DIR TUNNELS         write DIR/gw.json (mode 0600; DIR should be 0700)
#   loadgen.sh start DIR                  start espgw-dataplane on DIR/gw.json; DIR/gw.pid
#   loadgen.sh mem DIR                    the running gateway's "VmRSS_kB HugetlbPages_kB"
#   loadgen.sh stop DIR                   SIGTERM by PID, bounded wait; DIR/gw.stats.json
#   loadgen.sh run TUNNELS [LOADGEN ARGS] all of it in a fresh mktemp -d, then clean up
#
# The scheme, the one the load generator reads back from DIR/gw.json:
#   gateway lan0 10.1.0.1/16   mac 02:00:00:00:01:01  <- memif DIR/lan.sock -> loadgen port 0,
#                                                        host 10.1.0.10 mac 02:00:00:00:01:10
#   gateway wan0 192.0.2.1/24  mac 02:00:00:00:02:01  <- memif DIR/wan.sock -> loadgen port 1,
#                                                        peer 192.0.2.2 mac 02:00:00:00:02:02
#   tunnel t (0 <= t < TUNNELS): st0.t, 192.0.2.1 -> 192.0.2.2, route 10.128.0.0 + t /32 via
#   st0.t, outbound SA SPI 0x100000 + t, inbound SA SPI 0x200000 + t, AES-128-GCM, fresh
#   random keys. Both neighbors are static (the load generator answers no ARP). Inbound SAs
#   have replay_window 0: the decrypt direction replays a pool of prepared ESP packets.
#   wan0's MTU is 2000 so that 1514-byte frames still fit once encapsulated.
# The gateway runs one worker: main lcore on CPU 0, worker lcore 1 on CPU 1 (GW_LCORES); the
# load generator uses CPU 0 (its default EAL arguments).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
GW_BIN=${GW_BIN:-$PWD/target/$PROFILE/espgw-dataplane}
LG_BIN=${LG_BIN:-$PWD/target/$PROFILE/espgw-loadgen}
GW_LCORES=${GW_LCORES:-0@0,1@1}
START_TIMEOUT=${START_TIMEOUT:-300}

usage() { sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

config() { # DIR TUNNELS
    local dir=$1 tunnels=$2
    [[ $tunnels =~ ^[0-9]+$ ]] && [ "$tunnels" -ge 1 ] && [ "$tunnels" -le 1000000 ] ||
        { echo "loadgen.sh: TUNNELS must be 1..1000000" >&2; exit 2; }
    mkdir -p "$dir"
    (umask 077; python3 - "$dir" "$tunnels" "$GW_LCORES" <<'PY'
import ipaddress, json, os, sys
d, n, lcores = sys.argv[1], int(sys.argv[2]), sys.argv[3]
free = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("HugePages_Free")))
mem = ["--in-memory"] if free >= 128 else ["--no-huge", "-m", "512"]
prefix = "espgw-lg-" + os.path.basename(os.path.abspath(d)).replace(".", "-")
memif = lambda p, name: f"net_memif{p},role=server,socket={os.path.abspath(d)}/{name}.sock,id=0,socket-abstract=no"
base = int(ipaddress.IPv4Address("10.128.0.0"))
cfg = {
    "dataplane": {"eal": ["--lcores", lcores, "--main-lcore", "0", "--no-pci", "--no-telemetry",
                          "--file-prefix", prefix] + mem +
                         ["--vdev", memif(0, "lan"), "--vdev", memif(1, "wan")],
                  "workers": [1], "max_tunnels": n, "max_sas": n},
    "interfaces": [{"name": "lan0", "port": 0, "address": "10.1.0.1/16", "mac": "02:00:00:00:01:01"},
                   {"name": "wan0", "port": 1, "address": "192.0.2.1/24", "mac": "02:00:00:00:02:01", "mtu": 2000}],
    "neighbors": [{"address": "10.1.0.10", "mac": "02:00:00:00:01:10"},
                  {"address": "192.0.2.2", "mac": "02:00:00:00:02:02"}],
    "tunnels": [{"name": f"st0.{t}", "local": "192.0.2.1", "remote": "192.0.2.2"} for t in range(n)],
    "routes": [{"prefix": f"{ipaddress.IPv4Address(base + t)}/32", "via": f"st0.{t}"} for t in range(n)],
    "manual_sas": [sa for t in range(n) for sa in (
        {"tunnel": f"st0.{t}", "direction": "out", "spi": hex(0x100000 + t), "algorithm": "aes-128-gcm",
         "key": os.urandom(20).hex()},
        {"tunnel": f"st0.{t}", "direction": "in", "spi": hex(0x200000 + t), "algorithm": "aes-128-gcm",
         "key": os.urandom(20).hex(), "replay_window": 0})],
}
path = os.path.join(d, "gw.json")
with open(path, "w") as f:
    json.dump(cfg, f)
os.chmod(path, 0o600)
PY
    )
}

pid_of() { cat "$1/gw.pid" 2>/dev/null || true; }

start() { # DIR
    local dir=$1
    [ -x "$GW_BIN" ] || { echo "loadgen.sh: no $GW_BIN (cargo build --release)" >&2; exit 1; }
    "$GW_BIN" --config "$dir/gw.json" --stats-file "$dir/gw.stats.json" >/dev/null 2>"$dir/gw.log" &
    local pid=$!
    echo "$pid" >"$dir/gw.pid"
    local waited=0
    until grep -q "forwarding on" "$dir/gw.log" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "loadgen.sh: the gateway exited:" >&2
            cat "$dir/gw.log" >&2
            rm -f "$dir/gw.pid"
            return 1
        fi
        if [ "$waited" -ge $((START_TIMEOUT * 10)) ]; then
            echo "loadgen.sh: the gateway did not start within ${START_TIMEOUT}s" >&2
            stop "$dir"
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

mem() { # DIR -> "rss_kB hugetlb_kB"
    local pid
    pid=$(pid_of "$1")
    [ -n "$pid" ] || { echo "loadgen.sh: no gateway running for $1" >&2; return 1; }
    awk '/^VmRSS:/ {r = $2} /^HugetlbPages:/ {h = $2} END {print r + 0, h + 0}' "/proc/$pid/status"
}

stop() { # DIR
    local dir=$1 pid
    pid=$(pid_of "$dir")
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    # A clean stop takes well under a second; never leave a gateway behind.
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$dir/gw.pid"
    local prefix
    prefix=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["dataplane"]["eal"]; print(e[e.index("--file-prefix")+1])' "$dir/gw.json" 2>/dev/null || true)
    [ -z "$prefix" ] || rm -rf "/var/run/dpdk/$prefix"
}

run() { # TUNNELS [LOADGEN ARGS]
    local tunnels=${1:?TUNNELS}
    shift
    [ -x "$LG_BIN" ] || { echo "loadgen.sh: no $LG_BIN (cargo build --release)" >&2; exit 1; }
    local dir
    dir=$(mktemp -d /tmp/espgw-loadgen.XXXXXX)
    # shellcheck disable=SC2064
    trap "stop '$dir'; rm -rf '$dir'" EXIT
    config "$dir" "$tunnels"
    start "$dir"
    local rc=0
    "$LG_BIN" --gw-config "$dir/gw.json" "$@" || rc=$?
    stop "$dir"
    # The gateway's own view: its counters at exit.
    sed -n '/^ESP Statistics/,/^Errors/p;/^Forwarding/p' "$dir/gw.log"
    return "$rc"
}

[ "$(id -u)" = 0 ] || { echo "loadgen.sh: run as root (EAL)" >&2; exit 1; }
cmd=${1:-}
[ -n "$cmd" ] || usage
shift
case "$cmd" in
    config) [ $# -eq 2 ] || usage; config "$@" ;;
    start) [ $# -eq 1 ] || usage; start "$1" ;;
    mem) [ $# -eq 1 ] || usage; mem "$1" ;;
    stop) [ $# -eq 1 ] || usage; stop "$1" ;;
    run) [ $# -ge 1 ] || usage; run "$@" ;;
    *) usage ;;
esac
