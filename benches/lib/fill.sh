# Sourced by the benchmarks that fill a store: `serve ARGS...` starts `$WF serve` with ARGS (its
# output in $TMP), sets SERVER and ADDR; `fill N PATH [LUA]` has wrk (-c16) send N POSTs to PATH
# (LUA, wrk settings or a `request` function, first) and returns once N are answered.
serve() {
  "$WF" serve "$@" --listen 127.0.0.1:0 >"$TMP/out" 2>"$TMP/log" &
  SERVER=$!
  for _ in $(seq 100); do grep -q listening "$TMP/out" 2>/dev/null && break; sleep 0.1; done
  ADDR=$(sed -n 's|listening on http://||p' "$TMP/out" | head -1)
}

fill() {
  local n=$1 path=$2 lua=${3:-}
  rm -f "$TMP/filled"
  cat >"$TMP/fill.lua" <<LUA
wrk.method = "POST"
$lua
local answered = 0
response = function()
  answered = answered + 1
  if answered == $n then
    io.open("$TMP/filled", "w"):close()
    wrk.thread:stop()
  end
end
LUA
  wrk -t1 -c16 -d600s -s "$TMP/fill.lua" "http://$ADDR$path" >/dev/null &
  local wrk=$!
  while [ ! -e "$TMP/filled" ] && kill -0 "$wrk" 2>/dev/null; do sleep 0.1; done
  kill "$wrk" 2>/dev/null || true
  wait "$wrk" 2>/dev/null || true
}
