#!/usr/bin/env bash
# Shared-store benchmark: acknowledged async runs per second and p99 acknowledgement latency of
# `wf serve benches/accept.wf` with one and with two instances on one local PostgreSQL (a
# throwaway cluster, fsync and synchronous_commit on), against the embedded SQLite store, in one
# run, at 32 and 128 callers. With two instances, two wrk processes each drive one instance with
# half the callers; their rates add up and the p99 is the worse of the two.
#
# usage: benches/shared.sh [--duration 10s] [--rounds 2]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=10s ROUNDS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is needed: apt-get install postgresql" >&2; exit 2; }
cargo build --release --quiet --bin wf
WF=target/release/wf
TMP=$(mktemp -d); PIDS=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$TMP"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$TMP/data" -U postgres --auth=trust --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/pg.log" -w start \
  -o "-p $PORT -k $TMP -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
URL="postgres://postgres@127.0.0.1:$PORT/postgres"
psql() { as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qAt -c "$1" >/dev/null 2>&1; }

start() { # start STORE: a wf serve; its address in ADDR
  local out; out=$(mktemp -p "$TMP")
  "$WF" serve benches/accept.wf --listen 127.0.0.1:0 --store "$1" --queue-size 100000 >"$out" 2>/dev/null &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    ADDR=$(sed -n 's|^listening on http://||p' "$out" | head -1); [ -n "$ADDR" ] && break; sleep 0.05
  done
}
stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
load() { # load LABEL CONNECTIONS ADDR...
  local label=$1 conns=$2; shift 2
  local each=$((conns / $#)) i=0 loaders=()
  for a in "$@"; do
    wrk -t1 -c"$each" -d"$DURATION" -s benches/post.lua "http://$a/hooks/accept" >"$TMP/wrk.$i" &
    loaders+=($!); i=$((i + 1))
  done
  for p in "${loaders[@]}"; do wait "$p"; done
  sed -n 's/^WRKSUM //p' "$TMP"/wrk.* | awk -v l="$label" '{ print l, $0 }' | tee -a "$TMP/results"
  rm -f "$TMP"/wrk.*
}

for r in $(seq 1 "$ROUNDS"); do
  for c in 32 128; do
    rm -f "$TMP"/state.db*
    start "$TMP/state.db"; load "sqlite-c$c" "$c" "$ADDR"; stop
    psql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
    start "$URL"; load "pg1-c$c" "$c" "$ADDR"; stop
    psql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
    start "$URL"; A=$ADDR; start "$URL"; B=$ADDR; load "pg2-c$c" "$c" "$A" "$B"; stop
  done
done

python3 - "$TMP/results" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)   # label -> list of rounds, each a list of wrk rows
last = {}
for line in open(sys.argv[1]):
    parts = line.split()
    fields = {k: float(v) for k, v in (p.split("=") for p in parts[1:])}
    runs[parts[0]].append(fields)
print()
for label, rows in runs.items():
    per = 2 if label.startswith("pg2") else 1
    rounds = [rows[i:i + per] for i in range(0, len(rows), per)]
    rps = statistics.mean(sum(r["rps"] for r in rnd) for rnd in rounds)
    p99 = statistics.mean(max(r["p99_ms"] for r in rnd) for rnd in rounds)
    p50 = statistics.mean(max(r["p50_ms"] for r in rnd) for rnd in rounds)
    bad = sum(int(r["non2xx"] + r["errors"]) for r in rows)
    last[label] = rps
    print(f"{label:10} {rps:9.0f} acks/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  non-2xx+errors {bad}")
for c in (32, 128):
    print(f"c={c}: one PostgreSQL instance / SQLite {last[f'pg1-c{c}']/last[f'sqlite-c{c}']:.2f}, two / one {last[f'pg2-c{c}']/last[f'pg1-c{c}']:.2f}")
PY
