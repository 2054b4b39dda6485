#!/usr/bin/env bash
# Benchmarks the history service (release build) with `history-bench`, each
# part on a throw-away RabbitMQ vhost, NATS prefix and PostgreSQL database of
# its own (removed afterwards), on ports that do not collide with `make up`.
#
#   (a) write throughput, for each batch_max in BATCHES: COUNT room events
#       published to chat.rooms while one history-service consumes them
#       (live), then COUNT events queued first and worked through by a
#       freshly started service (backlog: the service's own ceiling);
#   (b) query latency: ROWS items seeded by COPY into one room (plus 9
#       smaller rooms), then QUERIES pages of LIMIT items per selector, through
#       the store functions and end to end through the bus.
#
#   scripts/bench-history.sh                 # everything, default sizes
#   COUNT=50000 ROWS=100000 scripts/bench-history.sh
#   PARTS=write BATCHES="100 500" scripts/bench-history.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release"
COUNT="${COUNT:-200000}"
ROOMS="${ROOMS:-8}"
BATCHES="${BATCHES:-100 500 1000}"
ROWS="${ROWS:-1000000}"
QUERIES="${QUERIES:-1000}"
LIMIT="${LIMIT:-100}"
PARTS="${PARTS:-write query}"
TAG="hbench$$"
ADMIN="127.0.0.1:19502"
WORK="$(mktemp -d)"
PG_SERVER="postgres://postgres@127.0.0.1:5432"
PID=""
VHOSTS=()
DATABASES=()

stop_service() {
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        PID=""
    fi
}

cleanup() {
    stop_service
    for v in "${VHOSTS[@]}"; do rabbitmqctl -q delete_vhost "$v" >/dev/null 2>&1 || true; done
    for d in "${DATABASES[@]}"; do
        psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)" \
            >/dev/null 2>&1 || true
    done
    "$BIN/history-bench" cleanup --prefix "$TAG" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_ready() {
    for _ in $(seq 1 120); do
        curl -fsS -o /dev/null "http://$ADMIN/readyz" 2>/dev/null && return 0
        sleep 0.5
    done
    echo "history-service not ready (log: $WORK/history.log)" >&2
    tail -n 20 "$WORK/history.log" >&2
    exit 1
}

# isolate NAME: a fresh vhost and database name (the service creates the
# database), in AMQP and PG.
isolate() {
    VHOST="$TAG-$1"
    DB="${TAG}_$1"
    VHOSTS+=("$VHOST")
    DATABASES+=("$DB")
    rabbitmqctl -q add_vhost "$VHOST" >/dev/null
    rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
    AMQP="amqp://guest:guest@127.0.0.1:5672/$VHOST"
    PG="$PG_SERVER/$DB"
}

# run_service [VAR=value…]: the service on the current vhost and database.
run_service() {
    env CHAT__AMQP__URL="$AMQP" CHAT__POSTGRES__URL="$PG" CHAT__NATS__PREFIX="$TAG" \
        CHAT__ADMIN__LISTEN="$ADMIN" CHAT__LOG__LEVEL=warn NO_COLOR=1 "$@" \
        "$BIN/history-service" >>"$WORK/history.log" 2>&1 &
    PID=$!
}

"$ROOT/scripts/services.sh" ensure
(cd "$ROOT" && cargo build --release -q -p history-service)

if [[ " $PARTS " == *" write "* ]]; then
    for b in $BATCHES; do
        settings=(CHAT__HISTORY__BATCH_MAX="$b" CHAT__HISTORY__PREFETCH="$((2 * b))")
        echo "== batch_max $b, live: publishing while the service consumes"
        isolate "w$b"
        run_service "${settings[@]}"
        wait_ready
        "$BIN/history-bench" write --amqp "$AMQP" --pg "$PG" --metrics "http://$ADMIN/metrics" \
            --count "$COUNT" --rooms "$ROOMS"
        stop_service
        echo "== batch_max $b, backlog: $COUNT events queued before the service starts"
        isolate "d$b"
        "$BIN/history-bench" publish --amqp "$AMQP" --count "$COUNT" --rooms "$ROOMS"
        run_service "${settings[@]}"
        "$BIN/history-bench" drain --pg "$PG" --metrics "http://$ADMIN/metrics" --count "$COUNT"
        stop_service
    done
fi

if [[ " $PARTS " == *" query "* ]]; then
    echo "== query latency"
    isolate q
    run_service
    wait_ready
    "$BIN/history-bench" seed --pg "$PG" --rows "$ROWS"
    "$BIN/history-bench" query --pg "$PG" --amqp "$AMQP" --prefix "$TAG" --rows "$ROWS" \
        --queries "$QUERIES" --limit "$LIMIT"
    stop_service
fi
