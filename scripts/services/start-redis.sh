#!/usr/bin/env bash
# start-redis.sh - throwaway Redis 7 on loopback, no persistence, for tests and CI.
#
# Idempotent: a second run finds the running server and only prints the settings.
# Prints KEY=VALUE lines on stdout; progress goes to stderr.
# Stop it with scripts/services/stop-all.sh (PID file: $STATE_DIR/pids/redis.pid).
#
# Environment (all optional):
#   ECRIN_STATE_DIR       (default: ${TMPDIR:-/tmp}/ecrin-backends)
#   ECRIN_REDIS_PORT      TCP port on 127.0.0.1 (default 26379)
#   ECRIN_REDIS_PASSWORD  if set, requirepass is enabled and the URL carries it
#   ECRIN_REDIS_BIN       redis-server or valkey-server binary to use (default: redis-server, else valkey-server)
set -euo pipefail

STATE_DIR="${ECRIN_STATE_DIR:-${TMPDIR:-/tmp}/ecrin-backends}"
HOST=127.0.0.1
PORT="${ECRIN_REDIS_PORT:-26379}"
PASSWORD="${ECRIN_REDIS_PASSWORD:-}"
R_DIR="$STATE_DIR/redis"
PID_DIR="$STATE_DIR/pids"
PID_FILE="$PID_DIR/redis.pid"
CONF="$R_DIR/redis.conf"

log() { echo "[start-redis] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
t0=$(date +%s.%N)

print_settings() {
  local auth=""
  [ -n "$PASSWORD" ] && auth=":${PASSWORD}@"
  {
    echo "ECRIN_REDIS_URL=redis://${auth}${HOST}:${PORT}/0"
    echo "ECRIN_REDIS_HOST=${HOST}"
    echo "ECRIN_REDIS_PORT=${PORT}"
  } | tee "$STATE_DIR/redis.env"
}

# --- 1. binary -------------------------------------------------------------------
REDIS_BIN="${ECRIN_REDIS_BIN:-}"
if [ -z "$REDIS_BIN" ]; then
  REDIS_BIN="$(command -v redis-server || command -v valkey-server || true)"
fi
if [ -z "$REDIS_BIN" ]; then
  [ "$(id -u)" -eq 0 ] || die "redis-server not installed and we are not root (apt-get install redis-server)"
  log "installing Debian package redis-server ..."
  export DEBIAN_FRONTEND=noninteractive
  # Debian's postinst may try to start the system-wide redis on 6379 (blocked where policy-rc.d
  # exits 101, as in containers); it does not touch our port.
  apt-get install -y -q --no-install-recommends redis-server >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends redis-server >&2; }
  REDIS_BIN="$(command -v redis-server)" || die "redis-server still not found"
fi
CLI="$(dirname "$REDIS_BIN")/redis-cli"; [ -x "$CLI" ] || CLI="$(command -v redis-cli || command -v valkey-cli || true)"

mkdir -p "$R_DIR" "$PID_DIR"

ping() {
  if [ -n "$CLI" ]; then
    REDISCLI_AUTH="$PASSWORD" "$CLI" -h "$HOST" -p "$PORT" ping 2>/dev/null | grep -q PONG
  else
    # bash /dev/tcp fallback (no AUTH support needed for PING when no password)
    exec 3<>"/dev/tcp/$HOST/$PORT" 2>/dev/null || return 1
    printf 'PING\r\n' >&3; local r; read -r -t 2 r <&3 || true; exec 3>&-; [[ "$r" == +PONG* || "$r" == -NOAUTH* ]]
  fi
}
pid_alive() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

# --- 2. already running? -------------------------------------------------------------
if pid_alive && ping; then
  log "already running (pid $(cat "$PID_FILE")) on $HOST:$PORT"
  print_settings; exit 0
fi
if ping; then die "something else already answers on $HOST:$PORT (no live PID file of ours)"; fi

# --- 3. config: loopback only, no RDB/AOF persistence ------------------------------
cat >"$CONF" <<EOF
# written by start-redis.sh
bind ${HOST}
port ${PORT}
protected-mode yes
daemonize yes
pidfile ${PID_FILE}
dir ${R_DIR}
logfile ${R_DIR}/redis.log
save ""
appendonly no
maxmemory 512mb
maxmemory-policy noeviction
databases 16
EOF
[ -n "$PASSWORD" ] && echo "requirepass ${PASSWORD}" >>"$CONF"

# --- 4. start (daemonizes, writes PID file) and wait -------------------------------------
rm -f "$PID_FILE"
"$REDIS_BIN" "$CONF" || { tail -n 20 "$R_DIR/redis.log" >&2; die "redis-server failed to start"; }
for _ in $(seq 1 100); do ping && break; sleep 0.05; done
ping || { tail -n 20 "$R_DIR/redis.log" >&2; die "redis did not answer PING"; }
for _ in $(seq 1 40); do [ -s "$PID_FILE" ] && break; sleep 0.05; done
log "ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')s (pid $(cat "$PID_FILE"), $("$REDIS_BIN" --version | awk '{print $3}'))"
print_settings
