#!/usr/bin/env bash
# `make down`: stops what `make up` started — the gateway, the auth service,
# the history service and the router (SIGTERM, then SIGKILL after 10 s) — and then the infrastructure services
# that scripts/services.sh had to start (services that were already running
# before `make up` are left alone).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"

# stop NAME: SIGTERM the pid in .run/NAME.pid, wait up to 10 s, then SIGKILL.
stop() {
    local name="$1" pidfile="$RUN/$1.pid" pid i
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$name (pid $pid) ignored SIGTERM for 10 s: killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}

# The gateway first, so that its users' QUITs still reach a running router.
stop edge-gateway
stop auth-service
stop history-service
stop router-service
"$ROOT/scripts/services.sh" stop
