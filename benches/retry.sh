#!/usr/bin/env bash
# Retrying many failed runs: makes N failed async runs (a workflow that calls `run` once, then
# fails) in a SQLite store, marks every one for a retry with a loop of `wf runs retry ID` (one
# process each, as a user's shell loop would), printing the time each thousand took, so a retry
# whose cost grows with the store shows as a rising column; then starts `wf serve` again and
# prints how long it took to run them all again.
#
# usage: benches/retry.sh [--runs 10000]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cargo build --release --quiet --bin wf
WF=$PWD/target/release/wf
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
cat >"$TMP/fails.wf" <<'EOF'
workflow fails {
  trigger webhook { path "/fails" mode async }
  let step = run "true"
  fail "always"
}
EOF
STORE=$TMP/state.db

start() {
  "$WF" serve "$TMP" --listen 127.0.0.1:0 --store "$STORE" --allow-run --log-format json \
    >"$TMP/out" 2>>"$TMP/log" &
  SERVER=$!
  for _ in $(seq 100); do grep -q listening "$TMP/out" 2>/dev/null && break; sleep 0.1; done
  ADDR=$(sed -n 's|listening on http://||p' "$TMP/out" | head -1)
}
stop() { kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=; }
count() { "$WF" runs --store "$STORE" --status "$1" --limit 1000000 --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
until_none() {
  while [ "$(count queued)" != 0 ] || [ "$(count running)" != 0 ]; do sleep 0.5; done
}

start
python3 - "$ADDR" "$RUNS" <<'EOF'
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port))
for _ in range(int(sys.argv[2])):
    c.request("POST", "/fails", body=b"")
    c.getresponse().read()
EOF
until_none
stop
echo "$(count failed) failed runs in the store"

"$WF" runs --store "$STORE" --status failed --limit 1000000 --format json \
  | python3 -c 'import json,sys; [print(r["id"]) for r in json.load(sys.stdin)]' >"$TMP/ids"
echo "marking each for a retry (wf runs retry ID, one process each):"
n=0; t0=$(date +%s.%N); first=
while read -r id; do
  "$WF" runs --store "$STORE" retry "$id" >/dev/null
  n=$((n + 1))
  if [ $((n % 1000)) = 0 ]; then
    t1=$(date +%s.%N)
    took=$(echo "$t1 - $t0" | bc)
    first=${first:-$took}
    printf '  retries %6d-%6d  %6.2f s  (%.2f ms each; %.2fx the first thousand)\n' $((n - 999)) "$n" "$took" \
      "$(echo "$took * 1000 / 1000" | bc -l)" "$(echo "$took / $first" | bc -l)"
    t0=$t1
  fi
done <"$TMP/ids"
t0=$(date +%s.%N)
start
until_none
t1=$(date +%s.%N)
stop
printf 'wf serve took and ran all %d again in %.1f s\n' "$n" "$(echo "$t1 - $t0" | bc)"
