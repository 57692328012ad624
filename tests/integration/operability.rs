//! `wf serve --admin`: `/metrics` scraped after known traffic and parsed with an independent parser
//! (Python's `prometheus_client`), `/healthz`, `/readyz`.

use crate::common::{basic, have, python_module, request, Server};

const PAY: &str = r#"workflow pay {
  trigger webhook {
    path "/pay"
    auth basic { user "u" password "p" }
  }
  extract { ok = body "ok" as boolean default true }
  if ok { respond 200 text "ok" }
  fail "refused"
}

workflow later {
  trigger webhook { path "/later" mode async }
  log "ran"
}
"#;

/// `(name, labels, value)` of every sample, as Python's OpenMetrics parser reads `text`.
fn parse_with_python(text: &str) -> Vec<(String, serde_json::Value, f64)> {
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let out = crate::common::pipe("python3", &["-c", script], text.as_bytes());
    assert!(out.status.success(), "the OpenMetrics parser refused /metrics:\n{text}");
    let rows: Vec<(String, serde_json::Value, f64)> = serde_json::from_slice(&out.stdout).expect("json");
    rows
}

/// The sum of the samples named `name` whose labels include `labels`.
fn value(samples: &[(String, serde_json::Value, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l[*k] == *v))
        .map(|(_, _, v)| *v)
        .sum()
}

fn admin_addr(s: &Server) -> std::net::SocketAddr {
    crate::common::admin_addr(s)
}

#[test]
fn metrics_count_known_traffic_and_health_endpoints_answer() {
    if !have(
        python_module("prometheus_client"),
        "Python's prometheus_client",
        "pip install prometheus-client",
    ) {
        return;
    }
    let s = Server::start(&[("pay.wf", PAY)], &["--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&s);
    let auth = basic("u", "p");
    let json = ("Content-Type", "application/json");
    for _ in 0..3 {
        assert_eq!(request(s.addr, "POST", "/pay", &[("Authorization", &auth), json], b"{}").status, 200);
    }
    assert_eq!(
        request(s.addr, "POST", "/pay", &[("Authorization", &auth), json], br#"{"ok":false}"#).status,
        500
    );
    assert_eq!(request(s.addr, "POST", "/pay", &[], b"{}").status, 401);
    assert_eq!(request(s.addr, "POST", "/nowhere", &[], b"").status, 404);
    assert_eq!(request(s.addr, "POST", "/later", &[], b"").status, 200);
    s.wait_log("workflow=later");

    let health = request(admin, "GET", "/healthz", &[], b"");
    assert_eq!((health.status, health.json()["status"].as_str()), (200, Some("ok")));
    let ready = request(admin, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["workflows"], 2);
    let scrape = request(admin, "GET", "/metrics", &[], b"");
    assert_eq!(scrape.status, 200);
    assert!(scrape.header("content-type").is_some_and(|c| c.starts_with("application/openmetrics-text")));
    let samples = parse_with_python(&scrape.body);
    let value = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
    assert_eq!(value("wf_requests_total", &[("workflow", "pay"), ("status", "200")]), 3.0);
    assert_eq!(value("wf_requests_total", &[("workflow", "pay"), ("status", "500")]), 1.0);
    assert_eq!(value("wf_requests_total", &[("workflow", "pay"), ("status", "401")]), 1.0);
    assert_eq!(value("wf_requests_total", &[("workflow", "-"), ("status", "404")]), 1.0);
    assert_eq!(value("wf_request_duration_seconds_count", &[("workflow", "pay")]), 5.0);
    assert_eq!(value("wf_executions_total", &[("workflow", "pay"), ("outcome", "responded")]), 3.0);
    assert_eq!(value("wf_executions_total", &[("workflow", "pay"), ("outcome", "failed")]), 1.0);
    assert_eq!(value("wf_executions_total", &[("workflow", "later"), ("outcome", "completed")]), 1.0);
    assert_eq!(value("wf_async_queue_depth", &[]), 0.0);
    assert_eq!(value("wf_workflows", &[]), 2.0);
    assert!(value("wf_open_connections", &[]) >= 0.0);
    // Labels are bounded: no request data ever becomes a label value.
    assert!(!scrape.body.contains("nowhere"));

    s.dir.write("pay.wf", "workflow broken {");
    s.signal("HUP");
    s.wait_log("reload failed");
    let samples = parse_with_python(&request(admin, "GET", "/metrics", &[], b"").body);
    let refused: f64 = samples
        .iter()
        .filter(|(n, l, _)| n == "wf_reloads_total" && l["result"] == "refused")
        .map(|r| r.2)
        .sum();
    assert_eq!(refused, 1.0);
    assert_eq!(request(admin, "GET", "/nothing", &[], b"").status, 404);
}

#[test]
fn metrics_count_effects_by_workflow_kind_and_result_with_their_durations() {
    if !have(
        python_module("prometheus_client"),
        "Python's prometheus_client",
        "pip install prometheus-client",
    ) {
        return;
    }
    let up = crate::common::Upstream::start(|i, _| {
        crate::common::Reply::new(if i % 3 == 2 { 503 } else { 200 }, "ok")
    });
    let wf = format!(
        r#"workflow relay {{
  trigger webhook {{ path "/relay" }}
  let r = http POST "{}"
  let p = run "sh" ["-c", "exit 0"]
  let q = run "sh" ["-c", "exit 3"]
  respond 200 json {{ status: r.status }}
}}"#,
        up.url("/hook")
    );
    let s =
        Server::start(&[("relay.wf", &wf)], &["--admin", "127.0.0.1:0", "--allow-run", "--store", "memory"]);
    let admin = admin_addr(&s);
    for _ in 0..6 {
        assert_eq!(request(s.addr, "POST", "/relay", &[], b"").status, 200);
    }
    let samples = parse_with_python(&request(admin, "GET", "/metrics", &[], b"").body);
    let value = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
    let http = [("workflow", "relay"), ("kind", "http")];
    assert_eq!(value("wf_effects_total", &[http[0], http[1], ("result", "2xx")]), 4.0);
    assert_eq!(value("wf_effects_total", &[http[0], http[1], ("result", "5xx")]), 2.0);
    let run = [("workflow", "relay"), ("kind", "run")];
    assert_eq!(value("wf_effects_total", &[run[0], run[1], ("result", "ok")]), 6.0);
    assert_eq!(value("wf_effects_total", &[run[0], run[1], ("result", "nonzero")]), 6.0);
    assert_eq!(value("wf_effect_duration_seconds_count", &http), 6.0);
    assert_eq!(value("wf_effect_duration_seconds_count", &run), 12.0);
    assert!(value("wf_effect_duration_seconds_sum", &run) > 0.0);
}

#[test]
fn routes_openapi_is_a_valid_openapi_3_1_document() {
    if !have(
        python_module("openapi_spec_validator"),
        "openapi-spec-validator",
        "pip install openapi-spec-validator",
    ) {
        return;
    }
    let out = crate::common::wf(&["routes", "--format", "openapi", "examples"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let pay = &doc["paths"]["/hooks/payment"]["post"];
    assert_eq!(pay["operationId"], "payment_callback");
    let order = pay["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "order")
        .expect("order");
    assert_eq!((order["in"].as_str(), order["required"].as_bool()), (Some("query"), Some(true)));
    let body = &pay["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["properties"]["data"]["properties"]["amount"]["type"], "number");
    assert_eq!(body["properties"]["data"]["required"], serde_json::json!(["status"]));
    assert_eq!(
        pay["responses"]["422"]["content"]["application/json"]["schema"]["properties"]["ok"]["type"],
        "boolean"
    );
    assert_eq!(doc["components"]["securitySchemes"]["payment_callback_auth"]["scheme"], "basic");
    assert_eq!(doc["components"]["securitySchemes"]["github_push_auth"]["name"], "X-Hub-Signature-256");
    assert!(doc["paths"]["/hooks/twilio/sms"]["get"].is_object());

    let validate = "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(sys.stdin))\nprint('valid')";
    let v = crate::common::pipe("python3", &["-c", validate], &out.stdout);
    assert!(v.status.success(), "openapi-spec-validator refused it: {}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn a_skipped_test_says_so_even_when_it_passes() {
    // This test binary, running one test that needs Python, with no Python on the PATH.
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "operability::metrics_count_known_traffic_and_health_endpoints_answer"])
        .env("PATH", "/nonexistent")
        .env_remove("WF_REQUIRE_ALL")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", crate::common::text(&out.stdout));
    let err = crate::common::text(&out.stderr);
    assert!(err.contains("skipped: Python's prometheus_client is not installed"), "the skip is shown: {err}");
}
