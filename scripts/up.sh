#!/usr/bin/env bash
# `make up`: infrastructure, a release build, then one router, one history
# service, one auth service and one IRC gateway in the background, in that
# order (the gateway needs the auth service for SASL/REGISTER and the history
# service for CHATHISTORY from its first client). Returns once all four
# answer /readyz.
#
# The auth service keeps accounts, and the history service messages, in
# PostgreSQL database `chat` (created when missing). Its token secret is generated once into .run/auth-secret
# (mode 600) so tokens survive a restart; `chatctl` (target/release/chatctl)
# manages accounts.
#
# Pid files live in .run/*.pid and logs in .run/logs/*.log; `make down`
# (scripts/down.sh) stops everything this started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"
LOGS="$RUN/logs"
BIN="$ROOT/target/release"
ROUTER_ADMIN="127.0.0.1:9101"
HISTORY_ADMIN="127.0.0.1:9102"
AUTH_ADMIN="127.0.0.1:9103"
GATEWAY_ADMIN="127.0.0.1:9100"
IRC_LISTEN="0.0.0.0:6667"
mkdir -p "$LOGS"

# alive NAME: the pid in .run/NAME.pid is a running process.
alive() {
    local pid
    [ -f "$RUN/$1.pid" ] || return 1
    pid="$(cat "$RUN/$1.pid")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

if alive router-service || alive history-service || alive auth-service || alive edge-gateway; then
    echo "already running (pids: $(cat "$RUN"/*.pid 2>/dev/null | tr '\n' ' '))"
    echo "connect: irc://127.0.0.1:6667   stop: make down"
    exit 0
fi

"$ROOT/scripts/services.sh" ensure

echo "building (release)…"
(cd "$ROOT" && cargo build --release -q -p edge-gateway -p router-service -p history-service -p auth-service)

# A secret of our own instead of the service's development default.
if [ ! -s "$RUN/auth-secret" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/auth-secret")
fi

# A self-signed certificate for IRC over TLS (6697), made once; set
# CHAT__IRC__TLS_CERT / CHAT__IRC__TLS_KEY to use a real one instead.
TLS_CERT="${CHAT__IRC__TLS_CERT:-$RUN/tls/cert.pem}"
TLS_KEY="${CHAT__IRC__TLS_KEY:-$RUN/tls/key.pem}"
if [ ! -s "$TLS_CERT" ] || [ ! -s "$TLS_KEY" ]; then
    "$BIN/chatctl" tls self-signed --cert "$TLS_CERT" --key "$TLS_KEY" --force >/dev/null
fi

# start NAME ADMIN_ADDR [VAR=VALUE…]: runs target/release/NAME detached from
# this terminal (own session, stdin closed), output to .run/logs/NAME.log
# (plain text: NO_COLOR keeps ANSI colours out of the log files).
start() {
    local name="$1" admin="$2"
    shift 2
    (
        cd "$ROOT"
        exec env NO_COLOR=1 CHAT__ADMIN__LISTEN="$admin" "$@" \
            setsid nohup "$BIN/$name" </dev/null >>"$LOGS/$name.log" 2>&1
    ) &
    echo $! >"$RUN/$name.pid"
}

# wait_ready NAME ADMIN_ADDR: polls /readyz for 60 s; on failure shows the log tail.
wait_ready() {
    local name="$1" admin="$2" i
    for i in $(seq 1 120); do
        if curl -fsS -o /dev/null "http://$admin/readyz" 2>/dev/null; then
            return 0
        fi
        if ! alive "$name"; then
            echo "$name exited during start-up; last log lines ($LOGS/$name.log):" >&2
            tail -n 30 "$LOGS/$name.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "$name not ready within 60 s (http://$admin/readyz); last log lines ($LOGS/$name.log):" >&2
    tail -n 30 "$LOGS/$name.log" >&2
    exit 1
}

start router-service "$ROUTER_ADMIN"
wait_ready router-service "$ROUTER_ADMIN"
start history-service "$HISTORY_ADMIN"
wait_ready history-service "$HISTORY_ADMIN"
# (the secret goes through the environment, never a command line `ps` shows)
CHAT__AUTH__SECRET="${CHAT__AUTH__SECRET:-$(cat "$RUN/auth-secret")}" start auth-service "$AUTH_ADMIN"
wait_ready auth-service "$AUTH_ADMIN"
start edge-gateway "$GATEWAY_ADMIN" CHAT__IRC__LISTEN="$IRC_LISTEN" \
    CHAT__IRC__TLS_CERT="$TLS_CERT" CHAT__IRC__TLS_KEY="$TLS_KEY"
wait_ready edge-gateway "$GATEWAY_ADMIN"

cat <<EOF
chat platform is up.
  IRC:           irc://127.0.0.1:6667   (e.g. irssi -c 127.0.0.1 -p 6667 -n alice)
  IRC over TLS:  ircs://localhost:6697  (self-signed: $TLS_CERT; irssi -c localhost -p 6697 -tls -tls_cafile $TLS_CERT)
  XMPP:          ws://127.0.0.1:8080/xmpp (RFC 7395, domain localhost; rooms at conference.localhost)
  Tinode:        ws://127.0.0.1:8080/v0/channels (and /v0/channels/lp; API key AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K)
  gateway admin: http://$GATEWAY_ADMIN/healthz  /readyz  /metrics
  router admin:  http://$ROUTER_ADMIN/healthz  /readyz  /metrics
  history admin: http://$HISTORY_ADMIN/healthz  /readyz  /metrics
  auth admin:    http://$AUTH_ADMIN/healthz  /readyz  /metrics
  accounts:      echo 'a-password' | target/release/chatctl account create alice
                 (or from a client: /quote REGISTER * * a-password, or SASL)
  logs:          $LOGS/
  stop:          make down
EOF
