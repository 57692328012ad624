#!/usr/bin/env bash
# Store benchmark: acknowledged async runs per second and p99 acknowledgement latency of
# `wf serve benches/accept.wf` with the default store (SQLite, synchronous=FULL, group commit)
# against `--store memory`, at 32 and 256 concurrent callers (wrk, one thread per core), in one
# run. Then sync requests (benches/payment.wf) with history on against `--store memory`.
#
# With --paired, only the sync pair, both servers at once (each loaded by its own `wrk -t1 -c32`):
# the req/s ratio and each server's CPU time per request (user + system, from /proc, the history
# writer thread included), a figure the machine's drift moves alike for both.
#
# With --paired --before BIN, the pair is this wf and another wf binary (a build of an earlier
# commit), both with the default store: a change's cost to the history path, in one run.
#
# usage: benches/accept.sh [--duration 10s] [--rounds 2] [--paired [--before BIN]]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=10s ROUNDS=2 PAIRED= BEFORE=
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --paired) PAIRED=1; shift ;;
    --before) BEFORE=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin wf
WF=target/release/wf
TMP=$(mktemp -d); PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

run() { # run LABEL CONNECTIONS WORKFLOW PATH STORE
  local label=$1 conns=$2 wf=$3 path=$4 store=$5
  rm -f "$TMP"/state.db*
  "$WF" serve "$wf" --listen 127.0.0.1:0 --store "$store" --queue-size 100000 >"$TMP/out" 2>/dev/null &
  PID=$!
  for _ in $(seq 1 200); do
    ADDR=$(sed -n 's|^listening on http://||p' "$TMP/out" | head -1); [ -n "$ADDR" ] && break; sleep 0.05
  done
  wrk -t2 -c"$conns" -d"$DURATION" -s benches/post.lua "http://$ADDR$path" | sed -n 's/^WRKSUM //p' \
    | awk -v l="$label" '{ print l, $0 }' | tee -a "$TMP/results"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

if [ -n "$PAIRED" ]; then
  # start PORT STORE [BIN]: wf (or BIN) serving the sync scenario; sets PID.
  start() {
    "${3:-$WF}" serve benches/payment.wf --listen "127.0.0.1:$1" --store "$2" >/dev/null 2>"$TMP/log-$1" &
    PID=$!
    for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.05; done
    echo "wf did not start on port $1" >&2; exit 1
  }
  . benches/proc.sh
  load() { wrk -t1 -c32 -d"$DURATION" -s benches/post.lua "http://127.0.0.1:$1/hooks/payment?order=42" | sed -n 's/^WRKSUM //p'; }
  for r in $(seq 1 "$ROUNDS"); do
    rm -f "$TMP"/state.db* "$TMP"/before.db*
    if [ -n "$BEFORE" ]; then start 19301 "$TMP/before.db" "$BEFORE"; else start 19301 memory; fi
    MEM=$PID
    start 19302 "$TMP/state.db"; HIS=$PID
    m0=$(cpu "$MEM") h0=$(cpu "$HIS")
    load 19301 >"$TMP/m" & L=$!
    load 19302 >"$TMP/h"; wait "$L"
    m1=$(cpu "$MEM") h1=$(cpu "$HIS")
    echo "sync-memory $(cat "$TMP/m") ticks=$((m1 - m0))" | tee -a "$TMP/results"
    echo "sync-history $(cat "$TMP/h") ticks=$((h1 - h0))" | tee -a "$TMP/results"
    kill "$MEM" "$HIS"; wait "$MEM" "$HIS" 2>/dev/null || true; PID=
  done
  python3 - "$TMP/results" ${BEFORE:+"the wf before, with history"} <<'PY'
import sys, collections
rps, requests, ticks = collections.defaultdict(float), collections.defaultdict(float), collections.defaultdict(float)
for line in open(sys.argv[1]):
    label, *parts = line.split()
    f = dict(p.split("=") for p in parts)
    rps[label] += float(f["rps"]); requests[label] += float(f["requests"]); ticks[label] += float(f["ticks"])
per = {k: ticks[k] / requests[k] for k in ticks}
other = sys.argv[2] if len(sys.argv) > 2 else "memory"
print(f"\nsync with history / {other}, paired: req/s {rps['sync-history'] / rps['sync-memory']:.3f}"
      f"  CPU per request {per['sync-history'] / per['sync-memory']:.3f}")
PY
  exit 0
fi

for r in $(seq 1 "$ROUNDS"); do
  for c in 32 256; do
    run "memory-c$c" "$c" benches/accept.wf /hooks/accept memory
    run "sqlite-c$c" "$c" benches/accept.wf /hooks/accept "$TMP/state.db"
  done
  # The pair in turns (memory first in odd rounds): the machine's drift favours neither.
  if [ $((r % 2)) = 1 ]; then
    run "sync-memory" 32 benches/payment.wf "/hooks/payment?order=42" memory
    run "sync-history" 32 benches/payment.wf "/hooks/payment?order=42" "$TMP/state.db"
  else
    run "sync-history" 32 benches/payment.wf "/hooks/payment?order=42" "$TMP/state.db"
    run "sync-memory" 32 benches/payment.wf "/hooks/payment?order=42" memory
  fi
done

python3 - "$TMP/results" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    fields = dict(p.split("=") for p in parts[1:])
    rows[parts[0]].append(fields)
mean = lambda label, k: statistics.mean(float(r[k]) for r in rows[label])
print()
for label in rows:
    bad = sum(int(r["non2xx"]) + int(r["errors"]) for r in rows[label])
    print(f"{label:14} {mean(label,'rps'):9.0f} req/s  p50 {mean(label,'p50_ms'):6.2f} ms  p99 {mean(label,'p99_ms'):6.2f} ms  non-2xx+errors {bad}")
for c in (32, 256):
    print(f"c={c}: sqlite/memory {mean(f'sqlite-c{c}','rps')/mean(f'memory-c{c}','rps'):.2f}")
print(f"sync with history / memory: {mean('sync-history','rps')/mean('sync-memory','rps'):.2f}")
PY
