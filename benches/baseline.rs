//! The baseline for the load benchmark: the server a user would write by hand for the scenario,
//! with hyper 1.x and serde_json — parse the body into `serde_json::Value`, same checks, same
//! answer. Usage: `baseline [ADDR]` (default 127.0.0.1:13001); prints `listening on http://ADDR`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::io::Write as _;

async fn answer(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: Value| {
        let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
        *r.status_mut() = status;
        r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
        Ok(r)
    };
    if req.uri().path() != "/hooks/payment" {
        return reply(StatusCode::NOT_FOUND, json!({"error": "not found"}));
    }
    if req.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "method not allowed"}));
    }
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let order = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "order").map(|(_, v)| v.into_owned())
    });
    let Ok(body) = req.into_body().collect().await.map(|c| c.to_bytes()) else {
        return reply(StatusCode::BAD_REQUEST, json!({"error": "bad body"}));
    };
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
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
