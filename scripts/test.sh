#!/usr/bin/env bash
# Runs every test: formatting and lint gates, unit and property tests, and the integration
# tests (offline pcap runs and the network-namespace end-to-end tests, which need root and,
# under CI=true, fail rather than skip without it). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
    scripts/setup.sh --no-build
elif [ "${CI:-}" = true ]; then
    echo "test.sh: CI runs as root (the EAL and namespace tests need it)" >&2
    exit 1
else
    echo "test.sh: not root: root-only tests will be skipped" >&2
fi
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== the packet path and the control state without DPDK"
# They must build and pass their tests where DPDK is not installed: nothing of them links it.
if cargo tree -p dataplane --no-default-features -e normal --locked | grep -q dpdk-sys; then
    echo "test.sh: dataplane without its dpdk feature still links dpdk-sys" >&2
    exit 1
fi
cargo test -p dataplane --no-default-features --lib --locked 2>&1 | tail -n 3
# The control process and what it links run where DPDK is not.
for c in channel config control; do
    if cargo tree -p "$c" -e normal --locked | grep -q dpdk-sys; then
        echo "test.sh: crate $c links dpdk-sys" >&2
        exit 1
    fi
done
echo "== cargo test"
# Test binaries run one at a time; the e2e tests inside one binary serialise themselves.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite.
awk '/^test result:/ {p += $4; f += $6} END {printf "tests: %d passed, %d failed\n", p, f}' "$log"
[ "$rc" = 0 ] || exit "$rc"

echo "== the REST API against its OpenAPI document (schemathesis)"
if [ "$(id -u)" = 0 ]; then
    scripts/api-check.sh
elif [ "${CI:-}" = true ]; then
    echo "test.sh: the API check needs root, and CI=true: refusing to skip" >&2
    exit 1
else
    echo "SKIPPED the API check: needs root"
fi
