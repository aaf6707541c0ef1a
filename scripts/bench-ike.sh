#!/usr/bin/env bash
# IKE tunnel setup rate, espgw against strongSwan's charon in the same run (docs/performance.md,
# "IKE tunnel setup rate"). For each DH group, TUNNELS tunnels (an IKE SA with one child SA
# each: IKE_SA_INIT + IKE_AUTH), all started at once between an initiator and a responder that
# get one CPU each. IKE proposal aes256gcm16-prfsha256-GROUP, ESP aes256gcm16, PSK.
#
#  espgw   control/examples/ike_setup_rate: two IKE managers in one process over kernel UDP on
#          127.0.0.1 and 127.0.0.2 (in a network namespace of its own), the initiator's thread
#          pinned to CPU 0, the responder's to CPU 1; one gateway with N VPNs on each side, each
#          VPN its own /32 pair (10.1.x.y <-> 10.2.x.y). Its own line gives the time (from the
#          managers' start, configuration included, to the last SA up) and the RSS growth; its
#          log (one line per IKE SA established, per side, with the children IKE_AUTH made)
#          must show N distinct VPNs up with a child at both ends, or the run does not count.
#          Its CPU time (the whole process, start and configuration included) by GNU time.
#  charon  strongSwan 5.9 with kernel-libipsec (the kernel here has no XFRM ESP: libipsec is
#          what lets charon install the children), two daemons in two network namespaces
#          joined by a veth pair (10.77.0.1/24 and 10.77.0.2/24), each in its own mount
#          namespace with a private /run, the initiator under `taskset -c 0`, the responder
#          under `taskset -c 1`. The initiator has N connections c0..c(N-1) (identity
#          cI.gK.a.example, K = I / 1000), each with one child cI whose selectors are espgw's
#          /32 pair; the responder (CHARON_RESPONDER=one, the default) one connection gK per
#          1000 children (remote identity *.gK.a.example: one vici message holds at most
#          512 KiB) which it picks by the initiator's selectors: the shape of espgw's one
#          gateway with N VPNs. CHARON_RESPONDER=conns gives the responder N
#          connections like the initiator's instead: charon then looks each IKE_SA_INIT and
#          IKE_AUTH up through all N (its backends are lists), and that, not the crypto, sets
#          its rate (about 100-150 setups/s at N = 1000 whatever the group). Each side holds
#          its N /32s on eth0 (libipsec needs a source address inside the local selector to
#          route a child into its TUN device; NO_ADDRS=1 leaves them out). The time runs from
#          the initiator's `swanctl --load-conns` (its children have `start_action = start`) to
#          the last "CHILD_SA ... established" in the initiator's log (millisecond timestamps); then
#          `swanctl --list-sas` on both sides must show N established IKE SAs with N installed
#          children, or the run does not count. The CPU time both daemons used over that
#          time is printed too (all threads, from /proc/PID/stat).
#          CHARON_START=initiate loads the connections first (not timed) and times a bounded
#          parallel loop of `swanctl --initiate --child cI` (PARALLEL at once) instead.
#
# charon's settings for a fair reference (both daemons): ikesa_table_size 1024 in 16 segments
# (the default is one bucket list), dos_protection off (by default the responder asks for
# COOKIEs past 30 half-open SAs and drops IKE_SA_INITs past 5 half-open SAs from one address;
# espgw's responder sent no cookie in these runs), no MOBIKE; threads (16), retransmissions
# (first after 4 s) and routes (installed into table 220, as libipsec needs) stay at their
# defaults; file log at level 0 only.
#
# Setup rate = N / time. Memory per SA = RSS growth over N, both sides summed (espgw's one
# process; charon's two daemons, VmRSS before their configuration was loaded and after all SAs
# were up): the configuration, the IKE SA and the child, at both ends.
#
#   scripts/bench-ike.sh [GROUP...]          (default x25519 ecp256 ecp384 modp2048)
#   TUNNELS=1000 REPS=3 TIMEOUT=300 (per step) CHARON_START=load|initiate PARALLEL=4
#   CHARON_RESPONDER=one|conns CHARON_LOG=0 (charon's log level) CHARON=0 (espgw alone)
#   KEEP=1 (keep the work directory)
#   SKIP_SETUP=1 skips scripts/setup.sh (packages, hugepages, release build) and the example's
#   build (target/release/examples/ike_setup_rate must exist).
# Figures: medians of REPS runs per side; the machine is shared, so compare espgw and charon
# only within one run. Everything stays in three network namespaces (espgw-bench-ike-*-PID),
# removed on exit with the charons this script started and its /tmp/espgw-bench-ike.* directory,
# also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
dh_groups=("$@")
[ ${#dh_groups[@]} -gt 0 ] || dh_groups=(x25519 ecp256 ecp384 modp2048)
TUNNELS=${TUNNELS:-1000}
REPS=${REPS:-3}
TIMEOUT=${TIMEOUT:-300}
CHARON_START=${CHARON_START:-load}
PARALLEL=${PARALLEL:-4}
CHARON_RESPONDER=${CHARON_RESPONDER:-one}
if ! [ "$TUNNELS" -ge 1 ] 2>/dev/null || [ "$TUNNELS" -gt 65536 ]; then
    echo "bench-ike.sh: TUNNELS from 1 to 65536" >&2
    exit 2
fi
case "$CHARON_RESPONDER" in conns | one) ;; *) echo "bench-ike.sh: CHARON_RESPONDER=conns|one" >&2; exit 2 ;; esac
case "$CHARON_START" in load | initiate) ;; *) echo "bench-ike.sh: CHARON_START=load|initiate" >&2; exit 2 ;; esac

[ "$(id -u)" = 0 ] || { echo "bench-ike.sh: run as root (namespaces, UDP 500)" >&2; exit 1; }
if [ "${SKIP_SETUP:-}" != 1 ]; then
    scripts/setup.sh >/dev/null
    cargo build --release --locked -p control --example ike_setup_rate 2>/dev/null
fi
example=$PWD/target/release/examples/ike_setup_rate
[ -x "$example" ] || { echo "bench-ike.sh: $example missing (cargo build --release -p control --example ike_setup_rate)" >&2; exit 1; }
if ! [ -x /usr/lib/ipsec/charon ] || ! command -v swanctl >/dev/null; then
    echo "bench-ike.sh: strongSwan's charon and swanctl are needed (scripts/setup.sh)" >&2
    exit 1
fi

work=$(mktemp -d /tmp/espgw-bench-ike.XXXXXX)
ns_i=espgw-bench-ike-i-$$
ns_r=espgw-bench-ike-r-$$
ns_e=espgw-bench-ike-e-$$

pid_of() { # pid file -> pid, or nothing
    if [ -s "$1" ]; then cat "$1"; fi
}
stop_pid() { # PID: SIGTERM, up to 5 s, then SIGKILL
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}
# The charons this script started (by the pid files their wrappers wrote) and the wrappers
# (pids in $work/shells).
stop_charons() {
    local f s
    for f in "$work"/*/[ir]/charon.pid; do
        [ -e "$f" ] || continue
        stop_pid "$(pid_of "$f")"
        rm -f "$f"
    done
    if [ -s "$work/shells" ]; then
        while read -r s; do stop_pid "$s"; done <"$work/shells"
    fi
    rm -f "$work/shells"
}
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    trap - INT TERM HUP
    [ ! -s "$work/espgw.pid" ] || stop_pid "$(cat "$work/espgw.pid")"
    stop_charons
    ip netns del "$ns_i" 2>/dev/null || true
    ip netns del "$ns_r" 2>/dev/null || true
    ip netns del "$ns_e" 2>/dev/null || true
    if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# espgw runs in a namespace of its own too (its loopback only, ports 500 and 4500 free of
# anything else on the machine); the charons in two joined by a veth pair.
ip netns add "$ns_e"
ip -n "$ns_e" link set lo up
ip netns add "$ns_i"
ip netns add "$ns_r"
ip -n "$ns_i" link add eth0 type veth peer name eth0 netns "$ns_r"
ip -n "$ns_i" addr add 10.77.0.1/24 dev eth0
ip -n "$ns_r" addr add 10.77.0.2/24 dev eth0
for ns in "$ns_i" "$ns_r"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
done
# libipsec routes each child's traffic into its TUN device with a source address inside the
# child's local selector, and fails the child without one: each side holds its N /32s.
for side in $( [ "${NO_ADDRS:-}" = 1 ] || echo 1 2); do
    ns=$ns_i
    [ "$side" = 2 ] && ns=$ns_r
    awk -v s="$side" -v n="$TUNNELS" 'BEGIN {for (i = 0; i < n; i++) printf "address add 10.%d.%d.%d/32 dev eth0\n", s, int(i / 256) % 256, i % 256}' |
        ip -n "$ns" -batch -
done

now() { date +%s.%N; }
rss_kb() { # pid
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}
# CPU time (user + system, all threads) in clock ticks.
cpu_ticks() { # pid
    sed -E 's/.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0
}
# UDP datagrams the namespace's kernel dropped (receive buffer full or otherwise): a cause of
# retransmissions, which charon first sends after 4 s.
udp_errors() { # ns
    # shellcheck disable=SC2016 # awk's fields
    ip netns exec "$1" awk '/^Udp:/ {n++; if (n == 2) print $4 + $6}' /proc/net/snmp
}

# The two configurations of one charon run. Each connection and its child are named cI.
charon_configs() { # dir group
    python3 - "$1" "$2" "$TUNNELS" "$CHARON_START" "${CHARON_LOG:-0}" "$CHARON_RESPONDER" <<'PY'
import os, sys
d, group, n, start, level, responder = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
psk = os.urandom(24).hex()
CHUNK = 1000
def host(side, i):
    return f"10.{side}.{i // 256 % 256}.{i % 256}/32"
for side, me, peer, mine, theirs, my_id, peer_id, cpu in (
        ("i", "10.77.0.1", "10.77.0.2", 1, 2, "c{i}.g{g}.a.example", "b.example", 0),
        ("r", "10.77.0.2", "10.77.0.1", 2, 1, "b.example", "c{i}.g{g}.a.example", 1)):
    os.makedirs(f"{d}/{side}", exist_ok=True)
    with open(f"{d}/{side}/strongswan.conf", "w") as f:
        f.write(f"""charon {{
  load_modular = yes
  ikesa_table_size = 1024
  ikesa_table_segments = 16
  reuse_ikesa = no
  dos_protection = no
  cookie_threshold = 1000000
  cookie_threshold_ip = 1000000
  block_threshold = 1000000
  plugins {{
    include /etc/strongswan.d/charon/*.conf
    kernel-libipsec {{
      load = yes
    }}
    vici {{
      socket = unix://{d}/{side}/charon.vici
    }}
  }}
  filelog {{
    log {{
      path = {d}/{side}/charon.log
      time_format = %s
      time_add_ms = yes
      default = {level}
      flush_line = yes
    }}
  }}
}}
""")
    action = "start" if side == "i" and start == "load" else "none"
    def conn(name, my_id, peer_id, children):
        return f"""  {name} {{
    version = 2
    local_addrs = {me}
    remote_addrs = {peer}
    proposals = aes256gcm16-prfsha256-{group}
    mobike = no
    unique = never
    local {{
      auth = psk
      id = {my_id}
    }}
    remote {{
      auth = psk
      id = {peer_id}
    }}
    children {{
{children}
    }}
  }}"""
    def child(i):
        return f"""      c{i} {{
        local_ts = {host(mine, i)}
        remote_ts = {host(theirs, i)}
        esp_proposals = aes256gcm16
        start_action = {action}
      }}"""
    out = ["connections {"]
    if side == "r" and responder == "one":
        # One connection per CHUNK children (a vici message is at most 512 KiB), each for the
        # initiator identities *.gK.a.example.
        for g in range((n + CHUNK - 1) // CHUNK):
            out.append(conn(f"g{g}", my_id, f"*.g{g}.a.example",
                            "\n".join(child(i) for i in range(g * CHUNK, min(n, (g + 1) * CHUNK)))))
    else:
        out += [conn(f"c{i}", my_id.format(i=i, g=i // CHUNK), peer_id.format(i=i, g=i // CHUNK), child(i))
                for i in range(n)]
    out.append("}")
    out.append(f'secrets {{\n  ike-1 {{\n    secret = "{psk}"\n  }}\n}}')
    with open(f"{d}/{side}/swanctl.conf", "w") as f:
        f.write("\n".join(out) + "\n")
    os.chmod(f"{d}/{side}/swanctl.conf", 0o600)
    with open(f"{d}/{side}/run.sh", "w") as f:
        f.write(f"""mount -t tmpfs tmpfs /run
export STRONGSWAN_CONF={d}/{side}/strongswan.conf
taskset -c {cpu} /usr/lib/ipsec/charon >{d}/{side}/charon.out 2>&1 &
echo $! >{d}/{side}/charon.pid
wait
""")
PY
}

why() { # log: its first line that says what failed, else its last
    grep -v '^opening directory' "$1" 2>/dev/null | grep -m1 -iE 'fail|error' || tail -n1 "$1" 2>/dev/null || true
}
swan() { # dir side command args... (swanctl against that charon's vici socket, bounded)
    local d=$1 side=$2 cmd=$3
    shift 3
    timeout "$TIMEOUT" swanctl "$cmd" --uri "unix://$d/$side/charon.vici" "$@"
}

# Established children in the initiator's log so far.
children_up() { # dir
    local n
    n=$(grep -c 'CHILD_SA c[0-9]*{[0-9]*} established' "$1/i/charon.log" 2>/dev/null || true)
    echo "${n:-0}"
}

# One charon run: sets result to "seconds kB_per_SA ike_up children_up udp_errors" or
# "fail REASON". (Not run in a command substitution: a subshell would keep bash from acting on
# Ctrl-C until it ends.)
charon_run() { # group rep
    local group=$1 rep=$2 d=$work/charon-$1-$2 side ns deadline t0 t1 up rss0 rss1 e0 e1
    mkdir -p "$d"
    charon_configs "$d" "$group"
    for side in i r; do
        ns=$ns_i
        [ "$side" = r ] && ns=$ns_r
        ip netns exec "$ns" unshare -m sh "$d/$side/run.sh" </dev/null >/dev/null 2>&1 &
        echo $! >>"$work/shells"
    done
    deadline=$(($(date +%s) + 20))
    for side in i r; do
        until [ -S "$d/$side/charon.vici" ] && [ -s "$d/$side/charon.pid" ]; do
            [ "$(date +%s)" -lt "$deadline" ] || { result="fail charon ($side) did not start: $(tail -n1 "$d/$side/charon.out" 2>/dev/null)"; return; }
            sleep 0.1
        done
    done
    local pi pr
    pi=$(pid_of "$d/i/charon.pid")
    pr=$(pid_of "$d/r/charon.pid")
    rss0=$(($(rss_kb "$pi") + $(rss_kb "$pr")))
    e0=$(($(udp_errors "$ns_i") + $(udp_errors "$ns_r")))
    swan "$d" r --load-all --file "$d/r/swanctl.conf" >"$d/r/load.log" 2>&1 ||
        { result="fail loading the responder: $(why "$d/r/load.log")"; return; }
    swan "$d" i --load-creds --file "$d/i/swanctl.conf" >"$d/i/load.log" 2>&1 ||
        { result="fail loading the initiator's PSK: $(why "$d/i/load.log")"; return; }
    if [ "$CHARON_START" = initiate ]; then
        swan "$d" i --load-conns --file "$d/i/swanctl.conf" >>"$d/i/load.log" 2>&1 ||
            { result="fail loading the initiator: $(why "$d/i/load.log")"; return; }
    fi
    local ci0 cr0 ci1 cr1
    ci0=$(cpu_ticks "$pi")
    cr0=$(cpu_ticks "$pr")
    t0=$(now)
    if [ "$CHARON_START" = load ]; then
        timeout "$TIMEOUT" swanctl --load-conns --uri "unix://$d/i/charon.vici" --file "$d/i/swanctl.conf" \
            >>"$d/i/load.log" 2>&1 || { result="fail loading the initiator: $(why "$d/i/load.log")"; return; }
    else
        # swanctl --initiate waits for its child; PARALLEL of them at a time, each bounded.
        seq 0 $((TUNNELS - 1)) | timeout "$TIMEOUT" xargs -P "$PARALLEL" -I{} \
            swanctl --initiate --uri "unix://$d/i/charon.vici" --child c{} --timeout 60 \
            >"$d/i/initiate.log" 2>&1 || true
    fi
    deadline=$(($(date +%s) + TIMEOUT))
    while :; do
        up=$(children_up "$d")
        [ "$up" -lt "$TUNNELS" ] || break
        if ! kill -0 "$pi" 2>/dev/null || ! kill -0 "$pr" 2>/dev/null; then
            result="fail a charon died ($up children up)"
            return
        fi
        [ "$(date +%s)" -lt "$deadline" ] || { result="fail only $up of $TUNNELS children up after ${TIMEOUT} s"; return; }
        sleep 0.2
    done
    rss1=$(($(rss_kb "$pi") + $(rss_kb "$pr")))
    ci1=$(cpu_ticks "$pi")
    cr1=$(cpu_ticks "$pr")
    e1=$(($(udp_errors "$ns_i") + $(udp_errors "$ns_r")))
    # The last child established, by the initiator's log (seconds.milliseconds).
    t1=$(grep 'CHILD_SA c[0-9]*{[0-9]*} established' "$d/i/charon.log" | awk '{print $1}' | sort -g | tail -n1)
    # Both sides: N IKE SAs established, N children installed.
    local ike_i ike_r ch_i ch_r
    swan "$d" i --list-sas >"$d/i/sas.txt" 2>&1 || true
    swan "$d" r --list-sas >"$d/r/sas.txt" 2>&1 || true
    ike_i=$(grep -c ': #[0-9]*, ESTABLISHED, IKEv2' "$d/i/sas.txt" || true)
    ike_r=$(grep -c ': #[0-9]*, ESTABLISHED, IKEv2' "$d/r/sas.txt" || true)
    ch_i=$(grep -c ': #[0-9]*, reqid [0-9]*, INSTALLED, TUNNEL' "$d/i/sas.txt" || true)
    ch_r=$(grep -c ': #[0-9]*, reqid [0-9]*, INSTALLED, TUNNEL' "$d/r/sas.txt" || true)
    stop_charons
    if [ "$ike_i" != "$TUNNELS" ] || [ "$ike_r" != "$TUNNELS" ] || [ "$ch_i" != "$TUNNELS" ] || [ "$ch_r" != "$TUNNELS" ]; then
        result="fail list-sas: initiator $ike_i IKE SAs / $ch_i children, responder $ike_r / $ch_r"
        return
    fi
    result=$(awk -v a="$t0" -v b="$t1" -v n="$TUNNELS" -v r0="$rss0" -v r1="$rss1" -v e="$((e1 - e0))" \
        -v ci="$((ci1 - ci0))" -v cr="$((cr1 - cr0))" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.3f %.1f %d %d %d %.2f %.2f\n", b - a, (r1 - r0) / n, n, n, e, ci / hz, cr / hz}')
}

# One espgw run: sets result to "seconds kB_per_SA retransmits cookies ike_i ike_r cpu_s" or
# "fail LINE".
# The example's own count is the initiator's; its log (one line per IKE SA established, per
# side, with the child SAs IKE_AUTH made) must show N distinct VPNs up with a child on both
# sides, or the run does not count.
espgw_run() { # group rep
    local line rc=0 log=$work/espgw-$1-$2.log ike_i ike_r
    local timing=()
    [ ! -x /usr/bin/time ] || timing=(/usr/bin/time -f '%U %S' -o "$log.cpu")
    ip netns exec "$ns_e" timeout "$TIMEOUT" "${timing[@]}" "$example" --tunnels "$TUNNELS" \
        --ike "aes256gcm16-prfsha256-$1" --timeout "$TIMEOUT" >"$log.out" 2>"$log" </dev/null &
    echo $! >"$work/espgw.pid" # timeout's (ip netns exec execs it): for cleanup on Ctrl-C
    wait $! || rc=$?
    rm -f "$work/espgw.pid"
    line=$(head -n1 "$log.out")
    [ "$rc" = 0 ] || { result="fail ${line:-exit status $rc} $(tail -n1 "$log")"; return; }
    ike_i=$({ grep -E 'established with .* as Initiator; child SAs [0-9a-f]{8}_i' "$log" || true; } | sed -E 's/.*IKE: ([^:]*):.*/\1/' | sort -u | wc -l)
    ike_r=$({ grep -E 'established with .* as Responder; child SAs [0-9a-f]{8}_i' "$log" || true; } | sed -E 's/.*IKE: ([^:]*):.*/\1/' | sort -u | wc -l)
    if [ "$ike_i" != "$TUNNELS" ] || [ "$ike_r" != "$TUNNELS" ]; then
        result="fail log: initiator $ike_i IKE SAs with a child, responder $ike_r ($line)"
        return
    fi
    line=$(sed -nE 's/.* up of [0-9]+ in ([0-9.]+) s: .* = ([0-9.]+) kB per IKE SA.*retransmits ([0-9]+), cookies sent by the responder ([0-9]+).*/\1 \2 \3 \4/p' <<<"$line")
    [ -n "$line" ] || { result="fail unexpected output: $(head -c 300 "$log.out")"; return; }
    # The process's CPU time (both threads, its configuration included), by GNU time.
    result="$line $ike_i $ike_r $(awk '{printf "%.2f", $1 + $2}' "$log.cpu" 2>/dev/null || echo -)"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A e_s=() e_kb=() c_s=() c_kb=() notes=()
for group in "${dh_groups[@]}"; do
    : >"$work/$group.espgw"
    : >"$work/$group.charon"
    for rep in $(seq "$REPS"); do
        espgw_run "$group" "$rep"
        r=$result
        echo "== $group run $rep: espgw  $r (s, kB/SA, retransmits, cookies, IKE SAs with a child: initiator, responder; CPU s)" >&2
        [ "${r%% *}" = fail ] && notes[$group]+=" espgw run $rep: ${r#fail }." || echo "$r" >>"$work/$group.espgw"
        if [ "${CHARON:-1}" = 0 ]; then continue; fi
        charon_run "$group" "$rep"
        r=$result
        stop_charons
        echo "== $group run $rep: charon $r (s, kB/SA, IKE SAs, children, UDP drops, CPU s initiator, responder)" >&2
        [ "${r%% *}" = fail ] && notes[$group]+=" charon run $rep: ${r#fail }." || echo "$r" >>"$work/$group.charon"
        read -r _ _ _ _ drops _ <<<"$r"
        [ "${r%% *}" = fail ] || [ "$drops" = 0 ] || notes[$group]+=" charon run $rep: $drops UDP datagrams dropped."
    done
    e_s[$group]=$(cut -d' ' -f1 "$work/$group.espgw" | median)
    e_kb[$group]=$(cut -d' ' -f2 "$work/$group.espgw" | median)
    c_s[$group]=$(cut -d' ' -f1 "$work/$group.charon" | median)
    c_kb[$group]=$(cut -d' ' -f2 "$work/$group.charon" | median)
done

echo
echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname): $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
echo "# command: TUNNELS=$TUNNELS REPS=$REPS CHARON_START=$CHARON_START CHARON_RESPONDER=$CHARON_RESPONDER scripts/bench-ike.sh ${dh_groups[*]}"
echo "# espgw: tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- control 2>/dev/null || echo ' (control/ modified)'), example built $(date -u -r "$example" +%Y-%m-%dT%H:%MZ); $(/usr/lib/ipsec/charon --version 2>&1 | head -n1)"
echo "# load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $TUNNELS tunnels, IKE aes256gcm16-prfsha256-GROUP, ESP aes256gcm16, PSK; medians of $REPS runs"
echo
echo "| group | espgw setups/s | charon setups/s | espgw/charon | espgw s | charon s | espgw kB/SA | charon kB/SA |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for group in "${dh_groups[@]}"; do
    awk -v g="$group" -v n="$TUNNELS" -v es="${e_s[$group]}" -v cs="${c_s[$group]}" \
        -v ek="${e_kb[$group]}" -v ck="${c_kb[$group]}" 'BEGIN {
        er = (es != "-" && es > 0) ? n / es : 0; cr = (cs != "-" && cs > 0) ? n / cs : 0
        printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", g,
            er ? sprintf("%.0f", er) : "-", cr ? sprintf("%.0f", cr) : "-",
            (er && cr) ? sprintf("%.1f", er / cr) : "-", es, cs, ek, ck }'
done
echo
echo "(kB/SA: RSS growth over N, both sides summed: configuration, IKE SA and child at both ends.)"
for group in "${dh_groups[@]}"; do
    echo "espgw $group runs (s kB/SA retransmits cookies IKE-SAs-up-initiator IKE-SAs-up-responder CPU-s): $(paste -sd';' "$work/$group.espgw")"
    echo "charon $group runs (s kB/SA IKE_SAs children UDP-drops CPU-s-initiator CPU-s-responder): $(paste -sd';' "$work/$group.charon")"
    [ -z "${notes[$group]:-}" ] || echo "note $group:${notes[$group]}"
done
