//! `wf test`: sends each `test` block's request through the same router, handler and interpreter
//! as `wf serve` (no socket), runs queued async executions to completion, and checks `expect`s.

use crate::lang::ast::BinOp;
use crate::lang::ir::{Auth, AuthKind, Expr, RequestLine, TestCase};
use crate::request::eval;
use crate::request::handle::{self, Enqueue, ExecId, Job, Limits, Record};
use crate::request::outcome::Outcome;
use crate::request::served::Router;
use crate::request::signature;
use crate::request::step::Steps;
use crate::request::value;
use crate::tools::mocks::Mocks;
use ::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::sync::Mutex;

/// Collects async executions so the test can run them to completion; answers effects from the
/// test's mocks.
struct Collected(Mutex<Vec<Job>>, Mocks);

impl Enqueue for Collected {
    fn try_enqueue(&self, job: Job) -> Result<(), Job> {
        match self.0.lock() {
            Ok(mut jobs) => {
                jobs.push(job);
                Ok(())
            }
            Err(_) => Err(job),
        }
    }

    fn steps(&self, _id: ExecId, _served: &std::sync::Arc<crate::request::served::Served>) -> Box<dyn Steps> {
        Box::new(self.1.clone())
    }
}

/// The result of one test.
pub(crate) struct TestResult {
    pub name: String,
    pub location: String,
    pub passed: bool,
    /// Explanation lines (failures, async executions' logs and failures).
    pub details: Vec<String>,
}

/// Runs every test (whose name contains `filter`, when given) against `router`.
pub(crate) fn run_all(router: &Router, filter: Option<&str>) -> Vec<TestResult> {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            return vec![TestResult {
                name: "runtime".into(),
                location: String::new(),
                passed: false,
                details: vec![format!("cannot start the runtime: {e}")],
            }]
        }
    };
    let selected = router.tests.iter().filter(|t| filter.is_none_or(|f| t.name.contains(f)));
    selected.enumerate().map(|(i, t)| runtime.block_on(run_one(router, t, i as u64))).collect()
}

async fn run_one(router: &Router, t: &TestCase, n: u64) -> TestResult {
    let location = t.file.location(t.span.start);
    let mut result = TestResult { name: t.name.clone(), location, passed: false, details: Vec::new() };
    let req = match build_request(t, router) {
        Ok(r) => r,
        Err(e) => {
            result.details.push(format!("cannot build the request: {e}"));
            return result;
        }
    };
    if let Some(why) = router.broken(req.uri().path()) {
        result.details.push(why.to_string());
        return result;
    }
    let mocks = match Mocks::of(&t.mocks) {
        Ok(m) => m,
        Err(e) => {
            result.details.push(format!("cannot prepare the mocks: {e}"));
            return result;
        }
    };
    let queue = Collected(Mutex::default(), mocks.clone());
    let handled = handle::handle(router, &Limits::default(), &queue, ExecId(n), req).await;
    let mut records: Vec<Record> = handled.record.into_iter().collect();
    let jobs = queue.0.into_inner().unwrap_or_default();
    let async_run = !jobs.is_empty();
    for job in jobs {
        // A test's mocks answer at once: nothing parks a run, and no other process takes it.
        if let handle::Ran::Ended(record) = handle::run_job(job).await {
            records.push(record);
        }
    }

    let (parts, body) = handled.response.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let joined: Vec<String> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        headers.insert(name.as_str().to_string(), Value::String(joined.join(", ")));
    }
    let (calls, unmatched) = match mocks.record.lock() {
        Ok(mut r) => (std::mem::take(&mut r.calls), std::mem::take(&mut r.unmatched)),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let frame = [
        Value::from(parts.status.as_u16()),
        Value::Object(headers.clone()),
        Value::String(text.clone()),
        json,
        Value::Array(calls),
    ];

    let mut failed = false;
    for call in &unmatched {
        failed = true;
        let words: Vec<&str> = call.trim_matches('`').split(' ').collect();
        let hint = match words.as_slice() {
            ["http", method, url, ..] => format!("mock http {method} \"{url}\" {{ respond 200 }}"),
            ["run", program, ..] => format!("mock run \"{program}\" {{ code 0 }}"),
            _ if call.starts_with("`wait`") => "mock callback { json { ... } }".to_string(),
            _ => "mock ...".to_string(),
        };
        result.details.push(format!("no mock answers {call}: add `{hint}` to the test"));
    }
    for x in &t.expects {
        let verdict = match eval::eval(&x.expr, &frame) {
            Ok(v) if value::truthy(&v) => continue,
            Ok(v) => match (&x.comparison, &x.expr) {
                (Some((op, left, right)), Expr::Binary(_, l, r)) => compared(*op, left, l, right, r, &frame),
                _ => format!("it was {}", value::render_string(&v)),
            },
            Err(e) => format!("it could not be evaluated: {e}"),
        };
        failed = true;
        result.details.push(format!("expect {}  ({}): {verdict}", x.source, t.file.location(x.span.start)));
    }
    if failed {
        let mut saw = format!("saw status {}", parts.status.as_u16());
        let _ = write!(saw, ", body {}", shorten(&text));
        result.details.push(saw);
        let shown: Vec<String> = headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "x-wf-execution" | "content-length" | "date"))
            .map(|(k, v)| format!("{k}: {}", value::render_string(v)))
            .collect();
        if !shown.is_empty() {
            result.details.push(format!("headers {}", shown.join("; ")));
        }
    }
    for r in &records {
        let show_logs = failed || r.outcome == Outcome::Failed || r.outcome != Outcome::Rejected && async_run;
        if show_logs {
            for line in &r.logs {
                result.details.push(format!("log ({}): {line}", r.workflow));
            }
        }
        if r.outcome == Outcome::Failed {
            result.details.push(format!(
                "execution of `{}` failed: {} (at {})",
                r.workflow,
                r.reason.as_deref().unwrap_or(""),
                r.at.as_deref().unwrap_or("?")
            ));
        } else if failed && r.outcome == Outcome::Rejected {
            result.details.push(format!("rejected: {}", r.reason.as_deref().unwrap_or("")));
            if &*r.workflow == "-" {
                // The test's path is served by no workflow loaded: say which paths are.
                result.details.push(format!("the workflows loaded serve: {}", router.paths().join(", ")));
            }
        }
    }
    result.passed = !failed;
    // What a test prints (answers, headers, logs) never shows a secret.
    for d in &mut result.details {
        router.redact(d);
    }
    result
}

/// What each side of a failed comparison was: "`json.ok` was `false`, expected `true`".
fn compared(op: BinOp, left: &str, l: &Expr, right: &str, r: &Expr, frame: &[Value]) -> String {
    let show = |e: &Expr| match eval::eval(e, frame) {
        Ok(v) => value::shown(&v, 120),
        Err(e) => format!("an error ({e})"),
    };
    let (a, b) = (show(l), show(r));
    let literal = |text: &str| {
        text.starts_with(['"', '-'])
            || text.starts_with(|c: char| c.is_ascii_digit())
            || matches!(text, "true" | "false" | "null")
    };
    match op {
        BinOp::Eq if literal(right) => format!("`{left}` was `{a}`, expected `{b}`"),
        _ if literal(right) => format!("`{left}` was `{a}`, expected `{} {b}`", op.as_str()),
        BinOp::Eq => format!("`{left}` was `{a}` and `{right}` was `{b}`; they differ"),
        BinOp::Ne => format!("`{left}` and `{right}` were both `{a}`"),
        _ => format!("`{left}` was `{a}` and `{right}` was `{b}`, so `{}` is false", op.as_str()),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= 300 {
        return format!("{s:?}");
    }
    let cut: String = s.chars().take(297).collect();
    format!("{cut:?}...")
}

fn build_request(t: &TestCase, router: &Router) -> Result<::http::Request<Full<Bytes>>, String> {
    let url = value::render_string(&eval::eval(&t.url, &[])?);
    let mut builder = ::http::Request::builder().method(t.method.clone()).uri(&url);
    let mut body = Vec::new();
    let mut content_type: Option<String> = None;
    let mut explicit_type = None;
    let mut sign = None;
    for line in &t.lines {
        match line {
            RequestLine::Auth(u, p) => {
                let u = value::render_string(&eval::eval(u, &[])?);
                let p = value::render_string(&eval::eval(p, &[])?);
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                let value = HeaderValue::from_str(&format!("Basic {token}")).map_err(|e| e.to_string())?;
                builder = builder.header(AUTHORIZATION, value);
            }
            RequestLine::Header(name, e) => {
                let v = value::render_string(&eval::eval(e, &[])?);
                if *name == CONTENT_TYPE {
                    // One content type: the header written wins over the body's own.
                    explicit_type = Some(v);
                    continue;
                }
                let value =
                    HeaderValue::from_str(&v).map_err(|_| format!("invalid value for header `{name}`"))?;
                builder = builder.header(name.clone(), value);
            }
            RequestLine::Json(e) => {
                body = serde_json::to_vec(&eval::eval(e, &[])?).map_err(|e| e.to_string())?;
                content_type = Some(eval::JSON.to_string());
            }
            RequestLine::Text(e) => {
                body = value::render_string(&eval::eval(e, &[])?).into_bytes();
                content_type = Some(eval::TEXT.to_string());
            }
            RequestLine::Bytes(bytes) => {
                body.clone_from(bytes);
                content_type = Some("application/octet-stream".to_string());
            }
            RequestLine::Form(e) => {
                body = crate::request::form::encode(&eval::eval(e, &[])?).into_bytes();
                content_type = Some("application/x-www-form-urlencoded".to_string());
            }
            RequestLine::Sign(scheme, e) => {
                let secret = match eval::eval(e, &[])? {
                    Value::Array(items) => items.first().map(value::render_string).unwrap_or_default(),
                    other => value::render_string(&other),
                };
                sign = Some((*scheme, secret));
            }
            RequestLine::ContentType(ct) => explicit_type = Some(ct.clone()),
        }
    }
    if let Some((scheme, secret)) = sign {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let path = url.split('?').next().unwrap_or("");
        // Twilio signs the URL the sender used: the workflow's `url` setting, else this server's.
        let fixed = router.get(path).and_then(|s| match &s.wf.auth {
            Some(Auth { kind: AuthKind::Signature(sig), .. }) => sig.url.clone(),
            _ => None,
        });
        let signed_url = match fixed {
            Some(base) => match url.split_once('?') {
                Some((_, q)) if !base.contains('?') => format!("{base}?{q}"),
                _ => base,
            },
            None => format!("http://localhost{url}"),
        };
        let params = crate::request::form::pairs(&body);
        for (name, v) in signature::sign(scheme, &secret, &body, &signed_url, &params, now) {
            let value =
                HeaderValue::from_str(&v).map_err(|_| format!("invalid value for header `{name}`"))?;
            builder = builder.header(name, value);
        }
    }
    if let Some(ct) = explicit_type.or(content_type) {
        let value = HeaderValue::from_str(&ct).map_err(|_| format!("invalid content type `{ct}`"))?;
        builder = builder.header(CONTENT_TYPE, value);
    }
    builder.body(Full::new(Bytes::from(body))).map_err(|e| format!("invalid request `{url}`: {e}"))
}

/// Writes an object as form pairs, nesting the way `qs` reads them back (`user[id]=U1`).
/// Formats results: one line per test, details indented, then `N passed, N failed`.
pub(crate) fn report(results: &[TestResult]) -> String {
    let mut out = String::new();
    for r in results {
        let status = if r.passed { "ok    " } else { "FAILED" };
        let _ = writeln!(out, "{status} {} ({})", r.name, r.location);
        for d in &r.details {
            let _ = writeln!(out, "         {d}");
        }
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let _ = writeln!(out, "\n{} passed, {} failed", passed, results.len() - passed);
    out
}
