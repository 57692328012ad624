#!/usr/bin/env bash
# Soak: wrk at full speed for a minute against the examples and benches/soak.wf, cycling through
# valid and invalid requests (benches/soak.lua). Prints the answers by status, server 5xx (any
# 5xx that is not a workflow's own `fail`), socket errors, and wf's RSS every 10 s.
# Passes when there are no server 5xx and no socket errors.
#
# usage: benches/soak.sh [--duration 60] [--connections 64]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=60 CONNECTIONS=64
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin wf
TMP=$(mktemp -d)
PSP_PASSWORD=secret GITHUB_WEBHOOK_SECRET=gh-secret STRIPE_WEBHOOK_SECRET=whsec_test SLACK_SIGNING_SECRET=slack-secret \
  TWILIO_AUTH_TOKEN=twilio-token STANDARD_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \
  target/release/wf serve examples benches/soak.wf --listen 127.0.0.1:0 --allow-run \
  --max-body 4KiB >"$TMP/out" 2>"$TMP/log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 1 200); do
  ADDR=$(sed -n 's|^listening on http://||p' "$TMP/out" | head -1)
  [ -n "$ADDR" ] && break
  sleep 0.05
done
[ -n "$ADDR" ] || { echo "wf did not start" >&2; cat "$TMP/log" >&2; exit 1; }
rss() { awk '$1=="VmRSS:"{print $2}' "/proc/$PID/status"; }

echo "soak: ${DURATION}s, wrk -t2 -c$CONNECTIONS, the 26 requests of benches/soak.lua in turn"
echo "RSS at start: $(( $(rss) )) KiB"
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s benches/soak.lua "http://$ADDR" >"$TMP/wrk" 2>&1 &
WRK=$!
for t in $(seq 10 10 "$DURATION"); do
  sleep 10
  echo "RSS at ${t}s: $(rss) KiB"
done
wait "$WRK"
sleep 1
echo "RSS at the end: $(rss) KiB (peak $(awk '$1=="VmHWM:"{print $2}' "/proc/$PID/status") KiB)"
line=$(sed -n 's/^SOAK //p' "$TMP/wrk")
[ -n "$line" ] || { cat "$TMP/wrk" >&2; exit 1; }
echo "$line" | tr ' ' '\n'
echo "log: $(wc -l <"$TMP/log") lines, $(( $(stat -c %s "$TMP/log") / 1048576 )) MiB"
server=$(sed 's/.*server_5xx=\([0-9]*\).*/\1/' <<<"$line")
sockets=$(sed 's/.*socket_errors=\([0-9]*\).*/\1/' <<<"$line")
if [ "$server" != 0 ] || [ "$sockets" != 0 ]; then
  echo "FAIL: $server server 5xx, $sockets socket errors" >&2
  exit 1
fi
echo "PASS"
