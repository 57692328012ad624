#!/usr/bin/env bash
# Replaying stored traffic: fills a SQLite store with N executions of examples/payment.wf (wrk
# against `wf serve`, requests kept whole), then times `wf runs replay --since 7d` of all of them
# against the same file and prints executions per second and the replay's peak memory. With
# --body-kib N each request carries N KiB more (kept whole: `--keep-body` is raised to fit), to
# show that replay's memory does not grow with what the store holds.
#
# usage: benches/replay.sh [--runs 100000] [--body-kib 0]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=100000
BODY_KIB=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --body-kib) BODY_KIB=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "replay.sh needs wrk (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet --bin wf
WF=$PWD/target/release/wf
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
export PSP_PASSWORD=bench-secret
STORE=$TMP/state.db
KEEP=$((BODY_KIB + 64))KiB
. benches/lib/fill.sh
serve examples/payment.wf --store "$STORE" --keep-body "$KEEP" --max-body "$KEEP"
AUTH=$(printf 'psp:%s' "$PSP_PASSWORD" | base64)
# Each request with its own order and request id.
fill "$RUNS" "" "$(cat <<LUA
wrk.body   = '{"data":{"status":"paid","amount":12.5,"currency":"EUR"},"pad":"' .. string.rep("x", $BODY_KIB * 1024) .. '"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic $AUTH"
local sent = 0
request = function()
  sent = sent + 1
  wrk.headers["X-Request-Id"] = "r-" .. sent
  return wrk.format(nil, "/hooks/payment?order=" .. sent)
end
LUA
)"
kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=
STORED=$("$WF" runs --store "$STORE" --limit 10000000 --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "stored: $STORED executions of examples/payment.wf ($(du -h "$STORE" | cut -f1))"
/usr/bin/time -f '%e %M' -o "$TMP/time" "$WF" runs replay --store "$STORE" --since 7d --limit 10000000 \
  --files examples/payment.wf >"$TMP/replayed" || true
read -r SECONDS_TAKEN PEAK_KB <"$TMP/time"
tail -1 "$TMP/replayed"
python3 - "$STORED" "$SECONDS_TAKEN" "$PEAK_KB" <<'PY'
import sys
n, s, kb = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"replay: {n} executions in {s:.2f} s = {n / s:,.0f} executions/s, peak memory {kb / 1024:.0f} MiB")
PY
