//! Allocations per request for the benchmark scenario, counted with a counting allocator. The
//! count is deterministic, so this guards the budget (the budget: under 20).

use bytes::Bytes;
use http_body_util::Full;

#[path = "../benches/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

struct NoQueue;

impl wf::request::handle::Enqueue for NoQueue {
    fn try_enqueue(&self, job: wf::request::handle::Job) -> Result<(), wf::request::handle::Job> {
        Err(job)
    }
}

fn request() -> http::Request<Full<Bytes>> {
    let body = r#"{"data":{"status":"paid","amount":1250,"currency":"EUR"},"customer":{"email":"a@b.c"}}"#;
    http::Request::post("/hooks/payment?order=42")
        .header("content-type", "application/json")
        .header("x-request-id", "abc-123")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request")
}

#[test]
fn the_scenario_request_allocates_little() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/payment.wf"))
        .expect("scenario");
    let loaded = wf::lang::loader::load_str("payment.wf", &src);
    let router = wf::request::served::build(loaded.program, &|_| None).expect("router");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let limits = wf::request::handle::Limits::default();
    let run = |req| {
        rt.block_on(wf::request::handle::handle(
            &router,
            &limits,
            &NoQueue,
            wf::request::handle::ExecId(7),
            req,
        ))
    };
    assert_eq!(run(request()).response.status(), 200);

    let n = 200;
    let reqs: Vec<_> = (0..n).map(|_| request()).collect();
    let before = counting_alloc::allocations();
    for req in reqs {
        let handled = run(req);
        drop(handled);
    }
    let per_request = (counting_alloc::allocations() - before) as f64 / n as f64;
    println!("allocations per scenario request: {per_request:.1}");
    assert!(per_request <= 9.0, "{per_request} allocations per request (budget 9)");
}
