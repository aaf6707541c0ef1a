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
echo "== cargo test"
# One test binary at a time already; the e2e tests serialise themselves.
cargo test --workspace --locked
