#!/usr/bin/env bash
# Installs everything espgw needs on Debian bookworm (run as root), reserves hugepages and
# builds the workspace in release mode. Safe to run again: it only does what is missing.
#
#   scripts/setup.sh            install + hugepages + build
#   scripts/setup.sh --no-build install + hugepages
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: run as root (it installs packages and reserves hugepages)" >&2
    exit 1
fi

# DPDK 22.11 LTS, bindgen's libclang, OpenSSL's headers (IKE's RSA SHA-1 signatures), the
# tools the demo and tests use (tshark and scapy as
# independent ESP implementations, iproute2/ethtool for the namespaces), and strongSwan as the
# IKE peer of the interop tests (run by the tests in their own namespaces only).
packages=(dpdk dpdk-dev libdpdk-dev pkg-config clang libclang-dev gcc libc6-dev libssl-dev
          tshark iproute2 iputils-ping ethtool procps python3 python3-venv ca-certificates curl openssl
          python3-scapy python3-cryptography
          strongswan-charon strongswan-swanctl libstrongswan-standard-plugins
          libstrongswan-extra-plugins libcharon-extra-plugins)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    # No service starts while packages install (strongSwan's would listen on UDP 500 and 4500
    # of the host); the tests start their own daemons in their own namespaces.
    rc=/usr/sbin/policy-rc.d
    had_rc=0
    [ -e "$rc" ] && had_rc=1
    [ "$had_rc" = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$rc"; chmod 755 "$rc"; }
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "$had_rc" = 1 ] || rm -f "$rc"
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now strongswan-starter strongswan 2>/dev/null || true
    fi
fi

# 2 MiB hugepages for --in-memory EAL runs (no hugetlbfs mount needed). Best effort: without
# them the scripts fall back to --no-huge.
want=256
have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
if [ "$have" -lt "$want" ]; then
    echo "$want" > /proc/sys/vm/nr_hugepages 2>/dev/null || echo "setup.sh: could not reserve hugepages; using --no-huge" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "setup.sh: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }

if [ "${1:-}" != "--no-build" ]; then
    cargo build --release --workspace --locked
fi
