//! Shared by the benchmarks: generated workflows and the scenario's request.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::Full;
use wf::request::served::Router;

pub const SCENARIO_BODY: &str =
    r#"{"data":{"status":"paid","amount":1250,"currency":"EUR"},"customer":{"email":"a@b.c"}}"#;

/// A realistic 30-line workflow served at `/hooks/<i>`.
pub fn workflow(i: usize) -> String {
    format!(
        r#"workflow wf_{i} {{
  trigger webhook {{
    path "/hooks/{i}"
    auth basic {{
      user "u{i}"
      password "p{i}"
    }}
  }}

  extract {{
    request_id = header "X-Request-Id"
    order      = query "order" required
    status     = body "data.status" required
    amount     = body "data.amount" as number default 0
    tags       = body "data.tags" as array default []
  }}

  let cents = amount * 100
  let label = "order ${{order}}: ${{status}}"

  if status == "paid" && amount > 0 {{
    log "paid ${{label}}"
    respond 200 {{
      header "X-Request-Id" = request_id ?? "none"
      json {{ ok: true, order: order, cents: cents }}
    }}
  }} else if status in ["pending", "authorized"] {{
    respond 202 text "pending"
  }} else {{
    respond 422 json {{ ok: false, status: status, tags: len(tags) }}
  }}
}}
"#
    )
}

pub fn workflows(n: usize) -> String {
    (0..n).map(workflow).collect::<Vec<_>>().join("\n")
}

/// The scenario workflow plus `extra` generated ones, ready to serve.
pub fn router(extra: usize) -> Router {
    let scenario = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/payment.wf"))
        .expect("scenario");
    let src = format!("{scenario}\n{}", workflows(extra));
    let loaded = wf::lang::loader::load_str("bench.wf", &src);
    assert!(!loaded.has_errors(), "generated workflows must check");
    wf::request::served::build(loaded.program, &|_| None).expect("router")
}

pub fn request(body: Bytes) -> http::Request<Full<Bytes>> {
    http::Request::post("/hooks/payment?order=42")
        .header("content-type", "application/json")
        .header("x-request-id", "abc-123")
        .body(Full::new(body))
        .expect("request")
}

pub struct NoQueue;

impl wf::request::handle::Enqueue for NoQueue {
    fn try_enqueue(&self, job: wf::request::handle::Job) -> Result<(), wf::request::handle::Job> {
        Err(job)
    }
}

/// Runs one request through router, extraction, interpreter and answer building (no socket).
pub fn one(rt: &tokio::runtime::Runtime, router: &Router, body: &Bytes) -> u16 {
    let limits = wf::request::handle::Limits { max_body: 4 << 20, ..Default::default() };
    let handled = rt.block_on(wf::request::handle::handle(
        router,
        &limits,
        &NoQueue,
        wf::request::handle::ExecId(1),
        request(body.clone()),
    ));
    handled.response.status().as_u16()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}
