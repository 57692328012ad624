-- wrk script for benches/soak.sh: cycles through valid and invalid requests against the
-- examples and benches/soak.wf, and counts answers by status. A 5xx whose body is not the
-- workflow's own failure ("workflow failed") is counted as a server error.
local auth = "Basic cHNwOnNlY3JldA==" -- psp:secret
local wrong = "Basic cHNwOndyb25n"    -- psp:wrong
local json = { ["Content-Type"] = "application/json" }
local function h(extra)
  local t = { ["Content-Type"] = "application/json" }
  for k, v in pairs(extra) do t[k] = v end
  return t
end
local deep = string.rep("[", 200) .. string.rep("]", 200)
local big = '{"data":{"status":"paid","note":"' .. string.rep("x", 8192) .. '"}}'

local plan = {
  { "POST", "/hooks/payment?order=42", h({ Authorization = auth, ["X-Request-Id"] = "r1" }), '{"data":{"status":"paid","amount":12.5}}' },
  { "POST", "/hooks/payment?order=7", h({ Authorization = auth }), '{"data":{"status":"pending"}}' },
  { "POST", "/hooks/payment?order=8", h({ Authorization = auth }), '{"data":{"status":"paid","amount":0}}' },
  { "POST", "/hooks/payment?order=9", h({ Authorization = wrong }), '{"data":{"status":"paid"}}' },
  { "POST", "/hooks/payment?order=9", h({}), '{"data":{"status":"paid"}}' },
  { "POST", "/hooks/payment?order=9", h({ Authorization = auth }), '{"data":{"status":' },
  { "POST", "/hooks/payment", h({ Authorization = auth }), '{"data":{"status":"paid"}}' },
  { "POST", "/hooks/payment?order=9", h({ Authorization = auth }), '{"data":{"status":"paid","amount":"lots"}}' },
  { "POST", "/hooks/payment?order=9", h({ Authorization = auth }), '{"x":' .. deep .. '}' },
  { "POST", "/hooks/payment?order=9", h({ Authorization = auth }), '{"data":{"amount":1e400}}' },
  { "POST", "/hooks/payment?order=9", h({ Authorization = auth }), big },
  { "POST", "/hooks/github", h({ ["X-GitHub-Event"] = "push" }), '{"ref":"refs/heads/main","repository":{"full_name":"o/r"},"commits":[{"id":1}],"head_commit":{"message":"fix"},"pusher":{"name":"ann"}}' },
  { "POST", "/hooks/github", h({ ["X-GitHub-Event"] = "ping" }), '{"ref":"x","repository":{"full_name":"o/r"}}' },
  { "POST", "/hooks/github", { ["Content-Type"] = "text/plain", ["X-GitHub-Event"] = "push" }, 'hello' },
  { "POST", "/hooks/github", h({}), '{"ref":"x"}' },
  { "POST", "/hooks/form?email=ada%40example.com&items[0][sku]=A1&items[0][qty]=2&items[1][sku]=B2&newsletter=true", {}, nil },
  { "POST", "/hooks/form?email=nope&items[0][sku]=A1", {}, nil },
  { "POST", "/hooks/form?email=a%40b.co&items[0][sku]=A1&items[0][qty]=many&x=%ZZ", {}, nil },
  { "POST", "/api/webhook:trigger/audit-7f3c9d2e41b8a6f0", json, '{"event":{"action":"login","actor":{"email":"A@B.C"}}}' },
  { "POST", "/api/webhook:trigger/audit-7f3c9d2e41b8a6f0", json, '{"event":{"action":"delete","tags":["suspicious"]}}' },
  { "POST", "/api/webhook:trigger/audit-7f3c9d2e41b8a6f0", json, '{"event":{}}' },
  { "POST", "/soak/flaky?n=2", {}, nil },
  { "POST", "/soak/flaky?n=3", {}, nil },
  { "POST", "/soak/flaky?n=x", {}, nil },
  { "GET", "/hooks/payment", {}, nil },
  { "POST", "/nowhere", {}, nil },
}

local requests = {}
local i = 0
statuses = {}
server_errors = 0
own_failures = 0

function init(args)
  for _, p in ipairs(plan) do
    requests[#requests + 1] = wrk.format(p[1], p[2], p[3], p[4])
  end
end

function request()
  i = i % #requests + 1
  return requests[i]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 500 then
    if body and string.find(body, "workflow failed", 1, true) then
      own_failures = own_failures + 1
    else
      server_errors = server_errors + 1
    end
  end
end

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local all, server, own = {}, 0, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do all[k] = (all[k] or 0) + v end
    server = server + t:get("server_errors")
    own = own + t:get("own_failures")
  end
  local keys = {}
  for k in pairs(all) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. all[k] end
  io.write(string.format("SOAK requests=%d rps=%.0f p99_ms=%.3f socket_errors=%d server_5xx=%d workflow_5xx=%d statuses=%s\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    server, own, table.concat(parts, ",")))
end
