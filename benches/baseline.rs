//! The baseline for the load benchmark: the server a user would write by hand for the scenario,
//! with hyper 1.x and serde_json — parse the body into `serde_json::Value`, same checks, same
//! answer. Usage: `baseline [ADDR]` (default 127.0.0.1:13001); prints `listening on http://ADDR`.
//! `/hooks/signed` is the same behind GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the raw body
//! with `BENCH_SECRET`, compared in constant time), checked before parsing, as a hand-written
//! signed endpoint would.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::io::Write as _;

/// The GitHub signature check a user would write with `hmac` and `sha2`.
fn signed(secret: &[u8], header: Option<&hyper::header::HeaderValue>, body: &[u8]) -> bool {
    use hmac::Mac as _;
    let Some(hex) = header.and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(given) = hex::decode(hex) else { return false };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

async fn answer(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: Value| {
        let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
        *r.status_mut() = status;
        r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
        Ok(r)
    };
    let signed_path = req.uri().path() == "/hooks/signed";
    if req.uri().path() != "/hooks/payment" && !signed_path {
        return reply(StatusCode::NOT_FOUND, json!({"error": "not found"}));
    }
    if req.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "method not allowed"}));
    }
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let order = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "order").map(|(_, v)| v.into_owned())
    });
    let signature = req.headers().get("x-hub-signature-256").cloned();
    let Ok(body) = req.into_body().collect().await.map(|c| c.to_bytes()) else {
        return reply(StatusCode::BAD_REQUEST, json!({"error": "bad body"}));
    };
    if signed_path {
        let secret = SECRET.get().and_then(Option::as_deref).unwrap_or("");
        if !signed(secret.as_bytes(), signature.as_ref(), &body) {
            return reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid signature"}));
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return reply(StatusCode::BAD_REQUEST, json!({"error": "malformed JSON"}));
    };
    let status = v.pointer("/data/status");
    let amount = v.pointer("/data/amount").and_then(Value::as_f64).unwrap_or(0.0);
    if status.and_then(Value::as_str) == Some("paid") && amount > 0.0 {
        reply(StatusCode::OK, json!({"ok": true, "order": order, "request": request_id}))
    } else {
        reply(StatusCode::UNPROCESSABLE_ENTITY, json!({"ok": false, "status": status}))
    }
}

/// `BENCH_SECRET`, read once.
static SECRET: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

#[tokio::main]
async fn main() -> std::io::Result<()> {
    SECRET.get_or_init(|| std::env::var("BENCH_SECRET").ok());
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:13001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer)).await;
        });
    }
}
