#!/usr/bin/env bash
# Decodes a capture taken between the two gateways of topology.sh with tshark, an ESP
# implementation independent of ours, decrypting with the tunnels' keys.
#
#   decode.sh PCAP DIR [tshark args...]     (DIR as given to topology.sh up)
set -euo pipefail
pcap=${1:?PCAP}
dir=${2:?DIR}
shift 2
# shellcheck source=/dev/null
. "$dir/tunnel.env"
opts=()
for sa in $SAS; do
    IFS=, read -r src dst spi key <<<"$sa"
    opts+=(-o "uat:esp_sa:\"IPv4\",\"$src\",\"$dst\",\"$spi\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x$key\",\"NULL\",\"\"")
done
exec tshark -n -r "$pcap" -o esp.enable_encryption_decode:TRUE "${opts[@]}" "$@"
