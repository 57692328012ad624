//! One request in, one answer out: route, method, Basic auth, body rules, extraction, then the
//! interpreter (sync) or the queue (async). Shared by `wf serve` and `wf test`, so both answer
//! the same way; nothing here touches sockets.

use crate::request::eval::{self, Answer, Outcome};
use crate::request::extract::{self, Inputs};
use crate::request::served::{Router, Served};
use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use serde_json::{json, Value};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const X_WF_EXECUTION: HeaderName = HeaderName::from_static("x-wf-execution");

/// Per-request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_body: usize,
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body: 1 << 20, body_timeout: Duration::from_secs(30) }
    }
}

/// An execution's id: shown in `x-wf-execution` and on its log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecId(pub u64);

impl fmt::Display for ExecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl ExecId {
    /// The id as 16 lower-case hex digits, written into `buf`.
    pub fn hex(self, buf: &mut [u8; 16]) -> &str {
        let digits = b"0123456789abcdef";
        for (i, b) in buf.iter_mut().enumerate() {
            *b = digits.get(((self.0 >> (60 - 4 * i)) & 0xf) as usize).copied().unwrap_or(b'0');
        }
        std::str::from_utf8(buf).unwrap_or("0")
    }

    fn header(self) -> HeaderValue {
        let mut buf = [0u8; 16];
        HeaderValue::from_str(self.hex(&mut buf)).unwrap_or(HeaderValue::from_static("0"))
    }
}

/// An accepted async execution waiting to run.
pub struct Job {
    pub served: Arc<Served>,
    pub frame: Vec<Value>,
    pub id: ExecId,
    pub accepted: Instant,
}

/// Where async executions go: the server's bounded queue, or `wf test`'s list.
pub trait Enqueue: Send + Sync {
    /// Gives the job back when the queue is full.
    fn try_enqueue(&self, job: Job) -> Result<(), Job>;
}

/// What happened to one execution, for its log line.
#[derive(Debug)]
pub struct Record {
    pub workflow: Arc<str>,
    pub id: ExecId,
    pub outcome: &'static str,
    pub status: u16,
    pub duration: Duration,
    pub reason: Option<String>,
    /// Where a failed execution failed: `file:line:column` of the statement.
    pub at: Option<String>,
    /// The execution's `log` lines.
    pub logs: Vec<String>,
}

pub struct Handled {
    pub response: Response<Full<Bytes>>,
    /// The execution's record; `None` for an accepted async execution (its worker logs it).
    pub record: Option<Record>,
}

/// Answers one request.
pub async fn handle<B>(
    router: &Router,
    limits: &Limits,
    queue: &dyn Enqueue,
    id: ExecId,
    req: Request<B>,
) -> Handled
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let reject = |served: Option<&Served>,
                  status: StatusCode,
                  body: Value,
                  extra: &[(HeaderName, HeaderValue)],
                  reason: &str| {
        let mut response = json_response(status, &body, id);
        for (k, v) in extra {
            response.headers_mut().insert(k.clone(), v.clone());
        }
        let record = Record {
            workflow: served.map_or_else(|| Arc::from("-"), |s| s.name.clone()),
            id,
            outcome: "rejected",
            status: status.as_u16(),
            duration: started.elapsed(),
            reason: Some(reason.to_string()),
            at: None,
            logs: Vec::new(),
        };
        Handled { response, record: Some(record) }
    };

    let Some(served) = router.get(req.uri().path()) else {
        return reject(
            None,
            StatusCode::NOT_FOUND,
            json!({"error": "not found"}),
            &[],
            "no workflow serves this path",
        );
    };
    let s: &Served = served;
    if req.method() != Method::POST {
        let allow = [(ALLOW, HeaderValue::from_static("POST"))];
        return reject(
            Some(s),
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "method not allowed"}),
            &allow,
            "method not allowed",
        );
    }
    if let Some((user, password)) = &s.credentials {
        if !authorized(req.headers().get(AUTHORIZATION), user, password) {
            let challenge = [(WWW_AUTHENTICATE, s.challenge.clone())];
            return reject(
                Some(s),
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthorized"}),
                &challenge,
                "missing or wrong credentials",
            );
        }
    }
    let too_large = || json!({"error": "body too large", "limit": limits.max_body});
    let declared =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return reject(Some(s), StatusCode::PAYLOAD_TOO_LARGE, too_large(), &[], "body over the limit");
    }
    let wf = &s.wf;
    let (parts, body) = req.into_parts();
    let is_json = parts.headers.get(CONTENT_TYPE).is_some_and(is_json_type);
    if s.plan.needs_body && !is_json && declared != Some(0) && !hyper::body::Body::is_end_stream(&body) {
        let body = json!({"error": "unsupported media type", "expected": "application/json"});
        return reject(Some(s), StatusCode::UNSUPPORTED_MEDIA_TYPE, body, &[], "body is not JSON");
    }
    let bytes = match tokio::time::timeout(limits.body_timeout, Limited::new(body, limits.max_body).collect())
        .await
    {
        Err(_) => {
            return reject(
                Some(s),
                StatusCode::REQUEST_TIMEOUT,
                json!({"error": "timed out reading the body"}),
                &[],
                "body timeout",
            );
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return reject(Some(s), StatusCode::PAYLOAD_TOO_LARGE, too_large(), &[], "body over the limit");
        }
        Ok(Err(_)) => {
            return reject(
                Some(s),
                StatusCode::BAD_REQUEST,
                json!({"error": "could not read the body"}),
                &[],
                "body read failed",
            );
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    let mut frame = vec![Value::Null; wf.slots];
    if s.plan.needs_body && !bytes.is_empty() {
        if let Err(e) = crate::request::body::parse_into(&bytes, &s.plan.body_need, &mut frame) {
            let body = json!({
                "error": "malformed JSON",
                "line": e.line(),
                "column": e.column(),
                "reason": format!("{e}"),
            });
            return reject(Some(s), StatusCode::BAD_REQUEST, body, &[], "malformed JSON");
        }
    }
    let mut query = match (s.plan.needs_query, parts.uri.query()) {
        (true, Some(q)) => crate::request::qs::roots(q, &s.plan.query_roots),
        _ => Vec::new(),
    };
    let mut inputs = Inputs { headers: &parts.headers, query: &mut query };
    if let Err(e) = extract::extract_all(wf, &s.plan, &mut inputs, &mut frame) {
        let reason = format!("{} {} `{}`: {}", e.source, e.field, e.path, e.reason);
        return reject(Some(s), StatusCode::BAD_REQUEST, e.to_json(), &[], &reason);
    }

    if wf.mode == crate::lang::ast::Mode::Async {
        let job = Job { served: served.clone(), frame, id, accepted: started };
        if queue.try_enqueue(job).is_err() {
            let retry = [(RETRY_AFTER, HeaderValue::from_static("1"))];
            return reject(
                Some(s),
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "queue full"}),
                &retry,
                "async queue full",
            );
        }
        let response = match &s.immediate {
            Some(a) => answer_response(a.clone(), id),
            None => text_response(StatusCode::OK, "ok", id),
        };
        return Handled { response, record: None };
    }

    let (response, record) = execute(s, &mut frame, id, started);
    Handled { response, record: Some(record) }
}

/// Runs a workflow over a filled frame and builds its answer and record.
pub fn execute(
    s: &Served,
    frame: &mut [Value],
    id: ExecId,
    started: Instant,
) -> (Response<Full<Bytes>>, Record) {
    let mut logs = Vec::new();
    let outcome = eval::run(&s.wf, frame, &mut logs);
    logs.iter_mut().for_each(|line| s.redact(line));
    let (response, outcome, reason, at) = match outcome {
        Outcome::Responded(a) => (answer_response(a, id), "responded", None, None),
        Outcome::Completed => (text_response(StatusCode::OK, "ok", id), "completed", None, None),
        Outcome::Failed(mut reason, span) => {
            s.redact(&mut reason);
            let body = json!({"error": "workflow failed", "execution": id.to_string()});
            let at = s.wf.file.location(span.start);
            (json_response(StatusCode::INTERNAL_SERVER_ERROR, &body, id), "failed", Some(reason), Some(at))
        }
    };
    let record = Record {
        workflow: s.name.clone(),
        id,
        outcome,
        status: response.status().as_u16(),
        duration: started.elapsed(),
        reason,
        at,
        logs,
    };
    (response, record)
}

/// Runs an accepted async execution to its end.
pub fn run_job(mut job: Job) -> Record {
    let (_, record) = execute(&job.served, &mut job.frame, job.id, job.accepted);
    record
}

fn authorized(header: Option<&HeaderValue>, user: &[u8], password: &[u8]) -> bool {
    use base64::Engine as _;
    use subtle::ConstantTimeEq;
    let Some(value) = header.map(HeaderValue::as_bytes) else {
        return false;
    };
    let Some(split) = value.iter().position(|b| *b == b' ') else {
        return false;
    };
    let (scheme, rest) = value.split_at(split);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest.trim_ascii()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|b| *b == b':') else {
        return false;
    };
    let (u, rest) = decoded.split_at(colon);
    let p = rest.get(1..).unwrap_or_default();
    let ok = u.ct_eq(user) & p.ct_eq(password);
    ok.into()
}

fn is_json_type(v: &HeaderValue) -> bool {
    let Ok(s) = v.to_str() else { return false };
    let media = s.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
        || (media.len() > 5 && media.get(media.len() - 5..).is_some_and(|t| t.eq_ignore_ascii_case("+json")))
}

fn base(
    status: StatusCode,
    body: Bytes,
    content_type: Option<HeaderValue>,
    id: ExecId,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Some(ct) = content_type {
        h.insert(CONTENT_TYPE, ct);
    }
    h.insert(X_WF_EXECUTION, id.header());
    r
}

pub fn json_response(status: StatusCode, body: &Value, id: ExecId) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    base(status, Bytes::from(bytes), Some(HeaderValue::from_static(eval::JSON)), id)
}

fn text_response(status: StatusCode, body: &'static str, id: ExecId) -> Response<Full<Bytes>> {
    base(status, Bytes::from_static(body.as_bytes()), Some(HeaderValue::from_static(eval::TEXT)), id)
}

fn answer_response(a: Answer, id: ExecId) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = base(status, a.body, a.content_type.map(HeaderValue::from_static), id);
    for (k, v) in a.headers {
        r.headers_mut().append(k, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_checked() {
        let h = HeaderValue::from_static("Basic cHNwOnNlY3JldA==");
        assert!(authorized(Some(&h), b"psp", b"secret"));
        assert!(!authorized(Some(&h), b"psp", b"other"));
        assert!(!authorized(Some(&HeaderValue::from_static("Bearer x")), b"psp", b"secret"));
        assert!(!authorized(Some(&HeaderValue::from_static("Basic !!!")), b"psp", b"secret"));
        assert!(!authorized(None, b"psp", b"secret"));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_type(&HeaderValue::from_static("application/json; charset=utf-8")));
        assert!(is_json_type(&HeaderValue::from_static("application/vnd.github+json")));
        assert!(!is_json_type(&HeaderValue::from_static("text/plain")));
    }

    struct Full503;

    impl Enqueue for Full503 {
        fn try_enqueue(&self, job: Job) -> Result<(), Job> {
            Err(job)
        }
    }

    #[test]
    fn a_full_queue_answers_503_with_retry_after() {
        let loaded = crate::lang::loader::load_str(
            "q.wf",
            r#"workflow q { trigger webhook { path "/q" mode async } log "x" }"#,
        );
        let router = crate::request::served::build(loaded.program, &|_| None).expect("builds");
        let req = Request::post("/q").body(Full::new(Bytes::new())).expect("request");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let handled = rt.block_on(handle(&router, &Limits::default(), &Full503, ExecId(1), req));
        assert_eq!(handled.response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(handled.response.headers().get(RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"1"[..]));
        assert_eq!(handled.record.map(|r| r.outcome), Some("rejected"));
    }

    #[test]
    fn random_requests_never_panic() {
        let src = r#"workflow r {
          trigger webhook { path "/r" }
          extract {
            a = body "a.b[0]" as integer
            q = query "x[y][0]" as number default 1
            h = header "X-H"
            all = query "x"
            n = body "n" as boolean
          }
          respond 200 json { a: a, q: q + 1, h: h, all: all, n: n }
        }"#;
        let loaded = crate::lang::loader::load_str("r.wf", src);
        let router = crate::request::served::build(loaded.program, &|_| None).expect("builds");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let pieces: [&[u8]; 14] = [
            b"{", b"}", b"[", b"]", b"\"a\"", b":", b",", b"1e999", b"\"\\u", b"null", b"-", b"\xff", b"0",
            b"\"b\"",
        ];
        let qpieces = ["x", "[", "]", "y", "=", "&", "%", "%ZZ", "0", "+", "%5B", "a"];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let body: Vec<u8> =
                (0..next() % 24).flat_map(|_| pieces[(next() % 14) as usize].to_vec()).collect();
            let query: String = (0..next() % 12).map(|_| qpieces[(next() % 12) as usize]).collect();
            let req = Request::post(format!("/r?{query}").as_str())
                .header(CONTENT_TYPE, "application/json")
                .header("x-h", HeaderValue::from_bytes(&[b'v', (next() % 94 + 32) as u8]).expect("value"))
                .body(Full::new(Bytes::from(body)));
            let Ok(req) = req else { continue };
            let handled = rt.block_on(handle(&router, &Limits::default(), &Full503, ExecId(1), req));
            let status = handled.response.status().as_u16();
            assert!(matches!(status, 200 | 400), "unexpected {status}");
        }
    }

    #[test]
    fn ids_print_as_sixteen_hex_digits() {
        let id = ExecId(0x0123_4567_89ab_cdef);
        assert_eq!(id.to_string(), "0123456789abcdef");
        assert_eq!(id.header(), "0123456789abcdef");
    }
}
