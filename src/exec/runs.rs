//! What the store keeps of an execution: an accepted async run (its request, masked, and its
//! frame) and the record of its end.

use crate::request::handle::{Accepted, Job, Record};
use crate::request::received;
use crate::store::{self, Ended, NewRun};

/// An accepted async run as the store keeps it: the request (its body up to `keep_body` bytes)
/// and the frame written as JSON text here, straight from the values (no copy of them for the
/// store to take apart again).
pub(crate) fn new_run(job: &Job, request: &Accepted<'_>, keep_body: usize) -> NewRun {
    let head = request.head;
    let kept = received::Body::of(request.body, keep_body);
    let served = &job.served;
    let mut digits = [0u8; 16];
    NewRun {
        id: job.id.hex(&mut digits).to_string(),
        workflow: served.name.to_string(),
        version: served.version.clone(),
        // Serializing strings and JSON values into text cannot fail.
        frame: serde_json::to_string(&job.frame).unwrap_or_else(|_| "[]".into()),
        request: received::json(head.method, head.uri, head.headers, request.body, kept, served),
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
        request: r.request,
        kept: false,
    }
}
