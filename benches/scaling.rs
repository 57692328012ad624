//! Scaling and cost figures, printed as a table: check speed on 1,000 workflows, routing cost from
//! 1 to 10,000 workflows, cost against body size, allocations per request, and how fast
//! `wf serve` of 1,000 workflows is ready to answer. Run: `cargo bench --bench scaling`.

mod support;

use bytes::Bytes;
use std::time::{Duration, Instant};

mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// Median time of `f` over `runs` runs of `iters` iterations each, per iteration.
fn median(runs: usize, iters: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed() / iters as u32
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs each bench once as a smoke test.
    let quick = std::env::args().all(|a| a != "--bench");
    let scale = if quick { 10 } else { 1 };

    let src = support::workflows(1000);
    let lines = src.lines().count();
    let t = median(7 / scale.min(7) + 1, 1, || {
        let loaded = wf::lang::loader::load_str("gen.wf", &src);
        assert!(!loaded.has_errors());
    });
    println!(
        "check: parse + check + lower of 1,000 workflows ({lines} lines): {:.1} ms (goal < 100 ms)",
        ms(t)
    );

    let rt = support::runtime();
    let body = Bytes::from_static(support::SCENARIO_BODY.as_bytes());
    println!("\nrouting: one scenario request with N workflows served");
    let mut first = None;
    for n in [1usize, 100, 1_000, 10_000] {
        let router = support::router(n - 1);
        assert_eq!(support::one(&rt, &router, &body), 200);
        let t = median(15, 20_000 / scale, || {
            support::one(&rt, &router, &body);
        });
        let base = *first.get_or_insert(t);
        println!(
            "  {n:>6} workflows: {:>7.0} ns/request  ({:.2}x the 1-workflow cost)",
            ns(t),
            ns(t) / ns(base)
        );
    }

    println!("\nbody size: the scenario request with padding in a field the workflow never reads");
    let router = support::router(0);
    let mut per_kb_small = None;
    for kb in [1usize, 10, 100, 1024] {
        let pad = "x".repeat(kb * 1024 - support::SCENARIO_BODY.len() - 20);
        let body = Bytes::from(format!(r#"{{"data":{{"status":"paid","amount":1250}},"pad":"{pad}"}}"#));
        assert_eq!(support::one(&rt, &router, &body), 200);
        let iters = (20_000 / kb).max(20) / scale;
        let t = median(9, iters.max(2), || {
            support::one(&rt, &router, &body);
        });
        let per_kb = ns(t) / kb as f64;
        let base = *per_kb_small.get_or_insert(per_kb);
        println!(
            "  {kb:>5} KiB: {:>10.0} ns/request, {per_kb:>6.0} ns/KiB ({:.2}x the 1 KiB rate)",
            ns(t),
            per_kb / base
        );
    }

    let n = 1000;
    let before = counting_alloc::allocations();
    for _ in 0..n {
        std::hint::black_box(support::request(body_ref()));
    }
    let building = (counting_alloc::allocations() - before) as f64 / n as f64;
    let before = counting_alloc::allocations();
    for _ in 0..n {
        support::one(&rt, &router, &body_ref());
    }
    let per = (counting_alloc::allocations() - before) as f64 / n as f64 - building;
    println!("\nallocations per scenario request, in wf (handle, without building the request): {per:.1} (goal < 20)");

    let dir = std::env::temp_dir().join(format!("wf-startup-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("all.wf"), &src).expect("write");
    let mut best = Duration::MAX;
    for _ in 0..(5 / scale).max(1) {
        best = best.min(startup(&dir));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "\nstartup: `wf serve` of 1,000 workflows ready to answer in {:.1} ms (best of 5; goal < 200 ms)",
        ms(best)
    );
}

fn body_ref() -> Bytes {
    Bytes::from_static(support::SCENARIO_BODY.as_bytes())
}

/// Time from spawning `wf serve` to its first successful answer.
fn startup(dir: &std::path::Path) -> Duration {
    use std::io::{BufRead, BufReader, Read, Write};
    let t = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wf"))
        .args(["serve", dir.to_str().expect("utf8"), "--listen", "127.0.0.1:0", "--store", "memory"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("line");
    let addr = line.trim().trim_start_matches("listening on http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    let auth = "Basic dTc6cDc="; // u7:p7
    let req = format!(
        "POST /hooks/7?order=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        support::SCENARIO_BODY.len(),
        support::SCENARIO_BODY
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let elapsed = t.elapsed();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}
