#!/usr/bin/env bash
# Scale in body size: bodies of 1 KiB, 64 KiB and 1 MiB (JSON: an array of items first, then the
# three paths benches/bodies.wf reads, so that every byte comes before them), sent by
# `wrk -t1 -c32` on core 1 to each server on core 0, in one run:
#   typed     ../shared/peers/hyper-baseline in `typed` mode (serde into a borrowed struct)
#   full      the same in `full` mode (the body parsed into serde_json::Value)
#   wf        `wf serve benches/bodies.wf --store memory` (nothing kept, as the baselines)
#   wf-store  the same with the default store (a new SQLite file; bodies up to --keep-body,
#             64 KiB, kept whole, larger ones as their size and SHA-256)
# For each: req/s, p99 and CPU time per MiB of bodies received (user + system, every thread,
# from /proc), then wf's CPU per MiB against typed and full.
#
# usage: benches/scale-bodies.sh [--duration 5s] [--sizes "1024 65536 1048576"]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=5s SIZES="1024 65536 1048576"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x ../shared/peers/run-hyper-baseline.sh ] || { echo "needs ../shared/peers (the shared hyper server)" >&2; exit 2; }
. benches/proc.sh
. benches/server.sh
cargo build --release --quiet --bin wf
setup
TICKS=$(getconf CLK_TCK)

# body SIZE FILE: a JSON body of exactly SIZE bytes, the paths read at its end.
body() {
  python3 - "$1" "$2" <<'PY'
import json, sys
size, path = int(sys.argv[1]), sys.argv[2]
tail = ',"data":{"status":"paid","amount":1250,"currency":"EUR"},"customer":{"email":"a@b.c"}}'
items, i = [], 0
text = '{"items":[]' + tail
while True:
    item = json.dumps({"sku": f"SKU-{i:06d}", "qty": i % 7 + 1, "note": "gift wrap, leave at the door"}, separators=(",", ":"))
    candidate = '{"items":[' + ",".join(items + [item]) + ']' + tail
    if len(candidate) > size:
        break
    items.append(item); i += 1; text = candidate
# Pad the last note to the exact size.
pad = size - len(text)
if pad > 0:
    text = text.replace('"note":"gift wrap', '"note":"' + "x" * pad + 'gift wrap', 1) if items else text[:-1] + " " * pad + "}"
assert len(text) == size, (len(text), size)
json.loads(text)
open(path, "w").write(text)
PY
}

printf '%-10s %9s %10s %9s %12s\n' server body req/s p99_ms cpu_ms/MiB
for size in $SIZES; do
  body "$size" "$TMP/body.json"
  for server in typed full wf wf-store; do
    # The baseline serves the scenario's path; benches/bodies.wf one of its own.
    URL_PATH=/hooks/bodies
    case $server in
      typed | full) baseline 0 "$server"; URL_PATH=/hooks/payment ;;
      wf) start wf 0 target/release/wf serve benches/bodies.wf --listen 127.0.0.1:0 --store memory --max-body 2MiB ;;
      wf-store) start wf-store 0 target/release/wf serve benches/bodies.wf --listen 127.0.0.1:0 --store "$TMP/state-$size.db" --max-body 2MiB ;;
    esac
    answer=$(curl -s -X POST -H 'Content-Type: application/json' -H 'X-Request-Id: abc-123' --data-binary "@$TMP/body.json" "http://$ADDR$URL_PATH?order=42")
    [ "$answer" = '{"ok":true,"order":"42","request":"abc-123"}' ] || { echo "$server answered wrongly: $answer" >&2; exit 1; }
    taskset -c 1 env WF_BENCH_BODY="$TMP/body.json" wrk -t1 -c32 -d1s -s benches/body.lua "http://$ADDR$URL_PATH?order=42" >/dev/null 2>&1
    c0=$(cpu "$PID")
    out=$(taskset -c 1 env WF_BENCH_BODY="$TMP/body.json" wrk -t1 -c32 -d"$DURATION" --latency -s benches/body.lua "http://$ADDR$URL_PATH?order=42" | sed -n 's/^WRKSUM //p')
    c1=$(cpu "$PID")
    [ -n "$out" ] || { echo "wrk failed against $server" >&2; exit 1; }
    per=$(awk -v t=$((c1 - c0)) -v hz="$TICKS" -v n="$(field requests "$out")" -v s="$size" 'BEGIN { printf "%.2f", (t / hz * 1000) / (n * s / 1048576) }')
    printf '%-10s %9s %10s %9s %12s\n' "$server" "$size" "$(field rps "$out")" "$(field p99_ms "$out")" "$per"
    echo "$server $size $per" >>"$TMP/results"
    stop "$PID"
  done
done
awk '{ cpu[$1 " " $2] = $3; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
  END { print ""; for (k = 1; k <= n; k++) { s = order[k]
    printf "%8s bytes: CPU per MiB, wf/typed %.2f  wf/full %.2f  wf-store/typed %.2f\n", s, cpu["wf " s] / cpu["typed " s], cpu["wf " s] / cpu["full " s], cpu["wf-store " s] / cpu["typed " s] } }' "$TMP/results"
