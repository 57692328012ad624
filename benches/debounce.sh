#!/usr/bin/env bash
# Debounce: N requests on one key (wrk, as fast as wf takes them) to a workflow that
# `debounce`s for a few seconds; prints how fast they were accepted and, once every run ended,
# how many ran and how many ended superseded (one should run), read from the store.
#
# usage: benches/debounce.sh [--runs 100000] [--for 10]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=100000
WAIT=10
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --for) WAIT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "debounce.sh needs wrk (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet --bin wf
WF=$PWD/target/release/wf
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
cat >"$TMP/build.wf" <<WF
workflow build {
  trigger webhook { path "/push" mode async debounce "one-key" for ${WAIT}s }
  log "built"
}
WF
"$WF" serve "$TMP/build.wf" --listen 127.0.0.1:0 --store "$TMP/state.db" --queue-size 65536 >"$TMP/out" 2>"$TMP/log" &
SERVER=$!
for _ in $(seq 100); do grep -q listening "$TMP/out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's|listening on http://||p' "$TMP/out" | head -1)
cat >"$TMP/fill.lua" <<LUA
wrk.method = "POST"
local answered = 0
response = function(status)
  answered = answered + 1
  if answered == $RUNS then
    io.open("$TMP/filled", "w"):close()
    wrk.thread:stop()
  end
end
LUA
START=$(date +%s.%N)
wrk -t1 -c16 -d600s -s "$TMP/fill.lua" "http://$ADDR/push" >/dev/null &
WRK=$!
while [ ! -e "$TMP/filled" ] && kill -0 "$WRK" 2>/dev/null; do sleep 0.1; done
kill "$WRK" 2>/dev/null || true; wait "$WRK" 2>/dev/null || true
ACCEPTED=$(date +%s.%N)
python3 - "$TMP/state.db" "$RUNS" "$START" "$ACCEPTED" <<'PY'
import sqlite3, sys, time
db, runs, start, accepted = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print(f"{runs} requests on one key accepted in {accepted - start:.1f} s ({runs / (accepted - start):,.0f}/s)")
for _ in range(1200):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = dict(c.execute("SELECT coalesce(outcome, state), count(*) FROM executions GROUP BY 1").fetchall())
    c.close()
    if not any(k in rows for k in ("queued", "running", "parked")) and sum(rows.values()) >= runs:
        break
    time.sleep(0.5)
print(f"every run ended {time.time() - accepted:.1f} s after the last was accepted: {rows}")
PY
