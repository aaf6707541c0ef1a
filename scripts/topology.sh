#!/usr/bin/env bash
# Two gateways back to back in network namespaces, a host behind each:
#
#   NAME-a              NAME-gw1                          NAME-gw2             NAME-b
#   eth0 10.1.0.10/16 -- lan [espgw 10.1.0.1 | 192.0.2.1] wan -- wan [192.0.2.2 | 10.2.0.1] lan -- eth0 10.2.0.10/16
#
# With TUNNELS > 1 the hosts also get 10.1.i.10 and 10.2.i.10 (i = 1 .. TUNNELS-1), and tunnel
# st0.i carries 10.1.i.0/24 <-> 10.2.i.0/24. All tunnels join the same two gateways. Each gateway
# runs WORKERS worker lcores, and its af_packet ports get that many queue pairs.
#
# The gateways' interfaces carry no kernel addresses: espgw-dataplane owns them through
# net_af_packet (qdisc_bypass=0, so a capture on a port also sees what espgw sends). `up` also
# writes the two gateways' configurations (mirrored manual SAs with fresh random keys, mode
# 0600), and tunnel.env (the SAs and keys, for decoding captures with decode.sh).
#
# In mode `ike` there are no manual SAs: each gateway's configuration has an `ike` section (one
# gateway, PSK in DIR/psk, and one VPN per tunnel; gw1 initiates, gw2 only responds), for
# espgw-control to negotiate. It implies CONTROL=1.
#
# With CONTROL=1 each gateway's configuration also names a channel (/dev/shm/NAME-gwN) and a
# control section (REST on 127.0.0.1:8443 in the gateway's namespace, the token in DIR/token,
# commits in DIR/gwN-state): run espgw-dataplane and espgw-control on it.
#
#   topology.sh up NAME DIR [raw|natt|ike] [TUNNELS] [WORKERS]
#   topology.sh down NAME
set -euo pipefail

cmd=${1:-}
name=${2:-}
[ -n "$cmd" ] && [ -n "$name" ] || { echo "usage: $0 up NAME DIR [raw|natt] [TUNNELS] [WORKERS] | down NAME" >&2; exit 2; }

ns() { ip netns exec "$name-$1" "${@:2}"; }

down() {
    for n in a gw1 gw2 b; do
        ip netns del "$name-$n" 2>/dev/null || true
    done
}

if [ "$cmd" = down ]; then
    down
    rm -rf "/var/run/dpdk/$name-gw1" "/var/run/dpdk/$name-gw2" "/dev/shm/$name-gw1" "/dev/shm/$name-gw2"
    exit 0
fi
[ "$cmd" = up ] || { echo "unknown command $cmd" >&2; exit 2; }
dir=${3:?DIR}
mode=${4:-raw}
tunnels=${5:-1}
workers=${6:-1}
case "$mode" in raw|natt) ;; ike) CONTROL=1 ;; *) echo "mode must be raw, natt or ike" >&2; exit 2 ;; esac
[ "$tunnels" -ge 1 ] && [ "$tunnels" -le 200 ] || { echo "TUNNELS must be 1..200" >&2; exit 2; }
[ "$workers" -ge 1 ] && [ "$workers" -le 8 ] || { echo "WORKERS must be 1..8" >&2; exit 2; }

down
for n in a gw1 gw2 b; do
    ip netns add "$name-$n"
    ns "$n" ip link set lo up
done
ip link add eth0 netns "$name-a" type veth peer name lan netns "$name-gw1"
ip link add wan netns "$name-gw1" type veth peer name wan netns "$name-gw2"
ip link add lan netns "$name-gw2" type veth peer name eth0 netns "$name-b"

for g in gw1 gw2; do
    for i in lan wan; do
        # The kernel must stay quiet on the gateway's ports: no addresses, no IPv6 chatter.
        ns "$g" sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1"
        ns "$g" ip link set "$i" up
        ns "$g" ethtool -K "$i" gro off >/dev/null 2>&1 || true
        # In mode ike gw2's kernel (strongSwan's) sends on these: complete checksums in the
        # frames espgw reads (veth leaves them partial; espgw checks IPv6 UDP's).
        ns "$g" ethtool -K "$i" tx off >/dev/null 2>&1 || true
    done
done
host() { # ns net gw
    ns "$1" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
    for i in $(seq 0 $((tunnels - 1))); do
        ns "$1" ip addr add "$2.$i.10/16" dev eth0
    done
    ns "$1" ip link set eth0 up
    ns "$1" ip route add default via "$3"
    # Complete checksums in the frames the gateway reads (veth leaves them partial).
    ns "$1" ethtool -K eth0 tx off >/dev/null 2>&1 || true
}
host a 10.1 10.1.0.1
host b 10.2 10.2.0.1

# Hugepages if there are enough free, else plain memory (slower, but works anywhere).
free_pages=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
mem=hugepages
[ "${free_pages:-0}" -ge 128 ] || mem=none

mkdir -p "$dir"
(umask 077; python3 - "$dir" "$name" "$mode" "$tunnels" "$workers" "$mem" "${CONTROL:-0}" <<'PY'
import base64, json, os, sys
out, name, mode, tunnels, workers, mem = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
control = sys.argv[7] == "1"
if control:
    with open(os.path.join(out, "token"), "w") as f:
        f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
psk = base64.b64encode(os.urandom(24)).decode()
if mode == "ike":
    with open(os.path.join(out, "psk"), "w") as f:
        f.write(psk + "\n")
key = lambda n: os.urandom(n).hex()
# Per tunnel: gw1 -> gw2 with AES-128-GCM (no ESN), gw2 -> gw1 with AES-256-GCM (ESN).
sas = [dict(i=i, spi12=0x1001 + i, key12=key(20), spi21=0x2001 + i, key21=key(36)) for i in range(tunnels)]
def gateway(me):
    first = me == "gw1"
    local, remote = ("192.0.2.1", "192.0.2.2") if first else ("192.0.2.2", "192.0.2.1")
    lan = "10.1" if first else "10.2"
    far = "10.2" if first else "10.1"
    # Each gateway's workers spread over the two CPUs, starting on the CPU its peer's main uses.
    main_cpu = 0 if first else 1
    lcores = [f"0@{main_cpu}"] + [f"{w}@{(main_cpu + w) % 2}" for w in range(1, workers + 1)]
    eal = ["--lcores", ",".join(lcores), "--main-lcore", "0", "--no-pci", "--file-prefix", f"{name}-{me}"]
    eal += ["--in-memory"] if mem == "hugepages" else ["--no-huge", "-m", "256"]
    for port, iface in enumerate(["lan", "wan"]):
        eal += ["--vdev", f"net_af_packet{port},iface={iface},qpairs={workers},qdisc_bypass=0"]
    tun = []
    for s in sas:
        t = {"name": f"st0.{s['i']}", "local": local, "remote": remote}
        if mode == "natt":
            t["udp_encap"] = {"local_port": 4500, "remote_port": 4500}
        tun.append(t)
    out_alg, in_alg = ("aes-128-gcm", "aes-256-gcm") if first else ("aes-256-gcm", "aes-128-gcm")
    manual = []
    for s in sas:
        o = (s["spi12"], s["key12"], False) if first else (s["spi21"], s["key21"], True)
        i = (s["spi21"], s["key21"], True) if first else (s["spi12"], s["key12"], False)
        manual.append({"tunnel": f"st0.{s['i']}", "direction": "out", "spi": hex(o[0]), "algorithm": out_alg, "key": o[1], "esn": o[2]})
        manual.append({"tunnel": f"st0.{s['i']}", "direction": "in", "spi": hex(i[0]), "algorithm": in_alg, "key": i[1], "esn": i[2], "replay_window": 4096})
    cfg = {
        "dataplane": {"eal": eal, "workers": list(range(1, workers + 1)), "poll_sleep_us": 20},
        "interfaces": [{"name": "lan0", "port": 0, "address": f"{lan}.0.1/16"},
                       {"name": "wan0", "port": 1, "address": f"{local}/24"}],
        "tunnels": tun,
        "routes": [{"prefix": f"{far}.{s['i']}.0/24", "via": f"st0.{s['i']}"} for s in sas],
        "manual_sas": manual,
    }
    if mode == "ike":
        del cfg["manual_sas"]
        cfg["ike"] = {
            "gateways": [{"name": "peer", "local_address": local, "remote_address": remote,
                          "local_id": f"{me}.example", "remote_id": ("gw2" if first else "gw1") + ".example",
                          "psk_file": os.path.join(out, "psk"), "proposals": ["aes256gcm16-prfsha384-ecp384"],
                          "dpd": {"interval_s": 5, "action": "clear"}}],
            "vpns": [{"name": f"vpn{s['i']}", "gateway": "peer", "bind_interface": f"st0.{s['i']}",
                      # gw1 offers ESN or not, gw2 only ESN: ESN is chosen.
                      "esp_proposals": ["aes256gcm16-esn-noesn" if first else "aes256gcm16-esn"],
                      "local_ts": [f"{lan}.{s['i']}.0/24"], "remote_ts": [f"{far}.{s['i']}.0/24"],
                      "establish": "immediately" if first else "responder-only"} for s in sas],
        }
    if control:
        cfg["dataplane"]["channel"] = f"/dev/shm/{name}-{me}"
        cfg["control"] = {"listen": "127.0.0.1:8443", "token_file": os.path.join(out, "token"),
                          "state_dir": os.path.join(out, f"{me}-state")}
    return cfg
for g in ("gw1", "gw2"):
    with open(os.path.join(out, f"{g}.json"), "w") as f:
        json.dump(gateway(g), f, indent=2)
with open(os.path.join(out, "tunnel.env"), "w") as f:
    f.write(f"MODE={mode}\n")
    # src,dst,spi,key for every SA, for decode.sh.
    f.write("SAS='" + " ".join(
        f"192.0.2.1,192.0.2.2,{s['spi12']:#x},{s['key12']} 192.0.2.2,192.0.2.1,{s['spi21']:#x},{s['key21']}" for s in sas) + "'\n")
PY
)
