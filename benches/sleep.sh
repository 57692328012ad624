#!/usr/bin/env bash
# Sleeping runs: N async runs that `sleep` (parked in the SQLite store, no worker held), accepted
# by wrk as fast as wf takes them. Prints the server's RSS idle, with every run parked, and how
# late the runs resumed: each run's end against the due time its sleep parked it until, read
# from the store.
#
# usage: benches/sleep.sh [--runs 100000] [--sleep 30]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=100000
SLEEP=30
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --sleep) SLEEP=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "sleep.sh needs wrk (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet --bin wf
WF=$PWD/target/release/wf
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
cat >"$TMP/nap.wf" <<WF
workflow nap {
  trigger webhook { path "/nap" mode async }
  sleep ${SLEEP}s
  log "woke"
}
WF
. benches/lib/fill.sh
serve "$TMP/nap.wf" --store "$TMP/state.db" --queue-size 65536
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }
sleep 1
IDLE=$(rss)
START=$(date +%s.%N)
fill "$RUNS" /nap
ACCEPTED=$(date +%s.%N)
# Every run parked (none queued or running).
python3 - "$TMP/state.db" <<'PY'
import sqlite3, sys, time
for _ in range(600):
    c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    n = c.execute("SELECT count(*) FROM executions WHERE state IN ('queued', 'running')").fetchone()[0]
    c.close()
    if n == 0:
        break
    time.sleep(0.1)
PY
PARKED=$(rss)
python3 - "$TMP/state.db" "$RUNS" "$SLEEP" "$IDLE" "$PARKED" "$START" "$ACCEPTED" <<'PY'
import sqlite3, sys, time
db, runs, nap, idle, parked, start, accepted = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
print(f"{runs} runs accepted in {accepted - start:.1f} s; RSS idle {idle / 1024:.1f} MiB, with every run parked {parked / 1024:.1f} MiB (+{(parked - idle) / 1024:.1f} MiB)")
deadline = time.time() + nap + 120
while time.time() < deadline:
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    ended = c.execute("SELECT count(*) FROM executions WHERE state = 'ended'").fetchone()[0]
    c.close()
    if ended >= runs:
        break
    time.sleep(0.5)
c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
late = sorted(r[0] for r in c.execute("SELECT ended_ms - due_ms FROM executions WHERE state = 'ended' AND due_ms IS NOT NULL"))
pick = lambda q: late[min(len(late) - 1, int(q * len(late)))] / 1000
print(f"{len(late)} ended; after their due time: p50 {pick(0.5):.2f} s, p99 {pick(0.99):.2f} s, max {late[-1] / 1000:.2f} s")
PY
