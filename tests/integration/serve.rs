//! `wf serve`, through a real socket: every row of the README's table of answers, every statement form, async runs,
//! reload and shutdown.

use crate::common::{basic, raw_request, request, wf, Server};
use std::time::Duration;

const PAYMENT: &str = r#"
workflow payment {
  trigger webhook {
    path "/hooks/payment"
    auth basic { user "psp" password env("WF_TEST_SECRET") }
  }
  extract {
    request_id = header "X-Request-Id"
    order      = query "order" required
    status     = body "data.status" required
    amount     = body "data.amount" as number default 0
    tags       = header "X-Tag"
  }
  if status == "paid" && amount > 0 {
    log "paid ${order}"
    respond 200 {
      header "X-Request-Id" = request_id ?? "none"
      json { ok: true, order: order, request: request_id, tags: tags }
    }
  } else if status == "pending" {
    respond 202 text "pending ${order}"
  } else if status == "boom" {
    log "about to break"
    let x = status < 1
  } else if status == "fail" {
    fail "refused ${order}"
  } else if status == "silent" {
    log "nothing to say"
  } else if status == "empty" {
    respond 204
  } else if status == "typed" {
    respond 200 {
      header "Content-Type" = "application/xml"
      text "<ok/>"
    }
  }
  respond 422 json { ok: false, status: status }
}
"#;

fn payment() -> Server {
    Server::start_env(&[("payment.wf", PAYMENT)], &[], &[("WF_TEST_SECRET", "s3cret")])
}

fn pay(s: &Server, query: &str, body: &str) -> crate::common::Resp {
    let auth = basic("psp", "s3cret");
    s.post(
        &format!("/hooks/payment{query}"),
        &[("Authorization", &auth), ("Content-Type", "application/json"), ("X-Request-Id", "abc-123")],
        body,
    )
}

#[test]
fn sync_answers_follow_the_spec() {
    let s = payment();
    let r = pay(&s, "?order=42", r#"{"data":{"status":"paid","amount":12.5}}"#);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, r#"{"ok":true,"order":"42","request":"abc-123","tags":null}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    let id = r.header("x-wf-execution").expect("execution id").to_string();
    let log = s.wait_log(&format!("execution={id} outcome=responded status=200"));
    assert!(log.contains(&format!("paid 42 workflow=payment execution={id}")), "{log}");

    let r = pay(&s, "?order=7", r#"{"data":{"status":"pending"}}"#);
    assert_eq!((r.status, r.body.as_str()), (202, "pending 7"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));

    let r = pay(&s, "?order=7", r#"{"data":{"status":"other"}}"#);
    assert_eq!((r.status, r.json()), (422, serde_json::json!({"ok": false, "status": "other"})));

    let r = pay(&s, "?order=7", r#"{"data":{"status":"silent"}}"#);
    assert_eq!((r.status, r.body.as_str()), (422, r#"{"ok":false,"status":"silent"}"#));

    let r = pay(&s, "?order=7", r#"{"data":{"status":"empty"}}"#);
    assert_eq!((r.status, r.body.as_str()), (204, ""));

    let r = pay(&s, "?order=7", r#"{"data":{"status":"typed"}}"#);
    assert_eq!(
        (r.status, r.body.as_str(), r.header("content-type")),
        (200, "<ok/>", Some("application/xml"))
    );
}

#[test]
fn failures_answer_500_without_the_reason() {
    let s = payment();
    for (status, reason) in [("fail", "refused 9"), ("boom", "cannot compare string with number")] {
        let r = pay(&s, "?order=9", &format!(r#"{{"data":{{"status":"{status}"}}}}"#));
        assert_eq!(r.status, 500);
        let id = r.header("x-wf-execution").expect("id").to_string();
        assert_eq!(r.json(), serde_json::json!({"error": "workflow failed", "execution": id}));
        assert!(!r.body.contains(reason));
        let log = s.wait_log(&format!("execution={id} outcome=failed"));
        let line = log.lines().find(|l| l.contains(&format!("execution={id} outcome"))).unwrap_or("");
        assert!(line.contains(reason), "{line}");
    }
}

#[test]
fn completing_without_respond_answers_200_ok() {
    let src = r#"workflow w { trigger webhook { path "/w" } log "done" }"#;
    let s = Server::start(&[("w.wf", src)], &[]);
    let r = s.post("/w", &[], "");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
}

#[test]
fn routing_method_and_auth_errors() {
    let s = payment();
    let r = s.post("/nowhere", &[], "");
    assert_eq!((r.status, r.json()), (404, serde_json::json!({"error": "not found"})));
    assert!(r.header("x-wf-execution").is_some());

    let r = request(s.addr, "GET", "/hooks/payment", &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    assert_eq!(r.json()["error"], "method not allowed");

    let body = r#"{"data":{"status":"paid","amount":1}}"#;
    for auth in [None, Some(basic("psp", "wrong")), Some(basic("other", "s3cret")), Some("Bearer x".into())] {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let r = s.post("/hooks/payment?order=1", &headers, body);
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"payment\""));
        assert_eq!(r.json()["error"], "unauthorized");
    }
}

#[test]
fn body_rules_in_spec_order() {
    let s = Server::start_env(
        &[("payment.wf", PAYMENT)],
        &["--max-body", "100"],
        &[("WF_TEST_SECRET", "s3cret")],
    );
    let auth = basic("psp", "s3cret");
    // 401 comes before every body rule.
    let r = s.post("/hooks/payment?order=1", &[("Content-Type", "text/plain")], &"x".repeat(500));
    assert_eq!(r.status, 401);
    let r = s.post(
        "/hooks/payment?order=1",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        &"x".repeat(500),
    );
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.json()["error"], "body too large");
    let r = s.post(
        "/hooks/payment?order=1",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        "status=paid",
    );
    assert_eq!(r.status, 415);
    let r = s.post(
        "/hooks/payment?order=1",
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        "{\n \"data\": ",
    );
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(
        (j["error"].as_str(), j["line"].as_u64(), j["column"].as_u64()),
        (Some("malformed JSON"), Some(2), Some(9))
    );
    // A chunked body has no length to check first: it is cut off while being read.
    let chunk = "x".repeat(80);
    let raw = format!(
        "POST /hooks/payment?order=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n{chunk}\r\n50\r\n{chunk}\r\n0\r\n\r\n"
    );
    assert_eq!(raw_request(s.addr, raw.as_bytes()).status, 413);
    let r = s.post(
        "/hooks/payment?order=1",
        &[("Authorization", &auth), ("Content-Type", "application/merge-patch+json")],
        r#"{"data":{"status":"pending"}}"#,
    );
    assert_eq!(r.status, 202);
}

#[test]
fn extraction_errors_name_the_field() {
    let s = payment();
    let r = pay(&s, "?order=1", r#"{"data":{"status":"paid","amount":"abc"}}"#);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        serde_json::json!({"error": "invalid request", "field": "amount", "source": "body", "path": "data.amount", "reason": "expected number, got \"abc\""})
    );
    let r = pay(&s, "", r#"{"data":{"status":"paid"}}"#);
    assert_eq!(r.json()["field"], "order");
    assert_eq!(r.json()["reason"], "missing");
    let r = pay(&s, "?order=1", r#"{"data":{}}"#);
    assert_eq!((r.json()["field"].as_str(), r.json()["source"].as_str()), (Some("status"), Some("body")));
}

#[test]
fn headers_and_query_are_read_like_qs() {
    let src = r#"workflow q {
      trigger webhook { path "/q" }
      extract {
        tags  = header "x-tag"
        first = query "items[0][sku]"
        all   = query "a"
        qty   = query "items[1].qty" as integer default 1
        name  = query "name"
      }
      respond 200 json { tags: tags, first: first, all: all, qty: qty, name: name }
    }"#;
    let s = Server::start(&[("q.wf", src)], &[]);
    let raw = "POST /q?items[0][sku]=A1&items[1][qty]=3&a=1&a=2&name=J%C3%BCrgen+M HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Tag: one\r\nx-tag: two\r\nContent-Length: 0\r\n\r\n";
    let r = raw_request(s.addr, raw.as_bytes());
    assert_eq!(
        r.json(),
        serde_json::json!({"tags": "one, two", "first": "A1", "all": ["1", "2"], "qty": 3, "name": "Jürgen M"})
    );
}

#[test]
fn async_answers_at_once_and_runs_after() {
    let src = r#"
    workflow a {
      trigger webhook { path "/a" mode async }
      extract { n = body "n" as integer required }
      log "working on ${n}"
      if n == 3 { fail "three is bad" }
    }
    workflow b {
      trigger webhook { path "/b" mode async respond 202 { header "X-Queued" = "yes" json { queued: true } } }
      log "b ran"
    }"#;
    let s = Server::start(&[("a.wf", src)], &[]);
    let r = s.post("/a", &[("Content-Type", "application/json")], r#"{"n": 1}"#);
    assert_eq!(
        (r.status, r.body.as_str(), r.header("content-type")),
        (200, "ok", Some("text/plain; charset=utf-8"))
    );
    let id = r.header("x-wf-execution").expect("id").to_string();
    s.wait_log(&format!("working on 1 workflow=a execution={id}"));
    s.wait_log(&format!("execution={id} outcome=completed"));
    let r = s.post("/a", &[("Content-Type", "application/json")], r#"{"n": 3}"#);
    assert_eq!(r.status, 200);
    let id = r.header("x-wf-execution").expect("id").to_string();
    s.wait_log(&format!("execution={id} outcome=failed status=500"));
    let r = s.post("/a", &[("Content-Type", "application/json")], r#"{"n": "x"}"#);
    assert_eq!(r.status, 400, "validation answers the caller before queueing");
    let r = s.post("/b", &[], "");
    assert_eq!((r.status, r.body.as_str(), r.header("x-queued")), (202, r#"{"queued":true}"#, Some("yes")));
    s.wait_log("b ran");
}

#[test]
fn a_full_async_queue_answers_503_with_retry_after() {
    // One queue slot and executions that take milliseconds: concurrent callers overflow it.
    let src = r#"workflow busy {
      trigger webhook { path "/busy" mode async }
      extract { s = body "s" required }
      let a = upper(s + s + s + s)
      let b = lower(a + a + a + a)
      log "done ${len(b)}"
    }"#;
    let s = Server::start(&[("busy.wf", src)], &["--queue-size", "1", "--max-body", "4MiB"]);
    let addr = s.addr;
    let callers: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let body = format!("{{\"s\":\"{}\"}}", "a".repeat(256 * 1024));
                (0..6)
                    .map(|_| {
                        request(
                            addr,
                            "POST",
                            "/busy",
                            &[("Content-Type", "application/json")],
                            body.as_bytes(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<_> = callers.into_iter().flat_map(|h| h.join().expect("caller")).collect();
    let full: Vec<_> = answers.iter().filter(|r| r.status == 503).collect();
    assert!(answers.iter().all(|r| r.status == 200 || r.status == 503), "{answers:?}");
    assert!(!full.is_empty(), "the queue never filled");
    assert_eq!(full[0].header("retry-after"), Some("1"));
    assert_eq!(full[0].json(), serde_json::json!({"error": "queue full"}));
    let accepted = answers.len() - full.len();
    s.wait_log(&format!("done {}", 256 * 1024 * 16));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while s.log().matches("done ").count() < accepted {
        assert!(std::time::Instant::now() < deadline, "accepted executions did not all run");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn json_log_lines() {
    let src = r#"workflow j { trigger webhook { path "/j" } log "hello" respond 201 }"#;
    let s = Server::start(&[("j.wf", src)], &["--log-format", "json"]);
    let r = s.post("/j", &[], "");
    assert_eq!(r.status, 201);
    let id = r.header("x-wf-execution").expect("id").to_string();
    let log = s.wait_log("\"outcome\":\"responded\"");
    let line = log.lines().find(|l| l.contains("\"outcome\"")).expect("execution line");
    let v: serde_json::Value = serde_json::from_str(line).expect("json line");
    assert_eq!(
        (v["workflow"].as_str(), v["execution"].as_str(), v["status"].as_u64()),
        (Some("j"), Some(id.as_str()), Some(201))
    );
    assert!(v["duration_ms"].as_f64().is_some());
    let hello = log.lines().find(|l| l.contains("hello")).expect("log line");
    let v: serde_json::Value = serde_json::from_str(hello).expect("json line");
    assert_eq!(v["execution"].as_str(), Some(id.as_str()));
}

#[test]
fn serve_refuses_broken_workflows_and_missing_env() {
    let d = crate::common::Dir::new(&[("p.wf", PAYMENT)]);
    let out = std::process::Command::new(crate::common::wf_bin())
        .args(["serve", d.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0"])
        .env_remove("WF_TEST_SECRET")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WF_TEST_SECRET") && err.contains("p.wf"), "{err}");

    let out = wf(&["serve", "tests/check/unknown_variable.wf", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown variable"));

    let out = wf(&["serve", "no/such/dir", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "a missing path is an I/O error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/dir"));
}

#[test]
fn too_many_headers_get_431_and_slow_clients_do_not_block_others() {
    let src = r#"workflow w { trigger webhook { path "/w" } respond 200 text "hi" }"#;
    let s = Server::start(&[("w.wf", src)], &[]);
    let mut raw = String::from("POST /w HTTP/1.1\r\nHost: t\r\n");
    for i in 0..200 {
        raw.push_str(&format!("X-H{i}: v\r\n"));
    }
    raw.push_str("Content-Length: 0\r\n\r\n");
    assert_eq!(raw_request(s.addr, raw.as_bytes()).status, 431);

    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut c = std::net::TcpStream::connect(s.addr).expect("connect");
        std::io::Write::write_all(&mut c, b"POST /w HTTP/1.1\r\nHost: t\r\nX-Slow: ").expect("write");
        slow.push(c);
    }
    let started = std::time::Instant::now();
    let r = s.post("/w", &[], "");
    assert_eq!((r.status, r.body.as_str()), (200, "hi"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn clients_that_stall_are_timed_out() {
    let src =
        r#"workflow w { trigger webhook { path "/w" } extract { a = body "a" } respond 200 json { a: a } }"#;
    let s = Server::start(&[("w.wf", src)], &["--body-timeout", "1", "--header-timeout", "1"]);
    let started = std::time::Instant::now();
    let mut c = std::net::TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let head = "POST /w HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\": 1";
    std::io::Write::write_all(&mut c, head.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut out);
    let r = crate::common::parse_response(&out);
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.json()["error"], "timed out reading the body");
    assert!(started.elapsed() < Duration::from_secs(5));

    let mut c = std::net::TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    std::io::Write::write_all(&mut c, b"POST /w HTTP/1.1\r\nHost: t\r\n").expect("write");
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut out);
    assert!(started.elapsed() < Duration::from_secs(5), "a stalled head was not timed out");
}

#[test]
fn reload_keeps_serving_through_good_and_broken_edits() {
    let v1 = r#"workflow r { trigger webhook { path "/r" } respond 200 text "v1" }"#;
    let v2 = r#"workflow r { trigger webhook { path "/r" } respond 200 text "v2" }"#;
    let broken = r#"workflow r { trigger webhook { path "/r" } respond 200 text v3 }"#;
    let s = Server::start(&[("r.wf", v1)], &["--watch"]);
    let addr = s.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = request(addr, "POST", "/r", &[], b"");
                assert_eq!(r.status, 200, "a request failed during reload: {r:?}");
                if seen.last() != Some(&r.body) {
                    seen.push(r.body);
                }
            }
            seen
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    s.dir.write("r.wf", v2);
    s.wait_log("reloaded");
    std::thread::sleep(Duration::from_millis(200));
    s.dir.write("r.wf", broken);
    s.wait_log("reload failed");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = hammer.join().expect("no request failed");
    assert_eq!(seen, vec!["v1".to_string(), "v2".to_string()]);
    assert!(s.log().contains("unknown variable `v3`"), "{}", s.log());
    // The diagnostics read as `wf check` prints them: a log line each, no escaped newlines.
    let log = s.log();
    let failed: Vec<&str> = log.lines().skip_while(|l| !l.contains("reload failed")).collect();
    assert!(failed.len() > 3, "{log}");
    assert!(failed.iter().all(|l| !l.contains("\\n")), "{log}");
    assert!(failed.iter().any(|l| l.contains("| ") && l.contains("r.wf")), "the file is named: {log}");
    assert_eq!(request(addr, "POST", "/r", &[], b"").body, "v2");
}

#[test]
fn a_failed_reload_in_the_json_log_format_is_one_object_with_the_diagnostics_array() {
    let good = r#"workflow r { trigger webhook { path "/r" } respond 200 text "v1" }"#;
    let broken = r#"workflow r { trigger webhook { path "/r" } respond 200 text v3 }"#;
    let d = crate::common::Dir::new(&[("r.wf", good)]);
    let mut cmd = std::process::Command::new(crate::common::wf_bin());
    cmd.arg("serve").arg(d.path()).args([
        "--watch",
        "--listen",
        "127.0.0.1:0",
        "--store",
        "memory",
        "--log-format",
        "json",
    ]);
    let s = Server::spawn(cmd, d);
    // (The watcher starts just after the server says it listens.)
    std::thread::sleep(Duration::from_millis(300));
    s.dir.write("r.wf", broken);
    s.wait_log("reload failed");
    let log = s.log();
    let line = log.lines().find(|l| l.contains("reload failed")).expect("the line");
    let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object");
    assert_eq!((v["level"].as_str(), v["target"].as_str()), (Some("ERROR"), Some("wf::server")), "{v}");
    let diagnostics = v["diagnostics"].as_array().expect("an array of diagnostics");
    assert_eq!(diagnostics.len(), 1, "{v}");
    assert_eq!(diagnostics[0]["code"], "wf::unknown-variable", "{v}");
    assert!(diagnostics[0]["file"].as_str().is_some_and(|f| f.ends_with("r.wf")), "{v}");
    assert_eq!(s.post("/r", &[], "").body, "v1", "the previous workflows still serve");
}

#[test]
fn watching_a_single_file_survives_editors_that_replace_it() {
    let v1 = r#"workflow f { trigger webhook { path "/f" } respond 200 text "one" }"#;
    let d = crate::common::Dir::new(&[("f.wf", v1)]);
    let file = d.path().join("f.wf");
    let mut cmd = std::process::Command::new(crate::common::wf_bin());
    cmd.args(["serve", file.to_str().expect("utf8"), "--watch", "--listen", "127.0.0.1:0"]);
    let s = Server::spawn(cmd, d);
    assert_eq!(s.post("/f", &[], "").body, "one");
    for (n, word) in ["two", "three"].iter().enumerate() {
        s.dir.write("f.wf", &v1.replace("one", word));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while s.post("/f", &[], "").body != *word {
            assert!(std::time::Instant::now() < deadline, "edit {n} was not picked up:\n{}", s.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn http2_with_prior_knowledge() {
    let src = r#"workflow h { trigger webhook { path "/h2" } respond 200 text "over h2" }"#;
    let s = Server::start(&[("h.wf", src)], &[]);
    let Ok(out) = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-X",
            "POST",
            "-w",
            " %{http_version}",
            &format!("http://{}/h2", s.addr),
        ])
        .output()
    else {
        eprintln!("curl is not installed: skipping the HTTP/2 check");
        return;
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over h2 2");
}

#[test]
fn sighup_reloads() {
    let v1 = r#"workflow h { trigger webhook { path "/h" } respond 200 text "one" }"#;
    let s = Server::start(&[("h.wf", v1)], &[]);
    assert_eq!(s.post("/h", &[], "").body, "one");
    s.dir.write("h.wf", &v1.replace("one", "two"));
    s.signal("HUP");
    s.wait_log("reloaded");
    assert_eq!(s.post("/h", &[], "").body, "two");
}

#[test]
fn sigterm_drains_every_accepted_async_execution() {
    // Each execution copies megabytes of text, so the queue is still full when SIGTERM arrives.
    let src = r#"workflow slow {
      trigger webhook { path "/slow" mode async }
      extract { s = body "s" required  n = body "n" }
      let a = upper(s + s + s + s)
      let b = lower(a + a + a + a)
      let c = upper(b + b) + lower(b + b)
      log "done ${n} ${len(c)}"
    }"#;
    let mut s = Server::start(&[("slow.wf", src)], &["--queue-size", "100000", "--max-body", "4MiB"]);
    let (threads, per_thread) = (4, 25);
    let addr = s.addr;
    let senders: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let text = "a".repeat(256 * 1024);
                (0..per_thread)
                    .filter(|i| {
                        let body = format!("{{\"s\":\"{text}\",\"n\":{}}}", t * per_thread + i);
                        request(
                            addr,
                            "POST",
                            "/slow",
                            &[("Content-Type", "application/json")],
                            body.as_bytes(),
                        )
                        .status
                            == 200
                    })
                    .count()
            })
        })
        .collect();
    let accepted: usize = senders.into_iter().map(|h| h.join().expect("sender")).sum();
    assert_eq!(accepted, threads * per_thread);
    s.signal("TERM");
    assert_eq!(s.wait_exit(), Some(0));
    std::thread::sleep(Duration::from_millis(100));
    let log = s.log();
    let done = log.lines().filter(|l| l.contains(" done ") || l.contains(": done ")).count();
    assert_eq!(done, accepted, "every accepted execution ran before exit:\n{log}");
    let after = log.split("shutting down").nth(1).unwrap_or("");
    assert!(after.contains("done "), "some executions were still queued at SIGTERM and ran after it");
    assert!(log.contains("stopped"));
}

#[test]
fn signals_sent_as_soon_as_wf_listens_are_handled() {
    let src = r#"workflow h { trigger webhook { path "/h" } respond 200 text "one" }"#;
    for _ in 0..5 {
        let s = Server::start(&[("h.wf", src)], &[]);
        s.signal("HUP");
        assert_eq!(s.post("/h", &[], "").body, "one", "SIGHUP killed the server:\n{}", s.log());
        let mut s = Server::start(&[("h.wf", src)], &[]);
        s.signal("TERM");
        assert_eq!(s.wait_exit(), Some(0), "SIGTERM was not a graceful stop:\n{}", s.log());
    }
}

#[test]
fn a_runtime_failure_is_logged_with_its_place() {
    let src = "workflow w {\n  trigger webhook { path \"/w\" }\n  extract { n = body \"n\" }\n  let x = n < 1\n  respond 200 json { x: x }\n}\n";
    for format in ["human", "json"] {
        let s = Server::start(&[("w.wf", src)], &["--log-format", format]);
        let r = crate::common::post_json(s.addr, "/w", br#"{"n":"a"}"#);
        assert_eq!(r.status, 500);
        let log = s.wait_log("outcome");
        let line = log.lines().find(|l| l.contains("cannot compare string with number")).unwrap_or("");
        assert!(line.contains("w.wf:4:3"), "{format}: {line}");
    }
}

#[test]
fn the_readme_s_serve_command_serves_the_examples() {
    // The README's first line, with the binary the tests build: the examples with their test
    // secrets from `examples/secrets`, and nothing from the environment.
    let readme = std::fs::read_to_string(crate::common::repo().join("README.md")).expect("README.md");
    let first = readme.lines().find(|l| l.starts_with("cargo run")).expect("a serve command");
    let args: Vec<&str> = first.split(" -- ").nth(1).expect("wf's arguments").split_whitespace().collect();
    assert_eq!(args.first(), Some(&"serve"));
    let mut cmd = std::process::Command::new(crate::common::wf_bin());
    cmd.args(&args).args(["--listen", "127.0.0.1:0", "--store", "memory"]).current_dir(crate::common::repo());
    for name in ["PSP_PASSWORD", "GITHUB_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET", "SLACK_SIGNING_SECRET"] {
        cmd.env_remove(name);
    }
    let s = Server::spawn(cmd, crate::common::Dir::new(&[]));
    let auth = crate::common::basic("psp", "secret");
    let r = s.post(
        "/hooks/payment?order=42",
        &[("Authorization", &auth), ("X-Request-Id", "abc-123"), ("Content-Type", "application/json")],
        r#"{"data":{"status":"paid","amount":12.5}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}
