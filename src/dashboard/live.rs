//! Live rows: each execution that ends is offered to the pages watching (`/events`, server-sent
//! events), as a small summary. Nothing is made or sent while no page watches, so the webhook
//! listener pays one atomic read per execution for it. At most [`WATCHERS`] pages watch at once;
//! the next one gets `503`. A page that falls behind skips what it missed (it can reload).

use super::{layout, Answer, Query};
use crate::store::{Ended, Outcome};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Pages watching at once, at most.
pub(crate) const WATCHERS: usize = 1_000;
/// Rows kept for a page that is slow to read them; beyond, it skips.
const BACKLOG: usize = 256;
/// A comment sent this often keeps proxies from closing a quiet stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// One execution that ended, as a row of the runs page.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) workflow: String,
    pub(crate) mode: &'static str,
    /// Its outcome, as the runs page words it.
    pub(crate) status: &'static str,
    pub(crate) code: u16,
    pub(crate) started: String,
    pub(crate) took: String,
    pub(crate) reason: Option<String>,
}

#[derive(Clone)]
pub(crate) struct Live {
    tx: broadcast::Sender<Arc<Row>>,
    watchers: Arc<tokio::sync::Semaphore>,
}

impl Default for Live {
    fn default() -> Self {
        Live { tx: broadcast::channel(BACKLOG).0, watchers: Arc::new(tokio::sync::Semaphore::new(WATCHERS)) }
    }
}

impl Live {
    /// An execution ended: offered to the pages watching, if any.
    pub(crate) fn ended(&self, e: &Ended) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let row = Row {
            id: format!("{:016x}", e.id as u64),
            workflow: e.workflow.to_string(),
            mode: if e.mode == crate::store::Mode::Async { "async" } else { "sync" },
            status: e.outcome.as_str(),
            code: e.status,
            started: layout::time(e.started_ms),
            took: layout::took(Some(e.duration_ms)),
            reason: e.reason.clone(),
        };
        let _ = self.tx.send(Arc::new(row));
    }

    /// `/events`: the rows of executions that end from now on, those the page's filters
    /// (`workflow`, `status`) select, as server-sent events.
    pub(crate) fn subscribe(&self, query: &Query) -> Answer {
        let Ok(permit) = self.watchers.clone().try_acquire_owned() else {
            return layout::json(
                503,
                r#"{"error":"busy","message":"too many pages are watching; try again later"}"#,
            );
        };
        let workflow = query.get("workflow").map(str::to_string);
        let status = query.get("status").and_then(Outcome::parse);
        let rx = self.tx.subscribe();
        let first = Bytes::from_static(b"retry: 3000\n: watching\n\n");
        let state = (rx, permit, Some(first));
        let stream = futures_util::stream::unfold(state, move |(mut rx, permit, first)| {
            let workflow = workflow.clone();
            async move {
                if let Some(f) = first {
                    return Some((Ok::<_, Infallible>(hyper::body::Frame::data(f)), (rx, permit, None)));
                }
                loop {
                    let got = tokio::time::timeout(HEARTBEAT, rx.recv()).await;
                    let row = match got {
                        Err(_) => {
                            let beat = Bytes::from_static(b": still here\n\n");
                            return Some((Ok(hyper::body::Frame::data(beat)), (rx, permit, None)));
                        }
                        Ok(Ok(row)) => row,
                        Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                        Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                    };
                    if workflow.as_deref().is_some_and(|w| w != row.workflow)
                        || status.is_some_and(|s| s.as_str() != row.status)
                    {
                        continue;
                    }
                    let data = serde_json::to_string(&*row).unwrap_or_default();
                    let event = Bytes::from(format!("event: run\ndata: {data}\n\n"));
                    return Some((Ok(hyper::body::Frame::data(event)), (rx, permit, None)));
                }
            }
        });
        let mut a = hyper::Response::new(http_body_util::StreamBody::new(stream).boxed());
        let h = a.headers_mut();
        h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/event-stream"));
        layout::secure(h);
        a
    }
}
