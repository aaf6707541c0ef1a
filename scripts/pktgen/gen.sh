#!/usr/bin/env bash
# Writes what a bare-metal Pktgen-DPDK run against espgw-dataplane needs, into OUT
# (docs/pktgen.md):
#
#   scripts/pktgen/gen.sh OUT [--tunnels N] [--lan-pci ADDR] [--wan-pci ADDR]
#                             [--lcores LIST] [--workers LIST] [--algo aes-128-gcm|aes-256-gcm]
#
#   gw.json                 the gateway's config: lan0 10.1.0.1/16 (MAC 02:00:00:00:01:01) and
#                           wan0 192.0.2.1 (MAC 02:00:00:00:0a:01) on the two NIC ports, N tunnels
#                           to the peer 192.0.2.2, tunnel T carrying 10.2.T.0/24, random keys,
#                           inbound anti-replay off (pktgen replays the same ESP packets)
#   tunnel.env              the SAs for scripts/decode.sh (tshark), to check captures by hand
#   clear-imix.pcap         cleartext IMIX for encrypt-imix.pkt (pktgen -s 0:...)
#   esp-{64,1400,imix}.pcap ESP from the mirror peer, for decrypt-*.pkt (pktgen -s 1:...)
#   *.pkt                   the command files of scripts/pktgen/ with the range set for N tunnels
#
# The ESP files come from espgw-dataplane itself, run offline (net_pcap) as the peer with the
# mirrored SAs, so it needs root (EAL) and a release build. OUT holds keys: it is mode 0700.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { sed -n '5,6p' "$0" | sed 's/^# \{0,3\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1
shift
tunnels=64 lan_pci=PCI_LAN wan_pci=PCI_WAN lcores=0-1 workers=1 algo=aes-128-gcm
while [ $# -gt 0 ]; do
    case $1 in
    --tunnels) tunnels=$2; shift 2 ;;
    --lan-pci) lan_pci=$2; shift 2 ;;
    --wan-pci) wan_pci=$2; shift 2 ;;
    --lcores) lcores=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --algo) algo=$2; shift 2 ;;
    *) usage ;;
    esac
done
if ! [[ $tunnels =~ ^[0-9]+$ ]] || [ "$tunnels" -lt 1 ] || [ "$tunnels" -gt 256 ]; then
    echo "gen.sh: --tunnels 1..256" >&2
    exit 2
fi
[ "$(id -u)" = 0 ] || { echo "gen.sh: run as root (it runs espgw-dataplane offline to make the ESP pcaps)" >&2; exit 1; }
bin=$PWD/target/release/espgw-dataplane
[ -x "$bin" ] || { echo "gen.sh: build first (cargo build --release)" >&2; exit 1; }

# With -a, EAL numbers the NIC ports in PCI address order (give full addresses: 0000:01:00.0).
lan_port=0
[[ $lan_pci > $wan_pci ]] && lan_port=1
mkdir -p "$out"
chmod 700 "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d /tmp/espgw-pktgen.XXXXXX)
# The offline runs below use this EAL file prefix. EAL creates its runtime directory
# /var/run/dpdk/PREFIX (as root) even with --no-huge and leaves it behind: remove that one
# directory, and the scratch directory, whichever way the script ends.
eal_prefix=espgw-pktgen-gen-$$
cleanup() { rm -rf -- "$tmp" "/var/run/dpdk/$eal_prefix"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 - "$out" "$tmp" "$tunnels" "$lan_pci" "$wan_pci" "$lcores" "$workers" "$algo" "$lan_port" <<'PY'
import json, os, sys
out, tmp, n, lan_pci, wan_pci, lcores, workers, algo, lan_port = sys.argv[1:]
n, lan_port = int(n), int(lan_port)
workers = [int(w) for w in workers.split(",")]
keylen = {"aes-128-gcm": 20, "aes-256-gcm": 36}[algo]
keys_out = [os.urandom(keylen).hex() for _ in range(n)]  # gateway -> peer, SPI 0x1001 + T
keys_in = [os.urandom(keylen).hex() for _ in range(n)]   # peer -> gateway, SPI 0x2001 + T

def private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)

gw = {
    "dataplane": {"eal": ["-l", lcores, "--main-lcore", "0", "-a", lan_pci, "-a", wan_pci,
                          "--vdev", "crypto_aesni_gcm0", "--file-prefix", "espgw-pktgen"],
                  "workers": workers},
    "interfaces": [{"name": "lan0", "port": lan_port, "address": "10.1.0.1/16", "mac": "02:00:00:00:01:01"},
                   {"name": "wan0", "port": 1 - lan_port, "address": "192.0.2.1/24", "mac": "02:00:00:00:0a:01",
                    "mtu": 9000}],
    # pktgen's ports run promiscuous (-P): these MACs only have to be unicast.
    "neighbors": [{"address": "192.0.2.2", "mac": "02:00:00:00:0a:02"}]
                 + [{"address": f"10.1.{t}.10", "mac": "02:00:00:00:01:10"} for t in range(n)],
    "tunnels": [{"name": f"st0.{t}", "local": "192.0.2.1", "remote": "192.0.2.2"} for t in range(n)],
    "routes": [{"prefix": f"10.2.{t}.0/24", "via": f"st0.{t}"} for t in range(n)],
    "manual_sas": [{"tunnel": f"st0.{t}", "direction": "out", "spi": 0x1001 + t, "algorithm": algo,
                    "key": keys_out[t]} for t in range(n)]
                  + [{"tunnel": f"st0.{t}", "direction": "in", "spi": 0x2001 + t, "algorithm": algo,
                      "key": keys_in[t], "replay_window": 0} for t in range(n)],
}
private(os.path.join(out, "gw.json"), json.dumps(gw, indent=1) + "\n")

# The mirror peer, only run here offline (EAL from the command line) to make the ESP pcaps:
# cleartext 10.2.T.10 -> 10.1.T.10 in on port 0, ESP to the gateway's wan0 MAC out of port 1.
peer = {
    "dataplane": {"eal": [], "workers": [1]},
    "interfaces": [{"name": "lan0", "port": 0, "address": "10.2.0.1/16", "mac": "02:00:00:00:02:01"},
                   {"name": "wan0", "port": 1, "address": "192.0.2.2/24", "mac": "02:00:00:00:0a:02", "mtu": 9000}],
    "neighbors": [{"address": "192.0.2.1", "mac": "02:00:00:00:0a:01"}],
    "tunnels": [{"name": f"st0.{t}", "local": "192.0.2.2", "remote": "192.0.2.1"} for t in range(n)],
    "routes": [{"prefix": f"10.1.{t}.0/24", "via": f"st0.{t}"} for t in range(n)],
    "manual_sas": [{"tunnel": f"st0.{t}", "direction": "out", "spi": 0x2001 + t, "algorithm": algo,
                    "key": keys_in[t]} for t in range(n)]
                  + [{"tunnel": f"st0.{t}", "direction": "in", "spi": 0x1001 + t, "algorithm": algo,
                      "key": keys_out[t]} for t in range(n)],
}
private(os.path.join(tmp, "peer.json"), json.dumps(peer))

sas = [f"192.0.2.1,192.0.2.2,{0x1001 + t:#010x},{keys_out[t]}" for t in range(n)]
sas += [f"192.0.2.2,192.0.2.1,{0x2001 + t:#010x},{keys_in[t]}" for t in range(n)]
private(os.path.join(out, "tunnel.env"), "SAS='" + " ".join(sas) + "'\n")
PY

# pktgen reads classic microsecond pcaps; net_pcap writes nanosecond ones.
to_usec() { # in out
    python3 - "$1" "$2" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
magic = struct.unpack("<I", data[:4])[0]
nano = magic == 0xA1B23C4D
assert nano or magic == 0xA1B2C3D4, "not a little-endian pcap"
out = [struct.pack("<I", 0xA1B2C3D4) + data[4:24]]
off = 24
while off + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack("<IIII", data[off:off + 16])
    out.append(struct.pack("<IIII", sec, frac // 1000 if nano else frac, incl, orig) + data[off + 16:off + 16 + incl])
    off += 16 + incl
open(sys.argv[2], "wb").write(b"".join(out))
PY
}

scripts/pcapgen.py "$out/clear-imix.pcap" --imix --tunnels "$tunnels"
scripts/pcapgen.py "$tmp/empty.pcap" --count 0
for size in 64 1400 imix; do
    if [ "$size" = imix ]; then gen=(--imix); else gen=(--size $((size - 4))); fi
    scripts/pcapgen.py "$tmp/peer-in.pcap" "${gen[@]}" --tunnels "$tunnels" --reverse --dst-mac 02:00:00:00:02:01
    rm -f "$tmp/esp.pcap"
    timeout 60 "$bin" --config "$tmp/peer.json" --exit-when-idle 500 --stats-file "$tmp/stats.json" -- \
        --lcores 0@0,1@1 --main-lcore 0 --no-pci --no-huge -m 512 --no-telemetry --file-prefix "$eal_prefix" \
        --vdev "net_pcap0,rx_pcap=$tmp/peer-in.pcap,tx_pcap=$tmp/discard.pcap" \
        --vdev "net_pcap1,rx_pcap=$tmp/empty.pcap,tx_pcap=$tmp/esp.pcap" >"$tmp/log" 2>&1 ||
        { cat "$tmp/log" >&2; exit 1; }
    python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["global"]; e, r = g["encrypted_packets"], g["rx_packets"]; sys.exit(0 if e == r > 0 else "peer encrypted %d of %d" % (e, r))' "$tmp/stats.json"
    to_usec "$tmp/esp.pcap" "$out/esp-$size.pcap"
done

# The command files, with the destination range covering N tunnels.
for f in scripts/pktgen/*.pkt; do
    sed -e "s/range 0 dst ip max 10\.2\.63\.10/range 0 dst ip max 10.2.$((tunnels - 1)).10/" \
        -e "s/over 64 tunnels/over $tunnels tunnels/; s/10\.2\.63\.10\./10.2.$((tunnels - 1)).10./" \
        "$f" >"$out/$(basename "$f")"
done

cat <<EOF
Wrote $out: gw.json, tunnel.env, clear-imix.pcap, esp-{64,1400,imix}.pcap, *.pkt ($tunnels tunnels, $algo).
Gateway:  target/release/espgw-dataplane --config $out/gw.json
          (lan0 = $lan_pci = port $lan_port, wan0 = $wan_pci; edit "eal" in gw.json for your NICs and cores)
Encrypt:  pktgen ... -- -P -T -m "[1:2].0, [3:4].1" -f $out/encrypt-64.pkt        (rx rate on port 1)
          pktgen ... -- -P -T -j -m "[1:2].0, [3:4].1" -s 0:$out/clear-imix.pcap -f $out/encrypt-imix.pkt
Decrypt:  pktgen ... -- -P -T -m "[1:2].0, [3:4].1" -s 1:$out/esp-64.pcap -f $out/decrypt-64.pkt   (rx rate on port 0)
          pktgen ... -- -P -T -j -m "[1:2].0, [3:4].1" -s 1:$out/esp-imix.pcap -f $out/decrypt-imix.pkt
IMIX needs pktgen's -j: its ESP frames are 1574 bytes (docs/pktgen.md).
EOF
