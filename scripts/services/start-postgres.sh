#!/usr/bin/env bash
# start-postgres.sh - throwaway PostgreSQL cluster on loopback, for tests and CI.
#
# Idempotent: a second run finds the running cluster and only prints the settings.
# Prints KEY=VALUE lines on stdout (eval/source-able); progress goes to stderr. The names are
# not Ecrin settings, so exporting them changes nothing by itself: to run Ecrin on this cluster,
# set ECRIN_DATABASE_URL="$ECRIN_PG_URL".
# Stop it with scripts/services/stop-all.sh (PID file: $STATE_DIR/pids/postgres.pid).
#
# Environment (all optional):
#   ECRIN_STATE_DIR      where data, logs and PID files live (default: ${TMPDIR:-/tmp}/ecrin-backends)
#   ECRIN_PG_PORT        TCP port on 127.0.0.1 (default 25432)
#   ECRIN_PG_DB / ECRIN_PG_USER / ECRIN_PG_PASSWORD   (default ecrin / ecrin / ecrin)
#   ECRIN_PG_OS_USER     OS user that runs the server when we are root (default postgres)
#   ECRIN_PG_DURABLE=1   keep fsync on (default: off - a test cluster does not need crash safety)
set -euo pipefail

STATE_DIR="${ECRIN_STATE_DIR:-${TMPDIR:-/tmp}/ecrin-backends}"
PG_HOST=127.0.0.1
PG_PORT="${ECRIN_PG_PORT:-25432}"
PG_DB="${ECRIN_PG_DB:-ecrin}"
PG_USER="${ECRIN_PG_USER:-ecrin}"
PG_PASSWORD="${ECRIN_PG_PASSWORD:-ecrin}"
PG_ROOT="$STATE_DIR/postgres"
PGDATA_DIR="$PG_ROOT/data"
SOCK_DIR="$PG_ROOT/run"
LOG_FILE="$PG_ROOT/postgres.log"
PID_DIR="$STATE_DIR/pids"
PID_FILE="$PID_DIR/postgres.pid"

log() { echo "[start-postgres] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
t0=$(date +%s.%N)

print_settings() {
  local url="postgresql://${PG_USER}:${PG_PASSWORD}@${PG_HOST}:${PG_PORT}/${PG_DB}"
  {
    echo "ECRIN_PG_URL=${url}"
    echo "ECRIN_PG_HOST=${PG_HOST}"
    echo "ECRIN_PG_PORT=${PG_PORT}"
    echo "ECRIN_PG_DB=${PG_DB}"
    echo "ECRIN_PG_USER=${PG_USER}"
    echo "ECRIN_PG_PASSWORD=${PG_PASSWORD}"
    echo "ECRIN_PG_SOCKET_DIR=${SOCK_DIR}"
  } | tee "$STATE_DIR/postgres.env"
}

# --- 1. binaries -------------------------------------------------------------
find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}
PG_BIN="$(find_bindir || true)"
if [ -z "$PG_BIN" ]; then
  [ "$(id -u)" -eq 0 ] || die "PostgreSQL server not installed and we are not root (apt-get install postgresql)"
  log "installing Debian package postgresql ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends postgresql >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends postgresql >&2; }
  PG_BIN="$(find_bindir)" || die "postgresql installed but no initdb found"
fi

# --- 2. who runs the server: initdb/postgres refuse to run as root -------------
if [ "$(id -u)" -eq 0 ]; then
  RUN_AS="${ECRIN_PG_OS_USER:-postgres}"
  id "$RUN_AS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_AS"
  as_pg() { runuser -u "$RUN_AS" -- "$@"; }
else
  RUN_AS="$(id -un)"
  as_pg() { "$@"; }
fi

mkdir -p "$PID_DIR" "$PG_ROOT" "$SOCK_DIR"
if [ "$(id -u)" -eq 0 ]; then
  chmod 755 "$STATE_DIR"
  chown "$RUN_AS" "$PG_ROOT" "$SOCK_DIR"
  as_pg test -w "$PG_ROOT" \
    || die "user $RUN_AS cannot reach $PG_ROOT (a parent directory is not traversable, e.g. a 0700 mktemp dir); set ECRIN_STATE_DIR elsewhere"
fi
# unix socket path limit is 107 bytes
[ "${#SOCK_DIR}" -lt 90 ] || die "socket dir path too long (${#SOCK_DIR} chars): use a shorter ECRIN_STATE_DIR"

is_ready() { "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 1 >/dev/null 2>&1; }
pid_alive() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

# --- 3. already running? ----------------------------------------------------------
if pid_alive && is_ready; then
  log "already running (pid $(cat "$PID_FILE")) on $PG_HOST:$PG_PORT"
  print_settings
  exit 0
fi
if is_ready; then
  die "something else already listens on $PG_HOST:$PG_PORT (not ours: no live PID file)"
fi

# --- 4. initdb (first run only) -------------------------------------------------------
if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
  log "initdb in $PGDATA_DIR (as $RUN_AS)"
  rm -rf "$PGDATA_DIR"
  as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$PG_ROOT/initdb.log" 2>&1 \
    || { cat "$PG_ROOT/initdb.log" >&2; die "initdb failed"; }
  fsync=off; [ "${ECRIN_PG_DURABLE:-0}" = 1 ] && fsync=on
  as_pg tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null <<EOF

# --- added by start-postgres.sh ---
listen_addresses = '${PG_HOST}'
port = ${PG_PORT}
unix_socket_directories = '${SOCK_DIR}'
max_connections = 200
shared_buffers = 128MB
fsync = ${fsync}
synchronous_commit = ${fsync}
full_page_writes = ${fsync}
logging_collector = off
log_min_messages = warning
EOF
fi

# --- 5. start ----------------------------------------------------------------------
log "starting postgres on $PG_HOST:$PG_PORT"
as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$LOG_FILE" -w -t 60 \
    -o "-p ${PG_PORT} -k ${SOCK_DIR} -c listen_addresses=${PG_HOST}" start >&2 \
  || { tail -n 30 "$LOG_FILE" >&2; die "pg_ctl start failed"; }
head -n 1 "$PGDATA_DIR/postmaster.pid" >"$PID_FILE"

# --- 6. role + database (idempotent) --------------------------------------------------
as_pg "$PG_BIN/psql" -q -h "$SOCK_DIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -v u="$PG_USER" -v p="$PG_PASSWORD" -v d="$PG_DB" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'p')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'p') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'d', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'d') \gexec
SQL

log "ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s (pid $(cat "$PID_FILE"))"
print_settings
