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
. benches/lib/fill.sh
serve "$TMP/build.wf" --store "$TMP/state.db" --queue-size 65536
START=$(date +%s.%N)
fill "$RUNS" /push
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
