#!/usr/bin/env bash
# Scale in workflows: `wf serve` of a folder of 1, 100 and 10,000 workflows (copies of
# benches/payment.wf, each on a path of its own), with the default store (a new SQLite file each
# time). For each: start time (from exec to "listening"), idle RSS, then req/s and p99 to one of
# them (the last loaded) under `wrk -t1 -c32` on core 1 with the server on core 0, and peak RSS.
# What should hold: start time and memory grow with the workflows (each is parsed, checked and
# compiled once), req/s and p99 do not (a request's route is one hash lookup).
#
# usage: benches/scale-workflows.sh [--duration 5s] [--counts "1 100 10000"]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=5s COUNTS="1 100 10000"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --counts) COUNTS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
. benches/proc.sh
. benches/server.sh
cargo build --release --quiet --bin wf
setup

# The workflow alone (its tests are the scenario's, not needed here), named and routed by N.
workflow=$(sed -n '/^workflow/,/^}/p' benches/payment.wf)
printf '%-10s %10s %10s %10s %9s %10s\n' workflows start_ms idle_MiB req/s p99_ms peak_MiB
for n in $COUNTS; do
  dir=$TMP/wf-$n; mkdir -p "$dir"
  for i in $(seq 1 "$n"); do
    sed -e "s/^workflow bench_payment/workflow bench_payment_$i/" -e "s|\"/hooks/payment\"|\"/hooks/payment/$i\"|" \
      <<<"$workflow" >"$dir/w$i.wf"
  done
  start "wf-$n" 0 target/release/wf serve "$dir" --listen 127.0.0.1:0 --store "$TMP/state-$n.db"
  idle=$(rss "$PID" VmRSS)
  out=$(wrk_run 1 32 "$DURATION" benches/post.lua "http://$ADDR/hooks/payment/$n?order=42")
  [ -n "$out" ] || { echo "wrk failed against $n workflows" >&2; exit 1; }
  [ "$(field non2xx "$out")" = 0 ] || { echo "$n workflows: some answers were not 2xx: $out" >&2; exit 1; }
  printf '%-10s %10s %10s %10s %9s %10s\n' "$n" "$STARTED_MS" "$(mib "$idle")" \
    "$(field rps "$out")" "$(field p99_ms "$out")" "$(mib "$(rss "$PID" VmHWM)")"
  stop "$PID"
done
