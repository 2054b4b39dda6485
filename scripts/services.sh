#!/usr/bin/env bash
# Makes sure the local infrastructure the platform needs is up, or stops
# what this script itself started.
#
#   scripts/services.sh ensure   # RabbitMQ (5672), PostgreSQL (5432), NATS+JetStream (4222)
#   scripts/services.sh stop     # stops only the services `ensure` had to start
#
# A service that already answers on its port is reused as it is, whoever
# started it: a developer machine or CI usually has all three running. One
# that does not answer is installed from Debian's packages when missing and
# started without systemd (there is none here). What this script started is
# recorded in .run/started-services, so `stop` never stops a service someone
# else runs. Quiet on success; progress of installs goes to .run/logs/services.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"
STARTED="$RUN/started-services"
LOG="$RUN/logs/services.log"
mkdir -p "$RUN/logs"
touch "$STARTED"

export DEBIAN_FRONTEND=noninteractive

say() { echo "services: $*" >&2; }

# answers PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
answers() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# wait_for NAME PORT: waits up to 90 s for the port to answer.
wait_for() {
    local name="$1" port="$2" i
    for i in $(seq 1 180); do
        answers "$port" && return 0
        sleep 0.5
    done
    say "$name did not answer on 127.0.0.1:$port within 90 s (see $LOG)"
    return 1
}

APT_UPDATED=0
# apt_install PKG...: installs Debian packages, running `apt-get update` once.
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq >>"$LOG" 2>&1
        APT_UPDATED=1
    fi
    say "installing $* (log: $LOG)"
    apt-get install -y -qq "$@" >>"$LOG" 2>&1
}

record() { grep -qx "$1" "$STARTED" || echo "$1" >>"$STARTED"; }
recorded() { grep -qx "$1" "$STARTED"; }
forget() { sed -i "/^$1\$/d" "$STARTED"; }

pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

ensure_rabbitmq() {
    answers 5672 && return 0
    command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
    say "starting RabbitMQ"
    rabbitmq-server -detached >>"$LOG" 2>&1
    record rabbitmq
    wait_for RabbitMQ 5672
    rabbitmqctl -q await_startup >>"$LOG" 2>&1 || true
}

ensure_postgresql() {
    answers 5432 && return 0
    local installed=0
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(pg_version)" ]; then
        apt_install postgresql
        installed=1
    fi
    local ver
    ver="$(pg_version)"
    if [ -z "$ver" ]; then
        say "no PostgreSQL cluster under /etc/postgresql"
        return 1
    fi
    if [ "$installed" = 1 ]; then
        # A fresh install: let local tools and tests connect without a password.
        # Only ever done to a cluster this script installed itself.
        local hba="/etc/postgresql/$ver/main/pg_hba.conf"
        sed -i -E 's/^(local|host)(\s.*\s)(peer|scram-sha-256|md5)\s*$/\1\2trust/' "$hba"
    fi
    say "starting PostgreSQL $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start >>"$LOG" 2>&1
    record postgresql
    wait_for PostgreSQL 5432
}

ensure_nats() {
    answers 4222 && return 0
    [ -x /usr/sbin/nats-server ] || apt_install nats-server
    mkdir -p /var/lib/nats-server
    say "starting NATS (JetStream)"
    start-stop-daemon --start --oknodo --background \
        --make-pidfile --pidfile "$RUN/nats-server.pid" \
        --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server
    record nats
    wait_for NATS 4222
}

stop_services() {
    if recorded nats; then
        say "stopping NATS"
        start-stop-daemon --stop --oknodo --retry 10 --pidfile "$RUN/nats-server.pid" \
            --exec /usr/sbin/nats-server >>"$LOG" 2>&1 || true
        rm -f "$RUN/nats-server.pid"
        forget nats
    fi
    if recorded postgresql; then
        say "stopping PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main stop >>"$LOG" 2>&1 || true
        forget postgresql
    fi
    if recorded rabbitmq; then
        say "stopping RabbitMQ"
        rabbitmqctl -q stop >>"$LOG" 2>&1 || true
        forget rabbitmq
    fi
}

case "${1:-}" in
    ensure)
        ensure_rabbitmq
        ensure_postgresql
        ensure_nats
        ;;
    stop)
        stop_services
        ;;
    *)
        echo "usage: $0 ensure|stop" >&2
        exit 2
        ;;
esac
