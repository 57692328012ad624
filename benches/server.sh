# Sourced by the scale benchmarks: starting servers and loading them.

# setup : wrk (installed from Debian if missing), a scratch folder TMP and the servers started
# (PIDS), all stopped and removed at exit.
setup() {
  command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  TMP=$(mktemp -d); PIDS=()
  trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT
}

# start NAME CPUS CMD... : starts a server (on the CPUs given, taskset's list) that prints
# "listening on http://ADDR"; sets PID, ADDR and STARTED_MS (from exec to listening).
start() {
  local name=$1 cpus=$2; shift 2
  local t0; t0=$(date +%s%N)
  taskset -c "$cpus" "$@" >"$TMP/$name.out" 2>>"$TMP/$name.log" &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 1 6000); do
    ADDR=$(sed -n 's|^listening on http://||p' "$TMP/$name.out" | head -1)
    if [ -n "$ADDR" ]; then STARTED_MS=$((($(date +%s%N) - t0) / 1000000)); return 0; fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.01
  done
  echo "$name did not start: $(tail -3 "$TMP/$name.log")" >&2; exit 1
}

# baseline CPUS MODE : the hand-written hyper server of ../shared/peers (full or typed); sets PID, ADDR.
baseline() {
  local port=19003
  PID=$(PIN=$1 ../shared/peers/run-hyper-baseline.sh "$port" "$2"); PIDS+=("$PID")
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
  ADDR=127.0.0.1:$port
}

# stop PID : stops a server and waits for it.
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# wrk_run CPUS CONNECTIONS DURATION SCRIPT URL : one wrk run (after a 1 s warm-up with the same
# load); prints its WRKSUM line (rps, p50_ms, p99_ms, requests, non2xx, errors).
wrk_run() {
  local cpus=$1 conns=$2 duration=$3 script=$4 url=$5
  taskset -c "$cpus" wrk -t1 -c"$conns" -d1s -s "$script" "$url" >/dev/null 2>&1 || true
  taskset -c "$cpus" wrk -t1 -c"$conns" -d"$duration" --timeout 10s --latency -s "$script" "$url" 2>&1 | sed -n 's/^WRKSUM //p'
}

# field NAME LINE : a field of a WRKSUM line.
field() { sed "s/.*$1=\([0-9.]*\).*/\1/" <<<"$2"; }

# mib KIB : KiB as MiB, one decimal.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
