#!/usr/bin/env bash
# start-test-backends.sh - start PostgreSQL, S3 (SeaweedFS) and Redis side by side for the test suite,
# then print the ECRIN_TEST_* settings that tests/backends.py reads (stdout: KEY=VALUE lines,
# quoted for eval). Stop them with stop-all.sh, with the same ECRIN_STATE_DIR.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE_DIR="${ECRIN_STATE_DIR:-${TMPDIR:-/tmp}/ecrin-backends}"
mkdir -p "$STATE_DIR"
t0=$(date +%s.%N)

bash "$HERE/start-postgres.sh" >"$STATE_DIR/start-postgres.out" & postgres=$!
bash "$HERE/start-s3.sh" >"$STATE_DIR/start-s3.out" & s3=$!
bash "$HERE/start-redis.sh" >"$STATE_DIR/start-redis.out" & redis=$!
wait "$postgres" || { echo "[start-test-backends] PostgreSQL did not start" >&2; exit 1; }
wait "$s3" || { echo "[start-test-backends] S3 did not start" >&2; exit 1; }
wait "$redis" || { echo "[start-test-backends] Redis did not start" >&2; exit 1; }
eval "$(cat "$STATE_DIR/start-postgres.out" "$STATE_DIR/start-s3.out" "$STATE_DIR/start-redis.out")"

echo "ECRIN_TEST_DATABASE_URL='${ECRIN_PG_URL}'"
echo "ECRIN_TEST_S3_URL='${ECRIN_S3_STORAGE_URL}'"
echo "ECRIN_TEST_S3_ACCESS_KEY_ID='${ECRIN_S3_ACCESS_KEY_ID}'"
echo "ECRIN_TEST_S3_SECRET_ACCESS_KEY='${ECRIN_S3_SECRET_ACCESS_KEY}'"
echo "ECRIN_TEST_REDIS_URL='${ECRIN_REDIS_URL}'"
echo "ECRIN_TEST_REQUIRE_BACKENDS=1"
echo "[start-test-backends] PostgreSQL, S3 and Redis ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s" >&2
