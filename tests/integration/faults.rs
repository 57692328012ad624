//! Faults while serving: shutdown with work in flight, reloads under load.

use crate::common::{post_json, request, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORK: &str = r#"
workflow slow {
  trigger webhook { path "/slow" mode async }
  extract { s = body "s" required  n = body "n" }
  let a = upper(s + s + s + s)
  let b = lower(a + a + a + a)
  log "done ${n} ${len(b)}"
}

workflow sync {
  trigger webhook { path "/sync" }
  extract { n = body "n" required }
  respond 200 json { n: n }
}
"#;

#[test]
fn sigterm_answers_requests_in_flight_and_runs_every_accepted_execution() {
    let mut s = Server::start(&[("work.wf", WORK)], &["--queue-size", "100000", "--max-body", "4MiB"]);
    let addr = s.addr;
    let text = "a".repeat(1024 * 1024);
    // Fill the queue: each execution takes milliseconds, so most are still waiting at SIGTERM.
    let mut accepted = 0;
    for n in 0..60 {
        let r = post_json(addr, "/slow", format!("{{\"s\":\"{text}\",\"n\":{n}}}").as_bytes());
        assert_eq!(r.status, 200, "{r:?}");
        accepted += 1;
    }
    // Requests in flight: head sent and half the body, the rest comes after SIGTERM.
    let body = r#"{"n": 12345}"#;
    let (first, rest) = body.split_at(6);
    let mut in_flight: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut c = TcpStream::connect(addr).expect("connect");
            let head = format!(
                "POST /sync HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
                body.len()
            );
            c.write_all(head.as_bytes()).expect("write");
            c
        })
        .collect();
    // And callers that keep coming until the listener is gone.
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let callers: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            let progress = progress.clone();
            std::thread::spawn(move || {
                let (mut ok, mut queued) = (0, 0);
                let mut n = 1000 * (t + 1);
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut c) = TcpStream::connect(addr) else { break };
                    n += 1;
                    let (path, body) = if n % 2 == 0 {
                        ("/slow", format!("{{\"s\":\"b\",\"n\":{n}}}"))
                    } else {
                        ("/sync", format!("{{\"n\":{n}}}"))
                    };
                    let raw = format!(
                        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = c.write_all(raw.as_bytes());
                    let mut out = Vec::new();
                    let _ = c.read_to_end(&mut out);
                    if out.is_empty() {
                        continue; // closed as the server stopped: never accepted
                    }
                    let r = crate::common::parse_response(&out);
                    assert_eq!(r.status, 200, "{r:?}");
                    ok += 1;
                    progress.fetch_add(1, Ordering::Relaxed);
                    if path == "/slow" {
                        queued += 1;
                    }
                }
                (ok, queued)
            })
        })
        .collect();
    // SIGTERM once the callers are under way.
    let deadline = Instant::now() + Duration::from_secs(10);
    while progress.load(Ordering::Relaxed) < 8 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    s.signal("TERM");
    s.wait_log("shutting down");
    for c in &mut in_flight {
        c.write_all(rest.as_bytes()).expect("the connection is still open");
    }
    for c in &mut in_flight {
        c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        let r = crate::common::parse_response(&out);
        assert_eq!((r.status, r.body.as_str()), (200, r#"{"n":12345}"#), "a request in flight was dropped");
    }
    assert_eq!(s.wait_exit(), Some(0));
    stop.store(true, Ordering::Relaxed);
    let mut answered = 0;
    for h in callers {
        let (ok, queued) = h.join().expect("no caller saw an error");
        answered += ok;
        accepted += queued;
    }
    assert!(answered > 0);
    let log = s.log();
    let done = log.lines().filter(|l| l.contains("done ")).count();
    assert_eq!(done, accepted, "accepted {accepted} async executions, ran {done}:\n{log}");
    let after = log.split("shutting down").nth(1).unwrap_or("").matches("done ").count();
    assert!(after > 0, "nothing was still queued at SIGTERM: the test proves nothing");
    eprintln!(
        "drain: accepted {accepted} async executions, executed {done} ({after} after SIGTERM); \
         {answered} callers answered"
    );
}

/// Edits the served file every 100 ms for 10 s, good and broken in turn, under concurrent load.
fn reload_under_load(extra: &[&str], hup: bool) {
    let good =
        |n: usize| format!(r#"workflow r {{ trigger webhook {{ path "/r" }} respond 200 text "good {n}" }}"#);
    // Broken as a whole: the first workflow is fine, so serving part of a file would show it.
    let broken = |n: usize| {
        format!(
            r#"workflow r {{ trigger webhook {{ path "/r" }} respond 200 text "BROKEN {n}" }}
               workflow x {{ trigger webhook {{ path "/x" }} respond 200 text nope }}"#
        )
    };
    let s = Server::start(&[("r.wf", &good(0))], extra);
    let addr = s.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut versions = std::collections::BTreeSet::new();
                let mut count = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = request(addr, "POST", "/r", &[], b"");
                    assert_eq!(r.status, 200, "a request failed during reloads: {r:?}");
                    assert!(r.body.starts_with("good "), "a broken version served: {:?}", r.body);
                    versions.insert(r.body);
                    count += 1;
                }
                (count, versions)
            })
        })
        .collect();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(10) {
        n += 1;
        let text = if n % 2 == 0 { good(n) } else { broken(n) };
        s.dir.write("r.wf", &text);
        if hup {
            s.signal("HUP");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    n += 1;
    let last = good(n + 1);
    s.dir.write("r.wf", &last);
    if hup {
        s.signal("HUP");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(addr, "POST", "/r", &[], b"").body != format!("good {}", n + 1) {
        assert!(Instant::now() < deadline, "the last good edit never served:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut versions = std::collections::BTreeSet::new();
    for h in load {
        let (count, seen) = h.join().expect("no request failed and no broken version served");
        total += count;
        versions.extend(seen);
    }
    let log = s.log();
    let reloads = log.matches("reloaded").count();
    let failures = log.matches("reload failed").count();
    assert!(reloads >= 10 && failures >= 10, "{reloads} reloads, {failures} refused:\n{log}");
    assert!(versions.len() >= 10, "only {} versions served: {versions:?}", versions.len());
    eprintln!(
        "{} edits, {reloads} reloads, {failures} refused, {total} requests, 0 failed, {} versions served",
        n,
        versions.len()
    );
}

#[test]
fn watch_reloads_every_100ms_under_load_never_fail_a_request() {
    reload_under_load(&["--watch"], false);
}

#[test]
fn sighup_reloads_every_100ms_under_load_never_fail_a_request() {
    reload_under_load(&[], true);
}
