#!/usr/bin/env bash
# A local PostgreSQL 15 for the MLflow tracking server (docs/cluster.md): a database cluster in
# DIR/data, bound to 127.0.0.1, password (scram) auth, the `mlflow` user's password generated
# into DIR/password. `up` is idempotent and prints the store's SQLAlchemy URI.
#   cluster/postgres.sh up|down|restart|uri DIR [PORT]
set -euo pipefail

die() { echo "error: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: cluster/postgres.sh up|down|restart|uri DIR [PORT]"
ACTION=$1
DIR=$(mkdir -p "$2" && cd "$2" && pwd)
PORT=${3:-5433}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL not found (no pg_ctl in '$PG_BIN'): apt-get install -y postgresql, or set PG_BIN"

# PostgreSQL refuses to run as root: as root its files belong to the postgres user
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

uri() { echo "postgresql+psycopg2://mlflow:$(cat "$DIR/password")@127.0.0.1:$PORT/mlflow"; }

pg_ctl() { as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" "$@"; }

start() {
    # connections: the MLflow server's workers each keep a pool of up to 40 (make mlflow-server)
    pg_ctl -o "-k $DIR/run -p $PORT -c listen_addresses=127.0.0.1 -c max_connections=200" -l "$DIR/run/postgres.log" -w -t 60 start >/dev/null \
        || die "PostgreSQL did not start; see $DIR/run/postgres.log"
}

up() {
    mkdir -p "$DIR/run"
    [ "$(id -u)" != 0 ] || chown postgres: "$DIR" "$DIR/run"
    as_pg test -w "$DIR/run" || die "the postgres user cannot write $DIR/run: put DIR where it can reach"
    local fresh=false
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/password")
        as_pg "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 \
            >"$DIR/run/initdb.log" 2>&1 || die "initdb failed; see $DIR/run/initdb.log"
        fresh=true
    fi
    pg_ctl status >/dev/null 2>&1 || start
    if $fresh; then
        as_pg "$PG_BIN/psql" -q -h "$DIR/run" -p "$PORT" -U postgres \
            -c "CREATE USER mlflow WITH PASSWORD '$(cat "$DIR/password")';" -c "CREATE DATABASE mlflow OWNER mlflow;" >/dev/null
    fi
    uri
}

case "$ACTION" in
    up) up ;;
    down) if pg_ctl status >/dev/null 2>&1; then pg_ctl -m fast -w stop >/dev/null; fi ;;
    restart) pg_ctl -m fast -w stop >/dev/null && start ;;
    uri) uri ;;
    *) die "usage: cluster/postgres.sh up|down|restart|uri DIR [PORT]" ;;
esac
