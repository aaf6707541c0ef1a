#!/usr/bin/env bash
# Decodes a capture taken between the two gateways of topology.sh with tshark, an ESP
# implementation independent of ours, decrypting with the tunnel's keys.
#
#   decode.sh PCAP DIR [tshark args...]     (DIR as given to topology.sh up)
set -euo pipefail
pcap=${1:?PCAP}
dir=${2:?DIR}
shift 2
# shellcheck source=/dev/null
. "$dir/tunnel.env"
sa() { printf '"IPv4","%s","%s","%s","AES-GCM with 16 octet ICV [RFC4106]","0x%s","NULL",""' "$@"; }
exec tshark -n -r "$pcap" \
    -o esp.enable_encryption_decode:TRUE \
    -o "uat:esp_sa:$(sa 192.0.2.1 192.0.2.2 "$SPI_1TO2" "$KEY_1TO2")" \
    -o "uat:esp_sa:$(sa 192.0.2.2 192.0.2.1 "$SPI_2TO1" "$KEY_2TO1")" \
    "$@"
