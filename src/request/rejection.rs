//! Every way a request is turned away, as data: one list, and for each its status, the JSON body
//! the caller gets (`{"error": ...}` and what helps), the headers that go with it, and the reason
//! its log line gives. `handle` names the rejection; this says what it means.

use crate::request::extract::ExtractError;
use crate::request::id::ExecId;
use http::header::{HeaderName, HeaderValue, ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use http::StatusCode;
use serde_json::{json, Value};
use std::borrow::Cow;

/// Why a request was turned away, in the order the checks run (404, 405, 403, 401, then the
/// body's rules, then what the execution needs).
#[derive(Debug)]
pub(crate) enum Rejection {
    /// No workflow serves the path.
    NotFound,
    /// The workflow does not serve the method; `allow` lists those it does.
    MethodNotAllowed { allow: HeaderValue },
    /// The caller is outside `allow ip`.
    Forbidden,
    /// Missing or wrong credentials; Basic auth's challenge when it is Basic.
    Unauthorized { challenge: Option<HeaderValue> },
    /// The body is over `--max-body`.
    TooLarge { limit: usize },
    /// The bodies being read hold all of `--max-body-memory`.
    BodyMemory,
    /// The body did not arrive in time.
    BodyTimeout,
    /// The body could not be read.
    BodyUnreadable,
    /// A signature missing, wrong, or out of its tolerance: why.
    Signature(String),
    /// A body of a type the workflow cannot read.
    UnsupportedMedia,
    /// JSON that does not parse, and where.
    MalformedJson { line: usize, column: usize, reason: String },
    /// Another body (form, multipart, text) that does not parse.
    Malformed { what: &'static str, reason: String },
    /// A form body with none of the fields the workflow's `body` paths read, and no `payload`
    /// field of JSON to read them in (a sender posting a form where JSON was expected): the
    /// paths, as written.
    FormWithoutFields(Vec<String>),
    /// A `required` value missing, or a value that fails `as`.
    Invalid(ExtractError),
    /// The `dedupe` key could not be computed.
    DedupeKey(String),
    /// The async queue is full.
    QueueFull,
    /// The store could not keep the run.
    StoreUnavailable,
    /// Over the workflow's `concurrency`.
    OverConcurrency,
    /// Over the workflow's `rate`: a start is free in this many seconds.
    OverRate { retry_after: u64 },
    /// The `rate` key could not be computed.
    RateKey(String),
    /// A duplicate of a sync execution still running.
    DuplicateInProgress { of: String },
    /// An execution on the blocking pool that did not finish.
    Unfinished,
}

const RETRY: (HeaderName, HeaderValue) = (RETRY_AFTER, HeaderValue::from_static("1"));

impl Rejection {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Rejection::NotFound => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::Forbidden => StatusCode::FORBIDDEN,
            Rejection::Unauthorized { .. } | Rejection::Signature(_) => StatusCode::UNAUTHORIZED,
            Rejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::BodyMemory | Rejection::QueueFull | Rejection::StoreUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Rejection::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Rejection::BodyUnreadable
            | Rejection::MalformedJson { .. }
            | Rejection::Malformed { .. }
            | Rejection::FormWithoutFields(_)
            | Rejection::Invalid(_) => StatusCode::BAD_REQUEST,
            Rejection::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::DedupeKey(_) | Rejection::RateKey(_) | Rejection::Unfinished => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Rejection::OverConcurrency | Rejection::OverRate { .. } => StatusCode::TOO_MANY_REQUESTS,
            Rejection::DuplicateInProgress { .. } => StatusCode::CONFLICT,
        }
    }

    /// The JSON body the caller gets.
    pub(crate) fn body(&self, id: ExecId) -> Value {
        match self {
            Rejection::NotFound => json!({"error": "not found"}),
            Rejection::MethodNotAllowed { .. } => json!({"error": "method not allowed"}),
            Rejection::Forbidden => json!({"error": "forbidden"}),
            Rejection::Unauthorized { .. } => json!({"error": "unauthorized"}),
            Rejection::TooLarge { limit } => json!({"error": "body too large", "limit": limit}),
            Rejection::BodyMemory => json!({"error": "too many request bodies in memory"}),
            Rejection::BodyTimeout => json!({"error": "timed out reading the body"}),
            Rejection::BodyUnreadable => json!({"error": "could not read the body"}),
            Rejection::Signature(why) => json!({"error": why}),
            Rejection::UnsupportedMedia => json!({
                "error": "unsupported media type",
                "expected": "application/json, application/x-www-form-urlencoded or multipart/form-data",
            }),
            Rejection::MalformedJson { line, column, reason } => {
                json!({"error": "malformed JSON", "line": line, "column": column, "reason": reason})
            }
            Rejection::Malformed { what, reason } => {
                json!({"error": format!("malformed {what}"), "reason": reason})
            }
            Rejection::FormWithoutFields(paths) => json!({
                "error": "form body without the fields read",
                "fields": paths,
                "reason": "the form has none of the fields this workflow reads, and no `payload` field holding JSON (the form a sender of JSON deliveries posts)",
            }),
            Rejection::Invalid(e) => e.to_json(),
            Rejection::DedupeKey(_) | Rejection::RateKey(_) | Rejection::Unfinished => {
                json!({"error": "workflow failed", "execution": id.to_string()})
            }
            Rejection::OverRate { retry_after } => {
                json!({"error": "rate limited", "retry_after": retry_after})
            }
            Rejection::QueueFull => json!({"error": "queue full"}),
            Rejection::StoreUnavailable => json!({"error": "store unavailable"}),
            Rejection::OverConcurrency => json!({"error": "too many executions"}),
            Rejection::DuplicateInProgress { of } => {
                json!({"error": "duplicate in progress", "duplicate_of": of})
            }
        }
    }

    /// The headers that go with the answer.
    pub(crate) fn headers(&self) -> Option<(HeaderName, HeaderValue)> {
        match self {
            Rejection::MethodNotAllowed { allow } => Some((ALLOW, allow.clone())),
            Rejection::Unauthorized { challenge: Some(c) } => Some((WWW_AUTHENTICATE, c.clone())),
            Rejection::BodyMemory
            | Rejection::QueueFull
            | Rejection::StoreUnavailable
            | Rejection::OverConcurrency
            | Rejection::DuplicateInProgress { .. } => Some(RETRY),
            Rejection::OverRate { retry_after } => Some((RETRY_AFTER, HeaderValue::from(*retry_after))),
            _ => None,
        }
    }

    /// The reason its log line gives.
    pub(crate) fn reason(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Rejection::NotFound => "no workflow serves this path",
            Rejection::MethodNotAllowed { .. } => "method not allowed",
            Rejection::Forbidden => "caller not allowed",
            Rejection::Unauthorized { .. } => "missing or wrong credentials",
            Rejection::TooLarge { .. } => "body over the limit",
            Rejection::BodyMemory => "body memory budget exhausted",
            Rejection::BodyTimeout => "body timeout",
            Rejection::BodyUnreadable => "body read failed",
            Rejection::Signature(why) => return Cow::Owned(format!("signature: {why}")),
            Rejection::UnsupportedMedia => "body type not readable",
            Rejection::MalformedJson { .. } => "malformed JSON",
            Rejection::Malformed { what, .. } => return Cow::Owned(format!("malformed {what}")),
            Rejection::FormWithoutFields(_) => "a form body without the fields read",
            Rejection::Invalid(e) => {
                return Cow::Owned(format!("{} {} `{}`: {}", e.source, e.field, e.path, e.reason))
            }
            Rejection::DedupeKey(why) => {
                return Cow::Owned(format!("the dedupe key cannot be computed: {why}"))
            }
            Rejection::QueueFull => "async queue full",
            Rejection::StoreUnavailable => "the store could not keep the run",
            Rejection::OverConcurrency => "over the workflow's concurrency",
            Rejection::OverRate { .. } => "over the workflow's rate",
            Rejection::RateKey(why) => return Cow::Owned(format!("the rate key cannot be computed: {why}")),
            Rejection::DuplicateInProgress { .. } => "a duplicate of a running execution",
            Rejection::Unfinished => "execution did not finish",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_has_an_error_body_and_a_reason() {
        let all = [
            Rejection::NotFound,
            Rejection::MethodNotAllowed { allow: HeaderValue::from_static("POST") },
            Rejection::Forbidden,
            Rejection::Unauthorized { challenge: None },
            Rejection::TooLarge { limit: 10 },
            Rejection::BodyMemory,
            Rejection::BodyTimeout,
            Rejection::BodyUnreadable,
            Rejection::Signature("invalid signature".into()),
            Rejection::UnsupportedMedia,
            Rejection::MalformedJson { line: 1, column: 2, reason: "eof".into() },
            Rejection::Malformed { what: "form body", reason: "bad".into() },
            Rejection::DedupeKey("boom".into()),
            Rejection::QueueFull,
            Rejection::StoreUnavailable,
            Rejection::OverConcurrency,
            Rejection::OverRate { retry_after: 3 },
            Rejection::RateKey("boom".into()),
            Rejection::DuplicateInProgress { of: "a".into() },
            Rejection::Unfinished,
        ];
        for r in &all {
            assert!(r.status().is_client_error() || r.status().is_server_error(), "{r:?}");
            assert!(r.body(ExecId(1))["error"].is_string(), "{r:?}");
            assert!(!r.reason().is_empty(), "{r:?}");
            // Whoever is told to come back is told when.
            let comes_back = r.status() == StatusCode::SERVICE_UNAVAILABLE
                || r.status() == StatusCode::TOO_MANY_REQUESTS
                || r.status() == StatusCode::CONFLICT;
            assert_eq!(comes_back, r.headers().is_some_and(|(n, _)| n == RETRY_AFTER), "{r:?}");
        }
    }
}
