#!/usr/bin/env bash
# Writes link/wf.profdata: the profile of `wf serve` answering the benchmark scenarios, which the
# shipped build (`cargo xtask dist`) then compiles with (link/rustc.sh, profile-guided
# optimization), and
# link/wf.profdata.rustc, the compiler it belongs to. Run it again after changes to the request
# path or a new toolchain or Cargo.lock (an old profile only loses some of its effect). It ends by
# running benches/link-order.sh: the profile reshapes the code (what is inlined, what is split off
# cold), and a list of the old code's functions leaves the new ones scattered.
#
# It builds wf with LLVM's counters (target/pgo), runs it, under wrk, on each scenario:
#   benches/payment.wf  with --store memory, and with the SQLite store (the default: history rows)
#   benches/signed.wf   GitHub's signature checked (auth github)
#   benches/accept.wf   async runs acknowledged, kept in SQLite and run
# and merges the counts with llvm-profdata (LLVM's own, of the compiler's version: `rustup
# component add llvm-tools`, or Debian's llvm-N).
#
# usage: benches/pgo.sh [--duration 4s]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=4s
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
command -v openssl >/dev/null || { echo "needs openssl (apt-get install openssl)" >&2; exit 2; }
LLVM=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
HOST=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA=$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata
[ -x "$PROFDATA" ] || PROFDATA=$(command -v "llvm-profdata-$LLVM" || true)
[ -n "$PROFDATA" ] || { echo "needs llvm-profdata of LLVM $LLVM: rustup component add llvm-tools (or apt-get install llvm-$LLVM)" >&2; exit 2; }

TMP=$(mktemp -d); PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; true; }
trap cleanup EXIT
RAW=$TMP/raw
RUSTFLAGS="-Cprofile-generate=$RAW" cargo build --release --quiet --target-dir target/pgo --bin wf
# Build scripts and macros leave counts of their own: only wf's are wanted.
rm -rf "$RAW"
WF=target/pgo/release/wf

# load WORKFLOW PATH STORE: wf on core 0 under `wrk -t1 -c32` on core 1, then stopped
# with SIGTERM (the counts are written when it exits).
load() {
  local wf=$1 path=$2 store=$3
  rm -f "$TMP"/state.db*
  taskset -c 0 "$WF" serve "$wf" --listen 127.0.0.1:0 --store "$store" >"$TMP/out" 2>/dev/null &
  PID=$!
  local addr=
  for _ in $(seq 1 200); do
    addr=$(sed -n 's|^listening on http://||p' "$TMP/out" | head -1); [ -n "$addr" ] && break; sleep 0.05
  done
  [ -n "$addr" ] || { echo "wf serve $wf did not start" >&2; exit 1; }
  taskset -c 1 wrk -t1 -c32 -d"$DURATION" -s benches/post.lua "http://$addr$path" | sed -n 's/^WRKSUM //p' \
    | awk -v l="$wf ($store)" '{ print l ": " $0 }'
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
}
load benches/payment.wf "/hooks/payment?order=42" memory
load benches/payment.wf "/hooks/payment?order=42" "$TMP/state.db"
. benches/signature.sh
WF_BENCH_SIGNATURE=$WF_BENCH_SIGNATURE load benches/signed.wf "/hooks/signed?order=42" memory
load benches/accept.wf /hooks/accept "$TMP/state.db"

# Sparse: functions that never ran are left out (0.8 MB instead of 8).
"$PROFDATA" merge --sparse -o link/wf.profdata "$RAW"/*.profraw
rustc -vV >link/wf.profdata.rustc
echo "link/wf.profdata: $(wc -c <link/wf.profdata) bytes, for $(sed -n 's/^release: /rustc /p' link/wf.profdata.rustc) (LLVM $LLVM)" >&2
# The layout list of the code this profile shapes (link-order.sh builds it first).
benches/link-order.sh
