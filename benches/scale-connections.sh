#!/usr/bin/env bash
# Scale in connections: `wf serve benches/payment.wf` (the default store, a new SQLite file each
# run) against the hand-written hyper server of ../shared/peers/hyper-baseline (`full`), with
# 32, 1,000 and 10,000 keep-alive connections (`wrk -t1` on core 1, the server on core 0), in
# one run, alternating. For each: req/s, p99, connection errors and peak RSS. What should hold:
# req/s stays near the 32-connection figure (one worker serves them all), and memory grows by a
# few KiB per connection (its buffers), as the baseline's does.
#
# usage: benches/scale-connections.sh [--duration 5s] [--counts "32 1000 10000"]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=5s COUNTS="32 1000 10000"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --counts) COUNTS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x ../shared/peers/run-hyper-baseline.sh ] || { echo "needs ../shared/peers (the shared hyper server)" >&2; exit 2; }
# 10,000 connections need 10,000 descriptors in wrk and in each server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt 10100 ] || echo "note: open files are limited to $(ulimit -n): the largest counts will fail to connect" >&2
. benches/proc.sh
. benches/server.sh
cargo build --release --quiet --bin wf
setup

printf '%-10s %-9s %10s %9s %8s %10s %10s\n' server conns req/s p99_ms errors idle_MiB peak_MiB
i=0
for c in $COUNTS; do
  i=$((i + 1))
  servers="baseline wf"; [ $((i % 2)) = 0 ] && servers="wf baseline"
  for server in $servers; do
    case $server in
      baseline) baseline 0 full ;;
      wf) start wf 0 target/release/wf serve benches/payment.wf --listen 127.0.0.1:0 --store "$TMP/state-$c.db" ;;
    esac
    idle=$(rss "$PID" VmRSS)
    out=$(wrk_run 1 "$c" "$DURATION" benches/post.lua "http://$ADDR/hooks/payment?order=42")
    [ -n "$out" ] || { echo "wrk failed against $server with $c connections" >&2; exit 1; }
    printf '%-10s %-9s %10s %9s %8s %10s %10s\n' "$server" "$c" "$(field rps "$out")" "$(field p99_ms "$out")" \
      "$(( $(field non2xx "$out") + $(field errors "$out") ))" "$(mib "$idle")" "$(mib "$(rss "$PID" VmHWM)")"
    echo "$server $c $(field rps "$out") $(field p99_ms "$out") $(rss "$PID" VmHWM)" >>"$TMP/results"
    stop "$PID"
  done
done
awk '{ rps[$1 " " $2] = $3; p99[$1 " " $2] = $4; hwm[$1 " " $2] = $5; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
  END { print ""; for (k = 1; k <= n; k++) { c = order[k]
    if (rps["baseline " c] > 0) printf "%6s connections: wf/baseline req/s %.3f  p99 %.3f  peak RSS %.1f against %.1f MiB\n", c, rps["wf " c] / rps["baseline " c], p99["wf " c] / p99["baseline " c], hwm["wf " c] / 1024, hwm["baseline " c] / 1024 } }' "$TMP/results"
