#!/usr/bin/env bash
# Builds DPDK's ipsec-secgw example, the reference scripts/bench.sh measures espgw against.
#
#   scripts/secgw.sh build     build it if needed (as root when dpdk-doc must be installed);
#                              prints the binary's path
#   scripts/secgw.sh path      prints the binary's path (exit 1 if not built)
#
# The sources come from Debian's dpdk-doc package (/usr/share/dpdk/examples), so they match the
# installed DPDK 22.11. They are copied under target/secgw/ (gitignored: DPDK's code is never
# committed here) and get one change, scripts/secgw/vdev.patch: the example requests RX checksum
# offload on every port and exits when a port lacks it, as every vdev does (net_pcap, net_null);
# it never reads the RX checksum flags, so the patch drops that request on such ports. Nothing on
# the packet path changes. Building again is a no-op unless the package or the patch changed.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/secgw.sh build|path" >&2; exit 2; }
[ $# -eq 1 ] || usage

examples=/usr/share/dpdk/examples
patch_file=$PWD/scripts/secgw/vdev.patch
root=$PWD/target/secgw
bin=$root/ipsec-secgw/build/ipsec-secgw

stamp() {
    # What the build depends on: the package version and the patch.
    printf '%s %s\n' "$(dpkg-query -W -f='${Version}' dpdk-doc 2>/dev/null)" "$(sha256sum <"$patch_file" | cut -d' ' -f1)"
}

case $1 in
path)
    [ -x "$bin" ] || { echo "secgw.sh: not built; run scripts/secgw.sh build" >&2; exit 1; }
    echo "$bin"
    ;;
build)
    # dpdk-doc holds the examples' sources; make and patch build them.
    missing=()
    for p in dpdk-doc make patch; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || { echo "secgw.sh: ${missing[*]} missing; run as root to install" >&2; exit 1; }
        echo "secgw.sh: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
    fi
    [ -f "$examples/ipsec-secgw/Makefile" ] || { echo "secgw.sh: no $examples/ipsec-secgw in dpdk-doc" >&2; exit 1; }
    if [ -x "$bin" ] && [ "$(cat "$root/stamp" 2>/dev/null)" = "$(stamp)" ]; then
        echo "$bin"
        exit 0
    fi
    rm -rf "$root"
    mkdir -p "$root"
    # The Makefile includes ../common: keep the examples' layout.
    cp -r "$examples/ipsec-secgw" "$examples/common" "$root/"
    rm -rf "$root/ipsec-secgw/build"
    patch -s -d "$root/ipsec-secgw" -p1 <"$patch_file"
    make -s -C "$root/ipsec-secgw" -j"$(nproc)" >"$root/build.log" 2>&1 ||
        { cat "$root/build.log" >&2; echo "secgw.sh: build failed" >&2; exit 1; }
    stamp >"$root/stamp"
    echo "$bin"
    ;;
*) usage ;;
esac
