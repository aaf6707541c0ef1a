#!/usr/bin/env bash
# The main job: sets everything up, then runs two espgw gateways back to back in network
# namespaces (topology.sh), each as two processes: espgw-dataplane, and espgw-control, which
# pushes the tunnels, routes and SAs into it over the shared-memory channel. A host behind one
# gateway pings a host behind the other; the demo shows the ESP on the wire and what tshark
# decrypts from it, the gateways' state through the espgw CLI, and tears it all down.
#
#   scripts/demo.sh            raw ESP (IP protocol 50)
#   scripts/demo.sh --natt     ESP in UDP 4500 (RFC 3948)
#   scripts/demo.sh --ike      IKEv2: espgw as gw1 negotiates with strongSwan's charon as gw2
#                              (a Linux router, kernel-libipsec: ESP in UDP 4500), rekeys the
#                              child under traffic, is cleared and initiates again (docs/ike.md)
#   scripts/demo.sh --ipv6     IPv6 hosts (2001:db8:1::10, 2001:db8:2::10) through the IPv4
#                              tunnel (ESP next header 41), beside IPv4
set -euo pipefail
cd "$(dirname "$0")/.."
mode=raw
ipv6=0
[ "${1:-}" = --natt ] && mode=natt
[ "${1:-}" = --ike ] && mode=ike
[ "${1:-}" = --ipv6 ] && ipv6=1

scripts/setup.sh

name=espgw-demo
dir=$(mktemp -d /tmp/espgw-demo.XXXXXX)
bin=$PWD/target/release/espgw-dataplane
ctl=$PWD/target/release/espgw-control
cli=$PWD/target/release/espgw
gw_pids=()
ctl_pids=()
cap_pid=""
charon_sh=""
cleanup() {
    [ -n "$cap_pid" ] && kill -INT "$cap_pid" 2>/dev/null || true
    for p in "${ctl_pids[@]}" "${gw_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    if [ -n "$charon_sh" ]; then
        # charon is not our child: stopped by the PID it wrote, then the shell that started it.
        cpid=$(cat "$dir/charon.pid" 2>/dev/null || true)
        if [ -n "$cpid" ]; then
            kill -TERM "$cpid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
        fi
        kill -TERM "$charon_sh" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    scripts/topology.sh down "$name"
    rm -rf "$dir"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_log() { # file text what
    for _ in $(seq 100); do
        grep -q "$2" "$1" && return 0
        sleep 0.2
    done
    echo "$3 did not start:"; cat "$1"; exit 1
}

espgw() { ip netns exec "$name-gw1" "$cli" --token-file "$dir/token" "$@"; }

# --ike: host a -- espgw gw1 == IKEv2 + ESP in UDP 4500 == charon on gw2 -- host b.
ike_demo() {
    local ns1="$name-gw1" ns2="$name-gw2" t0 i n out before after rekeys0 rekeys1 cpid
    step "topology: host a - gw1 (espgw) - (IKEv2, ESP in UDP) - gw2 (strongSwan) - host b"
    scripts/topology.sh up "$name" "$dir" ike
    # gw1 (espgw) initiates and rekeys its child 10 s after it is made (lifetime 60 s, margin
    # 50 s), with PFS (x25519) in CREATE_CHILD_SA; it offers ESN or not (charon's libipsec
    # takes no ESN).
    python3 - "$dir/gw1.json" <<'PY2'
import json, sys
f = sys.argv[1]
c = json.load(open(f))
v = c["ike"]["vpns"][0]
v["esp_proposals"] = ["aes256gcm16-x25519-esn-noesn"]
v["lifetime_s"] = 60
v["rekey_margin_s"] = 50
json.dump(c, open(f, "w"), indent=2)
PY2
    echo "  gw1's ike section (the PSK is read from $dir/psk):"
    python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["ike"], indent=2))' \
        "$dir/gw1.json" | sed 's/^/    /'

    step "gw2: a Linux router running strongSwan's charon (kernel-libipsec) in its own mount namespace"
    # Kernel addresses on gw2's ports, forwarding. The hosts keep MTU 1500: path MTU discovery
    # finds the tunnel's (espgw and the kernel both send ICMP "fragmentation needed").
    ip netns exec "$ns2" sh -c "ip addr add 192.0.2.2/24 dev wan && ip addr add 10.2.0.1/16 dev lan && sysctl -qw net.ipv4.ip_forward=1"
    cat >"$dir/strongswan.conf" <<EOF
charon {
  load_modular = yes
  plugins {
    include /etc/strongswan.d/charon/*.conf
    kernel-libipsec { load = yes }
  }
  filelog {
    log { path = $dir/charon.log
          flush_line = yes
          default = 1
          ike = 2
          cfg = 2 }
  }
}
EOF
    (umask 077; cat >"$dir/swanctl.conf" <<EOF
connections {
  gw1 {
    version = 2
    encap = yes
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = aes256gcm16-prfsha384-ecp384
    local { auth = psk
            id = gw2.example }
    remote { auth = psk
             id = gw1.example }
    children {
      net { local_ts = 10.2.0.0/24
            remote_ts = 10.1.0.0/24
            esp_proposals = aes256gcm16-x25519
            start_action = none }
    }
  }
}
secrets { ike-1 { id-1 = gw1.example
                  id-2 = gw2.example
                  secret = "$(cat "$dir/psk")" } }
EOF
)
    # charon writes a fixed /run/charon.pid and /run/charon.vici: a private /run in its own
    # mount namespace. The pid it writes to DIR/charon.pid is how it is stopped, and how
    # swanctl gets into its mount namespace (nsenter).
    cat >"$dir/charon.sh" <<EOF
#!/bin/sh
mount -t tmpfs tmpfs /run
export STRONGSWAN_CONF=$dir/strongswan.conf
/usr/lib/ipsec/charon &
echo \$! > $dir/charon.pid
for i in \$(seq 100); do [ -S /run/charon.vici ] && break; sleep 0.1; done
swanctl --load-all --file $dir/swanctl.conf > $dir/swanctl.log 2>&1
wait
EOF
    ip netns exec "$ns2" unshare -m sh "$dir/charon.sh" >"$dir/charon.out" 2>&1 &
    charon_sh=$!
    for _ in $(seq 100); do grep -q "successfully loaded" "$dir/swanctl.log" 2>/dev/null && break; sleep 0.1; done
    grep -q "successfully loaded" "$dir/swanctl.log" 2>/dev/null || {
        echo "charon did not start:"; cat "$dir/charon.out" "$dir/swanctl.log" "$dir/charon.log" 2>/dev/null; exit 1; }
    cpid=$(cat "$dir/charon.pid")
    swan() { nsenter --mount --net --target "$cpid" swanctl "$@" --uri unix:///run/charon.vici; }
    echo "  charon pid $cpid; $dir/swanctl.conf:"
    sed 's/secret = ".*"/secret = "<redacted>"/' "$dir/swanctl.conf" | sed 's/^/    /'
    grep -v 'opening directory' "$dir/swanctl.log" | sed 's/^/  swanctl: /' || true

    ip netns exec "$ns1" tshark -q -n -i wan -a duration:120 -w "$dir/wan.pcap" 2>"$dir/tshark.log" &
    cap_pid=$!
    for _ in $(seq 50); do grep -q "Capturing on" "$dir/tshark.log" 2>/dev/null && break; sleep 0.2; done
    sleep 0.5

    step "gw1: espgw-dataplane, then espgw-control (it runs IKE over the dataplane's punt and inject rings)"
    ip netns exec "$ns1" "$bin" --config "$dir/gw1.json" --stats-file "$dir/gw1.stats.json" >"$dir/gw1.log" 2>&1 &
    gw_pids+=($!)
    wait_log "$dir/gw1.log" "ready for the control process" "gw1's dataplane"
    grep '^espgw' "$dir/gw1.log" | sed 's/^/  gw1: /' || true
    t0=$(date +%s%N)
    ip netns exec "$ns1" "$ctl" --config "$dir/gw1.json" >"$dir/gw1.ctl.log" 2>&1 &
    ctl_pids+=($!)
    wait_log "$dir/gw1.ctl.log" "espgw-control: resync:" "gw1's control"
    grep -v 'IKE:' "$dir/gw1.ctl.log" | sed 's/^/  gw1: /' || true

    step "gw1 negotiates: espgw show security ike security-associations, until State UP (30 s at most)"
    out=""
    for _ in $(seq 120); do
        out=$(espgw show security ike security-associations 2>/dev/null || true)
        grep -qw UP <<<"$out" && break
        sleep 0.25
    done
    if ! grep -qw UP <<<"$out"; then
        echo "$out"; echo "--- espgw-control:"; cat "$dir/gw1.ctl.log"; echo "--- charon:"; tail -40 "$dir/charon.log"
        step "FAILED: no IKE SA within 30 s"
        exit 1
    fi
    echo "  UP $(( ($(date +%s%N) - t0) / 1000000 )) ms after espgw-control started (polled every 250 ms)"
    grep 'IKE:' "$dir/gw1.ctl.log" | sed 's/^/  gw1: /' || true
    grep -E 'established|selected proposal' "$dir/charon.log" | sed 's/^/  charon: /' || true

    step "host a (10.1.0.10) pings host b (10.2.0.10) through the tunnel"
    ip netns exec "$name-a" ping -n -c 1 -W 1 10.1.0.1 >/dev/null || true
    for _ in $(seq 5); do ip netns exec "$name-a" ping -n -c 1 -W 1 10.2.0.10 >/dev/null && break; done
    ip netns exec "$name-a" ping -n -c 5 -i 0.2 -W 2 10.2.0.10 || { step "FAILED: host b did not answer host a"; exit 1; }

    kill -INT "$cap_pid" 2>/dev/null || true
    wait "$cap_pid" 2>/dev/null || true
    cap_pid=""
    step "on the wire between the gateways: IKE on UDP 500, then 4500 (charon's encap=yes fakes a NAT), ESP in UDP 4500"
    echo "  no.  source:port -> destination:port  what"
    tshark -n -r "$dir/wan.pcap" -Y 'isakmp or esp' -T fields -E separator=' ' \
        -e frame.number -e ip.src -e udp.srcport -e ip.dst -e udp.dstport -e _ws.col.Info 2>/dev/null |
        awk '{ printf "  %-4s %s:%s -> %s:%s  ", $1, $2, $3, $4, $5; for (i = 6; i <= NF; i++) printf "%s ", $i; print "" }' |
        head -12 || true

    step "gw1: espgw show security ike security-associations"
    espgw show security ike security-associations
    step "gw1: espgw show security ike security-associations detail"
    espgw show security ike security-associations detail
    step "gw1: espgw show security ipsec security-associations"
    espgw show security ipsec security-associations
    step "gw2: charon's view (swanctl --list-sas, in charon's mount namespace)"
    swan --list-sas

    step "a child rekey under traffic: make-before-break, CREATE_CHILD_SA with PFS (x25519)"
    rekeys0=$(espgw show security ike security-associations detail | grep -o 'child rekeys [0-9]*' | awk '{print $3}' | head -1 || true)
    before=$(espgw show security ipsec security-associations)
    echo "  child rekeys so far: ${rekeys0:-0}; host a pings host b 150 times, 0.1 s apart (the child is rekeyed every 10 s):"
    out=$(ip netns exec "$name-a" ping -n -q -c 150 -i 0.1 -W 2 10.2.0.10 || true)
    echo "$out" | tail -2 | sed 's/^/  /'
    rekeys1=$(espgw show security ike security-associations detail | grep -o 'child rekeys [0-9]*' | awk '{print $3}' | head -1 || true)
    after=$(espgw show security ipsec security-associations)
    echo "  child rekeys now: ${rekeys1:-0}"
    echo "  before:"; sed 's/^/    /' <<<"$before"
    echo "  after:"; sed 's/^/    /' <<<"$after"
    grep -E 'CHILD_SA net\{[0-9]+\} established|selected proposal: ESP' "$dir/charon.log" | tail -4 | sed 's/^/  charon: /' || true
    if [ "${rekeys1:-0}" -le "${rekeys0:-0}" ] || [ "$before" = "$after" ]; then
        step "FAILED: the child was not rekeyed"
        exit 1
    fi
    if ! grep -q ' 0% packet loss' <<<"$out"; then
        step "FAILED: packets lost across the rekey"
        exit 1
    fi

    step "an IKE SA rekey asked for by the operator: CREATE_CHILD_SA with a new DH; the child SAs move over unchanged"
    i=$(espgw show security ike security-associations | awk '$2 == "UP" { print $1; exit }')
    echo "$ espgw request security ike rekey index $i"
    espgw request security ike rekey index "$i"
    out=""
    for _ in $(seq 40); do
        out=$(espgw show security ike security-associations 2>/dev/null || true)
        awk -v i="$i" '$2 == "UP" && $1 != i { f = 1 } END { exit !f }' <<<"$out" && break
        sleep 0.25
    done
    espgw show security ike security-associations detail
    awk -v i="$i" '$2 == "UP" && $1 != i { f = 1 } END { exit !f }' <<<"$out" || { step "FAILED: the IKE SA was not rekeyed"; exit 1; }
    swan --list-sas | head -5 | sed 's/^/  charon: /'
    grep -E 'IKE_SA gw1\[[0-9]+\] rekeyed' "$dir/charon.log" | tail -1 | sed 's/^/  charon: /' || true
    ip netns exec "$name-a" ping -n -q -c 5 -i 0.2 -W 2 10.2.0.10 | tail -2 | sed 's/^/  /'

    step "gw1: espgw clear security ike security-associations (charon is told; the children go on both sides)"
    n=$(wc -l <"$dir/charon.log")
    espgw clear security ike security-associations
    sleep 1
    espgw show security ike security-associations
    espgw show security ipsec security-associations
    out=$(swan --list-sas)
    echo "  charon's swanctl --list-sas: ${out:-(no SAs)}"
    tail -n +$((n + 1)) "$dir/charon.log" | grep -E 'received DELETE|deleting IKE_SA' | sed 's/^/  charon: /' || true

    step "gw1: espgw request security ike initiate vpn0, then host a pings host b again"
    espgw request security ike initiate vpn0
    out=""
    for _ in $(seq 120); do
        out=$(espgw show security ike security-associations 2>/dev/null || true)
        grep -qw UP <<<"$out" && break
        sleep 0.25
    done
    echo "$out"
    grep -qw UP <<<"$out" || { step "FAILED: no IKE SA after request security ike initiate"; exit 1; }
    for _ in $(seq 5); do ip netns exec "$name-a" ping -n -c 1 -W 1 10.2.0.10 >/dev/null && break; done
    ip netns exec "$name-a" ping -n -c 5 -i 0.2 -W 2 10.2.0.10 || { step "FAILED: host b did not answer host a"; exit 1; }
    swan --list-sas | sed 's/^/  charon: /'

    step "gw1's espgw-control log (IKE)"
    grep 'IKE' "$dir/gw1.ctl.log" | sed 's/^/  /' || true

    step "done: espgw negotiated with strongSwan, carried traffic, rekeyed under it and came back after a clear"
}

if [ "$mode" = ike ]; then
    ike_demo
    exit 0
fi

step "topology: host a - gw1 - ($mode ESP) - gw2 - host b, in network namespaces"
CONTROL=1 scripts/topology.sh up "$name" "$dir" "$mode"
if [ "$ipv6" = 1 ]; then
    step "IPv6: host a 2001:db8:1::10, host b 2001:db8:2::10; each gateway's LAN address6 and a route for the far /64 into st0.0"
    for h in a:1 b:2; do
        n=${h#*:}
        ip netns exec "$name-${h%%:*}" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
            net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.disable_ipv6=0
        ip netns exec "$name-${h%%:*}" ip -6 addr add "2001:db8:$n::10/64" dev eth0
        ip netns exec "$name-${h%%:*}" ip -6 route add default via "2001:db8:$n::1"
    done
    for g in gw1:1:2 gw2:2:1; do
        IFS=: read -r gw near far <<<"$g"
        python3 - "$dir/$gw.json" "$near" "$far" <<'PY'
import json, sys
path, near, far = sys.argv[1:]
c = json.load(open(path))
c["interfaces"][0]["address6"] = f"2001:db8:{near}::1/64"
c["routes"].append({"prefix": f"2001:db8:{far}::/64", "via": "st0.0"})
json.dump(c, open(path, "w"), indent=2)
PY
        grep -n 'address6\|2001:db8' "$dir/$gw.json" | sed "s/^/  $gw.json: /"
    done
fi

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
if [ "$ipv6" = 1 ]; then
    step "host a (2001:db8:1::10) pings host b (2001:db8:2::10): IPv6 through the IPv4 tunnel"
    # Each host and its gateway learn each other first (neighbor discovery).
    ip netns exec "$name-a" ping -6 -n -c 2 -i 0.2 -W 2 2001:db8:1::1 | tail -2
    ip netns exec "$name-b" ping -6 -n -c 2 -i 0.2 -W 2 2001:db8:2::1 | tail -2
    ip netns exec "$name-a" ping -6 -n -c 5 -i 0.2 -W 2 2001:db8:2::10 || ok=0
fi

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
if [ "$ipv6" = 1 ]; then
    scripts/decode.sh "$dir/wan.pcap" "$dir" -Y icmpv6 2>/dev/null | head -12
else
    scripts/decode.sh "$dir/wan.pcap" "$dir" -Y icmp 2>/dev/null | head -12
fi

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
