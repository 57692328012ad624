//! Hostile requests against the real server on a loopback port: every one gets a bounded answer
//! (or a closed connection), nothing crashes, and the server goes on answering everyone else.

use crate::common::{parse_response, post_json, raw_request, Server};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const ECHO: &str = r#"
workflow echo {
  trigger webhook { path "/echo" }
  extract {
    a = body "a"
    n = body "n" as number default 0
    q = query "q"
    h = header "X-H"
  }
  respond 200 json { a: a, n: n, q: q, h: h }
}
"#;

fn echo(args: &[&str]) -> Server {
    Server::start(&[("echo.wf", ECHO)], args)
}

/// The server still answers an ordinary request, promptly.
fn still_serves(s: &Server) {
    let started = Instant::now();
    let r = post_json(s.addr, "/echo?q=ok", br#"{"a": 1}"#);
    assert_eq!((r.status, r.json()["q"].clone()), (200, json!("ok")), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "an ordinary request took {:?}", started.elapsed());
}

/// Deterministic bytes, different for each seed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn deep_json_and_out_of_range_numbers_are_400s_wherever_they_are() {
    let s = echo(&[]);
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let cases = [
        ("100k levels at the top", "[".repeat(100_000)),
        ("100k balanced levels at the top", deep(100_000)),
        ("100k levels in a read field", format!("{{\"a\":{}}}", deep(100_000))),
        ("100k levels in an unread field", format!("{{\"x\":{}}}", deep(100_000))),
        ("1e400 in a read field", r#"{"a": 1e400}"#.to_string()),
        ("1e400 in a typed field", r#"{"n": 1e400}"#.to_string()),
        ("-1e400 in an unread field", r#"{"x": [-1e400]}"#.to_string()),
    ];
    for (what, body) in &cases {
        let r = post_json(s.addr, "/echo", body.as_bytes());
        assert_eq!(r.status, 400, "{what}: {r:?}");
        assert_eq!(r.json()["error"], "malformed JSON", "{what}");
    }
    // Just inside the limits is fine.
    let r = post_json(s.addr, "/echo", format!("{{\"x\":{},\"n\":1e308}}", deep(120)).as_bytes());
    assert_eq!((r.status, r.json()["n"].clone()), (200, json!(1e308)), "{r:?}");
    still_serves(&s);
}

#[test]
fn query_strings_are_bounded() {
    let s = echo(&[]);
    // 20,000 parameters that fit in the head: the first 1,000 are read (qs's limit), quickly.
    let many = format!("/echo?q=first&{}", "x&".repeat(19_999));
    let started = Instant::now();
    let r = post_json(s.addr, &many, b"{}");
    assert_eq!((r.status, r.json()["q"].clone()), (200, json!("first")), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // 20,000 parameters too long for the head: 431 before any parsing.
    let long: Vec<String> = (0..20_000).map(|i| format!("k{i}=v")).collect();
    let r = post_json(s.addr, &format!("/echo?{}", long.join("&")), b"{}");
    assert_eq!(r.status, 431, "{r:?}");
    // Deep brackets: five levels are built, the rest is one literal key.
    let r = post_json(s.addr, &format!("/echo?q{}=1", "[a]".repeat(5_000)), b"{}");
    assert_eq!(r.status, 200);
    let mut v = &r.json()["q"];
    for _ in 0..5 {
        v = &v["a"];
    }
    let rest = v.as_object().expect("the literal remainder");
    assert_eq!(rest.len(), 1);
    assert!(rest.keys().all(|k| k.starts_with("[a][a]")), "{:?}", rest.keys().next());
    // Invalid percent-encoding is kept as written; invalid UTF-8 becomes U+FFFD.
    let r = post_json(s.addr, "/echo?q=%ZZ%C3%28%", b"{}");
    assert_eq!((r.status, r.json()["q"].clone()), (200, json!("%ZZ\u{fffd}(%")), "{r:?}");
    // Raw bytes that are not allowed in a request target: the HTTP layer refuses them.
    let r = raw_request(s.addr, b"POST /echo?q=\xc3\x28 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 400, "{r:?}");
    still_serves(&s);
}

#[test]
fn at_most_100_header_lines() {
    let s = echo(&[]);
    let request = |lines: usize| {
        let mut raw = String::from("POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
        for i in 0..lines {
            raw.push_str(&format!("X-Line-{i}: {i}\r\n"));
        }
        raw.push_str("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
        raw_request(s.addr, raw.as_bytes()).status
    };
    // With Host, Connection, Content-Type and Content-Length: 100 lines, then 101.
    assert_eq!(request(96), 200);
    assert_eq!(request(97), 431);
    still_serves(&s);
}

#[test]
fn odd_and_huge_headers() {
    let s = echo(&[]);
    let mut raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-H: \xc3\x28\xff\r\n".to_vec();
    raw.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    let r = raw_request(s.addr, &raw);
    assert_eq!((r.status, r.json()["h"].clone()), (200, json!("\u{fffd}(\u{fffd}")), "{r:?}");
    let big = format!("POST /echo HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(200 * 1024));
    assert_eq!(raw_request(s.addr, big.as_bytes()).status, 431);
    let control = b"POST /echo HTTP/1.1\r\nHost: t\r\nX-H: a\x00b\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(raw_request(s.addr, control).status, 400);
    still_serves(&s);
}

#[test]
fn bodies_at_the_limit_short_and_long() {
    let s = echo(&["--max-body", "1000"]);
    let at_limit = |extra: usize| {
        let pad = 1000 + extra - r#"{"a":""}"#.len();
        format!("{{\"a\":\"{}\"}}", "x".repeat(pad))
    };
    let exact = at_limit(0);
    assert_eq!(exact.len(), 1000);
    let r = post_json(s.addr, "/echo", exact.as_bytes());
    assert_eq!((r.status, r.json()["a"].as_str().map(str::len)), (200, Some(992)), "{r:?}");
    let over = at_limit(1);
    let r = post_json(s.addr, "/echo", over.as_bytes());
    assert_eq!((r.status, r.json()), (413, json!({"error": "body too large", "limit": 1000})));
    // The same one byte over, chunked, so no content-length announces it.
    let chunked = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{over}\r\n0\r\n\r\n",
        over.len()
    );
    assert_eq!(raw_request(s.addr, chunked.as_bytes()).status, 413);

    // Shorter than its content-length, then the client stops sending: 400, not a hang.
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let short = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":1}";
    c.write_all(short.as_bytes()).expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let r = parse_response(&out);
    assert_eq!((r.status, r.json()), (400, json!({"error": "could not read the body"})));

    // Longer than its content-length: the request is answered from exactly its length, and the
    // bytes after it are read as the next request, which is not HTTP: 400 and the connection ends.
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let long = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}GARBAGE\r\n\r\n";
    c.write_all(long.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let first = parse_response(&out);
    assert_eq!(first.status, 200, "{text}");
    assert!(text.contains(r#"{"a":1,"n":0,"q":null,"h":null}HTTP/1.1 400"#), "{text}");
    still_serves(&s);
}

#[test]
fn random_bytes_instead_of_http() {
    let s = echo(&["--header-timeout", "2"]);
    for seed in 0..40u64 {
        let mut garbage = noise(seed, 64 + (seed as usize * 997) % 20_000);
        if seed % 4 == 0 {
            // Start like HTTP, then go wrong.
            let mut head = b"POST /echo HTTP/1.1\r\n".to_vec();
            head.append(&mut garbage);
            garbage = head;
        }
        let mut c = TcpStream::connect(s.addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let _ = c.write_all(&garbage);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let started = Instant::now();
        let _ = c.read_to_end(&mut out);
        assert!(started.elapsed() < Duration::from_secs(5), "seed {seed}: the connection hung");
        if !out.is_empty() {
            let status = parse_response(&out).status;
            assert!((400..500).contains(&status), "seed {seed}: {status}");
        }
    }
    still_serves(&s);
}

#[test]
fn three_hundred_slow_clients_do_not_delay_the_others() {
    let s = echo(&["--header-timeout", "3"]);
    let mut slow: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(s.addr).expect("connect")).collect();
    for c in &slow {
        c.set_nonblocking(true).expect("nonblocking");
    }
    let head =
        b"POST /echo HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut answered = 0;
    let mut sent = 0;
    // Six seconds: one byte a second on every slow connection, ordinary requests in between.
    while started.elapsed() < Duration::from_secs(6) {
        if let Some(&b) = head.get(sent) {
            for c in &mut slow {
                let _ = c.write(&[b]);
            }
            sent += 1;
        }
        let tick = Instant::now();
        while tick.elapsed() < Duration::from_secs(1) {
            let t = Instant::now();
            let r = post_json(s.addr, "/echo?q=ok", br#"{"a": 1}"#);
            assert_eq!(r.status, 200, "{r:?}");
            worst = worst.max(t.elapsed());
            answered += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(answered > 50, "only {answered} ordinary requests answered in 6 s");
    assert!(worst < Duration::from_secs(1), "an ordinary request took {worst:?}");
    // The header timeout (3 s) has closed every slow connection.
    let mut closed = 0;
    for c in &mut slow {
        c.set_nonblocking(false).expect("blocking");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut out = Vec::new();
        if c.read_to_end(&mut out).is_ok() {
            closed += 1;
        }
    }
    assert_eq!(closed, 300, "slow connections left open after the header timeout");
    eprintln!("300 slow clients: {answered} ordinary requests answered, the slowest in {worst:?}");
}

#[test]
fn connections_over_the_cap_wait_their_turn() {
    let s = echo(&["--max-connections", "2"]);
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(s.addr).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(200));
    // A third caller connects (the kernel queues it) but is not served while two are open.
    let mut third = TcpStream::connect(s.addr).expect("connect");
    third.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let raw = "POST /echo?q=third HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    third.write_all(raw.as_bytes()).expect("write");
    let mut buf = [0u8; 1];
    assert!(third.read(&mut buf).is_err(), "served past the cap");
    s.wait_log("2 connections open");
    drop(held);
    third.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut out = Vec::new();
    let _ = third.read_to_end(&mut out);
    let r = parse_response(&out);
    assert_eq!((r.status, r.json()["q"].clone()), (200, json!("third")), "{r:?}");
}

#[test]
fn connections_that_never_send_anything_are_closed() {
    let s = echo(&["--idle-timeout", "2"]);
    let h2_preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    for (what, opening) in [("HTTP/1.1", &b""[..]), ("HTTP/2", &h2_preface[..])] {
        let mut c = TcpStream::connect(s.addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        c.write_all(opening).expect("write");
        let started = Instant::now();
        let mut out = Vec::new();
        let closed = c.read_to_end(&mut out).is_ok();
        assert!(closed, "{what}: an unused connection stayed open");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
            "{what}: closed after {took:?}"
        );
    }
    // A connection in use is not idle: keep-alive requests 1 s apart for 4 s.
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    for _ in 0..4 {
        std::thread::sleep(Duration::from_secs(1));
        let raw = "POST /echo?q=kept HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
        c.write_all(raw.as_bytes()).expect("the connection is still open");
        let mut buf = [0u8; 4096];
        let n = c.read(&mut buf).expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    }
}
