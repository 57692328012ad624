//! The step API. Every effect of an execution (`http`, `run`) and every `now()` and `uuid()` is a
//! numbered step that passes through [`Steps::perform`], in the order the execution reaches it.
//! That is the one place a store journals an execution: it records each step's result, and a
//! resumed execution is given the recorded results of finished steps instead of running them
//! again. `wf serve` performs steps for real, `wf test` answers them from the test's mocks.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a step asks for.
#[derive(Debug)]
pub enum Step {
    Http(HttpRequest),
    Run(RunRequest),
    /// `now()`: the current UTC time, RFC 3339 with milliseconds.
    Now,
    /// `uuid()`: a random v4 UUID.
    Uuid,
    /// `sleep`: the run waits this long (parked, holding nothing, when it is long).
    Sleep(Duration),
    /// `callback`: a single-use URL for the run, called within this long.
    Callback(Duration),
    /// `wait`: the run waits for the call to the callback whose token this is (hex).
    Wait(String),
    /// The trigger's `debounce`: the run starts once no newer request with its key came within
    /// `wait` (at the latest `max` after the first of the series).
    Debounce {
        key: String,
        wait: Duration,
        max: Option<Duration>,
    },
    /// The trigger's `order by`: the run starts once every run accepted before it with its key
    /// has ended.
    Order(String),
    /// The trigger's `rate`: the run starts once fewer than `n` runs with its key started in the
    /// last `window_ms` milliseconds.
    Rate {
        key: String,
        n: u32,
        window_ms: i64,
    },
}

/// An `http` call, its expressions evaluated.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    /// In order; `content-type` included when the body form set it.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retry: u32,
    /// Bytes of values the execution may still build (`--max-memory` less what it built): an
    /// answer whose parsed form would take more fails the call before it is parsed.
    pub room: u64,
    /// `sign SCHEME SECRET`: the scheme and its key (a Standard Webhooks secret decoded).
    pub sign: Option<(crate::lang::ir::Scheme, Vec<u8>)>,
}

/// A `run`, its expressions evaluated.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub program: String,
    pub args: Vec<String>,
    /// The `env` lines (the program's environment also holds `PATH`, `WF_EXECUTION` and
    /// `WF_WORKFLOW`).
    pub env: Vec<(String, String)>,
    pub stdin: Option<Bytes>,
    pub dir: Option<String>,
    pub timeout: Duration,
}

/// Why a step gave no result. A workflow's `fail` reason, a caller's text or a service's answer
/// is only ever [`StepError::Failed`]: no text can be taken for a [`Stop`].
#[derive(Clone, Debug, PartialEq)]
pub enum StepError {
    /// The step failed; the execution fails with this reason.
    Failed(String),
    /// The run stops here without ending; it is taken again later.
    Stopped(Stop),
}

/// Why a run stopped without ending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// An `http` call's next attempt is due later than a worker should wait for it: the run is
    /// kept with its due time (not a failure).
    Parked,
    /// Another process sharing the store took the run over (this one's lease had expired): its
    /// new owner runs it, and nothing more of it is recorded here.
    Fenced,
    /// A newer request with its `debounce` key came: it ends, superseded, without running.
    Superseded,
}

impl Stop {
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Parked => "parked until it is due",
            Stop::Superseded => "superseded by a newer request with its debounce key",
            Stop::Fenced => {
                "this instance no longer holds the run (its lease expired; another instance runs it)"
            }
        }
    }
}

impl From<String> for StepError {
    fn from(reason: String) -> Self {
        StepError::Failed(reason)
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Failed(reason) => f.write_str(reason),
            StepError::Stopped(stop) => f.write_str(stop.describe()),
        }
    }
}

/// A step that parked its run: step `n`'s next attempt is due at `due_ms` (milliseconds since
/// the epoch), after `attempts` attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Parked {
    pub n: u32,
    pub due_ms: i64,
    pub attempts: u32,
}

/// Where the step that parks a run leaves its [`Parked`], for the journal to keep.
pub(crate) type ParkedSlot = std::sync::Arc<std::sync::Mutex<Option<Parked>>>;

/// A step's result to come: effects wait for another service or a program, without holding a
/// thread.
pub(crate) type Pending<'a> = Pin<Box<dyn Future<Output = Result<Value, StepError>> + Send + 'a>>;

/// Performs an execution's steps.
pub trait Steps: Send {
    /// Performs step `n` (numbered from 1) and gives its result, or why it has none: a failure
    /// fails the execution, a stop stops it without ending it. `now()` and `uuid()` are answered at once (the interpreter evaluates
    /// expressions without waiting); effects are awaited.
    fn perform(&mut self, n: u32, step: Step) -> Pending<'_>;

    /// The attempts the effects performed so far made (an `http` call's retries each count; a
    /// step answered from a journal does not).
    fn attempts(&self) -> u32 {
        0
    }

    /// Steps for one iteration of a `parallel` loop, performed beside these (each step with its
    /// own number). `None` where steps are taken one at a time (`wf test`, replay: their
    /// iterations run one after another, in order).
    fn fork(&self) -> Option<Box<dyn Steps>> {
        None
    }

    /// Takes back what a fork did (the attempts its effects made) once its iteration ended.
    fn join(&mut self, _fork: &dyn Steps) {}

    /// The run's turn on its `order by` line was handed to it in this process by run `before`,
    /// which ended here: its end may not be in the store yet, and the run may go once `before`
    /// is all that is ahead of it on the line.
    fn turn_after(&mut self, _before: &str) {}
}

/// The result of `now()` or `uuid()` read at once; any other step is refused.
pub(crate) fn local(step: &Step) -> Result<Value, StepError> {
    match step {
        Step::Now => Ok(now()),
        Step::Uuid => Ok(uuid()),
        Step::Http(h) => Err(StepError::Failed(format!("`http {} {}` cannot run here", h.method, h.url))),
        Step::Run(r) => Err(StepError::Failed(format!("`run {}` cannot run here", r.program))),
        Step::Sleep(_)
        | Step::Callback(_)
        | Step::Wait(_)
        | Step::Debounce { .. }
        | Step::Order(_)
        | Step::Rate { .. } => Err(StepError::Failed(
            "an execution that cannot wait cannot `sleep`, make a `callback` or `wait`".into(),
        )),
    }
}

/// Steps where there are no effects (constants, a test's `expect`, benchmarks): the clock and the
/// random source are read; `http` and `run` are refused.
pub(crate) struct Clock;

impl Steps for Clock {
    fn perform(&mut self, _n: u32, step: Step) -> Pending<'_> {
        let result = local(&step);
        Box::pin(std::future::ready(result))
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The current UTC time as `now()` gives it.
pub(crate) fn now() -> Value {
    Value::String(humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string())
}

/// A time (milliseconds since the epoch) as `now()` gives it.
pub(crate) fn time(ms: i64) -> Value {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    Value::String(humantime::format_rfc3339_millis(at).to_string())
}

/// A new random v4 UUID as `uuid()` gives it.
pub(crate) fn uuid() -> Value {
    Value::String(uuid::Uuid::new_v4().to_string())
}

/// The result of an `http` call: `{ status, headers, json, text }`; `json` is `null` unless the
/// answer's text parses as JSON. Header names are lower case; repeated headers are joined with
/// `, `. An answer whose result would take more than `room` bytes (its text, and its values
/// once parsed: see [`parsed_cost`]) is an error, found before anything is parsed or copied.
pub(crate) fn http_result(
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
    room: u64,
) -> Result<Value, String> {
    let cost = parsed_cost(body);
    if cost > room {
        return Err(format!(
            "its answer of {} KiB would take about {} MiB once parsed, more than --max-memory leaves this execution ({} MiB)",
            body.len() >> 10,
            cost >> 20,
            room >> 20
        ));
    }
    let mut h = serde_json::Map::new();
    for name in headers.keys() {
        let joined: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        h.insert(name.as_str().to_string(), Value::String(joined.join(", ")));
    }
    let text = String::from_utf8_lossy(body).into_owned();
    let json = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
    let mut out = serde_json::Map::with_capacity(4);
    out.insert("status".into(), Value::from(status));
    out.insert("headers".into(), Value::Object(h));
    out.insert("json".into(), json);
    out.insert("text".into(), Value::String(text));
    Ok(Value::Object(out))
}

/// A bound on the bytes an answer's result takes: its text, plus a value's size (see
/// `value::size`) for every value its JSON could hold (one per `[`, `{`, `,` and `:`, and one
/// more), counted in one pass over the bytes.
pub(crate) fn parsed_cost(body: &[u8]) -> u64 {
    let values = body.iter().filter(|b| matches!(b, b'[' | b'{' | b',' | b':')).count() as u64 + 1;
    (body.len() as u64).saturating_mul(2).saturating_add(values.saturating_mul(48))
}

/// The result of a `run`: `{ code, stdout, stderr }`.
pub(crate) fn run_result(code: i64, stdout: &[u8], stderr: &[u8]) -> Value {
    let mut out = serde_json::Map::with_capacity(3);
    out.insert("code".into(), Value::from(code));
    out.insert("stdout".into(), Value::String(String::from_utf8_lossy(stdout).into_owned()));
    out.insert("stderr".into(), Value::String(String::from_utf8_lossy(stderr).into_owned()));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_refuses_effects_and_reads_the_time() {
        assert!(local(&Step::Now).is_ok_and(|v| v.as_str().is_some_and(|s| s.ends_with('Z'))));
        let r = RunRequest {
            program: "true".into(),
            args: vec![],
            env: vec![],
            stdin: None,
            dir: None,
            timeout: Duration::from_secs(1),
        };
        assert!(local(&Step::Run(r)).is_err());
    }

    #[test]
    fn results_have_their_fields() {
        let mut h = http::HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        let r = http_result(201, &h, br#"{"ok":true}"#, u64::MAX).expect("within room");
        assert_eq!(
            r,
            serde_json::json!({"status": 201, "headers": {"x-a": "1, 2"}, "json": {"ok": true}, "text": "{\"ok\":true}"})
        );
        assert_eq!(
            http_result(200, &http::HeaderMap::new(), b"plain", u64::MAX).expect("room")["json"],
            Value::Null
        );
        // 10 MiB of zeros would take hundreds of MiB parsed: refused before parsing.
        let zeros = [b"[".to_vec(), b"0,".repeat(5 << 20), b"0]".to_vec()].concat();
        let why = http_result(200, &http::HeaderMap::new(), &zeros, 64 << 20).expect_err("over the room");
        assert!(why.contains("--max-memory"), "{why}");
        assert!(parsed_cost(&zeros) > 200 << 20);
        assert_eq!(
            run_result(3, b"out", b"err"),
            serde_json::json!({"code": 3, "stdout": "out", "stderr": "err"})
        );
    }
}
