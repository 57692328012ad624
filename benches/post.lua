-- wrk script: the scenario's reference request. The URL (with ?order=42) is on the command line.
wrk.method = "POST"
wrk.body   = '{"data":{"status":"paid","amount":1250,"currency":"EUR"},"customer":{"email":"a@b.c"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Request-Id"] = "abc-123"
-- The signed scenario: load.sh computes GitHub's signature of the body with openssl.
local signature = os.getenv("WF_BENCH_SIGNATURE")
if signature and signature ~= "" then
  wrk.headers["X-Hub-Signature-256"] = signature
end

function done(summary, latency, requests)
  io.write(string.format("WRKSUM rps=%.0f p50_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
