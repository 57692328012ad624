#!/usr/bin/env bash
# Ordered runs against unordered ones, in one run: `wf serve` (SQLite store) with two async
# workflows alike but for `order by key` on one; wrk sends N runs to each (key = n mod K), one
# workflow after the other, and the time from the first accept to the last run ended is read
# from /metrics. Rounds alternate which goes first; prints runs/s of each per round, and the
# median of the rounds' ratios ordered/unordered.
#
# usage: benches/order.sh [--runs 10000] [--keys 100] [--rounds 5]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=10000
KEYS=100
ROUNDS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --keys) KEYS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "order.sh needs wrk (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet --bin wf
WF=$PWD/target/release/wf
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
for name in ordered unordered; do
  setting=$([ "$name" = ordered ] && echo "order by key" || echo "")
  cat >"$TMP/$name.wf" <<WF
workflow $name {
  trigger webhook {
    path "/$name"
    mode async
    $setting
  }
  extract {
    key = body "key" required
    n   = body "n" as integer required
  }
  log "run \${n} of \${key}"
}
WF
done
"$WF" serve "$TMP" --store "$TMP/state.db" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --queue-size 100000 \
  >"$TMP/out" 2>"$TMP/log" &
SERVER=$!
for _ in $(seq 100); do grep -q "admin listening" "$TMP/log" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's|listening on http://||p' "$TMP/out" | head -1)
ADMIN=$(sed -n 's|.*admin listening on http://\([0-9.:]*\).*|\1|p' "$TMP/log" | head -1)
. benches/lib/fill.sh
completed() {
  curl -s "http://$ADMIN/metrics" | awk -v w="$1" -F' ' '$1 ~ "wf_executions_total" && $1 ~ "workflow=\""w"\"" && $1 ~ "outcome=\"completed\"" { s += $2 } END { print s + 0 }'
}
measure() {
  local name=$1 round=$2 start end target
  target=$(( $(completed "$name") + RUNS ))
  start=$(date +%s.%N)
  fill "$RUNS" "/$name" "$(cat <<LUA
wrk.headers["Content-Type"] = "application/json"
local sent = 0
request = function()
  sent = sent + 1
  return wrk.format(nil, nil, nil, '{"key":"k' .. (sent % $KEYS) .. '","n":' .. sent .. '}')
end
LUA
)"
  while [ "$(completed "$name")" -lt "$target" ]; do sleep 0.02; done
  end=$(date +%s.%N)
  python3 -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); print(f'round {sys.argv[5]} {sys.argv[4]}: {n} runs in {s:.2f} s = {n / s:,.0f} runs/s')" \
    "$RUNS" "$start" "$end" "$name" "$round" | tee -a "$TMP/rates"
}
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    measure unordered "$round"; measure ordered "$round"
  else
    measure ordered "$round"; measure unordered "$round"
  fi
done
python3 - "$TMP/rates" "$KEYS" <<'PY'
import re, statistics, sys
rounds = {}
for l in open(sys.argv[1]):
    m = re.match(r"round (\d+) (\w+): .*= ([\d,]+) runs/s", l)
    rounds.setdefault(m.group(1), {})[m.group(2)] = float(m.group(3).replace(",", ""))
ratios = [r["ordered"] / r["unordered"] for r in rounds.values()]
print(f"ordered ({sys.argv[2]} keys) / unordered, median of {len(ratios)} rounds: {statistics.median(ratios):.2f}"
      f" (rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
PY
