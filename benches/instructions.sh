#!/usr/bin/env bash
# User-space instructions per request, wf against the hand-written hyper server of
# ../shared/peers/hyper-baseline, under `valgrind --tool=callgrind`: a figure that does not move
# with machine load, to catch a change that makes each request cost more.
#
# Each server is run twice under callgrind, answering N and then 3N reference requests (the
# scenario's POST, sent one after another on 4 keep-alive connections); the difference of the two
# totals divided by 2N is the cost of one request with start-up and shutdown cancelled out.
# Every thread counts (the runtime's workers and wf's log writer).
#
# usage: benches/instructions.sh [--requests 2000] [--other PATH-TO-ANOTHER-WF] [--history] [--keep DIR]
#                                [--cache] [--connections 4]
#   --cache      also simulates the caches (valgrind's model of a 32 KiB 8-way L1 for code and for
#                data, 512 KiB L2) and prints each server's L1 misses per request: instructions
#                that run slower because what they touch is not in L1 (memory moved into places
#                last touched many requests ago, code spread thin) do not show as instructions
#   --connections C  the keep-alive connections the requests go round (32 is wrk's -c32: each
#                connection's state is then as cold as under load)
#   --history    adds wf with its history kept (the SQLite store, the default) to wf with
#                `--store memory`: what the history costs a sync request, writer thread included
#   --keep DIR   leaves the callgrind files there (callgrind_annotate DIR/wf-3.out shows where)
set -euo pipefail
cd "$(dirname "$0")/.."
N=2000 OTHER= KEEP= HISTORY= CACHE=() CONNS=4
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) N=$2; shift 2 ;;
    --other) OTHER=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    --history) HISTORY=1; shift ;;
    --cache) CACHE=(--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=524288,8,64); shift ;;
    --connections) CONNS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }
PEERS=../shared/peers
[ -x "$PEERS/run-hyper-baseline.sh" ] || { echo "needs $PEERS (the shared peers)" >&2; exit 2; }
cargo build --release --quiet --bin wf
# Builds the baseline (the script prints the PID of a server it starts: stop that one at once).
kill "$(PIN=0 "$PEERS/run-hyper-baseline.sh" 8190 full)" 2>/dev/null || true
BASELINE=${PEERS_WORK:-/tmp/wf-peers}/hyper-baseline/target/release/hyper-baseline
TMP=${KEEP:-$(mktemp -d)}; mkdir -p "$TMP"
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; [ -z "$KEEP" ] && rm -rf "$TMP"; true; }
trap cleanup EXIT

# send PORT COUNT: COUNT reference requests over $CONNS keep-alive connections; fails on any non-200.
send() { python3 benches/send.py "$1" "$2" "$CONNS"; }

# measure NAME PORT COMMAND...: total instructions for N, then 3N requests.
measure() {
  local name=$1 port=$2; shift 2
  for k in 1 3; do
    valgrind --tool=callgrind "${CACHE[@]}" --callgrind-out-file="$TMP/$name-$k.out" "$@" >/dev/null 2>"$TMP/$name-$k.err" &
    PID=$!
    for _ in $(seq 1 600); do "$PEERS/check.sh" "$port" >/dev/null 2>&1 && break; sleep 0.2; done
    send "$port" $((N * k))
    kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
    grep -h '^summary:' "$TMP/$name-$k.out" | cut -d' ' -f2- >"$TMP/$name-$k.total"
  done
  # One line: the name, then each event per request (instructions first; with --cache, the
  # events named on the `events:` line of the callgrind file).
  paste -d' ' "$TMP/$name-1.total" "$TMP/$name-3.total" |
    awk -v name="$name" -v n="$N" '{ h = NF / 2; s = name; for (i = 1; i <= h; i++) s = s " " int(($(i + h) - $i) / (2 * n)); print s }' |
    tee -a "$TMP/results"
}

measure baseline 8191 "$BASELINE" 8191 full
measure wf 8192 target/release/wf serve benches/payment.wf --listen 127.0.0.1:8192 --store memory
[ -n "$OTHER" ] && measure other 8193 "$OTHER" serve benches/payment.wf --listen 127.0.0.1:8193 --store memory
[ -n "$HISTORY" ] && measure history 8194 target/release/wf serve benches/payment.wf --listen 127.0.0.1:8194 --store "$TMP/state.db"
python3 - "$TMP/results" "$TMP/wf-1.out" <<'PY'
import sys
rows = {l.split()[0]: [int(x) for x in l.split()[1:]] for l in open(sys.argv[1])}
n = {k: v[0] for k, v in rows.items()}
events = next(l.split()[1:] for l in open(sys.argv[2]) if l.startswith("events:"))
print()
for k, v in n.items():
    print(f"{k:9} {v:7d} instructions/request")
print(f"wf/baseline {n['wf'] / n['baseline']:.2f}")
if "I1mr" in events:
    # L1 misses per request: code (I1mr) and data read and written (D1mr, D1mw).
    at = {e: events.index(e) for e in ("I1mr", "D1mr", "D1mw")}
    print()
    for k, v in rows.items():
        l1 = {e: v[i] for e, i in at.items()}
        print(f"{k:9} L1 misses/request: code {l1['I1mr']:5d}  data read {l1['D1mr']:4d}  data written {l1['D1mw']:4d}")
if "other" in n:
    print(f"wf/other {n['wf'] / n['other']:.2f}")
if "history" in n:
    print(f"wf with history / wf with --store memory {n['history'] / n['wf']:.3f}")
PY
