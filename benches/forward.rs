//! The forwarding benchmark's parts, one binary with three modes:
//!
//! - `forward sink ADDR`: the internal service events are forwarded to. Counts what it receives and
//!   how long after the caller sent it each event arrived (the body's `sent`, in nanoseconds since
//!   the epoch); `GET /stats` answers `{"count":N,"p50_ms":…,"p99_ms":…}` and starts over.
//! - `forward baseline ADDR SINK_URL`: the forwarder a user would write by hand with tokio, hyper
//!   and reqwest: answer `200` at once, then POST the event to the sink from a spawned task, with
//!   an idempotency key, retrying on errors and 5xx.
//! - `forward load URL N CONCURRENCY SINK_STATS_URL`: sends N events (`{"id","type","sent"}`) from
//!   CONCURRENCY keep-alive connections (a `503` is sent again after 10 ms, as providers do), waits
//!   until the sink has them all, prints `forwards/s` and the sink's p50/p99 from sending to
//!   arrival. `DELETE` on the sink starts its counts over.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

async fn listen<F, Fut>(addr: &str, handler: F)
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    println!("listening on http://{}", listener.local_addr().expect("addr"));
    let _ = std::io::stdout().flush();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let h = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let h = h.clone();
                async move { Ok::<_, Infallible>(h(req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

#[derive(Default)]
struct Stats {
    latencies_ns: Vec<u64>,
}

async fn sink(addr: String) {
    let stats: Arc<Mutex<Stats>> = Arc::default();
    listen(&addr, move |req: Request<hyper::body::Incoming>| {
        let stats = stats.clone();
        async move {
            if req.method() == hyper::Method::DELETE {
                stats.lock().expect("stats").latencies_ns.clear();
                return text(StatusCode::OK, "reset");
            }
            if req.method() == hyper::Method::GET {
                let mut l = stats.lock().expect("stats").latencies_ns.clone();
                l.sort_unstable();
                let pick = |q: f64| {
                    l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
                        .copied()
                        .unwrap_or(0)
                };
                let body = format!(
                    r#"{{"count":{},"p50_ms":{:.2},"p99_ms":{:.2}}}"#,
                    l.len(),
                    pick(0.50) as f64 / 1e6,
                    pick(0.99) as f64 / 1e6
                );
                return Response::new(Full::new(Bytes::from(body)));
            }
            let arrived = now_ns();
            let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let sent = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("sent").and_then(serde_json::Value::as_u64))
                .unwrap_or(arrived);
            stats.lock().expect("stats").latencies_ns.push(arrived.saturating_sub(sent));
            text(StatusCode::ACCEPTED, "ok")
        }
    })
    .await;
}

async fn baseline(addr: String, sink_url: String) {
    let client = reqwest::Client::new();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    listen(&addr, move |req: Request<hyper::body::Incoming>| {
        let (client, sink_url, counter) = (client.clone(), sink_url.clone(), counter.clone());
        async move {
            let Ok(body) = req.into_body().collect().await.map(|c| c.to_bytes()) else {
                return text(StatusCode::BAD_REQUEST, "bad body");
            };
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return text(StatusCode::BAD_REQUEST, "malformed JSON");
            };
            let key = format!("{}-1", counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            tokio::spawn(async move {
                let forwarded =
                    serde_json::json!({"id": event["id"], "type": event["type"], "sent": event["sent"]});
                for attempt in 0..6u32 {
                    let sent = client
                        .post(&sink_url)
                        .header("idempotency-key", &key)
                        .header("content-type", "application/json")
                        .body(forwarded.to_string())
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if !r.status().is_server_error() => return,
                        _ => tokio::time::sleep(Duration::from_secs(1 << attempt)).await,
                    }
                }
            });
            text(StatusCode::OK, "ok")
        }
    })
    .await;
}

async fn load(url: String, n: usize, concurrency: usize, stats_url: String) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().expect("client");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                loop {
                    let body = format!(r#"{{"id":"evt_{i}","type":"invoice.paid","sent":{}}}"#, now_ns());
                    let r =
                        client.post(&url).header("content-type", "application/json").body(body).send().await;
                    match r {
                        Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => {
                            tokio::time::sleep(Duration::from_millis(10)).await
                        }
                        Ok(r) => {
                            let _ = r.bytes().await;
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let accepted = started.elapsed();
    // Wait until the sink has every event (at most 60 s more).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stats = serde_json::Value::Null;
    let mut arrived = started.elapsed();
    while Instant::now() < deadline {
        let body = client.get(&stats_url).send().await.expect("stats").bytes().await.expect("stats body");
        stats = serde_json::from_slice(&body).expect("stats json");
        arrived = started.elapsed();
        if stats["count"].as_u64().unwrap_or(0) as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let forwarded = stats["count"].as_u64().unwrap_or(0);
    println!(
        "{{\"sent\":{n},\"forwarded\":{forwarded},\"accepted_s\":{:.3},\"elapsed_s\":{:.3},\"forwards_per_s\":{:.0},\"p50_ms\":{},\"p99_ms\":{}}}",
        accepted.as_secs_f64(),
        arrived.as_secs_f64(),
        forwarded as f64 / arrived.as_secs_f64(),
        stats["p50_ms"],
        stats["p99_ms"]
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(0).as_str() {
        "sink" => runtime.block_on(sink(arg(1))),
        "baseline" => runtime.block_on(baseline(arg(1), arg(2))),
        "load" => runtime.block_on(load(
            arg(1),
            arg(2).parse().unwrap_or(20_000),
            arg(3).parse().unwrap_or(32),
            arg(4),
        )),
        _ => eprintln!(
            "usage: forward sink ADDR | baseline ADDR SINK_URL | load URL N CONCURRENCY SINK_STATS_URL"
        ),
    }
}
