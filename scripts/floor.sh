#!/usr/bin/env bash
# Builds the floor: espgw-dataplane changed by scripts/floor.patch so that every received burst
# is framed and sealed with the first tunnel's SA (or, when its first frame is ESP, opened with
# the first inbound SA and unframed) and sent on port 1, with nothing else done: no parsing, no
# checks, no lookups, no counters. Beside espgw and ipsec-secgw in one scripts/bench.sh run it
# shows what the replay, the AEAD and the least framing cost on their own, and so how much
# room a target leaves for everything a gateway does (docs/performance.md, "The floor"). It is
# a measuring device, not a gateway: it sends nonsense for any frame size whose inner packet
# needs ESP padding (it handles 64, 512 and 1400-byte frames, not IMIX).
#
#   scripts/floor.sh build      builds target/floor/ from the committed tree and prints the binary
#   ESPGW_BASELINE=$(scripts/floor.sh build) scripts/bench.sh --sizes 64,512,1400 --no-check
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = build ] || { echo "usage: scripts/floor.sh build" >&2; exit 2; }
out=$PWD/target/floor
rm -rf "$out/src"
mkdir -p "$out/src"
git archive --format=tar HEAD | tar -x -C "$out/src"
(cd "$out/src" && patch -p1 --quiet <"$OLDPWD/scripts/floor.patch")
cargo build --release --locked -p dataplane --manifest-path "$out/src/Cargo.toml" \
    --target-dir "$out/target" >&2
echo "$out/target/release/espgw-dataplane"
