-- wrk script: the scenario's request with a larger body, read from the file WF_BENCH_BODY
-- (benches/scale-bodies.sh writes it). The URL (with ?order=42) is on the command line.
wrk.method = "POST"
local file = assert(io.open(os.getenv("WF_BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Request-Id"] = "abc-123"

function done(summary, latency, requests)
  io.write(string.format("WRKSUM rps=%.0f p50_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
