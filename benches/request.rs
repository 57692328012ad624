//! Micro-benchmark (criterion): one scenario request through router, extraction, interpreter and
//! answer building, without the network — and the same work done by hand with serde_json.

mod support;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn request(c: &mut Criterion) {
    let rt = support::runtime();
    let router = support::router(0);
    let body = Bytes::from_static(support::SCENARIO_BODY.as_bytes());
    assert_eq!(support::one(&rt, &router, &body), 200);
    c.bench_function("wf: one scenario request (handle)", |b| {
        b.iter(|| black_box(support::one(&rt, &router, black_box(&body))))
    });
    c.bench_function("by hand: serde_json::Value parse + checks + answer", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(&body)).expect("json");
            let status = v.pointer("/data/status");
            let amount = v.pointer("/data/amount").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
            let out = if status.and_then(serde_json::Value::as_str) == Some("paid") && amount > 0.0 {
                serde_json::json!({"ok": true, "order": "42", "request": "abc-123"})
            } else {
                serde_json::json!({"ok": false, "status": status})
            };
            black_box(out.to_string())
        })
    });
}

criterion_group!(benches, request);
criterion_main!(benches);
