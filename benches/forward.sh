#!/usr/bin/env bash
# Forwarding benchmark: an async workflow that forwards each event with one `http` call to a local
# sink (`wf serve benches/forward.wf`), against a hand-written tokio + hyper + reqwest forwarder
# doing the same (benches/forward.rs `baseline`), in one run with the same load.
# Each round sends N events from C connections, waits until the sink has received all of them,
# and reports completed forwards per second and p50/p99 from sending to arrival at the sink.
# Rounds alternate baseline, wf, baseline, wf; the means and the wf/baseline ratio end the output.
#
# usage: benches/forward.sh [--events 20000] [--connections 32] [--rounds 2]
set -euo pipefail
cd "$(dirname "$0")/.."
N=20000 C=32 ROUNDS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --events) N=$2; shift 2 ;;
    --connections) C=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

# Two builds: built together with an example, the wf binary gets the features of the
# dev-dependencies too (tokio's test-util: its time driver reads the clock under a lock), code the
# profile and the layout list were not made for, and is not the binary users run.
cargo build --release --quiet --bin wf
cargo build --release --quiet --example forward
WF=target/release/wf FWD=target/release/examples/forward
TMP=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

# start NAME CMD... : starts a server that prints "listening on http://ADDR"; sets PID and ADDR.
start() {
  local name=$1; shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.log" &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 1 200); do
    ADDR=$(sed -n 's|^listening on http://||p' "$TMP/$name.out" | head -1)
    [ -n "$ADDR" ] && return 0
    sleep 0.05
  done
  echo "$name did not start" >&2; cat "$TMP/$name.log" >&2; exit 1
}

start sink "$FWD" sink 127.0.0.1:13099
SINK=$ADDR
start wf "$WF" serve benches/forward.wf --listen 127.0.0.1:0 --queue-size 100000 ${WF_ARGS:-}
WF_ADDR=$ADDR
start baseline "$FWD" baseline 127.0.0.1:0 "http://$SINK/events"
BASE_ADDR=$ADDR

round() { # round NAME ADDR
  curl -s -X DELETE "http://$SINK/stats" >/dev/null
  "$FWD" load "http://$2/hooks/forward" "$N" "$C" "http://$SINK/stats" | tee -a "$TMP/$1.results"
}

printf '%-10s %s\n' "" "result"
for r in $(seq 1 "$ROUNDS"); do
  printf '%-10s ' "baseline"; round baseline "$BASE_ADDR"
  printf '%-10s ' "wf"; round wf "$WF_ADDR"
done

python3 - "$TMP" <<'PY'
import json, sys, statistics
tmp = sys.argv[1]
def load(name):
    return [json.loads(l) for l in open(f"{tmp}/{name}.results") if l.strip()]
b, w = load("baseline"), load("wf")
mean = lambda rows, k: statistics.mean(float(r[k]) for r in rows)
for name, rows in (("baseline", b), ("wf", w)):
    lost = sum(r["sent"] - r["forwarded"] for r in rows)
    print(f"{name:10} {mean(rows,'forwards_per_s'):8.0f} forwards/s  p50 {mean(rows,'p50_ms'):7.2f} ms  p99 {mean(rows,'p99_ms'):7.2f} ms  lost {lost}")
print(f"ratio wf/baseline: {mean(w,'forwards_per_s')/mean(b,'forwards_per_s'):.2f} (forwards/s), p99 {mean(w,'p99_ms')/mean(b,'p99_ms'):.2f}")
PY
