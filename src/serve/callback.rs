//! `/wf/callback/<token>` on the main listener: a call to a callback a run made
//! (`exec::callbacks`). `200 {"ok":true}` once the call is kept (its run goes on), `410` for a
//! second call, one after the timeout or of a cancelled run, `404` for a token that is not one;
//! any method; the body within the same limits as a workflow's.

use crate::exec::callbacks::{self, Called};
use crate::request::handle::Limits;
use crate::store::Store;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use std::sync::Arc;

/// Answers a call to a callback.
pub(crate) async fn answer<B>(
    store: &Arc<dyn Store>,
    callbacks: &crate::exec::callbacks::Callbacks,
    limits: &Limits,
    req: &mut Request<B>,
) -> Response<Full<Bytes>>
where
    B: hyper::body::Body + Unpin,
{
    let token = req.uri().path().strip_prefix(callbacks::PATH).unwrap_or_default();
    let Some(hash) = callbacks::hash(token) else { return json(404, r#"{"error":"not found"}"#) };
    let body = match crate::request::handle::read_whole(req.body_mut(), limits).await {
        Ok(b) => b,
        Err((status, why)) => return json(status, &serde_json::json!({ "error": why }).to_string()),
    };
    let reply = callbacks::reply(req.method(), req.uri(), req.headers(), &body);
    match store.callback_called(hash, reply, crate::store::now_ms()).await {
        Ok(Called::Taken) => {
            // Its run is taken now, not at the next look.
            callbacks.called.notify_one();
            json(200, r#"{"ok":true}"#)
        }
        Ok(Called::Gone) => json(410, r#"{"error":"gone"}"#),
        Ok(Called::Unknown) => json(404, r#"{"error":"not found"}"#),
        Err(why) => {
            tracing::warn!(target: "wf::store", "a callback's call could not be kept: {why}");
            let mut r = json(503, r#"{"error":"store unavailable"}"#);
            r.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            r
        }
    }
}

fn json(status: u16, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}
