#!/usr/bin/env bash
# Installs and starts the PostgreSQL server the history tests run on (tests/test_history.py,
# tests/test_completion.py), without the machine's service manager:
#   - Debian's postgresql package, if no PostgreSQL server binaries are installed (root);
#   - a project-local cluster in <project>/.tools/pg/data (initdb, owned by the postgres user
#     when run as root), started with pg_ctl, listening on 127.0.0.1 only (no Unix socket),
#     on a free port chosen once and kept in .tools/pg/port;
#   - a role bmshil (password bmshil, CREATEDB: each test makes and drops its own database)
#     owning a database bmshil_test;
#   - the URL in .tools/pg/url: postgresql+psycopg://bmshil:bmshil@127.0.0.1:PORT/bmshil_test
# Idempotent: when the cluster is already up it only checks it (pg_isready) and rewrites the
# URL; after a reboot it starts it again (a stale postmaster.pid is cleared first).
# BMSHIL_NO_POSTGRES=1 skips all of it (the tests then skip their PostgreSQL parameter).
# When the postgres user cannot reach .tools/pg (a folder above is closed), the cluster lives
# in ~postgres/bms-hil/<hash of the project path> instead.
# Usage: scripts/setup-postgres.sh            (from anywhere; root needed only to install)
set -euo pipefail

PROJECT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$PROJECT/.tools"
PG="$TOOLS/pg"
ROLE="bmshil"
PASSWORD="bmshil"
DATABASE="bmshil_test"

say() { echo "setup-postgres: $*"; }
die() {
    echo "setup-postgres: $*" >&2
    echo "setup-postgres: (BMSHIL_NO_POSTGRES=1 skips the PostgreSQL tests instead)" >&2
    exit 1
}

if [ "${BMSHIL_NO_POSTGRES:-}" = "1" ]; then
    say "BMSHIL_NO_POSTGRES=1: not installing or starting PostgreSQL"
    exit 0
fi

# -- the server binaries ---------------------------------------------------------------------
server_bindir() { # the newest installed major version's
    local dir best=""
    while IFS= read -r dir; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then best="$dir"; fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    echo "$best"
}
BIN="$(server_bindir)"
if [ -z "$BIN" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's postgresql"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        BIN="$(server_bindir)"
    fi
    [ -n "$BIN" ] || die "no PostgreSQL server in /usr/lib/postgresql/*/bin and cannot" \
        "apt-get install postgresql (not root, or no apt-get)"
fi
VERSION="$(basename "$(dirname "$BIN")")"

# -- who runs the server: postgres refuses root ----------------------------------------------
mkdir -p "$TOOLS"
# .tools/ is machine state, never source: keep it out of git without touching .gitignore.
[ -f "$TOOLS/.gitignore" ] || printf '*\n' >"$TOOLS/.gitignore"
mkdir -p "$PG"
SERVER="$PG" # the cluster's own folder: data, log, superuser password
if [ "$(id -u)" = "0" ]; then
    id postgres >/dev/null 2>&1 || die "no postgres user (the postgresql package makes it)"
    chown postgres:postgres "$PG"
    as_server() { runuser -u postgres -- "$@"; }
    if ! as_server test -w "$PG"; then
        # A folder above the project is closed to other users (a clone under /root): the
        # cluster lives in the postgres user's home instead, one per project path; the port
        # and URL stay in .tools/pg.
        SERVER="$(getent passwd postgres | cut -d: -f6)/bms-hil/$(printf '%s' "$PROJECT" |
            sha256sum | cut -c1-16)"
        mkdir -p "$SERVER"
        chown postgres:postgres "$SERVER" "$(dirname "$SERVER")"
        as_server test -w "$SERVER" || die "the postgres user cannot write to $PG nor $SERVER"
        say "the postgres user cannot reach $PG: the cluster lives in $SERVER"
    fi
else
    as_server() { "$@"; }
fi
cd "$SERVER" # the server's commands run as postgres, which may not read the caller's folder
DATA="$SERVER/data"
LOG="$SERVER/server.log"
SUPERPW="$SERVER/superuser.pw"

# -- the cluster -----------------------------------------------------------------------------
if [ -f "$DATA/PG_VERSION" ] && [ "$(cat "$DATA/PG_VERSION")" != "$VERSION" ]; then
    say "cluster in $DATA is PostgreSQL $(cat "$DATA/PG_VERSION"), server is $VERSION: re-creating"
    as_server "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$DATA"
fi
if [ ! -f "$DATA/PG_VERSION" ]; then
    say "creating a PostgreSQL $VERSION cluster in $DATA"
    rm -rf "$DATA"
    as_server sh -c "umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >'$SUPERPW'"
    as_server "$BIN/initdb" -D "$DATA" -U postgres --pwfile="$SUPERPW" -E UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 >"$PG/initdb.log"
    # A throwaway test server: TCP on the loopback only, no Unix socket (no path-length or
    # /var/run dependence), no fsync.
    as_server sh -c "cat >>'$DATA/postgresql.conf'" <<'EOF'

# -- bms-hil test cluster (scripts/setup-postgres.sh) --
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'UTC'
EOF
fi
[ -s "$SUPERPW" ] || die "$SUPERPW missing: remove $DATA and run this again"

port_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# The pid file's 4th line is the port of a running postmaster.
running_port() { sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true; }

# A pid file left from before a reboot may name a pid that is now some other process, which
# pg_ctl and postgres would take for a live server of this cluster.
if [ -f "$DATA/postmaster.pid" ]; then
    pid="$(head -n 1 "$DATA/postmaster.pid")"
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-D $DATA"; then
        say "removing a stale postmaster.pid (pid $pid is not this cluster's server)"
        rm -f "$DATA/postmaster.pid"
    fi
fi
if as_server "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    PORT="$(running_port)"
    say "cluster already running on 127.0.0.1:$PORT"
else
    # Not running: first start, or the machine was rebooted.
    PORT="$(cat "$PG/port" 2>/dev/null || true)"
    if [ -z "$PORT" ] || ! port_free "$PORT"; then
        PORT="$(free_port)"
    fi
    echo "$PORT" >"$PG/port"
    say "starting the cluster on 127.0.0.1:$PORT (log: $LOG)"
    as_server "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "-p $PORT" start >/dev/null ||
        die "the server did not start: see $LOG"
fi
for _ in $(seq 1 30); do
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
    sleep 1
done
"$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || die "no server answers on 127.0.0.1:$PORT"

# -- role and database -----------------------------------------------------------------------
PGPASSWORD="$(cat "$SUPERPW")"
export PGPASSWORD
"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres <<EOF
SELECT format('CREATE ROLE %I', '$ROLE') WHERE NOT EXISTS (
    SELECT FROM pg_roles WHERE rolname = '$ROLE') \gexec
ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
SELECT format('CREATE DATABASE %I OWNER %I', '$DATABASE', '$ROLE') WHERE NOT EXISTS (
    SELECT FROM pg_database WHERE datname = '$DATABASE') \gexec
EOF
unset PGPASSWORD

URL="postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
"$BIN/psql" -X -q -At -c 'SELECT 1' \
    "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE" >/dev/null ||
    die "cannot connect as $ROLE to $DATABASE on 127.0.0.1:$PORT"
printf '%s\n' "$URL" >"$PG/url.tmp"
mv "$PG/url.tmp" "$PG/url"
say "PostgreSQL $VERSION ready: $URL (in $PG/url)"
