#!/usr/bin/env bash
# start-lb.sh - nginx on loopback as a streaming reverse proxy / load balancer in front of
# N app processes (which you start yourself, e.g. two `ecrin serve` processes). The site is
# scripts/services/nginx/ecrin.conf, the configuration docs/nginx.md documents.
#
# Idempotent (a second run reloads the config if the backend list changed, else only prints).
# Prints KEY=VALUE lines on stdout. Stop with scripts/services/stop-all.sh (PID file: $STATE_DIR/pids/nginx.pid).
#
# Environment (all optional):
#   ECRIN_STATE_DIR      (default: ${TMPDIR:-/tmp}/ecrin-backends)
#   ECRIN_LB_PORT        listen port on 127.0.0.1 (default 28000)
#   ECRIN_LB_BACKENDS    space-separated host:port list (default "127.0.0.1:28001 127.0.0.1:28002")
set -euo pipefail

STATE_DIR="${ECRIN_STATE_DIR:-${TMPDIR:-/tmp}/ecrin-backends}"
HOST=127.0.0.1
PORT="${ECRIN_LB_PORT:-28000}"
BACKENDS="${ECRIN_LB_BACKENDS:-127.0.0.1:28001 127.0.0.1:28002}"
NG_DIR="$STATE_DIR/nginx"
PID_DIR="$STATE_DIR/pids"
PID_FILE="$PID_DIR/nginx.pid"
CONF="$NG_DIR/nginx.conf"

log() { echo "[start-lb] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

NGINX="$(command -v nginx || true)"
if [ -z "$NGINX" ]; then
  [ "$(id -u)" -eq 0 ] || die "nginx not installed and we are not root"
  log "installing Debian package nginx-light ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends nginx-light >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends nginx-light >&2; }
  NGINX="$(command -v nginx)"
fi

mkdir -p "$NG_DIR"/{tmp/body,tmp/proxy,tmp/fastcgi,tmp/uwsgi,tmp/scgi,logs} "$PID_DIR"
user_line=""
if [ "$(id -u)" -eq 0 ]; then
  # workers drop to www-data (Debian's web user); they must be able to write the temp dirs
  W_USER="${ECRIN_LB_OS_USER:-www-data}"
  id "$W_USER" >/dev/null 2>&1 || W_USER=nobody
  user_line="user ${W_USER};"
  chown -R "$W_USER" "$NG_DIR/tmp"
  chmod 755 "$STATE_DIR"
fi

servers=""
for b in $BACKENDS; do servers+="    server ${b} max_fails=1 fail_timeout=2s;"$'\n'; done
servers="${servers%$'\n'}"
# The site itself is the documented configuration (docs/nginx.md), filled in here.
site="$(cat "$(dirname "$0")/nginx/ecrin.conf")"
site="${site//@SERVERS@/$servers}"
site="${site//@LISTEN@/${HOST}:${PORT}}"

cat >"$CONF.new" <<EOF
# written by start-lb.sh
${user_line}
worker_processes 2;
pid ${PID_FILE};
error_log ${NG_DIR}/logs/error.log warn;
events { worker_connections 1024; }

http {
    access_log ${NG_DIR}/logs/access.log;
    client_body_temp_path ${NG_DIR}/tmp/body;
    proxy_temp_path       ${NG_DIR}/tmp/proxy;
    fastcgi_temp_path     ${NG_DIR}/tmp/fastcgi;
    uwsgi_temp_path       ${NG_DIR}/tmp/uwsgi;
    scgi_temp_path        ${NG_DIR}/tmp/scgi;

${site}
}
EOF
# test a copy whose pid path is a scratch file: `nginx -t` creates the pid file it names
sed "s#^pid .*#pid ${NG_DIR}/config-test.pid;#" "$CONF.new" >"$NG_DIR/config-test.conf"
"$NGINX" -t -q -e "$NG_DIR/logs/error.log" -c "$NG_DIR/config-test.conf" -p "$NG_DIR" \
  || die "nginx config test failed"
rm -f "$NG_DIR/config-test.conf" "$NG_DIR/config-test.pid"

running=0
[ -s "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null && running=1
if [ "$running" = 1 ]; then
  if cmp -s "$CONF.new" "$CONF"; then
    rm -f "$CONF.new"; log "already running (pid $(cat "$PID_FILE"))"
  else
    mv "$CONF.new" "$CONF"; kill -HUP "$(cat "$PID_FILE")"; log "config changed: reloaded"
  fi
else
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null && die "port $PORT is taken by something that is not ours"
  mv "$CONF.new" "$CONF"
  "$NGINX" -e "$NG_DIR/logs/error.log" -c "$CONF" -p "$NG_DIR"    # daemonizes, writes PID file
  for _ in $(seq 1 50); do curl -sf "http://$HOST:$PORT/lb-health" >/dev/null 2>&1 && break; sleep 0.1; done
  log "nginx up on $HOST:$PORT -> $BACKENDS (pid $(cat "$PID_FILE"))"
fi
{
  echo "ECRIN_LB_URL=http://${HOST}:${PORT}"
  echo "ECRIN_LB_BACKENDS=\"${BACKENDS}\""
} | tee "$STATE_DIR/lb.env"
