//! One request in, one answer out: route, method, Basic auth, body rules, extraction, then the
//! interpreter (sync) or the queue (async). Shared by `wf serve` and `wf test`, so both answer
//! the same way; nothing here touches sockets.

use crate::lang::ir::{Getter, Scheme};
use crate::request::caller::{client_ip, Peer};
use crate::request::eval::{self, Answer, Outcome};
use crate::request::extract::{self, Inputs};
use crate::request::form;
pub use crate::request::id::{ExecId, ExecIds};
use crate::request::outcome::{Mode, Outcome as Ending};
use crate::request::rejection::Rejection;
use crate::request::served::{Access, Router, Served};
use crate::request::signature::{self, Signed, Verifier};
use crate::request::step::Steps;
use bytes::Bytes;
use futures_util::FutureExt as _;
use http::header::{
    HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, AUTHORIZATION,
    CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, VARY,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const X_WF_EXECUTION: HeaderName = HeaderName::from_static("x-wf-execution");
/// On the answer to a duplicate delivery: the first execution's id.
pub const X_WF_DUPLICATE_OF: HeaderName = HeaderName::from_static("x-wf-duplicate-of");

/// Per-request limits, and the proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body: usize,
    pub body_timeout: Duration,
    /// `wf serve --trusted-proxy`.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// `--max-body-memory`: bytes all the bodies being read may hold together; each request
    /// reserves its bytes as they arrive.
    pub body_memory: Arc<crate::request::body_memory::BodyMemory>,
    /// `--max-steps`, `--max-memory`: the bounds of each execution.
    pub budget: eval::Budget,
    /// `--keep-body`: the body a kept request keeps whole, at most.
    pub keep_body: usize,
    /// `--keep-answers`: a sync execution keeps its answer with its request.
    pub keep_answers: bool,
    /// The bodies of sync requests waiting to be written with their records.
    pub waiting_bodies: Arc<crate::request::body_memory::BodyMemory>,
}

/// Default of `--max-body-memory`: 256 MiB.
pub const MAX_BODY_MEMORY: usize = 256 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 1 << 20,
            body_timeout: Duration::from_secs(30),
            trusted_proxies: Arc::from([]),
            body_memory: Arc::new(crate::request::body_memory::BodyMemory::new(MAX_BODY_MEMORY)),
            budget: eval::Budget::default(),
            keep_body: crate::request::received::KEEP_BODY,
            keep_answers: false,
            waiting_bodies: Arc::new(crate::request::body_memory::BodyMemory::new(
                crate::request::received::WAITING_BODIES,
            )),
        }
    }
}

/// An accepted async execution waiting to run.
pub struct Job {
    pub served: Arc<Served>,
    pub frame: Vec<Value>,
    pub id: ExecId,
    pub accepted: Instant,
    /// Where its steps go.
    pub steps: Box<dyn Steps>,
    /// Its bounds.
    pub budget: eval::Budget,
    /// The delivery's `dedupe` key (not known for a run resumed from a store, which lets go of
    /// a failed run's key itself).
    pub dedupe: Option<Box<str>>,
}

impl Job {
    /// Its `order by` key, when its workflow orders runs and the key is not `null`.
    pub(crate) fn order_key(&self) -> Option<String> {
        let key = self.served.wf.order.as_ref()?;
        eval::key_of(key, &self.frame).ok().flatten()
    }
}

/// The request of an accepted async run, for a store to keep.
pub struct Accepted<'a> {
    pub head: Head<'a>,
    pub body: &'a [u8],
}

/// A request's method, target and headers.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    pub method: &'a Method,
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
}

impl<'a> Head<'a> {
    pub fn of<B>(req: &'a Request<B>) -> Head<'a> {
        Head { method: req.method(), uri: req.uri(), headers: req.headers() }
    }
}

/// A request's `dedupe` key, evaluated after extraction.
#[derive(Clone, Debug)]
pub struct DedupeKey {
    pub key: String,
    pub window: Duration,
}

/// Whether a delivery was seen before.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    First,
    /// Seen within the window: the first execution, and (sync, once it ended) its answer as
    /// `{status, headers, body}`.
    Duplicate {
        of: String,
        answer: Option<Value>,
    },
}

/// Resolves with whether a delivery was seen, or why it cannot be taken.
pub type Deciding<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Seen, Refused>> + Send + 'a>>;

/// Resolves with whether a place of the workflow's `concurrency` was taken.
pub type Placing<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, Refused>> + Send + 'a>>;

/// Resolves with `None` once a start of a `rate` window was taken, else when one will be free
/// (milliseconds since the epoch).
pub type Rating<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<i64>, Refused>> + Send + 'a>>;

/// Why an accepted async run could not be taken: the caller gets `503` with `retry-after`.
#[derive(Debug)]
pub enum Refused {
    QueueFull,
    /// The store could not commit the run (full, read-only, gone): never a `200` for it.
    StoreUnavailable,
}

/// Where executions go and where their steps are performed: the server's bounded queue, store
/// and live effects, or `wf test`'s list and mocks.
pub trait Enqueue: Send + Sync {
    /// Gives the job back when the queue is full.
    fn try_enqueue(&self, job: Job) -> Result<(), Job>;

    /// Takes an accepted async run; resolves once it is kept (queued, and committed when there
    /// is a durable store). With a `dedupe` key, a delivery already seen is not kept: the first
    /// execution is named. By default: [`Enqueue::try_enqueue`], no dedupe.
    fn accept<'a>(&'a self, job: Job, _request: Accepted<'a>, _dedupe: Option<DedupeKey>) -> Deciding<'a> {
        let taken = self.try_enqueue(job).map(|()| Seen::First).map_err(|_| Refused::QueueFull);
        Box::pin(std::future::ready(taken))
    }

    /// Whether a sync execution's request is kept with its record (a store keeps it). By
    /// default not.
    fn keeps_requests(&self) -> bool {
        false
    }

    /// Claims a sync execution's `dedupe` key. By default every delivery is the first.
    fn claim<'a>(&'a self, _served: &'a Served, _id: ExecId, _dedupe: DedupeKey) -> Deciding<'a> {
        Box::pin(std::future::ready(Ok(Seen::First)))
    }

    /// The answer a sync execution that claimed `dedupe` gave, for duplicates to get again.
    fn answered(&self, _served: &Served, _id: ExecId, _dedupe: DedupeKey, _answer: Value) {}

    /// Lets go of a key claimed by a sync execution that will not answer (its caller went away).
    fn release(&self, _served: &Served, _id: ExecId, _dedupe: DedupeKey) {}

    /// `concurrency N` shared with other processes: takes a place for sync execution `id`;
    /// `false` when every place is taken. By default the process's own count is the whole count.
    fn place<'a>(&'a self, _served: &'a Served, _id: ExecId) -> Placing<'a> {
        Box::pin(std::future::ready(Ok(true)))
    }

    /// Frees the place execution `id` took.
    fn free_place(&self, _served: &Served, _id: ExecId) {}

    /// `rate N per D`: takes a start of `key`'s window for a sync execution; `Some(ms)`, when
    /// the next start is allowed, if the window is full. By default (`wf test`) every start is
    /// taken.
    fn rate<'a>(&'a self, _served: &'a Served, _key: String) -> Rating<'a> {
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Where the steps of execution `id` of `served` go. By default there are no effects: the
    /// clock is read, `http` and `run` fail.
    fn steps(&self, _id: ExecId, _served: &Arc<Served>) -> Box<dyn Steps> {
        Box::new(crate::request::step::Clock)
    }
}

/// What happened to one execution, for its log line.
#[derive(Debug)]
pub struct Record {
    pub workflow: Arc<str>,
    pub id: ExecId,
    /// The workflow's mode (a rejected request to no workflow: sync).
    pub mode: Mode,
    pub outcome: Ending,
    pub status: u16,
    pub duration: Duration,
    /// When it ended (the clock read for `duration`, reused for the log line's timestamp).
    pub ended: Instant,
    pub reason: Option<String>,
    /// Where a failed execution failed: `file:line:column` of the statement.
    pub at: Option<String>,
    /// The execution's `log` lines.
    pub logs: Vec<String>,
    /// The attempts its effects made.
    pub attempts: u32,
    /// The request, when the store keeps it with the record (a sync execution's).
    pub(crate) request: Option<Arc<crate::request::received::Received>>,
}

pub struct Handled {
    pub response: Response<Full<Bytes>>,
    /// The execution's record; `None` for an accepted async execution (its worker logs it).
    pub record: Option<Record>,
    /// The workflow of an accepted async execution (the others' is in their record).
    accepted: Option<Arc<str>>,
}

impl Handled {
    /// The workflow that answered (`-` when no workflow serves the path), for metrics.
    pub fn workflow(&self) -> Option<&Arc<str>> {
        self.record.as_ref().map(|r| &r.workflow).or(self.accepted.as_ref())
    }
}

/// Answers one request.
pub async fn handle<B>(
    router: &Router,
    limits: &Limits,
    queue: &dyn Enqueue,
    id: ExecId,
    mut req: Request<B>,
) -> Handled
where
    B: hyper::body::Body + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let mut cors = None;
    let mut handled = answer(router, limits, queue, id, &mut req, &mut cors).await;
    with_cors(&mut handled, cors);
    handled
}

/// `handled` with the `access-control-allow-origin` [`answer`] found for it.
pub fn with_cors(handled: &mut Handled, cors: Option<HeaderValue>) {
    if let Some(origin) = cors {
        let headers = handled.response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(VARY, HeaderValue::from_static("origin"));
    }
}

/// Answers one request; sets `cors` to the `access-control-allow-origin` its answer carries
/// (see [`with_cors`]). [`handle`] does both; the server calls the two itself, one future less.
#[allow(clippy::manual_async_fn)] // an `async fn` would keep its arguments twice (see below)
pub fn answer<'a, B>(
    router: &'a Router,
    limits: &'a Limits,
    queue: &'a dyn Enqueue,
    id: ExecId,
    req: &'a mut Request<B>,
    cors: &'a mut Option<HeaderValue>,
) -> impl std::future::Future<Output = Handled> + 'a
where
    B: hyper::body::Body + Unpin + 'a,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    // The request is borrowed, not moved in: its owner's future keeps it, and this one stays
    // small (hyper moves the request's future into place for every request). The rarer ways and
    // a body still arriving are boxed for the same reason.
    async move {
        let started = Instant::now();
        let r = Rejecter { router, id, started };

        let Some(served) = router.get(req.uri().path()) else {
            return r.reject(None, Rejection::NotFound);
        };
        let s: &Served = served;
        let wf = &s.wf;
        *cors = cors_origin(wf, req.headers());
        if wf.cors.is_some() && req.method() == Method::OPTIONS {
            return preflight(s, req, id, started);
        }
        if !wf.methods.contains(req.method()) {
            return r.reject(Some(s), Rejection::MethodNotAllowed { allow: s.allow_methods.clone() });
        }
        let peer = req.extensions().get::<Peer>().map_or(IpAddr::from([127, 0, 0, 1]), |p| p.0);
        let ip = if s.plan.needs_ip { client_ip(peer, req.headers(), &limits.trusted_proxies) } else { None };
        if !wf.allow.is_empty() && !ip.is_some_and(|ip| wf.allow.iter().any(|n| n.contains(&ip))) {
            return r.reject(Some(s), Rejection::Forbidden);
        }
        if !permitted(&s.access, req.headers()) {
            let challenge = matches!(s.access, Access::Basic(_)).then(|| s.challenge.clone());
            return r.reject(Some(s), Rejection::Unauthorized { challenge });
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_body as u64) {
            return r.reject(Some(s), Rejection::TooLarge { limit: limits.max_body });
        }
        // Bodies held in memory have a global budget, taken as their bytes arrive: a request
        // whose bytes do not fit gets 503 rather than push the process over it, and a caller
        // that announces a body and sends nothing holds nothing.
        let mut reserved = limits.body_memory.empty();
        let bytes = match read_body(req.body_mut(), limits, &mut reserved).await {
            Ok(bytes) => bytes,
            Err(BodyError::Timeout) => return r.reject(Some(s), Rejection::BodyTimeout),
            Err(BodyError::TooLarge) => {
                return r.reject(Some(s), Rejection::TooLarge { limit: limits.max_body })
            }
            Err(BodyError::Memory) => return r.reject(Some(s), Rejection::BodyMemory),
            Err(BodyError::Failed) => return r.reject(Some(s), Rejection::BodyUnreadable),
        };
        let head = Head::of(req);
        let content_type = head.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let kind = form::Kind::of(content_type);
        let mut frame = crate::request::value::nulls(wf.slots);
        if let Some(verifier) = &s.signature {
            let behind_proxy = limits.trusted_proxies.iter().any(|n| n.contains(&peer));
            if let Err(why) = verify_signature(s, verifier, &head, &bytes, kind, behind_proxy, &mut frame) {
                return r.reject(Some(s), Rejection::Signature(why.to_string()));
            }
        }
        // Multipart is the one body parsed asynchronously; boxed: its state would otherwise
        // make every request's future larger.
        let parts = if s.plan.needs_body && kind == form::Kind::Multipart && !bytes.is_empty() {
            match Box::pin(form::multipart(bytes.clone(), content_type.unwrap_or(""))).await {
                Ok(v) => Some(v),
                Err(e) => {
                    let reason = e.0;
                    return r.reject(Some(s), Rejection::Malformed { what: "multipart body", reason });
                }
            }
        } else {
            None
        };
        if let Err(rejection) = fill(s, head, &bytes, kind, parts, ip, &mut frame) {
            return r.reject(Some(s), rejection);
        }
        let plan = &s.plan;

        let dedupe = match &wf.dedupe {
            None => None,
            Some(d) => match eval::eval(&d.key, &frame) {
                Ok(Value::Null) => None,
                Ok(v) => Some(DedupeKey { key: crate::request::value::render_string(&v), window: d.window }),
                Err(e) => return r.reject(Some(s), Rejection::DedupeKey(e)),
            },
        };
        if wf.mode == crate::lang::ast::Mode::Async
            || s.running.is_some()
            || wf.rate.is_some()
            || dedupe.is_some()
            || plan.heavy
            || plan.effects
        {
            // Boxed: the states of these rarer ways would otherwise make every request's future
            // larger, and hyper moves that future into place for every request.
            let going = Going { router, limits, queue, served, id, started };
            return Box::pin(going.on(frame, head, &bytes, dedupe)).await;
        }
        let (response, mut record) = execute_now(s, &mut frame, id, started, limits.budget);
        record.request = received(queue, served, head, &bytes, limits, &response);
        remembered(queue, s, id, None, response, record)
    }
}

/// Fills the frame's extracted slots from a request whose body was read (and a multipart body
/// parsed): the body as the plan reads it (JSON straight into slots, forms and text as values),
/// then headers, query and the rest. Used by every request, and by a sync execution run again
/// from its kept request.
fn fill(
    s: &Served,
    head: Head<'_>,
    bytes: &[u8],
    kind: form::Kind,
    parts: Option<Value>,
    ip: Option<IpAddr>,
    frame: &mut [Value],
) -> Result<(), Rejection> {
    let plan = &s.plan;
    if plan.body_paths && !kind.has_paths() && !bytes.is_empty() {
        return Err(Rejection::UnsupportedMedia);
    }
    let malformed = |what: &'static str, reason: String| Err(Rejection::Malformed { what, reason });
    if plan.needs_body && !bytes.is_empty() {
        let tree = match kind {
            form::Kind::Json => {
                if let Err(e) = crate::request::body::parse_into(bytes, &plan.body_need, frame) {
                    let (line, column, reason) = (e.line(), e.column(), e.to_string());
                    return Err(Rejection::MalformedJson { line, column, reason });
                }
                None
            }
            form::Kind::Form => match form::urlencoded(bytes) {
                Ok(v) => Some(v),
                Err(e) => return malformed("form body", e.0),
            },
            form::Kind::Multipart => parts,
            form::Kind::Text => match form::text(bytes) {
                Ok(t) => Some(Value::String(t.to_string())),
                Err(e) => return malformed("body", e.0),
            },
        };
        if let Some(tree) = tree {
            // A form whose one field `payload` holds JSON (GitHub's and Slack's form
            // deliveries): a path not in the form is read in that JSON.
            let inner = form::payload(&tree);
            let mut found_any = false;
            for (slot, segs) in &plan.body_reads {
                if let Some(x) = frame.get_mut(*slot as usize) {
                    let found = extract::lookup(&tree, segs)
                        .or_else(|| inner.as_ref().and_then(|json| extract::lookup(json, segs)));
                    found_any |= found.is_some();
                    *x = found.cloned().unwrap_or(Value::Null);
                }
            }
            // A form that holds none of the fields read, and no JSON to read them in, is not
            // what this workflow expects: said, rather than run with every value `null`.
            let form = matches!(kind, form::Kind::Form | form::Kind::Multipart);
            if form && !found_any && inner.is_none() && !plan.body_reads.is_empty() {
                let paths =
                    s.wf.extracts
                        .iter()
                        .filter(|x| matches!(x.getter, crate::lang::ir::Getter::Body(_)))
                        .map(|x| x.path_text.clone())
                        .collect();
                return Err(Rejection::FormWithoutFields(paths));
            }
        }
    }
    let raw_body = if s.plan.raw_body {
        match form::text(bytes) {
            Ok(t) => Some(t),
            Err(e) => return malformed("body", e.0),
        }
    } else {
        None
    };
    extracted(&s.wf, plan, head, ip, raw_body, frame).map_err(Rejection::Invalid)
}

/// The frame of a sync execution run again by `wf runs retry`, extracted from its request as
/// the store kept it (`{method, target, headers, body}`; credentials masked, so a workflow that
/// extracts one gets the mask). Auth is not checked again: the delivery was verified when it
/// arrived. A caller's address is not kept: `request "ip"` is `null`.
pub(crate) async fn frame_of_kept(s: &Served, kept: &Value) -> Result<Vec<Value>, String> {
    let method =
        kept["method"].as_str().and_then(|m| Method::from_bytes(m.as_bytes()).ok()).ok_or("no method")?;
    let uri: http::Uri = kept["target"].as_str().and_then(|t| t.parse().ok()).ok_or("no target")?;
    let mut headers = http::HeaderMap::new();
    if let Some(kept_headers) = kept["headers"].as_object() {
        for (name, value) in kept_headers {
            let parsed =
                (http::HeaderName::from_bytes(name.as_bytes()), value.as_str().map(HeaderValue::from_str));
            if let (Ok(name), Some(Ok(value))) = parsed {
                headers.append(name, value);
            }
        }
    }
    let bytes = Bytes::from(crate::request::received::kept_body(kept).ok_or("its body is damaged")?);
    let head = Head { method: &method, uri: &uri, headers: &headers };
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let kind = form::Kind::of(content_type);
    let parts = if s.plan.needs_body && kind == form::Kind::Multipart && !bytes.is_empty() {
        Some(form::multipart(bytes.clone(), content_type.unwrap_or("")).await.map_err(|e| e.0)?)
    } else {
        None
    };
    let mut frame = crate::request::value::nulls(s.wf.slots);
    fill(s, head, &bytes, kind, parts, None, &mut frame).map_err(|r| r.reason().into_owned())?;
    Ok(frame)
}

/// Fills the frame's extracted slots from the request (the body's already filled).
fn extracted(
    wf: &crate::lang::ir::Workflow,
    plan: &crate::request::plan::Plan,
    head: Head<'_>,
    ip: Option<IpAddr>,
    raw_body: Option<&str>,
    frame: &mut [Value],
) -> Result<(), extract::ExtractError> {
    let query_text = head.uri.query();
    let mut query = match (plan.needs_query, query_text) {
        (true, Some(q)) => crate::request::qs::roots(q, &plan.query_roots),
        _ => Vec::new(),
    };
    let whole_query = match (plan.query_whole, query_text) {
        (true, Some(q)) => Some(crate::request::qs::parse(q)),
        (true, None) => Some(Value::Object(Default::default())),
        _ => None,
    };
    let mut inputs = Inputs {
        headers: head.headers,
        query: &mut query,
        query_whole: whole_query.as_ref(),
        method: head.method,
        uri: head.uri,
        ip,
        raw_body,
    };
    extract::extract_all(wf, plan, &mut inputs, frame)
}

/// What the rarer ways of [`answer`] share.
struct Going<'a> {
    router: &'a Router,
    limits: &'a Limits,
    queue: &'a dyn Enqueue,
    served: &'a Arc<Served>,
    id: ExecId,
    started: Instant,
}

impl<'a> Going<'a> {
    /// Goes on with an extracted request: accepted (async), placed (`concurrency`), claimed
    /// (`dedupe`), run on the blocking pool (loops) or with its effects awaited.
    async fn on(
        self,
        mut frame: Vec<Value>,
        head: Head<'a>,
        bytes: &'a Bytes,
        dedupe: Option<DedupeKey>,
    ) -> Handled {
        let Going { router, limits, queue, served, id, started } = self;
        let s: &Served = served;
        let wf = &s.wf;
        let r = Rejecter { router, id, started };
        let refuse = |refused: Refused| {
            let rejection = match refused {
                Refused::QueueFull => Rejection::QueueFull,
                Refused::StoreUnavailable => Rejection::StoreUnavailable,
            };
            r.reject(Some(s), rejection)
        };

        if wf.mode == crate::lang::ast::Mode::Async {
            let steps = queue.steps(id, served);
            let job = Job {
                served: served.clone(),
                frame,
                id,
                accepted: started,
                steps,
                budget: limits.budget,
                dedupe: dedupe.as_ref().map(|d| d.key.as_str().into()),
            };
            let seen = match queue.accept(job, Accepted { head, body: bytes }, dedupe).await {
                Ok(seen) => seen,
                Err(refused) => return refuse(refused),
            };
            let response = match &s.immediate {
                Some(a) => answer_response(a.clone(), id),
                None => text_response(StatusCode::OK, "ok", id),
            };
            if let Seen::Duplicate { of, .. } = seen {
                // The delivery was seen: the caller gets the immediate answer again, and no run.
                return duplicate(s, response, &of, started, id);
            }
            return Handled { response, record: None, accepted: Some(s.name.clone()) };
        }

        // `concurrency N`: a sync caller beyond it is told to come back (before its `dedupe` key is
        // claimed: a request turned away must not hold the key). First this process's count, then
        // the count every process sharing the store keeps.
        let _running = match &s.running {
            Some(limit) => {
                let permit = limit.clone().try_acquire_owned().ok();
                let placed = match permit {
                    Some(_) => queue.place(s, id).await,
                    None => Ok(false),
                };
                match placed {
                    Ok(true) => Some((permit, Placed { queue, served: s, id })),
                    Ok(false) => return r.reject(Some(s), Rejection::OverConcurrency),
                    Err(refused) => return refuse(refused),
                }
            }
            None => None,
        };
        // Should this request's future be dropped before it answers (the caller went away), the key
        // it claims is let go, so that the caller's retry runs rather than waiting out the window.
        let mut claimed = None;
        if let Some(key) = &dedupe {
            match queue.claim(s, id, key.clone()).await {
                Ok(Seen::First) => claimed = Some(Claimed { queue, served: s, id, key: Some(key.clone()) }),
                Ok(Seen::Duplicate { of, answer: Some(answer) }) => {
                    return duplicate(s, stored_answer(&answer, id), &of, started, id);
                }
                Ok(Seen::Duplicate { of, answer: None }) => {
                    return r.reject(Some(s), Rejection::DuplicateInProgress { of });
                }
                Err(refused) => return refuse(refused),
            }
        }

        // `rate N per D`: a sync caller over it is told when a start is free (after its `dedupe`
        // key is claimed, so that a duplicate takes no start; a caller turned away lets it go).
        if let Some(rate) = &wf.rate {
            let key = match rate.key.as_ref().map(|k| crate::request::eval::key_of(k, &frame)) {
                None | Some(Ok(None)) => String::new(),
                Some(Ok(Some(key))) => key,
                Some(Err(why)) => return r.reject(Some(s), Rejection::RateKey(why)),
            };
            match queue.rate(s, key).await {
                Ok(None) => {}
                Ok(Some(free_ms)) => {
                    let wait = free_ms.saturating_sub(crate::request::step::now_ms());
                    let seconds = u64::try_from(wait.saturating_add(999) / 1000).unwrap_or(1).max(1);
                    return r.reject(Some(s), Rejection::OverRate { retry_after: seconds });
                }
                Err(refused) => return refuse(refused),
            }
        }

        if s.plan.heavy {
            // A workflow that loops may run long: on the blocking pool, so that the threads answering
            // other requests are never held up by it.
            let mut steps = queue.steps(id, served);
            let on_pool = served.clone();
            let budget = limits.budget;
            let runtime = tokio::runtime::Handle::current();
            let ran = tokio::task::spawn_blocking(move || {
                let mut frame = frame;
                runtime.block_on(execute(&on_pool, &mut frame, id, started, steps.as_mut(), budget))
            })
            .await;
            let Ok((response, record)) = ran else { return r.reject(Some(s), Rejection::Unfinished) };
            let mut record = record;
            record.request = received(queue, served, head, bytes, limits, &response);
            let handled = remembered(queue, s, id, dedupe, response, record);
            if let Some(c) = claimed {
                c.keep();
            }
            return handled;
        }
        // Effects are awaited here, on this request's task: waiting holds no thread.
        let mut steps = queue.steps(id, served);
        let (response, mut record) = execute(s, &mut frame, id, started, steps.as_mut(), limits.budget).await;
        record.request = received(queue, served, head, bytes, limits, &response);
        let handled = remembered(queue, s, id, dedupe, response, record);
        if let Some(c) = claimed {
            c.keep();
        }
        handled
    }
}

/// What a rejected request's answer and record need besides why.
#[derive(Clone, Copy)]
struct Rejecter<'a> {
    router: &'a Router,
    id: ExecId,
    started: Instant,
}

impl Rejecter<'_> {
    /// A rejected request's answer and record.
    fn reject(self, served: Option<&Served>, rejection: Rejection) -> Handled {
        let status = rejection.status();
        let mut response = json_response(status, &rejection.body(self.id), self.id);
        if let Some((name, value)) = rejection.headers() {
            response.headers_mut().insert(name, value);
        }
        let reason = rejection.reason();
        let now = Instant::now();
        let record = Record {
            workflow: served.map_or_else(|| Arc::from("-"), |s| s.name.clone()),
            id: self.id,
            mode: served.map_or(Mode::Sync, |s| s.wf.mode),
            outcome: Ending::Rejected,
            status: status.as_u16(),
            duration: now.saturating_duration_since(self.started),
            ended: now,
            reason: Some({
                // A caller may send a secret (of any workflow); it never reaches the log.
                let mut reason = reason.into_owned();
                self.router.redact(&mut reason);
                reason
            }),
            at: None,
            logs: Vec::new(),
            attempts: 0,
            request: None,
        };
        Handled { response, record: Some(record), accepted: None }
    }
}

/// Why a body could not be read whole.
enum BodyError {
    Timeout,
    TooLarge,
    /// Its bytes do not fit in `--max-body-memory` now.
    Memory,
    Failed,
}

/// Reads a body whole, at most `limits.max_body` bytes. A body already received (most webhook
/// bodies arrive with their head) is taken at once, without a timer; only one still arriving is
/// given the body timeout, on a boxed future: its state would otherwise make every request's
/// future larger.
async fn read_body<B>(
    body: &mut B,
    limits: &Limits,
    reserved: &mut crate::request::body_memory::Reserved<'_>,
) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body + Unpin,
{
    let mut got = Gathered::default();
    let now =
        std::future::poll_fn(|cx| std::task::Poll::Ready(got.gather(body, cx, limits.max_body, reserved)))
            .await;
    match now {
        std::task::Poll::Ready(r) => r?,
        std::task::Poll::Pending => {
            let rest = std::future::poll_fn(|cx| got.gather(body, cx, limits.max_body, reserved));
            match Box::pin(tokio::time::timeout(limits.body_timeout, rest)).await {
                Ok(r) => r?,
                Err(_) => return Err(BodyError::Timeout),
            }
        }
    }
    Ok(got.into_bytes())
}

/// Reads a body whole within `limits` (a callback's call): the status and error of the answer
/// when it cannot be.
pub(crate) async fn read_whole<B>(body: &mut B, limits: &Limits) -> Result<Bytes, (u16, &'static str)>
where
    B: hyper::body::Body + Unpin,
{
    let mut reserved = limits.body_memory.empty();
    let read = read_body(body, limits, &mut reserved).await;
    // The bytes are copied out by the caller at once; the reservation ends with this call.
    read.map_err(|e| match e {
        BodyError::Timeout => (408, "timed out reading the body"),
        BodyError::TooLarge => (413, "body too large"),
        BodyError::Memory => (503, "too many bodies being read"),
        BodyError::Failed => (400, "the body could not be read"),
    })
}

/// The data frames of a body read so far: the first kept as it came, more copied after it.
#[derive(Default)]
struct Gathered {
    first: Bytes,
    more: Vec<u8>,
}

impl Gathered {
    fn len(&self) -> usize {
        if self.more.is_empty() {
            self.first.len()
        } else {
            self.more.len()
        }
    }

    /// Takes the frames that are there; ready once the body has ended or failed.
    fn gather<B>(
        &mut self,
        body: &mut B,
        cx: &mut std::task::Context<'_>,
        max: usize,
        reserved: &mut crate::request::body_memory::Reserved<'_>,
    ) -> std::task::Poll<Result<(), BodyError>>
    where
        B: hyper::body::Body + Unpin,
    {
        use bytes::{Buf as _, BufMut as _};
        use std::task::Poll;
        loop {
            match std::pin::Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Err(BodyError::Failed)),
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(mut data) = frame.into_data() else { continue };
                    let n = data.remaining();
                    if self.len().saturating_add(n) > max {
                        return Poll::Ready(Err(BodyError::TooLarge));
                    }
                    if n > 0 && !reserved.grow(n) {
                        return Poll::Ready(Err(BodyError::Memory));
                    }
                    if self.first.is_empty() && self.more.is_empty() {
                        self.first = data.copy_to_bytes(n);
                    } else {
                        if self.more.is_empty() {
                            // Room for the whole body at once when its size is known (its
                            // `content-length`): growing by doubling would copy it again and again.
                            let expected = body.size_hint().exact().map_or(0, |e| e as usize);
                            let whole = self.first.len().saturating_add(n).max(expected.min(max));
                            self.more.reserve_exact(whole);
                            self.more.extend_from_slice(&self.first);
                        }
                        self.more.put(data);
                    }
                }
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        if self.more.is_empty() {
            self.first
        } else {
            Bytes::from(self.more)
        }
    }
}

/// A sync execution's claim on its `dedupe` key, let go if the execution never answers.
/// A place of the workflow's `concurrency` held by a sync execution, freed when it is done.
struct Placed<'a> {
    queue: &'a dyn Enqueue,
    served: &'a Served,
    id: ExecId,
}

impl Drop for Placed<'_> {
    fn drop(&mut self) {
        self.queue.free_place(self.served, self.id);
    }
}

struct Claimed<'a> {
    queue: &'a dyn Enqueue,
    served: &'a Served,
    id: ExecId,
    key: Option<DedupeKey>,
}

impl Claimed<'_> {
    /// The execution answered: the key stays claimed (with the answer kept by `remembered`).
    fn keep(mut self) {
        self.key = None;
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.queue.release(self.served, self.id, key);
        }
    }
}

/// A sync execution's request, for a store that keeps it with the record (`--keep-body`).
fn received(
    queue: &dyn Enqueue,
    served: &Arc<Served>,
    head: Head<'_>,
    body: &Bytes,
    limits: &Limits,
    answer: &Response<Full<Bytes>>,
) -> Option<Arc<crate::request::received::Received>> {
    if !queue.keeps_requests() {
        return None;
    }
    let kept = crate::request::received::Received::take(
        (head.method, head.uri, head.headers),
        body,
        limits.keep_body,
        &limits.waiting_bodies,
        served,
    );
    Some(Arc::new(if limits.keep_answers { kept.with_answer(answered(answer)) } else { kept }))
}

/// An answer's status, headers (but its execution id) and body, as kept.
pub(crate) fn answered(r: &Response<Full<Bytes>>) -> crate::request::received::Answered {
    let headers = r
        .headers()
        .iter()
        .filter(|(n, _)| **n != X_WF_EXECUTION)
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    // A `Full` body is one frame, there at once.
    let mut body = r.body().clone();
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let bytes = match hyper::body::Body::poll_frame(std::pin::Pin::new(&mut body), &mut cx) {
        std::task::Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    };
    crate::request::received::Answered { status: r.status().as_u16(), headers, body: bytes }
}

/// With a `dedupe` key, keeps the answer a sync execution gave so duplicates get it again;
/// an execution that failed or answered `5xx` lets go of its key instead, so that the sender's
/// redelivery runs.
fn remembered(
    queue: &dyn Enqueue,
    s: &Served,
    id: ExecId,
    dedupe: Option<DedupeKey>,
    response: Response<Full<Bytes>>,
    record: Record,
) -> Handled {
    if let Some(key) = dedupe {
        if record.outcome == Ending::Failed || response.status().is_server_error() {
            queue.release(s, id, key);
            return Handled { response, record: Some(record), accepted: None };
        }
        let (parts, body) = response.into_parts();
        // A `Full` body is one frame, there at once.
        let bytes =
            body.collect().now_or_never().and_then(Result::ok).map(|c| c.to_bytes()).unwrap_or_default();
        let headers: Vec<Value> = parts
            .headers
            .iter()
            .filter(|(name, _)| *name != X_WF_EXECUTION)
            .map(|(name, value)| json!([name.as_str(), String::from_utf8_lossy(value.as_bytes())]))
            .collect();
        let answer = json!({
            "status": parts.status.as_u16(),
            "headers": headers,
            "body": String::from_utf8_lossy(&bytes),
        });
        // Kept for the duplicates with the workflow's secrets redacted, like all the store keeps.
        queue.answered(s, id, key, s.redact_value(answer));
        let response = Response::from_parts(parts, Full::new(bytes));
        return Handled { response, record: Some(record), accepted: None };
    }
    Handled { response, record: Some(record), accepted: None }
}

/// The answer to a duplicate delivery: the first execution's, with `x-wf-duplicate-of`.
fn duplicate(
    s: &Served,
    mut response: Response<Full<Bytes>>,
    of: &str,
    started: Instant,
    id: ExecId,
) -> Handled {
    if let Ok(v) = HeaderValue::from_str(of) {
        response.headers_mut().insert(X_WF_DUPLICATE_OF, v);
    }
    let now = Instant::now();
    let record = Record {
        workflow: s.name.clone(),
        id,
        mode: s.wf.mode,
        outcome: Ending::Duplicate,
        status: response.status().as_u16(),
        duration: now.saturating_duration_since(started),
        ended: now,
        reason: Some(format!("a duplicate of {of}")),
        at: None,
        logs: Vec::new(),
        attempts: 0,
        request: None,
    };
    Handled { response, record: Some(record), accepted: None }
}

/// A kept sync answer (`{status, headers, body}`) as a response again.
fn stored_answer(answer: &Value, id: ExecId) -> Response<Full<Bytes>> {
    let status = answer["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(200);
    let body = answer["body"].as_str().unwrap_or("").to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Some(headers) = answer["headers"].as_array() {
        for h in headers {
            let (Some(name), Some(value)) = (h[0].as_str(), h[1].as_str()) else { continue };
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                response.headers_mut().append(n, v);
            }
        }
    }
    response.headers_mut().insert(X_WF_EXECUTION, id.header());
    response
}

/// The `access-control-allow-origin` value for this caller, when the workflow has `cors` and the
/// caller's `Origin` is allowed.
fn cors_origin(wf: &crate::lang::ir::Workflow, headers: &http::HeaderMap) -> Option<HeaderValue> {
    let origins = wf.cors.as_ref()?;
    let origin = headers.get(ORIGIN)?;
    if origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let text = origin.to_str().ok()?;
    origins.iter().any(|o| o == text).then(|| origin.clone())
}

/// Answers a CORS preflight: `204` with the methods served and the headers asked for.
fn preflight<B>(s: &Served, req: &Request<B>, id: ExecId, started: Instant) -> Handled {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, s.allow_methods.clone());
    if let Some(asked) = req.headers().get(ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    h.insert(X_WF_EXECUTION, id.header());
    let now = Instant::now();
    let record = Record {
        workflow: s.name.clone(),
        id,
        mode: s.wf.mode,
        outcome: Ending::Preflight,
        status: 204,
        duration: now.saturating_duration_since(started),
        ended: now,
        reason: None,
        at: None,
        logs: Vec::new(),
        attempts: 0,
        request: None,
    };
    Handled { response, record: Some(record), accepted: None }
}

/// Checks a signature over the raw body. `frame` is used for `auth hmac`'s `signed`.
fn verify_signature(
    s: &Served,
    verifier: &Verifier,
    parts: &Head,
    bytes: &Bytes,
    kind: form::Kind,
    behind_proxy: bool,
    frame: &mut [Value],
) -> Result<(), signature::Refusal> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let sig = match &s.wf.auth {
        Some(crate::lang::ir::Auth { kind: crate::lang::ir::AuthKind::Signature(sig), .. }) => sig,
        _ => return Ok(()),
    };
    // `auth hmac` with `signed`: the content is an expression over `raw_body` and header values.
    let signed_content;
    let mut body: &[u8] = bytes;
    if let Some(h) = &sig.hmac {
        if let Some(expr) = &h.signed {
            for x in &s.wf.extracts {
                if let Getter::Header(Some(name)) = &x.getter {
                    if let (Some(slot), Some(v)) = (frame.get_mut(x.slot as usize), parts.headers.get(name)) {
                        *slot = Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned());
                    }
                }
            }
            if let Some(slot) = frame.get_mut(h.raw_body_slot as usize) {
                *slot = Value::String(String::from_utf8_lossy(bytes).into_owned());
            }
            signed_content = match eval::eval(expr, frame) {
                Ok(v) => crate::request::value::render_string(&v),
                Err(_) => return Err(signature::INVALID_SIGNATURE),
            };
            frame.iter_mut().for_each(|v| *v = Value::Null);
            body = signed_content.as_bytes();
        }
    }
    let (url, params) = if verifier.scheme == Scheme::Twilio {
        let params = if kind == form::Kind::Form { form::pairs(bytes) } else { Vec::new() };
        (twilio_url(sig.url.as_deref(), parts, behind_proxy), params)
    } else {
        (String::new(), Vec::new())
    };
    verifier.verify(&Signed { headers: parts.headers, body, url: &url, params: &params, now })
}

/// The URL Twilio signed: the `url` setting, else `Host` and the request target, with the scheme
/// from `X-Forwarded-Proto` behind a trusted proxy and `http` otherwise.
fn twilio_url(fixed: Option<&str>, parts: &Head, behind_proxy: bool) -> String {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if let Some(base) = fixed {
        return match parts.uri.query() {
            Some(q) if !base.contains('?') => format!("{base}?{q}"),
            _ => base.to_string(),
        };
    }
    let host = parts.headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let forwarded = parts.headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok());
    let scheme = match forwarded {
        Some(p) if behind_proxy && (p == "https" || p == "http") => p,
        _ => "http",
    };
    format!("{scheme}://{host}{target}")
}

/// Checks credentials sent in headers (Basic, bearer, a header), in constant time.
fn permitted(access: &Access, headers: &http::HeaderMap) -> bool {
    use subtle::ConstantTimeEq;
    // Credentials sent twice are ambiguous (which one would a proxy have checked?): refused.
    let twice = |name: &HeaderName| headers.get_all(name).iter().nth(1).is_some();
    match access {
        Access::Anyone => true,
        Access::Basic(_) | Access::Bearer(_) if twice(&AUTHORIZATION) => false,
        Access::Header(name, _) if twice(name) => false,
        Access::Basic(pairs) => {
            let header = headers.get(AUTHORIZATION);
            let mut ok = false;
            for (user, password) in pairs {
                ok |= authorized(header, user, password);
            }
            ok
        }
        Access::Bearer(tokens) => {
            let Some(value) = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes) else { return false };
            let Some(split) = value.iter().position(|b| *b == b' ') else { return false };
            let (scheme, rest) = value.split_at(split);
            if !scheme.eq_ignore_ascii_case(b"bearer") {
                return false;
            }
            let given = rest.trim_ascii();
            let mut ok = false;
            for t in tokens {
                ok |= bool::from(given.ct_eq(t));
            }
            ok
        }
        Access::Header(name, secrets) => {
            let Some(given) = headers.get(name).map(HeaderValue::as_bytes) else { return false };
            let mut ok = false;
            for t in secrets {
                ok |= bool::from(given.ct_eq(t));
            }
            ok
        }
    }
}

/// Runs a workflow over a filled frame and builds its answer and record.
pub async fn execute(
    s: &Served,
    frame: &mut [Value],
    id: ExecId,
    started: Instant,
    steps: &mut dyn Steps,
    budget: eval::Budget,
) -> (Response<Full<Bytes>>, Record) {
    let mut logs = Vec::new();
    let outcome = eval::run(&s.wf, frame, &mut logs, steps, budget).await;
    let (response, mut record) = ended(s, outcome, logs, id, started);
    record.attempts = steps.attempts();
    (response, record)
}

/// [`execute`] for a workflow without effects: at once, without a future.
pub fn execute_now(
    s: &Served,
    frame: &mut [Value],
    id: ExecId,
    started: Instant,
    budget: eval::Budget,
) -> (Response<Full<Bytes>>, Record) {
    let mut logs = Vec::new();
    let outcome = eval::run_now(&s.wf, frame, &mut logs, budget);
    ended(s, outcome, logs, id, started)
}

/// The answer and record of an execution that ended with `outcome`.
fn ended(
    s: &Served,
    outcome: Outcome,
    mut logs: Vec<String>,
    id: ExecId,
    started: Instant,
) -> (Response<Full<Bytes>>, Record) {
    logs.iter_mut().for_each(|line| s.redact(line));
    let (response, outcome, reason, at) = match outcome {
        Outcome::Responded(a) => (answer_response(a, id), Ending::Responded, None, None),
        Outcome::Completed => (text_response(StatusCode::OK, "ok", id), Ending::Completed, None, None),
        Outcome::Failed(mut reason, span) => {
            s.redact(&mut reason);
            let body = json!({"error": "workflow failed", "execution": id.to_string()});
            let at = s.wf.file.location(span.start);
            (
                json_response(StatusCode::INTERNAL_SERVER_ERROR, &body, id),
                Ending::Failed,
                Some(reason),
                Some(at),
            )
        }
        Outcome::Superseded => (
            text_response(StatusCode::OK, "ok", id),
            Ending::Superseded,
            Some(crate::request::step::Stop::Superseded.describe().to_string()),
            None,
        ),
        // Only a kept run's steps stop it (see `run_job`); an execution that cannot be kept
        // and is stopped anyway has not done what it was asked.
        Outcome::Stopped(stop) => {
            let body = json!({"error": "workflow failed", "execution": id.to_string()});
            let reason = Some(stop.describe().to_string());
            (json_response(StatusCode::INTERNAL_SERVER_ERROR, &body, id), Ending::Failed, reason, None)
        }
    };
    let now = Instant::now();
    let record = Record {
        workflow: s.name.clone(),
        id,
        mode: s.wf.mode,
        outcome,
        status: response.status().as_u16(),
        duration: now.saturating_duration_since(started),
        ended: now,
        reason,
        at,
        logs,
        attempts: 0,
        request: None,
    };
    (response, record)
}

/// How a kept run's turn on a worker went.
#[derive(Debug)]
pub enum Ran {
    /// It ended, as its record says.
    Ended(Record),
    /// A step stopped it without ending it: it is taken again later (parked), or by another
    /// process (fenced).
    Stopped(crate::request::step::Stop),
}

/// Runs an accepted async execution to its end, or until a step stops it.
pub async fn run_job(mut job: Job) -> Ran {
    let mut logs = Vec::new();
    let outcome = eval::run(&job.served.wf, &mut job.frame, &mut logs, job.steps.as_mut(), job.budget).await;
    match outcome {
        Outcome::Stopped(stop) => Ran::Stopped(stop),
        outcome => {
            let (_, mut record) = ended(&job.served, outcome, logs, job.id, job.accepted);
            record.attempts = job.steps.attempts();
            Ran::Ended(record)
        }
    }
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
        let is_json_type = |v: &str| form::Kind::of(Some(v)) == form::Kind::Json;
        assert!(is_json_type("application/json; charset=utf-8"));
        assert!(is_json_type("application/vnd.github+json"));
        assert!(!is_json_type("text/plain"));
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
        assert_eq!(
            handled.response.headers().get(http::header::RETRY_AFTER).map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        assert_eq!(handled.record.map(|r| r.outcome), Some(Ending::Rejected));
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

    /// A body of frames, each `delay` after the last (none: all there at once).
    fn frames(
        parts: &[&'static [u8]],
        delay: Duration,
    ) -> http_body_util::StreamBody<
        impl futures_util::Stream<Item = Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> + Unpin,
    > {
        let parts: Vec<&'static [u8]> = parts.to_vec();
        let stream = futures_util::stream::unfold(parts.into_iter(), move |mut rest| async move {
            let part = rest.next()?;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Some((Ok(hyper::body::Frame::data(Bytes::from_static(part))), rest))
        });
        http_body_util::StreamBody::new(Box::pin(stream))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_from_its_frames_within_the_limit() {
        let mut limits = Limits::default();
        let memory = crate::request::body_memory::BodyMemory::new(1 << 20);
        let read = |parts: &'static [&'static [u8]], delay: Duration, limits: Limits| {
            let memory = &memory;
            async move {
                let mut reserved = memory.empty();
                read_body(&mut frames(parts, delay), &limits, &mut reserved).await
            }
        };
        let whole = read(&[b"ab", b"", b"cd", b"ef"], Duration::ZERO, limits.clone()).await;
        assert_eq!(whole.ok(), Some(Bytes::from_static(b"abcdef")));
        let one = read(&[b"abc"], Duration::ZERO, limits.clone()).await;
        assert_eq!(one.ok(), Some(Bytes::from_static(b"abc")));
        let arriving = read(&[b"ab", b"cd"], Duration::from_millis(5), limits.clone()).await;
        assert_eq!(arriving.ok(), Some(Bytes::from_static(b"abcd")));
        limits.max_body = 5;
        let over = read(&[b"abc", b"def"], Duration::ZERO, limits.clone()).await;
        assert!(matches!(over, Err(BodyError::TooLarge)));
        let exact = read(&[b"abc", b"de"], Duration::ZERO, limits.clone()).await;
        assert_eq!(exact.ok(), Some(Bytes::from_static(b"abcde")));
        limits.body_timeout = Duration::from_millis(20);
        let slow = read(&[b"ab", b"cd"], Duration::from_secs(10), limits.clone()).await;
        assert!(matches!(slow, Err(BodyError::Timeout)));
        assert_eq!(memory.used(), 0, "every reservation given back");
        // Bytes are reserved as they arrive: past the budget, the read stops.
        let small = crate::request::body_memory::BodyMemory::new(3);
        let mut reserved = small.empty();
        let over =
            read_body(&mut frames(&[b"ab", b"cd"], Duration::ZERO), &Limits::default(), &mut reserved).await;
        assert!(matches!(over, Err(BodyError::Memory)));
    }

    /// hyper moves a request's future into place for every request: its size is paid in copies.
    #[test]
    fn the_answer_future_stays_small() {
        let mut req = Request::post("/r").body(Full::new(Bytes::new())).expect("req");
        let (router, limits, mut cors) = (Router::default(), Limits::default(), None);
        let f = answer(&router, &limits, &Full503, ExecId(1), &mut req, &mut cors);
        let size = std::mem::size_of_val(&f);
        assert!(size <= 440, "the answer future grew to {size} bytes");
    }
}
