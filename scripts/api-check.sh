#!/usr/bin/env bash
# The REST API against its own OpenAPI document: two gateways (control + dataplane each) in
# network namespaces, then schemathesis (from PyPI, in target/venv) against gw1's
# /openapi.json: no 5xx, no status code or response outside the schema, in a bounded number
# of cases per operation. Run by scripts/test.sh; needs root (namespaces, EAL).
#
#   scripts/api-check.sh [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-25}
name=espgw-api$$
dir=$(mktemp -d /tmp/espgw-api.XXXXXX)
bin=${ESPGW_BIN_DIR:-$PWD/target/debug}
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/topology.sh down "$name"
    rm -rf "$dir"
}
trap cleanup EXIT

if [ ! -x target/venv/bin/schemathesis ]; then
    python3 -m venv target/venv
    target/venv/bin/pip install -q 'schemathesis>=4,<5'
fi

CONTROL=1 scripts/topology.sh up "$name" "$dir" raw >/dev/null
for g in gw1 gw2; do
    ip netns exec "$name-$g" "$bin/espgw-dataplane" --config "$dir/$g.json" >"$dir/$g.dp.log" 2>&1 &
    pids+=($!)
done
wait_log() {
    for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done
    echo "api-check.sh: $1: no '$2'"; cat "$1"; exit 1
}
for g in gw1 gw2; do wait_log "$dir/$g.dp.log" "ready for the control process"; done
for g in gw1 gw2; do
    ip netns exec "$name-$g" "$bin/espgw-control" --config "$dir/$g.json" >"$dir/$g.ctl.log" 2>&1 &
    pids+=($!)
done
for g in gw1 gw2; do wait_log "$dir/$g.ctl.log" "espgw-control: resync:"; done
# Some traffic, so that the SA counters are not all zero.
ip netns exec "$name-a" ping -n -q -c 3 -i 0.1 -W 1 10.2.0.10 >/dev/null || true
sleep 0.5

token=$(head -n1 "$dir/token")
ip netns exec "$name-gw1" target/venv/bin/schemathesis run \
    "http://127.0.0.1:8443/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$max" --seed 1 --request-timeout 30 --no-color
# The gateway is still up and still forwards.
ip netns exec "$name-gw1" curl -sf http://127.0.0.1:8443/v1/health >/dev/null
echo "api-check.sh: the API keeps to its OpenAPI document"
