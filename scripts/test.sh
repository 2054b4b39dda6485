#!/usr/bin/env bash
# `make test`: the whole check, in order, stopping at the first failure:
#   services → test dependencies → deployment files (tests/test_deploy.py) →
#   cargo fmt --check → clippy -D warnings → cargo test → debug build →
#   the Python integration suite (tests/).
# Extra arguments go to pytest: scripts/test.sh -k ordering
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"
VENV="$RUN/venv"
LOGS="$RUN/logs"
mkdir -p "$LOGS"
cd "$ROOT"
export DEBIAN_FRONTEND=noninteractive

step() { echo "==> $*"; }

step "services"
scripts/services.sh ensure

step "test dependencies"
# Python: a private venv, so nothing is installed into the system interpreter.
# scramp: a real SCRAM client (checks the server signature); psycopg: to
# look into the auth service's database; websockets: raw XMPP-over-WebSocket frames;
# kubernetes-validate (the Kubernetes API schemas, offline), check-jsonschema
# (with the Compose Specification's schema bundled) and PyYAML: the static
# checks of the deployment files (tests/test_deploy.py); pika: a stock AMQP
# client publishing to the alerts exchange (the README's example).
if ! "$VENV/bin/python" -c 'import pytest, pytest_timeout, irc.client, nats, scramp, psycopg, websockets, kubernetes_validate, check_jsonschema, yaml, pika' 2>/dev/null; then
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        'pytest>=8' 'pytest-timeout>=2' 'irc>=20' 'nats-py>=2.6' 'scramp>=1.4' 'psycopg[binary]>=3.1' 'websockets>=13' \
        'kubernetes-validate>=1.31' 'check-jsonschema>=0.29' 'pyyaml>=6' 'pika>=1.3'
fi
# Real IRC clients (irssi, WeeChat) driven through tmux.
missing=()
command -v irssi >/dev/null 2>&1 || missing+=(irssi)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
# And WeeChat (its curses face), for the TLS + SASL terminal-client test.
command -v weechat >/dev/null 2>&1 || missing+=(weechat-curses)
# Node runs real XMPP client libraries (tests/js).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# Converse.js (the XMPP web client of test_converse) runs in Debian's Chromium.
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} (log: $LOGS/apt.log)"
    apt-get update -qq >>"$LOGS/apt.log" 2>&1
    apt-get install -y -qq "${missing[@]}" >>"$LOGS/apt.log" 2>&1
fi
# The pinned Node packages (package-lock.json): installed again whenever
# the lock file is newer than the last install (its stamp), so a checkout
# that already has node_modules picks up packages added since.
stamp=tests/js/node_modules/.lock-stamp
if [ ! -f "$stamp" ] || [ tests/js/package-lock.json -nt "$stamp" ]; then
    echo "installing tests/js node packages (log: $LOGS/npm.log)"
    (cd tests/js && npm ci --no-audit --no-fund >>"$LOGS/npm.log" 2>&1)
    touch "$stamp"
fi

step "deployment files (compose, Dockerfile, Kubernetes)"
# Static and cheap (no Docker engine, no cluster): run before the builds so
# that a broken manifest fails in seconds. The integration run below
# repeats these tests as part of the suite.
"$VENV/bin/python" -m pytest -q tests/test_deploy.py

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -q -- -D warnings

step "cargo test"
cargo test --workspace -q

step "cargo build (debug)"
# every binary the suite starts: router, gateway, auth-service and chatctl
cargo build -q --workspace --bins

step "integration tests (pytest)"
set +e
"$VENV/bin/python" -m pytest -v tests/ "$@" 2>&1 | tee "$LOGS/pytest.log"
status="${PIPESTATUS[0]}"
set -e
summary="$(grep -E '^=+ .*(passed|failed|error|skipped|no tests ran).* in [0-9.]+s.* =+$' "$LOGS/pytest.log" | tail -n 1 || true)"
# pytest's own summary line closes the output (CI reads the closing lines)
echo
echo "${summary:-pytest printed no summary line (exit $status)}"
exit "$status"
