//! `wf test`'s effects: each `http` and `run` is answered by the test's first matching `mock`
//! and recorded for `calls`; a call no mock matches fails the execution and the test, naming the
//! call. Tests never reach the network or start a program.

use crate::lang::ir::MockCase;
use crate::request::eval;
use crate::request::step::{self, Pending, Step, Steps};
use ::http::header::{HeaderValue, CONTENT_TYPE};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// A mock with its answer computed.
enum Mock {
    Http {
        method: ::http::Method,
        url: String,
        answer: Result<Value, String>,
    },
    Run {
        program: String,
        answer: Value,
    },
    /// `mock callback { json EXPR | form EXPR | text EXPR }` (the call) or `mock callback timeout`
    /// (`null`): the answer of the next `wait`.
    Callback(Value),
}

/// What the effects of one test did: the calls in order, and those no mock answered.
#[derive(Default)]
pub(crate) struct Record {
    pub calls: Vec<Value>,
    pub unmatched: Vec<String>,
    /// How long the test's `sleep`s waited, together: `now()` is that much later.
    pub slept_ms: i64,
    /// How many `wait`s were answered (each by the next `mock callback`).
    pub waited: usize,
}

fn ordinal(n: usize) -> String {
    match n {
        1 => "first".into(),
        2 => "second".into(),
        3 => "third".into(),
        n => format!("{n}th"),
    }
}

/// The mocks of one test, shared by every execution the test starts.
#[derive(Clone)]
pub(crate) struct Mocks {
    mocks: Arc<[Mock]>,
    pub record: Arc<Mutex<Record>>,
}

impl Mocks {
    pub(crate) fn of(cases: &[MockCase]) -> Result<Mocks, String> {
        let mut mocks = Vec::with_capacity(cases.len());
        for m in cases {
            mocks.push(match m {
                MockCase::Http { method, url, answer } => {
                    let answer = match answer {
                        Ok(r) => {
                            let a = eval::constant_answer(r)?;
                            let mut headers = ::http::HeaderMap::new();
                            if let Some(ct) = a.content_type {
                                headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
                            }
                            for (name, value) in a.headers {
                                headers.append(name, value);
                            }
                            // A mock's answer is the test's own constant: counted as it is used.
                            Ok(step::http_result(a.status, &headers, &a.body, u64::MAX)?)
                        }
                        Err(reason) => Err(crate::request::value::render_string(&eval::eval(reason, &[])?)),
                    };
                    Mock::Http { method: method.clone(), url: url.clone(), answer }
                }
                MockCase::Run { program, code, stdout, stderr } => {
                    let text = |e| eval::eval(e, &[]).map(|v| crate::request::value::render_string(&v));
                    let code = match eval::eval(code, &[])? {
                        Value::Number(n) => n.as_i64().ok_or("`code` is a whole number")?,
                        _ => return Err("`code` is a whole number".to_string()),
                    };
                    let answer = step::run_result(code, text(stdout)?.as_bytes(), text(stderr)?.as_bytes());
                    Mock::Run { program: program.clone(), answer }
                }
                MockCase::Callback(None) => Mock::Callback(Value::Null),
                MockCase::Callback(Some((kind, e))) => {
                    use crate::lang::ast::CallbackBody;
                    let v = eval::eval(e, &[])?;
                    let (content_type, text, json, form) = match kind {
                        CallbackBody::Json => ("application/json", v.to_string(), v, Value::Null),
                        CallbackBody::Text => (
                            "text/plain; charset=utf-8",
                            crate::request::value::render_string(&v),
                            Value::Null,
                            Value::Null,
                        ),
                        CallbackBody::Form => {
                            let text = crate::request::form::encode(&v);
                            let form =
                                crate::request::form::urlencoded(text.as_bytes()).unwrap_or(Value::Null);
                            ("application/x-www-form-urlencoded", text, Value::Null, form)
                        }
                    };
                    Mock::Callback(serde_json::json!({
                        "method": "POST",
                        "headers": { "content-type": content_type },
                        "query": {},
                        "json": json,
                        "text": text,
                        "form": form,
                    }))
                }
            });
        }
        Ok(Mocks { mocks: mocks.into(), record: Arc::default() })
    }

    fn note(&self, call: Value, unmatched: Option<String>) {
        if let Ok(mut r) = self.record.lock() {
            r.calls.push(call);
            r.unmatched.extend(unmatched);
        }
    }
}

fn matches(pattern: &str, url: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => url.starts_with(prefix),
        None => pattern == url,
    }
}

impl Steps for Mocks {
    fn perform(&mut self, n: u32, s: Step) -> Pending<'_> {
        Box::pin(std::future::ready(self.answer(n, s).map_err(step::StepError::Failed)))
    }
}

impl Mocks {
    fn answer(&mut self, n: u32, s: Step) -> Result<Value, String> {
        match s {
            // A callback's URL is the test's own; a `wait` is answered by the next `mock callback`.
            Step::Callback(_) => {
                let token = format!("{n:032x}");
                let url = format!("http://localhost{}{token}", crate::exec::callbacks::PATH);
                self.note(serde_json::json!({"kind": "callback", "url": url}), None);
                Ok(serde_json::json!({"url": url, "id": crate::exec::callbacks::shown_id(&token)}))
            }
            Step::Wait(token) => {
                let next = self.record.lock().map_or(0, |r| r.waited);
                let answer = self
                    .mocks
                    .iter()
                    .filter_map(|m| match m {
                        Mock::Callback(reply) => Some(reply.clone()),
                        _ => None,
                    })
                    .nth(next);
                if let Ok(mut r) = self.record.lock() {
                    r.waited += 1;
                }
                match answer {
                    Some(reply) => Ok(reply),
                    None => {
                        let what =
                            format!("`wait` for callback {}", crate::exec::callbacks::shown_id(&token));
                        self.note(serde_json::json!({"kind": "wait", "callback": crate::exec::callbacks::shown_id(&token)}), Some(what.clone()));
                        Err(format!("no `mock callback` answers the {} {what}", ordinal(next + 1)))
                    }
                }
            }
            // A debounced run starts at once in a test (nothing newer can come).
            Step::Debounce { .. } => Ok(Value::Null),
            // An ordered run's turn is at once in a test (one request runs at a time), and a
            // test's runs are not held back by a `rate`.
            Step::Order(_) | Step::Rate { .. } => Ok(Value::Null),
            // A `sleep` is over at once; the clock moves on by it.
            Step::Sleep(time) => {
                let seconds = time.as_secs_f64();
                let mut call = Map::new();
                call.insert("kind".into(), Value::from("sleep"));
                call.insert("seconds".into(), Value::from(seconds));
                if let Ok(mut r) = self.record.lock() {
                    r.slept_ms =
                        r.slept_ms.saturating_add(i64::try_from(time.as_millis()).unwrap_or(i64::MAX));
                }
                self.note(Value::Object(call), None);
                Ok(Value::Null)
            }
            Step::Now => {
                let slept = self.record.lock().map_or(0, |r| r.slept_ms);
                Ok(step::time(step::now_ms().saturating_add(slept)))
            }
            Step::Uuid => Ok(step::uuid()),
            Step::Http(req) => {
                let mut headers = Map::new();
                for (name, value) in &req.headers {
                    headers.insert(
                        name.as_str().to_string(),
                        Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
                    );
                }
                // `sign`: the headers `wf serve` would add (the test's execution is `test`).
                if let Some((scheme, key)) = &req.sign {
                    let id = crate::store::retry::idempotency_key("test", n, 0);
                    let now = u64::try_from(step::now_ms() / 1000).unwrap_or(0);
                    for (name, value) in
                        crate::request::signature::sender_headers(*scheme, key, &id, &req.body, now)
                    {
                        headers.insert(name.to_string(), Value::String(value));
                    }
                }
                let text = String::from_utf8_lossy(&req.body).into_owned();
                let json = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
                let mut call = Map::new();
                call.insert("kind".into(), Value::from("http"));
                call.insert("method".into(), Value::from(req.method.as_str()));
                call.insert("url".into(), Value::from(req.url.clone()));
                call.insert("headers".into(), Value::Object(headers));
                call.insert("json".into(), json);
                call.insert("text".into(), Value::String(text));
                call.insert("attempt".into(), Value::from(1));
                let found = self.mocks.iter().find_map(|m| match m {
                    Mock::Http { method, url, answer } if *method == req.method && matches(url, &req.url) => {
                        Some(answer.clone())
                    }
                    _ => None,
                });
                let what = format!("`http {} {}`", req.method, req.url);
                match found {
                    Some(answer) => {
                        // The call is retried as `wf serve` would (`408`, `429`, `5xx` or no
                        // answer, up to `retry` more times, without the waits): every attempt
                        // is in `calls`, with its number.
                        let again = match &answer {
                            Ok(v) => v["status"].as_u64().is_some_and(|s| s == 408 || s == 429 || s >= 500),
                            Err(_) => true,
                        };
                        let attempts = if again { req.retry.saturating_add(1) } else { 1 };
                        for attempt in 1..=attempts {
                            let mut this = call.clone();
                            this.insert("attempt".into(), Value::from(attempt));
                            self.note(Value::Object(this), None);
                        }
                        answer.map_err(|why| format!("{what} failed after {attempts} attempt(s): {why}"))
                    }
                    None => {
                        self.note(Value::Object(call), Some(what.clone()));
                        Err(format!("no mock answers {what}"))
                    }
                }
            }
            Step::Run(req) => {
                let mut call = Map::new();
                call.insert("kind".into(), Value::from("run"));
                call.insert("program".into(), Value::from(req.program.clone()));
                call.insert("args".into(), Value::from(req.args.clone()));
                let stdin =
                    req.stdin.as_ref().map(|b| Value::String(String::from_utf8_lossy(b).into_owned()));
                call.insert("stdin".into(), stdin.unwrap_or(Value::Null));
                let found = self.mocks.iter().find_map(|m| match m {
                    Mock::Run { program, answer } if *program == req.program => Some(answer.clone()),
                    _ => None,
                });
                let what = format!("`run {}`", req.program);
                match found {
                    Some(answer) => {
                        self.note(Value::Object(call), None);
                        Ok(answer)
                    }
                    None => {
                        self.note(Value::Object(call), Some(what.clone()));
                        Err(format!("no mock answers {what}"))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_is_over_at_once_and_moves_now_on() {
        use futures_util::FutureExt as _;
        let mut mocks = Mocks::of(&[]).expect("mocks");
        let before = step::now_ms();
        let two_hours = std::time::Duration::from_secs(7200);
        assert_eq!(mocks.perform(1, Step::Sleep(two_hours)).now_or_never(), Some(Ok(Value::Null)));
        let now = mocks.perform(2, Step::Now).now_or_never().and_then(Result::ok).expect("now");
        let at = humantime::parse_rfc3339(now.as_str().expect("text")).expect("a time");
        let ms = at.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as i64;
        assert!(ms >= before + 7_200_000 && ms < step::now_ms() + 7_200_000 + 1_000, "{now}");
        let calls = mocks.record.lock().expect("record").calls.clone();
        assert_eq!(calls, [serde_json::json!({"kind": "sleep", "seconds": 7200.0})]);
    }

    #[test]
    fn urls_match_exactly_or_by_prefix() {
        assert!(matches("https://a.example/x", "https://a.example/x"));
        assert!(!matches("https://a.example/x", "https://a.example/xy"));
        assert!(matches("https://a.example/*", "https://a.example/orders/1"));
        assert!(!matches("https://a.example/*", "https://b.example/"));
    }
}
