#!/usr/bin/env bash
# stop-all.sh - stop every server that scripts/services/start-*.sh started, using only their
# PID files in $STATE_DIR/pids. Never kills by name.
#
#   stop-all.sh           stop, keep data (a later start-*.sh reuses it)
#   stop-all.sh --purge   stop, then delete $STATE_DIR entirely
#
# Environment: ECRIN_STATE_DIR (default ${TMPDIR:-/tmp}/ecrin-backends),
#              ECRIN_STOP_TIMEOUT seconds to wait before SIGKILL (default 20)
set -uo pipefail

STATE_DIR="${ECRIN_STATE_DIR:-${TMPDIR:-/tmp}/ecrin-backends}"
PID_DIR="$STATE_DIR/pids"
TIMEOUT="${ECRIN_STOP_TIMEOUT:-20}"
PURGE=0; [ "${1:-}" = "--purge" ] && PURGE=1
log() { echo "[stop-all] $*" >&2; }

# which program each PID file may name (guards against a recycled PID)
expected_cmd() {
  case "$1" in
    postgres)       echo 'postgres' ;;
    redis)          echo 'redis-server|valkey-server' ;;
    s3-seaweedfs)   echo 'weed' ;;
    nginx)          echo 'nginx' ;;
    app-*)          echo 'uvicorn|gunicorn|hypercorn|granian|python' ;;
    *)              echo '.' ;;      # anything else the project adds
  esac
}
signal_for() { case "$1" in postgres) echo INT ;; *) echo TERM ;; esac; }  # INT = postgres "fast" shutdown

# alive = exists and is not a finished zombie (an exited daemon stays a zombie until PID 1
# reaps it; a zombie leader whose other threads are still exiting still counts as alive)
alive() {
  local st; st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
  [ -n "$st" ] || return 1
  [ "$st" != Z ] && return 0
  [ "$(ls "/proc/$1/task" 2>/dev/null | wc -l)" -gt 1 ]
}

declare -A waiting=()
shopt -s nullglob
for f in "$PID_DIR"/*.pid; do
  name="$(basename "$f" .pid)"
  pid="$(head -n1 "$f" 2>/dev/null | tr -dc '0-9')"
  if [ -z "$pid" ] || ! alive "$pid"; then
    log "$name: not running"; rm -f "$f"; continue
  fi
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
  if ! grep -Eq -- "$(expected_cmd "$name")" <<<"$cmd"; then
    log "$name: PID $pid is now '$cmd', not ours - left alone"; rm -f "$f"; continue
  fi
  kill -"$(signal_for "$name")" "$pid" 2>/dev/null && waiting[$name]="$pid"
  log "$name: sent SIG$(signal_for "$name") to $pid"
done

t0=$(date +%s.%N)
el() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
while [ "${#waiting[@]}" -gt 0 ]; do
  for name in "${!waiting[@]}"; do
    pid="${waiting[$name]}"
    if ! alive "$pid"; then
      log "$name: stopped after $(el)s"; unset "waiting[$name]"; rm -f "$PID_DIR/$name.pid"
    elif awk -v e="$(el)" -v t="$TIMEOUT" 'BEGIN{exit !(e >= t)}'; then
      kill -KILL "$pid" 2>/dev/null; log "$name: SIGKILL after ${TIMEOUT}s"
      unset "waiting[$name]"; rm -f "$PID_DIR/$name.pid"
    fi
  done
  [ "${#waiting[@]}" -gt 0 ] && sleep 0.2
done

if [ "$PURGE" = 1 ] && [ -d "$STATE_DIR" ]; then
  rm -rf "$STATE_DIR" && log "removed $STATE_DIR"
fi
exit 0
