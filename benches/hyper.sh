#!/usr/bin/env bash
# wf against the hand-written hyper server of ../shared/peers/hyper-baseline (HTTP/1 only,
# http1::Builder, the body parsed into serde_json::Value), in one run: each server pinned to core
# 0, `wrk -t1 -c32` pinned to core 1 (../shared/peers/bench.sh pinned), wf's log written to a file,
# rounds alternating baseline and wf (and a second wf binary, to compare two builds). Prints every
# run, then the mean req/s and the ratios.
#
# With --unpinned, the servers run on both cores and wrk is `-t2 -c64` (bench.sh unpinned): the
# shape of a machine where the server has every core.
#
# With --paired, each round runs the baseline and wf at the same time, on the same cores, each
# loaded by its own wrk (the two wrk share the client core): whatever else the machine does slows
# both alike, so the ratio holds still where alternating rounds swing by 20%. It also prints the
# CPU time each server spent per request (user and system, from /proc).
#
# usage: benches/hyper.sh [--rounds 2] [--duration 8s] [--other PATH-TO-ANOTHER-WF] [--unpinned]
#                         [--paired]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=2 DURATION=8s OTHER= SHAPE=pinned PAIRED=
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --other) OTHER=$2; shift 2 ;;
    --unpinned) SHAPE=unpinned; shift ;;
    --paired) PAIRED=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PEERS=../shared/peers
[ -x "$PEERS/run-hyper-baseline.sh" ] || { echo "needs $PEERS (the shared peers)" >&2; exit 2; }
cargo build --release --quiet --bin wf
TMP=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
PIN=0; PINNED=(taskset -c 0)
[ "$SHAPE" = unpinned ] && PIN= && PINNED=()
BASE=$(PIN=$PIN "$PEERS/run-hyper-baseline.sh" 8181 full); PIDS+=("$BASE")
for _ in $(seq 1 100); do "$PEERS/check.sh" 8181 >/dev/null 2>&1 && break; sleep 0.2; done
serve() { # serve BIN PORT
  "${PINNED[@]}" "$1" serve benches/payment.wf --listen "127.0.0.1:$2" --store memory >/dev/null 2>"$TMP/log-$2" &
  PIDS+=($!); WF=$!
  for _ in $(seq 1 100); do "$PEERS/check.sh" "$2" >/dev/null 2>&1 && break; sleep 0.1; done
}
bench() { DURATION=$DURATION WARMUP=1s LABEL=$1 "$PEERS/bench.sh" "$2" "$SHAPE" 2>/dev/null | tail -1 | tee -a "$TMP/results"; }
. benches/proc.sh
if [ -n "$PAIRED" ]; then
  serve target/release/wf 8182
  for _ in $(seq 1 "$ROUNDS"); do
    b0=$(cpu "$BASE") w0=$(cpu "$WF")
    bench baseline 8181 > "$TMP/b" & B=$!; bench wf 8182 > "$TMP/w"; wait "$B"
    b1=$(cpu "$BASE") w1=$(cpu "$WF")
    cat "$TMP/b" "$TMP/w"
    echo "cpu baseline=$((b1 - b0)) wf=$((w1 - w0))" >> "$TMP/results"
  done
fi
[ -n "$PAIRED" ] && ROUNDS=0
for _ in $(seq 1 "$ROUNDS"); do
  bench baseline 8181
  serve target/release/wf 8182; bench wf 8182; kill "$WF"; wait "$WF" 2>/dev/null || true
  if [ -n "$OTHER" ]; then serve "$OTHER" 8183; bench other 8183; kill "$WF"; wait "$WF" 2>/dev/null || true; fi
done
python3 - "$TMP/results" <<'PY'
import sys, statistics, collections
rps = collections.defaultdict(list)
p99 = collections.defaultdict(list)
cpu = collections.defaultdict(float)
for line in open(sys.argv[1]):
    if line.startswith("cpu "):
        for k, v in (p.split("=") for p in line.split()[1:]):
            cpu[k] += float(v)
    else:
        f = dict(p.split("=", 1) for p in line.split() if "=" in p)
        rps[line.split()[0]].append(float(f["rps"]))
        p99[line.split()[0]].append(float(f["p99_ms"]))
mean = {k: statistics.mean(v) for k, v in rps.items()}
print()
for k, v in mean.items():
    print(f"{k:9} {v:9.0f} req/s  p99 {statistics.mean(p99[k]):.2f} ms")
print(f"wf/baseline {mean['wf'] / mean['baseline']:.2f}  p99 wf/baseline {statistics.mean(p99['wf']) / statistics.mean(p99['baseline']):.2f}")
if cpu:  # CPU ticks per request, each server's ticks over the requests it answered
    per = {k: cpu[k] / sum(rps[k]) for k in cpu}
    print(f"CPU per request wf/baseline {per['wf'] / per['baseline']:.2f}")
if "other" in mean:
    print(f"other/baseline {mean['other'] / mean['baseline']:.2f}  wf/other {mean['wf'] / mean['other']:.2f}")
PY
