#!/usr/bin/env bash
# Load benchmark: `wf serve benches/payment.wf` against the hand-written hyper server of
# ../shared/peers/hyper-baseline (HTTP/1, http1::Builder, the body parsed into serde_json::Value:
# "baseline") and this repository's own (benches/baseline.rs: hyper's auto builder, `json!`:
# "own-baseline", an extra row) on the same scenario, with the same load, in one run.
# Server pinned to core 0, wrk to core 1 (-t1 -c32), rounds alternate baseline, own-baseline, wf
# (reversed every second round). wf is `target/release/wf`, the binary any compiler builds from
# `cargo build --release`, with the store users run by default (a SQLite file, its history written
# as it serves). Prints req/s, p50, p99, idle and peak RSS of every run, then the
# means, the wf/baseline ratios of the means, and the ratio in each round with their median: on a
# machine whose speed drifts by 20% in a minute, neighbouring runs are the fairest comparison.
# Then the signed scenario: the same request signed as GitHub signs it (X-Hub-Signature-256),
# `wf serve benches/signed.wf` (auth github) against benches/baseline.rs's /hooks/signed, which
# checks the HMAC by hand with the hmac and sha2 crates.
#
# usage: benches/load.sh [--duration 10s] [--warmup 2s] [--rounds 2] [--peers] [--before BIN]
#                        [--store sqlite|memory] [--dist] [--unpinned]
#   --store  wf's store: `sqlite` (the default, as `wf serve` has it) gives each wf run a new
#            SQLite file; `memory` keeps nothing, as the hand-written servers.
#   --dist   also runs the shipped build (`cargo xtask dist`: target/dist/wf, with the server's
#            profile where this compiler wrote it) as "wf-dist" in every round.
#   --unpinned  servers run on both cores and wrk is `-t2 -c64`, also on both: the shape of a
#            machine where the server has every core.
#   --peers  also runs adnanh/webhook (Debian) and Node-RED (npm) from ../shared/peers on the
#            same scenario, one round each.
#   --before BIN  also runs another wf binary (a build of an earlier commit) as "wf-before" in
#            every round, alternated with the others: a change's cost, before/after in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=10s WARMUP=2s ROUNDS=2 PEERS=0 BEFORE= STORE=sqlite DIST= UNPINNED=
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --peers) PEERS=1; shift ;;
    --before) BEFORE=$2; shift 2 ;;
    --store) STORE=$2; shift 2 ;;
    --dist) DIST=1; shift ;;
    --unpinned) UNPINNED=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# Two builds: built together with an example, the wf binary gets the features of the
# dev-dependencies too (tokio's test-util: its time driver reads the clock under a lock), code the
# profile and the layout list were not made for, and is not the binary users run.
cargo build --release --quiet --bin wf
cargo build --release --quiet --example baseline
[ -n "$DIST" ] && cargo xtask dist 2>&1 | grep -v '^xtask: built' >&2
WF=target/release/wf BASE=target/release/examples/baseline
# Where the servers and wrk run: core 0 and core 1, or both cores each.
SERVER_CPUS=0 CLIENT_CPUS=1 WRK_LOAD=(-t1 -c32)
[ -n "$UNPINNED" ] && SERVER_CPUS=0,1 CLIENT_CPUS=0,1 WRK_LOAD=(-t2 -c64)
TMP=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

. benches/proc.sh

# store NAME ROUND : the --store of a wf run: memory, or a new SQLite file.
store() {
  case "$STORE" in
    memory) echo memory ;;
    sqlite) echo "$TMP/$1-$2.db" ;;
    *) echo "--store is memory or sqlite, not $STORE" >&2; exit 2 ;;
  esac
}

# start NAME CMD... : starts a server on core 0 that prints "listening on http://ADDR" (its log
# written to a file, as a server's would be); sets PID, ADDR.
start() {
  local name=$1; shift
  taskset -c "$SERVER_CPUS" "$@" >"$TMP/$name.out" 2>>"$TMP/$name.log" &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 1 200); do
    ADDR=$(sed -n 's|^listening on http://||p' "$TMP/$name.out" | head -1)
    [ -n "$ADDR" ] && return 0
    sleep 0.05
  done
  echo "$name did not start" >&2; exit 1
}

# measure LABEL PID URL : correctness probe, warm-up, one pinned wrk run; appends a result row.
measure() {
  local label=$1 pid=$2 url=$3 idle out body
  idle=$(rss "$pid" VmRSS)
  body=$(curl -s -X POST -H 'Content-Type: application/json' -H 'X-Request-Id: abc-123' \
    ${WF_BENCH_SIGNATURE:+-H "X-Hub-Signature-256: $WF_BENCH_SIGNATURE"} \
    --data-binary '{"data":{"status":"paid","amount":1250,"currency":"EUR"},"customer":{"email":"a@b.c"}}' "$url")
  [ "$body" = '{"ok":true,"order":"42","request":"abc-123"}' ] || { echo "$label answered wrongly: $body" >&2; exit 1; }
  taskset -c "$CLIENT_CPUS" wrk "${WRK_LOAD[@]}" -d"$WARMUP" -s benches/post.lua "$url" >/dev/null 2>&1
  out=$(taskset -c "$CLIENT_CPUS" wrk "${WRK_LOAD[@]}" -d"$DURATION" --latency -s benches/post.lua "$url" 2>&1 | sed -n 's/^WRKSUM //p')
  [ -n "$out" ] || { echo "wrk failed against $label" >&2; exit 1; }
  local rps p50 p99 errs
  rps=$(sed 's/.*rps=\([0-9.]*\).*/\1/' <<<"$out"); p50=$(sed 's/.*p50_ms=\([0-9.]*\).*/\1/' <<<"$out")
  p99=$(sed 's/.*p99_ms=\([0-9.]*\).*/\1/' <<<"$out"); errs=$(sed 's/.*non2xx=\([0-9]*\) errors=\([0-9]*\).*/\1+\2/' <<<"$out")
  printf '%-22s %10s %9s %9s %10s %10s %8s\n' "$label" "$rps" "$p50" "$p99" "$((idle / 1024))" "$(( $(rss "$pid" VmHWM) / 1024 ))" "$errs"
  echo "$label $rps $p50 $p99 $(rss "$pid" VmHWM)" >>"$TMP/results"
}

echo "scenario: POST /hooks/payment?order=42, 86-byte JSON body; wf --store $STORE; server on cores $SERVER_CPUS, wrk ${WRK_LOAD[*]} on cores $CLIENT_CPUS, $DURATION per run"
printf '%-22s %10s %9s %9s %10s %10s %8s\n' run req/s p50_ms p99_ms idle_MiB peak_MiB errors
SHARED=../shared/peers/run-hyper-baseline.sh
[ -x "$SHARED" ] || { echo "needs ../shared/peers (the shared hyper server)" >&2; exit 2; }
# order ROUND NAME... : the names in order in odd rounds, reversed in even ones, so that a machine
# slowing down (or speeding up) through the run favours no one.
order() { local round=$1; shift; if [ $((round % 2)) = 1 ]; then echo "$@"; else echo "$@" | tr ' ' '\n' | tac | tr '\n' ' '; fi; }
for round in $(seq 1 "$ROUNDS"); do
  for server in $(order "$round" baseline own-baseline wf ${BEFORE:+wf-before} ${DIST:+wf-dist}); do
    case $server in
      baseline)
        PID=$(PIN=$SERVER_CPUS "$SHARED" 19002 full); PIDS+=("$PID")
        for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:19002/" && break; sleep 0.05; done
        ADDR=127.0.0.1:19002 ;;
      own-baseline) start own-baseline "$BASE" 127.0.0.1:0 ;;
      wf) start wf "$WF" serve benches/payment.wf --listen 127.0.0.1:0 --store "$(store wf "$round")" ;;
      wf-before) start wf-before "$BEFORE" serve benches/payment.wf --listen 127.0.0.1:0 --store "$(store wf-before "$round")" ;;
      wf-dist) start wf-dist target/dist/wf serve benches/payment.wf --listen 127.0.0.1:0 --store "$(store wf-dist "$round")" ;;
    esac
    measure "$server#$round" "$PID" "http://$ADDR/hooks/payment?order=42"
    kill "$PID"; wait "$PID" 2>/dev/null || true
  done
done

# The signed scenario: GitHub's signature of the request body.
. benches/signature.sh
export WF_BENCH_SIGNATURE
echo "signed scenario: POST /hooks/signed?order=42 with X-Hub-Signature-256"
for round in $(seq 1 "$ROUNDS"); do
  for server in $(order "$round" baseline-signed wf-signed); do
    case $server in
      baseline-signed) start baseline-signed "$BASE" 127.0.0.1:0 ;;
      wf-signed) start wf-signed "$WF" serve benches/signed.wf --listen 127.0.0.1:0 --store memory ;;
    esac
    measure "$server#$round" "$PID" "http://$ADDR/hooks/signed?order=42"
    kill "$PID"; wait "$PID" 2>/dev/null || true
  done
done
unset WF_BENCH_SIGNATURE

if [ "$PEERS" = 1 ]; then
  PEERS_DIR=../shared/peers
  [ -d "$PEERS_DIR" ] || { echo "no ../shared/peers: skipping the peers" >&2; PEERS=0; }
fi
if [ "$PEERS" = 1 ]; then
  for variant in nocmd true; do
    PID=$(PIN=0 "$PEERS_DIR/run-webhook.sh" 19000 "$variant"); PIDS+=("$PID"); sleep 1
    measure "webhook-$variant" "$PID" "http://127.0.0.1:19000/hooks/payment?order=42" || true
    kill "$PID" 2>/dev/null || true
  done
  PID=$(PIN=0 "$PEERS_DIR/run-node-red.sh" 19001 function); PIDS+=("$PID")
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:19001/" && break; sleep 0.2; done
  measure "node-red-function" "$PID" "http://127.0.0.1:19001/hooks/payment?order=42" || true
  kill "$PID" 2>/dev/null || true
fi

awk '
  function median(list,   v, k, m, i, j, t) {
    m = split(list, v, " ")
    for (i = 2; i <= m; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
  }
  # ratios A B: the ratio of A to B in each round, both measured minutes apart at most
  function ratios(a, b,   r, out) {
    out = ""
    for (r = 1; r <= rounds; r++) if ((a "#" r) in one && (b "#" r) in one) out = out " " one[a "#" r] / one[b "#" r]
    return out
  }
  function ratios99(a, b,   r, out) {
    out = ""
    for (r = 1; r <= rounds; r++) if ((a "#" r) in tail && (b "#" r) in tail) out = out " " tail[a "#" r] / tail[b "#" r]
    return out
  }
  { split($1, a, "#"); n[a[1]]++; rps[a[1]] += $2; p50[a[1]] += $3; p99[a[1]] += $4; if ($5 > hwm[a[1]]) hwm[a[1]] = $5
    one[$1] = $2; tail[$1] = $4; if (a[2] > rounds) rounds = a[2] }
  END {
    printf "\nmeans over %d rounds\n", n["wf"]
    for (k in n) printf "%-22s req/s %9.0f  p50 %6.3f ms  p99 %6.3f ms  peak RSS %5.1f MiB\n", k, rps[k]/n[k], p50[k]/n[k], p99[k]/n[k], hwm[k]/1024
    if (n["baseline"] && n["wf"]) {
      printf "\nwf/baseline: req/s %.3f  p99 %.3f  (goals: req/s >= 1.0, p99 <= 1.2)\n", (rps["wf"]/n["wf"])/(rps["baseline"]/n["baseline"]), (p99["wf"]/n["wf"])/(p99["baseline"]/n["baseline"])
      printf "wf/baseline, round by round:%s (median %.3f)\n", ratios("wf", "baseline"), median(ratios("wf", "baseline"))
      printf "wf/baseline p99, round by round:%s (median %.3f)\n", ratios99("wf", "baseline"), median(ratios99("wf", "baseline"))
    }
    if (n["baseline"] && n["wf-dist"]) {
      printf "wf-dist/baseline, round by round:%s (median %.3f)\n", ratios("wf-dist", "baseline"), median(ratios("wf-dist", "baseline"))
      printf "wf-dist/baseline p99, round by round:%s (median %.3f)\n", ratios99("wf-dist", "baseline"), median(ratios99("wf-dist", "baseline"))
    }
    if (n["wf-before"] && n["wf"]) {
      printf "wf-before/baseline: req/s %.3f  p99 %.3f\n", (rps["wf-before"]/n["wf-before"])/(rps["baseline"]/n["baseline"]), (p99["wf-before"]/n["wf-before"])/(p99["baseline"]/n["baseline"])
      printf "wf/wf-before, round by round:%s (median %.3f)\n", ratios("wf", "wf-before"), median(ratios("wf", "wf-before"))
    }
    if (n["own-baseline"] && n["wf"]) {
      printf "wf/own-baseline: req/s %.3f  p99 %.3f\n", (rps["wf"]/n["wf"])/(rps["own-baseline"]/n["own-baseline"]), (p99["wf"]/n["wf"])/(p99["own-baseline"]/n["own-baseline"])
    }
    if (n["baseline-signed"] && n["wf-signed"]) {
      printf "signed, wf/baseline: req/s %.3f  p99 %.3f  (goal: req/s >= 0.95)\n", (rps["wf-signed"]/n["wf-signed"])/(rps["baseline-signed"]/n["baseline-signed"]), (p99["wf-signed"]/n["wf-signed"])/(p99["baseline-signed"]/n["baseline-signed"])
      printf "signed, round by round:%s (median %.3f)\n", ratios("wf-signed", "baseline-signed"), median(ratios("wf-signed", "baseline-signed"))
    }
  }' "$TMP/results"
