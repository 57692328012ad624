#!/usr/bin/env bash
# The dashboard with a large store: fills a SQLite store with N executions (wrk against
# `wf serve`), one of them with 1,000 journaled steps, then serves it with --admin and times, with
# curl on loopback, the runs page's first page, every page after it by its "Older" link up to page
# 1,000, and the run page of the run with 1,000 steps. Prints the median and the slowest of each.
# Then what the dashboard costs the webhook listener: wrk (-t1 -c32, on core 1; the server on
# core 0) against /ping for ROUNDS pairs of runs, one of each pair with a browser-like client
# fetching the runs page 10 times a second meanwhile (alternating which goes first); prints the
# req/s and p99 of each and the median ratio with/without.
#
# With --postgres the store is a throwaway local PostgreSQL cluster (fsync on) instead.
#
# usage: benches/dashboard.sh [--runs 1000000] [--pages 1000] [--rounds 3] [--duration 5s] [--postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=1000000
PAGES=1000
ROUNDS=3
DURATION=5s
POSTGRES=0
while [ $# -gt 0 ]; do
  case "$1" in
    --postgres) POSTGRES=1; shift ;;
    --runs) RUNS=$2; shift 2 ;;
    --pages) PAGES=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "dashboard.sh needs wrk (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet --bin wf
WF=$PWD/target/release/wf
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
STORE=$TMP/state.db
if [ "$POSTGRES" = 1 ]; then
  PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")
  [ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is needed: apt-get install postgresql" >&2; exit 2; }
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  [ "$(id -u)" = 0 ] && chown postgres "$TMP"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -m immediate stop >/dev/null 2>&1; rm -rf "$TMP"' EXIT
  as_pg "$PGBIN/initdb" -D "$TMP/data" -U postgres --auth=trust --no-sync >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/pg.log" -w start \
    -o "-p $PORT -k $TMP -c listen_addresses=127.0.0.1" >/dev/null
  STORE="postgres://postgres@127.0.0.1:$PORT/postgres"
fi
cat >"$TMP/hooks.wf" <<'WF'
workflow ping {
  trigger webhook {
    path "/ping"
    mode sync
  }
  extract {
    n = query "n"
  }
  respond 200 json { ok: true, n: n }
}

workflow many_steps {
  trigger webhook {
    path "/steps"
    mode sync
  }
  extract {
    items = body "items" as array default []
  }
  for i in items {
    let id = uuid()
  }
  respond 200 json { ok: true }
}
WF
. benches/lib/fill.sh
serve "$TMP/hooks.wf" --store "$STORE"
fill "$RUNS" "/ping?n=1" 'wrk.headers["Content-Type"] = "application/json"; wrk.body = "{}"'
ITEMS=$(python3 -c 'import json; print(json.dumps({"items": list(range(1000))}))')
STEPS_ID=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' -d "$ITEMS" "http://$ADDR/steps" \
  | sed -n 's/^x-wf-execution: //Ip' | tr -d '\r')
kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=
taskset -c 0 "$WF" serve "$TMP/hooks.wf" --store "$STORE" --listen 127.0.0.1:0 --admin 127.0.0.1:0 >"$TMP/out" 2>"$TMP/log" &
SERVER=$!
for _ in $(seq 100); do grep -q "admin listening" "$TMP/log" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's|listening on http://||p' "$TMP/out" | head -1)
ADMIN=$(sed -n 's|.*admin listening on http://\([0-9.:]*\).*|\1|p' "$TMP/log" | head -1)
SIZE=$([ "$POSTGRES" = 1 ] && echo PostgreSQL || du -h "$STORE" | cut -f1)
echo "stored ($SIZE): $RUNS executions and one of 1,000 steps ($STEPS_ID)"
time_of() { curl -s -o "$TMP/page" -w '%{time_total}\n' "http://$ADMIN$1"; }
: >"$TMP/first"
for _ in $(seq 20); do time_of "/" >>"$TMP/first"; done
: >"$TMP/pages"
NEXT="/"
for _ in $(seq "$PAGES"); do
  time_of "$NEXT" >>"$TMP/pages"
  NEXT=$(grep -o 'rel="next" href="[^"]*"' "$TMP/page" | sed 's/.*href="//; s/"$//; s/&amp;/\&/g') || break
  [ -n "$NEXT" ] || break
done
LAST=$(time_of "$NEXT")
: >"$TMP/run"
for _ in $(seq 20); do time_of "/runs/$STEPS_ID" >>"$TMP/run"; done
STEPS=$(grep -o 'class="step"' "$TMP/page" | wc -l)
python3 - "$TMP/first" "$TMP/pages" "$LAST" "$TMP/run" "$STEPS" <<'PY'
import statistics, sys
first = [float(x) * 1000 for x in open(sys.argv[1])]
pages = [float(x) * 1000 for x in open(sys.argv[2])]
last = float(sys.argv[3]) * 1000
run = [float(x) * 1000 for x in open(sys.argv[4])]
print(f"first page: median {statistics.median(first):.1f} ms, slowest {max(first):.1f} ms (20 requests)")
print(f"pages 1..{len(pages)} by their Older links: median {statistics.median(pages):.1f} ms, slowest {max(pages):.1f} ms; page {len(pages) + 1}: {last:.1f} ms")
print(f"a run page with {sys.argv[5]} steps: median {statistics.median(run):.1f} ms, slowest {max(run):.1f} ms (20 requests)")
PY

# What the dashboard costs the webhook listener.
# A browser-like client: one keep-alive connection, the runs page ten times a second (one
# process: forking curl ten times a second would take the load generator's core from it).
poll() {
  python3 - "$ADMIN" <<'PY'
import http.client, sys, time
conn = http.client.HTTPConnection(sys.argv[1])
while True:
    conn.request("GET", "/")
    conn.getresponse().read()
    time.sleep(0.1)
PY
}
load() {
  taskset -c 1 wrk -t1 -c32 -d"$DURATION" --latency -s /dev/stdin "http://$ADDR/ping?n=1" <<'LUA' | \
    awk '/Requests\/sec/ {r=$2} /^ +99%/ {p=$2} END {print r, p}'
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
LUA
}
: >"$TMP/rounds"
for round in $(seq "$ROUNDS"); do
  for which in $( [ $((round % 2)) = 1 ] && echo "alone polled" || echo "polled alone"); do
    if [ "$which" = polled ]; then
      taskset -c 1 bash -c "$(declare -f poll); ADMIN=$ADMIN; poll" &
      POLLER=$!
      sleep 0.5
      echo "polled $(load)" >>"$TMP/rounds"
      pkill -P "$POLLER" 2>/dev/null || true; kill "$POLLER" 2>/dev/null || true; wait "$POLLER" 2>/dev/null || true
    else
      echo "alone $(load)" >>"$TMP/rounds"
    fi
  done
done
python3 - "$TMP/rounds" <<'PY'
import statistics, sys
def ms(v):
    return float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-2]) if v.endswith("ms") else float(v[:-1]) * 1000
rows = [l.split() for l in open(sys.argv[1])]
alone = [(float(r[1]), ms(r[2])) for r in rows if r[0] == "alone"]
polled = [(float(r[1]), ms(r[2])) for r in rows if r[0] == "polled"]
for name, runs in (("webhooks alone", alone), ("webhooks, dashboard polled 10/s", polled)):
    print(f"{name}: " + ", ".join(f"{r:,.0f} req/s p99 {p:.2f} ms" for r, p in runs))
ratios = [p[0] / a[0] for a, p in zip(alone, polled)]
p99s = [p[1] / a[1] for a, p in zip(alone, polled)]
print(f"with the dashboard polled / alone: req/s {statistics.median(ratios):.3f}, p99 {statistics.median(p99s):.2f} (median of {len(ratios)} rounds)")
PY
