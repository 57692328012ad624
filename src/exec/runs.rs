//! What the store keeps of an execution: an accepted async run (its request, masked, and its
//! frame) and the record of its end.

use crate::request::handle::{Accepted, Job, Record};
use crate::store::{self, Ended, NewRun};

/// Headers a kept request never shows: credentials and signatures.
fn masked(name: &str) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie" | "stripe-signature")
        || name.contains("signature")
        || name.contains("hmac")
        || name.contains("token")
        || name.contains("secret")
}

/// A request's headers as a kept run shows them: credentials and signatures masked.
struct Shown<'a>(&'a http::HeaderMap);

impl serde::Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(name, value)| {
            let shown = if masked(name.as_str()) {
                std::borrow::Cow::Borrowed("[masked]")
            } else {
                String::from_utf8_lossy(value.as_bytes())
            };
            (name.as_str(), shown)
        }))
    }
}

/// The request as a kept run shows it.
#[derive(serde::Serialize)]
struct Kept<'a> {
    method: &'a str,
    #[serde(serialize_with = "as_text")]
    target: &'a http::Uri,
    headers: Shown<'a>,
    body: &'a str,
}

fn as_text<S: serde::Serializer>(uri: &&http::Uri, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(uri)
}

/// An accepted async run as the store keeps it: the request and the frame written as JSON text
/// here, straight from the values (no copy of them for the store to take apart again).
pub(crate) fn new_run(job: &Job, request: &Accepted<'_>) -> NewRun {
    let mut body = String::from_utf8_lossy(request.body).into_owned();
    job.served.redact(&mut body);
    let kept = Kept {
        method: request.head.method.as_str(),
        target: request.head.uri,
        headers: Shown(request.head.headers),
        body: &body,
    };
    let served = &job.served;
    let mut digits = [0u8; 16];
    NewRun {
        id: job.id.hex(&mut digits).to_string(),
        workflow: served.name.to_string(),
        version: served.version.clone(),
        // Serializing strings and JSON values into text cannot fail.
        frame: serde_json::to_string(&job.frame).unwrap_or_else(|_| "[]".into()),
        request: serde_json::to_string(&kept).unwrap_or_else(|_| "{}".into()),
        env_names: served.env_names.clone(),
        accepted_ms: store::now_ms(),
    }
}

/// An execution's record as the history keeps it (taking its reason and log lines).
pub(crate) fn ended(r: Record) -> Ended {
    let duration_ms = i64::try_from(r.duration.as_millis()).unwrap_or(i64::MAX);
    Ended {
        id: r.id.0 as i64,
        workflow: r.workflow,
        mode: r.mode,
        started_ms: store::now_ms().saturating_sub(duration_ms),
        duration_ms,
        status: r.status,
        outcome: r.outcome,
        reason: r.reason,
        at: r.at,
        logs: r.logs,
        attempts: r.attempts,
    }
}
