//! Recovery through the real binary: no text a caller sends is taken for a state, a provider's
//! redelivery of a failed delivery runs again, `wf runs retry` redoes what failed, and `wf runs`
//! says what happened.

use crate::common::{Dir, Reply, Server, Upstream};
use std::time::{Duration, Instant};

/// `wf serve DIR --store DIR/state.db ARGS`, started in DIR.
pub(crate) fn serve(dir: Dir, args: &[&str]) -> Server {
    Server::start_with_store(dir, args, &[])
}

pub(crate) fn store(server: &Server) -> String {
    server.dir.path().join("state.db").to_str().expect("utf8").to_string()
}

/// `wf runs --store S --format json ARGS`, which must succeed.
pub(crate) fn runs(store: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["runs", "--store", store, "--format", "json"];
    all.extend_from_slice(args);
    let out = crate::common::wf(&all);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Waits (at most 10 s) until `wf runs show ID` satisfies `done`; gives what it showed. (The
/// history is written off the request path: an execution may not be there at once.)
pub(crate) fn shown_when(
    store: &str,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = crate::common::wf(&["runs", "--store", store, "--format", "json", "show", id]);
        let shown = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        if done(&shown) {
            return shown;
        }
        assert!(Instant::now() < deadline, "never reached: {shown}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Texts a caller could send hoping to be taken for a state: every state's and outcome's name,
/// and the texts wf once compared reasons with.
const MARKERS: &[&str] = &[
    "parked until its next attempt is due",
    "parked until it is due",
    "this instance no longer holds the run (its lease expired; another instance runs it)",
    "queued",
    "running",
    "waiting",
    "ended",
    "parked",
    "fenced",
    "failed",
    "completed",
    "responded",
    "duplicate",
    "rejected",
];

#[test]
fn a_reason_equal_to_any_internal_marker_fails_the_run_like_any_other() {
    let wf = r#"workflow echo {
  trigger webhook { path "/echo" mode async }
  extract { why = body "why" required }
  fail why
}"#;
    let server = serve(Dir::new(&[("echo.wf", wf)]), &[]);
    let store = store(&server);
    let mut ids = Vec::new();
    for marker in MARKERS {
        let body = serde_json::json!({ "why": marker }).to_string();
        let r = server.post("/echo", &[("content-type", "application/json")], &body);
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(r.header("x-wf-execution").expect("id").to_string());
    }
    for (id, marker) in ids.iter().zip(MARKERS) {
        let shown = shown_when(&store, id, |s| s["state"] == "ended");
        assert_eq!(shown["outcome"], "failed", "{marker}: {shown}");
        assert_eq!(shown["reason"], *marker);
    }
    let log = server.log();
    let stopped = log.lines().any(|l| l.contains("wf::server") && !l.contains("listening on"));
    assert!(!stopped, "no run was parked or taken over:\n{log}");
}

#[test]
fn a_redelivery_of_a_failed_delivery_runs_again() {
    // The service fails the first call, then recovers.
    let up = Upstream::start(|i, _| if i == 0 { Reply::new(503, "down") } else { Reply::new(200, "ok") });
    let wf = format!(
        r#"workflow gh {{
  trigger webhook {{ path "/gh" dedupe delivery }}
  extract {{ delivery = header "X-GitHub-Delivery" }}
  let r = http POST "{}"
  if r.status >= 300 {{
    fail "the service answered ${{r.status}}"
  }}
  respond 200 json {{ done: delivery }}
}}"#,
        up.url("/deploy")
    );
    let server = serve(Dir::new(&[("gh.wf", &wf)]), &[]);
    let headers = [("X-GitHub-Delivery", "d-1")];
    let first = server.post("/gh", &headers, "");
    assert_eq!(first.status, 500, "{}", first.body);
    let again = server.post("/gh", &headers, "");
    assert_eq!(again.status, 200, "the redelivery ran: {}", again.body);
    assert_eq!(again.header("x-wf-duplicate-of"), None);
    assert_eq!(up.received().len(), 2);
    // A delivery that succeeded holds its key.
    let third = server.post("/gh", &headers, "");
    assert_eq!(third.status, 200);
    assert_eq!(third.header("x-wf-duplicate-of"), again.header("x-wf-execution"));
    assert_eq!(up.received().len(), 2, "the duplicate of a success did not run");
}

#[test]
fn a_redelivery_of_a_5xx_answer_runs_again() {
    let wf = r#"workflow pay {
  trigger webhook { path "/pay" dedupe order }
  extract { order = query "order" }
  respond 503 json { busy: true }
}"#;
    let server = serve(Dir::new(&[("pay.wf", wf)]), &[]);
    let first = server.post("/pay?order=1", &[], "");
    assert_eq!(first.status, 503);
    let again = server.post("/pay?order=1", &[], "");
    assert_eq!(again.status, 503);
    assert_eq!(again.header("x-wf-duplicate-of"), None, "a 5xx answer does not hold its key");
}

#[test]
fn a_redelivery_of_a_failed_async_run_runs_again() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok"));
    let wf = format!(
        r#"workflow gh {{
  trigger webhook {{ path "/gh" mode async dedupe delivery }}
  extract {{ delivery = header "X-GitHub-Delivery" }}
  http POST "{}"
  let n = run "sh" ["-c", "test -e once || {{ touch once; exit 3; }}"]
  if n.code != 0 {{
    fail "first time"
  }}
}}"#,
        up.url("/deploy")
    );
    // The first run fails; the redelivery of the same delivery runs (and calls) again.
    let server = serve(Dir::new(&[("gh.wf", &wf)]), &["--allow-run"]);
    let store = store(&server);
    let headers = [("X-GitHub-Delivery", "d-1")];
    let first = server.post("/gh", &headers, "");
    assert_eq!(first.status, 200);
    let id = first.header("x-wf-execution").expect("id").to_string();
    shown_when(&store, &id, |s| s["outcome"] == "failed");
    let again = server.post("/gh", &headers, "");
    assert_eq!(again.header("x-wf-duplicate-of"), None, "the failed run let go of its key");
    let id2 = again.header("x-wf-execution").expect("id").to_string();
    shown_when(&store, &id2, |s| s["outcome"] == "completed");
    // Now the key is held by a success.
    let third = server.post("/gh", &headers, "");
    assert_eq!(third.header("x-wf-duplicate-of"), Some(id2.as_str()));
}

#[test]
fn runs_lists_a_duplicate_with_its_workflow_s_mode_and_outcome() {
    let wf = r#"workflow later {
  trigger webhook { path "/later" mode async dedupe id }
  extract { id = query "id" }
  log "ran ${id}"
}"#;
    let server = serve(Dir::new(&[("later.wf", wf)]), &[]);
    let store = store(&server);
    let first = server.post("/later?id=1", &[], "");
    let first_id = first.header("x-wf-execution").expect("id").to_string();
    shown_when(&store, &first_id, |s| s["outcome"] == "completed");
    let dup = server.post("/later?id=1", &[], "");
    let dup_id = dup.header("x-wf-execution").expect("id").to_string();
    assert_eq!(dup.header("x-wf-duplicate-of"), Some(first_id.as_str()));
    let shown = shown_when(&store, &dup_id, |s| s["state"] == "ended");
    assert_eq!(shown["mode"], "async", "{shown}");
    assert_eq!(shown["outcome"], "duplicate", "{shown}");
    let out = crate::common::wf(&["runs", "--store", &store, "show", &dup_id]);
    let text = crate::common::text(&out.stdout);
    assert!(!text.contains("failed"), "a duplicate did not fail:\n{text}");
    assert!(text.contains(&format!("duplicate of {first_id}")), "{text}");
}

#[test]
fn runs_rejects_an_unknown_status_naming_the_valid_ones() {
    let dir = Dir::new(&[]);
    let store = dir.path().join("state.db");
    let out = crate::common::wf(&["runs", "--store", store.to_str().expect("utf8"), "--status", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::common::text(&out.stderr);
    assert!(err.contains("bogus") && err.contains("failed") && err.contains("queued"), "{err}");
}

#[test]
fn runs_counts_the_attempts_effects_made() {
    let up = Upstream::start(|i, _| if i < 2 { Reply::new(503, "down") } else { Reply::new(200, "ok") });
    let wf = format!(
        r#"workflow notify {{
  trigger webhook {{ path "/notify" mode async }}
  http POST "{}" {{ retry 3 }}
}}"#,
        up.url("/x")
    );
    let server = serve(Dir::new(&[("notify.wf", &wf)]), &["--park-after", "1h"]);
    let store = store(&server);
    let id = server.post("/notify", &[], "").header("x-wf-execution").expect("id").to_string();
    let shown = shown_when(&store, &id, |s| s["state"] == "ended");
    assert_eq!(shown["outcome"], "completed", "{shown}");
    assert_eq!(shown["attempts"], 3, "{shown}");
    let listed = runs(&store, &[]);
    let row = listed.as_array().and_then(|a| a.iter().find(|r| r["id"] == id.as_str())).expect("listed");
    assert_eq!(row["attempts"], 3, "{row}");
}

#[test]
fn runs_retry_keeps_what_succeeded_and_calls_again_with_a_key_of_its_own() {
    // The service fails the first call (503), then recovers.
    let up = Upstream::start(|i, _| if i == 0 { Reply::new(503, "down") } else { Reply::new(200, "ok") });
    let wf = format!(
        r#"workflow notify {{
  trigger webhook {{ path "/notify" mode async }}
  let a = run "sh" ["-c", "echo one >> trace.txt"]
  let r = http POST "{}"
  if r.status >= 300 {{
    fail "the service answered ${{r.status}}"
  }}
  log "notified ${{r.status}}"
}}"#,
        up.url("/hook")
    );
    let server = serve(Dir::new(&[("notify.wf", &wf)]), &["--allow-run"]);
    let store = store(&server);
    let root = server.dir.path().to_path_buf();
    let id = server.post("/notify", &[], "").header("x-wf-execution").expect("id").to_string();
    let failed = shown_when(&store, &id, |s| s["outcome"] == "failed");
    assert_eq!(failed["attempts"], 2, "{failed}");
    // Only a run that has ended failed can be retried; a success cannot.
    let out = crate::common::wf(&["runs", "--store", &store, "retry", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    let done = shown_when(&store, &id, |s| s["outcome"] == "completed");
    server.wait_log("notified 200");
    assert_eq!(std::fs::read_to_string(root.join("trace.txt")).expect("trace"), "one\n", "step 1 kept");
    let calls = up.received();
    assert_eq!(calls.len(), 2, "the failed call, then a new one");
    let (first, again) = (calls[0].header("idempotency-key"), calls[1].header("idempotency-key"));
    assert_eq!(first, Some(format!("{id}-2").as_str()));
    assert_eq!(again, Some(format!("{id}-2-retry-1").as_str()), "a key of its own");
    assert_eq!(done["started_ms"], failed["started_ms"], "the first start time is kept");
    assert_eq!(done["attempts"], 3, "the retry's call is added: {done}");
    let again = crate::common::wf(&["runs", "--store", &store, "retry", &id]);
    assert_eq!(again.status.code(), Some(1));
    let err = crate::common::text(&again.stderr);
    assert!(err.contains("ended as completed") && err.contains("only a failed execution"), "{err}");
}

#[test]
fn runs_retry_runs_a_failed_sync_execution_again_in_the_background_from_its_request() {
    // The service fails the first call (503), then recovers (and fails the third).
    let up = Upstream::start(
        |i, _| if i == 0 || i == 2 { Reply::new(503, "down") } else { Reply::new(200, "ok") },
    );
    let wf = format!(
        r#"workflow forward {{
  trigger webhook {{ path "/forward" auth bearer secret("FWD_TOKEN") }}
  extract {{
    order = body "order" required
    note  = query "note"
  }}
  let a = run "sh" ["-c", "echo ${{order}} >> trace.txt"]
  let r = http POST "{}" {{ json {{ order: order, note: note }} }}
  if r.status >= 300 {{
    fail "the service answered ${{r.status}}"
  }}
  respond 201 json {{ forwarded: order }}
}}"#,
        up.url("/hook")
    );
    let server = Server::start_with_store(
        Dir::new(&[("forward.wf", &wf)]),
        &["--allow-run"],
        &[("FWD_TOKEN", "tok-PLANTED-0002")],
    );
    let store = store(&server);
    let root = server.dir.path().to_path_buf();
    let headers = [("Authorization", "Bearer tok-PLANTED-0002"), ("Content-Type", "application/json")];
    let answer = server.post("/forward?note=first", &headers, r#"{"order": 42}"#);
    assert_eq!(answer.status, 500, "{}", answer.body);
    let id = answer.header("x-wf-execution").expect("id").to_string();
    let failed = shown_when(&store, &id, |s| s["outcome"] == "failed" && s["request"].is_object());
    assert_eq!((failed["mode"].as_str(), failed["attempts"].as_i64()), (Some("sync"), Some(2)), "{failed}");
    let out = crate::common::wf(&["runs", "--store", &store, "retry", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    // Run again by the server, in the background: the values extracted again from the kept
    // request, the `run` that succeeded kept, the call made again with a key of its own.
    let done = shown_when(&store, &id, |s| s["outcome"] == "responded");
    assert_eq!((done["status"].as_i64(), done["mode"].as_str()), (Some(201), Some("sync")), "{done}");
    assert_eq!(done["started_ms"], failed["started_ms"], "the first start time is kept");
    assert_eq!(done["attempts"], 3, "{done}");
    assert_eq!(std::fs::read_to_string(root.join("trace.txt")).expect("trace"), "42\n", "step 1 kept");
    let calls = up.received();
    assert_eq!(calls.len(), 2, "the failed call, then a new one");
    assert_eq!(calls[1].header("idempotency-key"), Some(format!("{id}-2-retry-1").as_str()));
    assert_eq!(calls[1].body, calls[0].body, "the same values");
    let listed = runs(&store, &["--workflow", "forward"]);
    let rows: Vec<&serde_json::Value> =
        listed.as_array().expect("rows").iter().filter(|r| r["id"] == id.as_str()).collect();
    assert_eq!(rows.len(), 1, "listed once: {listed}");
    // A body kept only as its digest cannot be run again.
    let big = format!(r#"{{"order": 7, "pad": "{}"}}"#, "x".repeat(70_000));
    let answer = server.post("/forward", &headers, &big);
    let big_id = answer.header("x-wf-execution").expect("id").to_string();
    shown_when(&store, &big_id, |s| s["outcome"] == "failed");
    let out = crate::common::wf(&["runs", "--store", &store, "retry", &big_id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::common::text(&out.stderr).contains("request whole"),
        "{}",
        crate::common::text(&out.stderr)
    );
}

#[test]
fn runs_retry_from_start_does_every_step_again_and_a_running_run_is_refused() {
    let wf = r#"workflow steps {
  trigger webhook { path "/steps" mode async }
  extract { wait = query "wait" }
  let a = run "sh" ["-c", "echo one >> trace.txt"]
  if wait == "yes" {
    let b = run "sleep" ["3"]
  }
  fail "always"
}"#;
    let server = serve(Dir::new(&[("steps.wf", wf)]), &["--allow-run"]);
    let store = store(&server);
    let root = server.dir.path().to_path_buf();
    let id = server.post("/steps", &[], "").header("x-wf-execution").expect("id").to_string();
    shown_when(&store, &id, |s| s["outcome"] == "failed");
    let out = crate::common::wf(&["runs", "--store", &store, "retry", "--from-start", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(root.join("trace.txt")).unwrap_or_default() != "one\none\n" {
        assert!(Instant::now() < deadline, "step 1 was not done again");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A run under way cannot be retried.
    let busy = server.post("/steps?wait=yes", &[], "").header("x-wf-execution").expect("id").to_string();
    shown_when(&store, &busy, |s| s["state"] == "running");
    let out = crate::common::wf(&["runs", "--store", &store, "retry", &busy]);
    assert_eq!(out.status.code(), Some(1));
    let err = crate::common::text(&out.stderr);
    assert!(err.contains("is running"), "{err}");
    let unknown = crate::common::wf(&["runs", "--store", &store, "retry", "00000000000000ff"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(crate::common::text(&unknown.stderr).contains("no execution"));
}

#[test]
fn every_execution_keeps_its_request_with_large_bodies_as_their_digest() {
    let wf = r#"workflow pay {
  trigger webhook { path "/pay" auth bearer secret("PAY_TOKEN") }
  extract { amount = body "amount" as number }
  respond 200 json { ok: amount > 0 }
}
workflow later {
  trigger webhook { path "/later" mode async }
  log "later"
}"#;
    let server = Server::start_with_store(
        Dir::new(&[("pay.wf", wf)]),
        &["--keep-body", "1KiB"],
        &[("PAY_TOKEN", "tok-PLANTED-0001")],
    );
    let store = store(&server);
    let auth = ("Authorization", "Bearer tok-PLANTED-0001");
    let json = ("Content-Type", "application/json");
    let small = server.post("/pay?order=7", &[auth, json], r#"{"amount": 12}"#);
    assert_eq!(small.status, 200, "{}", small.body);
    let big_body = format!(r#"{{"amount": 1, "pad": "{}"}}"#, "x".repeat(4000));
    let big = server.post("/pay", &[auth, json], &big_body);
    assert_eq!(big.status, 200, "{}", big.body);
    let later = server.post("/later", &[json], &big_body);
    let id = |r: &crate::common::Resp| r.header("x-wf-execution").expect("id").to_string();

    let shown = shown_when(&store, &id(&small), |s| s["request"].is_object());
    let request = &shown["request"];
    assert_eq!(
        (request["method"].as_str(), request["target"].as_str()),
        (Some("POST"), Some("/pay?order=7"))
    );
    assert_eq!(request["headers"]["authorization"], "[masked]");
    assert_eq!(request["body"], r#"{"amount": 12}"#);
    // The digest as coreutils computes it, not wf.
    let digest = |text: &str| {
        let out = crate::common::pipe("sha256sum", &[], text.as_bytes());
        crate::common::text(&out.stdout).split_whitespace().next().unwrap_or("").to_string()
    };
    for r in [&big, &later] {
        let shown = shown_when(&store, &id(r), |s| s["request"].is_object());
        let request = &shown["request"];
        assert!(request.get("body").is_none(), "over --keep-body: {request}");
        assert_eq!(request["body_size"], big_body.len());
        assert_eq!(request["body_sha256"], digest(&big_body));
    }
    let out = crate::common::wf(&["runs", "--store", &store, "show", &id(&small)]);
    let text = crate::common::text(&out.stdout);
    assert!(text.contains("POST /pay?order=7") && !text.contains("PLANTED"), "{text}");
}
