#!/usr/bin/env bash
# Writes link/functions.txt: the functions `wf serve` runs, from its start to its stop, with the
# scenario's requests (benches/payment.wf) in between, hottest first, in the shipped build
# (`cargo xtask dist`, target/dist/wf). build.rs hands the list to the linker in that build, which
# places those functions together at the start of the binary's code.
# Run it again after large changes to the request path (a stale list only loses some effect).
#
# usage: benches/link-order.sh [--requests 2000]
#        benches/link-order.sh --check   how many of the listed functions target/dist/wf has:
#                                        fewer means the list is out of date
set -euo pipefail
cd "$(dirname "$0")/.."
N=2000 CHECK=
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) N=$2; shift 2 ;;
    --check) CHECK=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -n "$CHECK" ]; then
  cargo xtask dist
  listed=$(sort -u link/functions.txt | wc -l)
  found=$(nm target/dist/wf | awk '{print $3}' | sort -u | comm -12 - <(sort -u link/functions.txt) | wc -l)
  echo "$found of $listed listed functions are in target/dist/wf"
  exit 0
fi
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }
cargo xtask dist
TMP=$(mktemp -d); PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; true; }
trap cleanup EXIT
# profile NAME PORT STORE: wf under callgrind from start to stop, the scenario's requests between.
profile() {
  local name=$1 port=$2 store=$3
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$TMP/$name.out" \
    target/dist/wf serve benches/payment.wf --listen "127.0.0.1:$port" --store "$store" >/dev/null 2>"$TMP/$name.err" &
  PID=$!
  send "$port"
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
}
# send PORT: the scenario's requests on one keep-alive connection, once wf accepts.
send() { python3 benches/send.py "$1" "$N" 1; }
# Both stores: memory (the benchmarks) and SQLite, the default (its history writer and SQLite's
# own code run for every request).
profile memory 8196 memory
profile sqlite 8197 "$TMP/state.db"
# Each function of the binary with its own instructions, hottest first. Callgrind's names carry
# suffixes of its own (`'2` for a recursion level, `.N` for a name seen twice): the linker's are
# without them.
python3 - "$(readlink -f target/dist/wf)" "$TMP/memory.out" "$TMP/sqlite.out" >link/functions.txt <<'PY'
import collections, re, sys
binary, files = sys.argv[1], sys.argv[2:]
total = collections.Counter()
for path in files:
    objects, names, object_of, cost = {}, {}, {}, collections.Counter()
    ob = fn = None
    after_call = False
    for line in open(path, errors="replace"):
        m = re.match(r"^(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            called, kind, key, name = m.groups()
            table = objects if kind == "ob" else names
            if name:
                table[key] = name
            if not called and kind == "ob":
                ob = key
            elif not called:
                fn = key
                object_of.setdefault(key, ob)
            continue
        if line.startswith("calls="):
            after_call = True
            continue
        if line[:1].isdigit() or line[:1] in "+-*":
            if after_call:
                after_call = False
                continue
            fields = line.split()
            if fn and len(fields) > 1 and fields[1].isdigit():
                cost[fn] += int(fields[1])
    for key, name in names.items():
        if objects.get(object_of.get(key)) == binary:
            total[re.sub(r"('\d+)+$", "", name)] += cost[key]
for name, _ in sorted(total.items(), key=lambda kv: -kv[1]):
    # Rust's names (mangled) and C's (SQLite's); not the names valgrind makes up for code
    # without a symbol.
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$.]*", name) and not name.startswith("0x"):
        print(name)
PY
echo "link/functions.txt: $(wc -l <link/functions.txt) functions" >&2
