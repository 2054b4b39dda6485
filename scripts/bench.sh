#!/usr/bin/env bash
# Runs chat-bench against a throw-away platform of its own: one router and
# GATEWAYS edge gateways (release builds) in a fresh RabbitMQ vhost and NATS
# prefix, on ports that do not collide with `make up`. Everything is removed
# afterwards. Gateways run with flood control off (CHAT__IRC__FLOOD_RATE=0):
# the benchmark's senders exceed any human rate on purpose. FLOOD_CONTROL=default
# leaves the gateways' own flood control (what users get) in place instead,
# for the flood scenario.
#
#   scripts/bench.sh GATEWAYS [chat-bench arguments…]
#   scripts/bench.sh 2 --clients 50 --senders 5 --rates 500 --seconds 20
#   FLOOD_CONTROL=default scripts/bench.sh 1 --clients 50 --senders 5 --flood-lines 10000 --seconds 20
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GATEWAYS="${1:?usage: [FLOOD_CONTROL=off|default] scripts/bench.sh GATEWAYS [chat-bench args]}"
shift
FLOOD_CONTROL="${FLOOD_CONTROL:-off}"
case "$FLOOD_CONTROL" in
    off | default) ;;
    *) echo "FLOOD_CONTROL must be off or default, not $FLOOD_CONTROL" >&2; exit 2 ;;
esac
BIN="$ROOT/target/release"
TAG="bench$$"
VHOST="$TAG"
WORK="$(mktemp -d)"
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true
    for b in sessions nicks rooms routers; do
        "$ROOT/.run/venv/bin/python" - "$TAG" "$b" <<'PY' 2>/dev/null || true
import asyncio, sys, nats
async def main():
    nc = await nats.connect("nats://127.0.0.1:4222")
    try:
        await nc.jetstream().delete_key_value(f"{sys.argv[1]}_{sys.argv[2]}")
    finally:
        await nc.close()
asyncio.run(main())
PY
    done
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$TAG\"" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$ROOT/scripts/services.sh" ensure
(cd "$ROOT" && cargo build --release -q -p edge-gateway -p router-service -p chat-bench)
rabbitmqctl -q add_vhost "$VHOST" >/dev/null
rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null

export CHAT__AMQP__URL="amqp://guest:guest@127.0.0.1:5672/$VHOST"
export CHAT__NATS__PREFIX="$TAG"
# The router keeps registered channels in PostgreSQL: a database of its own,
# dropped afterwards (bus::pg creates it).
export CHAT__POSTGRES__URL="postgres://postgres@127.0.0.1:5432/$TAG"
if [ "$FLOOD_CONTROL" = off ]; then
    export CHAT__IRC__FLOOD_RATE=0
else
    # The built-in defaults, whatever this shell happens to have set.
    unset CHAT__IRC__FLOOD_RATE CHAT__IRC__FLOOD_BURST
fi
echo "flood control: $FLOOD_CONTROL" >&2
export CHAT__LOG__LEVEL=warn
export NO_COLOR=1

wait_ready() {
    for _ in $(seq 1 120); do
        curl -fsS -o /dev/null "http://$1/readyz" 2>/dev/null && return 0
        sleep 0.5
    done
    echo "not ready: $1 (logs in $WORK)" >&2
    tail -n 20 "$WORK"/*.log >&2
    exit 1
}

CHAT__ADMIN__LISTEN=127.0.0.1:19401 "$BIN/router-service" >"$WORK/router.log" 2>&1 &
PIDS+=($!)
wait_ready 127.0.0.1:19401
ADDRS=()
for i in $(seq 0 $((GATEWAYS - 1))); do
    CHAT__ADMIN__LISTEN="127.0.0.1:$((19410 + i))" CHAT__IRC__LISTEN="127.0.0.1:$((16670 + i))" \
        "$BIN/edge-gateway" >"$WORK/gateway$i.log" 2>&1 &
    PIDS+=($!)
    wait_ready "127.0.0.1:$((19410 + i))"
    ADDRS+=("127.0.0.1:$((16670 + i))")
done
(IFS=,; "$BIN/chat-bench" --gateways "${ADDRS[*]}" "$@")
