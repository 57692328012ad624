//! Answers are always well formed and logs cannot be forged: headers a workflow may not set,
//! `null` header values, informational statuses, repeated credentials, control characters in log
//! lines; and the file walker, `wf fmt`'s permissions and serving an empty directory.

use crate::common::{basic, request, text, wf, Dir, Server};

#[test]
fn a_workflow_cannot_set_framing_headers_or_wf_s_own() {
    for header in ["Content-Length", "Transfer-Encoding", "Connection", "X-Wf-Execution"] {
        let src = format!("workflow w {{ trigger webhook {{ }} respond 200 {{ header \"{header}\" = \"1\" text \"ok\" }} }}");
        let d = Dir::new(&[("w.wf", &src)]);
        let p = d.path().to_str().expect("utf8");
        let out = wf(&["check", p]);
        assert_eq!(out.status.code(), Some(1), "{header}");
        assert!(text(&out.stderr).contains("wf::forbidden-header"), "{header}: {}", text(&out.stderr));
        assert_eq!(
            wf(&["serve", p, "--listen", "127.0.0.1:0"]).status.code(),
            Some(1),
            "serve refuses {header}"
        );
    }
    let out = wf(&["check", "tests/check/informational_status.wf"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_null_header_value_leaves_the_header_out() {
    let src = "workflow w {\n  trigger webhook { path \"/w\" }\n  extract { tag = query \"tag\" }\n  respond 200 { header \"X-Tag\" = tag text \"ok\" }\n}\n";
    let s = Server::start(&[("w.wf", src)], &[]);
    let r = request(s.addr, "POST", "/w", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-tag"), None, "not the text `null`");
    assert_eq!(request(s.addr, "POST", "/w?tag=a", &[], b"").header("x-tag"), Some("a"));
}

#[test]
fn credentials_sent_twice_are_refused() {
    let src = "workflow w { trigger webhook { path \"/w\" auth basic { user \"u\" password \"p\" } } respond 200 text \"ok\" }";
    let s = Server::start(&[("w.wf", src)], &[]);
    let good = basic("u", "p");
    assert_eq!(request(s.addr, "POST", "/w", &[("Authorization", &good)], b"").status, 200);
    let bad = basic("u", "wrong");
    assert_eq!(
        request(s.addr, "POST", "/w", &[("Authorization", &good), ("Authorization", &bad)], b"").status,
        401
    );
    assert_eq!(
        request(s.addr, "POST", "/w", &[("Authorization", &bad), ("Authorization", &good)], b"").status,
        401
    );
}

#[test]
fn log_lines_cannot_be_forged_by_request_data() {
    let src = "workflow w {\n  trigger webhook { path \"/w\" }\n  extract { q = query \"q\" }\n  log \"got ${q}\"\n}\n";
    let s = Server::start(&[("w.wf", src)], &[]);
    let r = request(s.addr, "POST", "/w?q=a%0D%0AINFO%20wf%3A%3Aexecution%3A%20forged%1B%5B31m", &[], b"");
    assert_eq!(r.status, 200);
    let log = s.wait_log("outcome=completed");
    let line = log.lines().find(|l| l.contains("got a")).expect("the log line");
    assert!(line.contains("got a\\r\\nINFO wf::execution: forged\\u{1b}[31m"), "{line}");
    assert!(!log.lines().any(|l| l.starts_with("INFO wf::execution: forged")), "{log}");
    assert!(!log.contains('\u{1b}'), "a raw escape reached the log");
}

#[test]
fn the_walker_does_not_follow_symlinked_directories_and_reads_a_file_once() {
    let d = Dir::new(&[("a.wf", "workflow a { trigger webhook { } }")]);
    std::fs::create_dir(d.path().join("sub")).expect("mkdir");
    std::fs::write(d.path().join("sub/b.wf"), "workflow b { trigger webhook { } }").expect("write");
    for (link, to) in [("loop1", "."), ("loop2", "."), ("sub/up", "..")] {
        std::os::unix::fs::symlink(to, d.path().join(link)).expect("symlink");
    }
    let p = d.path().to_str().expect("utf8");
    let out = wf(&["check", p, &format!("{p}/a.wf"), &format!("{p}/sub/../a.wf")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok: 2 workflows in 2 files"), "{}", text(&out.stdout));
}

#[test]
fn fmt_keeps_a_file_s_permissions() {
    use std::os::unix::fs::PermissionsExt as _;
    let d = Dir::new(&[("w.wf", "workflow w {trigger webhook {}   }")]);
    let f = d.path().join("w.wf");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(wf(&["fmt", f.to_str().expect("utf8")]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&f).expect("read"), "workflow w {\n  trigger webhook {}\n}\n");
    assert_eq!(std::fs::metadata(&f).expect("meta").permissions().mode() & 0o777, 0o600);
}

#[test]
fn serve_refuses_a_path_without_workflows() {
    let d = Dir::new(&[("notes.txt", "no workflows here")]);
    let out = wf(&["serve", d.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no workflow in"), "{}", text(&out.stderr));
}

#[test]
fn a_log_pipe_nobody_reads_never_stops_the_server() {
    use std::io::BufRead as _;
    let d = Dir::new(&[("w.wf", "workflow w {\n  trigger webhook { path \"/w\" }\n  log \"a line of some length to fill the pipe sooner ..........................\"\n}\n")]);
    let mut child = std::process::Command::new(crate::common::wf_bin())
        .args(["serve", d.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped()) // kept open, never read
        .spawn()
        .expect("wf serve");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("line");
    let addr: std::net::SocketAddr =
        first.trim().strip_prefix("listening on http://").expect("address").parse().expect("addr");
    let _stderr = child.stderr.take();
    // Two log lines per request: far more than the pipe and the log buffer hold.
    for i in 0..6000 {
        let r = request(addr, "POST", "/w", &[], b"");
        assert_eq!(r.status, 200, "request {i} was not answered");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn secrets_come_from_the_environment_or_a_secrets_directory() {
    let src = "workflow w {\n  trigger webhook {\n    path \"/w\"\n    auth bearer secret(\"API_TOKEN\")\n  }\n  respond 200 text \"ok\"\n}\n";
    let secrets = Dir::new(&[("API_TOKEN", "from-a-file\n")]);
    let dir = secrets.path().to_str().expect("utf8").to_string();
    let s = Server::start(&[("w.wf", src)], &["--secrets-dir", &dir]);
    assert_eq!(request(s.addr, "POST", "/w", &[("Authorization", "Bearer from-a-file")], b"").status, 200);
    assert_eq!(request(s.addr, "POST", "/w", &[("Authorization", "Bearer from-a-fil")], b"").status, 401);
    let s = Server::start_env(&[("w.wf", src)], &["--secrets-dir", &dir], &[("API_TOKEN", "from-env")]);
    assert_eq!(request(s.addr, "POST", "/w", &[("Authorization", "Bearer from-env")], b"").status, 200);

    // Missing, or empty: serve refuses, naming the secret.
    let d = Dir::new(&[("w.wf", src)]);
    let out = std::process::Command::new(crate::common::wf_bin())
        .args(["serve", d.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0"])
        .env_remove("API_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("secret `API_TOKEN` is not set"), "{}", text(&out.stderr));
    let out = std::process::Command::new(crate::common::wf_bin())
        .args(["serve", d.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0"])
        .env("API_TOKEN", "")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "an empty secret lets nobody in: it stops serve");

    // wf test reads the same directory.
    let with_test = format!("{src}\ntest \"t\" {{\n  request POST \"/w\" {{ header \"Authorization\" = \"Bearer ${{secret(\"API_TOKEN\")}}\" }}\n  expect status == 200\n}}\n");
    let t = Dir::new(&[("w.wf", &with_test)]);
    let out = wf(&["test", t.path().to_str().expect("utf8"), "--secrets-dir", &dir]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn runs_that_cannot_drain_in_time_are_counted_named_and_fail_the_exit() {
    // Each run does real work (9,000 digests), so a backlog is still queued at SIGTERM.
    let heavy = "workflow slow {\n  trigger webhook { path \"/slow\" mode async }\n  extract { n = body \"n\" as array default [] }\n  let digests = [sha256(string(x)) for x in n]\n  log \"${len(digests)}\"\n}\n";
    let mut s = Server::start(&[("slow.wf", heavy)], &["--drain-timeout", "0", "--queue-size", "2000"]);
    let items: Vec<String> = (0..9000).map(|i| i.to_string()).collect();
    let body = format!("{{\"n\":[{}]}}", items.join(","));
    for _ in 0..400 {
        let r = request(s.addr, "POST", "/slow", &[("Content-Type", "application/json")], body.as_bytes());
        assert_eq!(r.status, 200);
    }
    s.signal("TERM");
    assert_eq!(s.wait_exit(), Some(1), "exit non-zero when accepted runs are dropped");
    let log = s.log();
    assert!(log.contains("accepted async executions were not run within --drain-timeout"), "{log}");
}

#[test]
fn bodies_held_in_memory_have_a_global_budget_taken_as_their_bytes_arrive() {
    use std::io::Write as _;
    let src =
        "workflow w { trigger webhook { path \"/w\" } extract { a = body \"a\" } respond 200 text \"ok\" }";
    let s = Server::start(&[("w.wf", src)], &["--max-body", "64KiB", "--max-body-memory", "100KiB"]);
    let json = ("Content-Type", "application/json");
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(59_990));
    // Fifty callers announce 60,000 bytes each and send nothing: they hold nothing, so a body as
    // large still fits.
    let head =
        b"POST /w HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n";
    let silent: Vec<std::net::TcpStream> = (0..50)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(s.addr).expect("connect");
            c.write_all(head).expect("write");
            c
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = request(s.addr, "POST", "/w", &[json], big.as_bytes());
    assert_eq!(r.status, 200, "callers that sent nothing held the budget: {}", r.body);
    // A caller that sent most of its body and stalls holds what it sent...
    let mut stalled = std::net::TcpStream::connect(s.addr).expect("connect");
    stalled.write_all(head).expect("write");
    stalled.write_all(&big.as_bytes()[..59_000]).expect("write");
    std::thread::sleep(std::time::Duration::from_millis(300));
    // ...so a second such body does not fit: 503 at once, with retry-after.
    let r = request(s.addr, "POST", "/w", &[json], big.as_bytes());
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    // A small body still fits, and once the stalled caller is gone the budget is back.
    assert_eq!(request(s.addr, "POST", "/w", &[json], b"{\"a\":1}").status, 200);
    drop(stalled);
    drop(silent);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = request(s.addr, "POST", "/w", &[json], big.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn secrets_are_redacted_wherever_they_show_up() {
    let a = "workflow a {\n  trigger webhook { path \"/a\" auth bearer secret(\"A_TOKEN\") }\n  respond 200 text \"ok\"\n}\n";
    let b = "workflow b {\n  trigger webhook { path \"/b\" }\n  extract { n = query \"n\" as number }\n  log upper(env(\"B_KEY\"))\n}\n";
    let s = Server::start_env(
        &[("a.wf", a), ("b.wf", b)],
        &[],
        &[("A_TOKEN", "tok-Alpha-1"), ("B_KEY", "key-beta-2")],
    );
    // A caller sends workflow a's token where workflow b expects a number: the 400 reason would
    // carry it; and b logs its key transformed by upper().
    assert_eq!(request(s.addr, "POST", "/b?n=tok-Alpha-1", &[], b"").status, 400);
    assert_eq!(request(s.addr, "POST", "/b?n=1", &[], b"").status, 200);
    let log = s.wait_log("outcome=completed");
    assert!(!log.contains("tok-Alpha-1") && !log.contains("KEY-BETA-2"), "{log}");
    assert!(log.contains("[redacted]"), "{log}");

    // wf test's report (answers, headers, logs) redacts too.
    let t = "workflow c {\n  trigger webhook { path \"/c\" }\n  respond 200 text env(\"C_KEY\")\n}\ntest \"shows the answer\" {\n  request POST \"/c\"\n  expect status == 500\n}\n";
    let d = Dir::new(&[("c.wf", t)]);
    let out = wf(&["test", d.path().to_str().expect("utf8"), "--env", "C_KEY=very-secret-c"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stdout).contains("very-secret-c"), "{}", text(&out.stdout));
}

#[test]
fn infer_is_linear_in_the_number_of_keys() {
    // 100,000 keys: quadratic name resolution took minutes; linear takes about a second.
    let body: Vec<String> = (0..100_000).map(|i| format!("\"k{i}\":{i}")).collect();
    let d = Dir::new(&[("big.json", &format!("{{{}}}", body.join(",")))]);
    let started = std::time::Instant::now();
    let out = wf(&["infer", "--body", d.path().join("big.json").to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).lines().count(), 100_002);
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
}

#[test]
fn cpu_heavy_executions_never_stall_other_requests() {
    let heavy = "workflow heavy {\n  trigger webhook { path \"/heavy\" }\n  extract {\n    s = body \"s\" as string\n    n = body \"n\" as array\n  }\n  let digests = [sha256(\"${s}${x}\") for x in n]\n  respond 200 json { count: len(digests) }\n}\n";
    let light = "workflow light {\n  trigger webhook { path \"/light\" }\n  respond 200 text \"ok\"\n}\n";
    let s = Server::start(&[("heavy.wf", heavy), ("light.wf", light)], &["--max-body", "4MiB"]);
    let n: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
    let body = format!("{{\"s\":\"{}\",\"n\":[{}]}}", "x".repeat(20_000), n.join(","));
    let addr = s.addr;
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                let r =
                    request(addr, "POST", "/heavy", &[("Content-Type", "application/json")], body.as_bytes());
                (r.status, started.elapsed())
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    assert_eq!(request(addr, "POST", "/light", &[], b"").status, 200);
    let light_took = started.elapsed();
    let heavy_took: Vec<_> = workers.into_iter().map(|w| w.join().expect("thread")).collect();
    eprintln!("light: {light_took:?}; heavy: {heavy_took:?}");
    assert!(heavy_took.iter().all(|(status, _)| *status == 200));
    assert!(
        light_took < std::time::Duration::from_millis(500),
        "a trivial request waited {light_took:?} behind {heavy_took:?}"
    );
}

#[test]
fn check_is_linear_in_the_number_of_bindings() {
    // 60,000 lets: names were looked up by scanning every binding (13 s in release); now a hash.
    let mut src = String::from("workflow w {\n  trigger webhook { }\n  let a0 = 1\n");
    for i in 1..60_000 {
        src.push_str(&format!("  let a{i} = [a{}]\n", i - 1));
    }
    src.push_str("}\n");
    let d = Dir::new(&[("lets.wf", &src)]);
    let started = std::time::Instant::now();
    let out = wf(&["check", d.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
}

#[test]
fn a_run_that_doubles_a_string_fails_instead_of_exhausting_memory() {
    let mut src = String::from("workflow w {\n  trigger webhook { path \"/w\" }\n  extract { s = body \"s\" as string }\n  let d0 = s\n");
    for i in 1..=20 {
        src.push_str(&format!("  let d{i} = d{} + d{}\n", i - 1, i - 1));
    }
    src.push_str("  respond 200 json { n: len(d20) }\n}\nworkflow ok { trigger webhook { path \"/ok\" } respond 200 text \"ok\" }\n");
    let s = Server::start(&[("w.wf", &src)], &[]);
    let body = format!("{{\"s\":\"{}\"}}", "x".repeat(1000));
    let r = request(s.addr, "POST", "/w", &[("Content-Type", "application/json")], body.as_bytes());
    assert_eq!(r.status, 500, "the execution fails (1 GB would be needed)");
    assert!(s.wait_log("outcome=failed").contains("passed 64 MiB (--max-memory)"));
    assert_eq!(request(s.addr, "POST", "/ok", &[], b"").status, 200, "the server is still there");
}

#[test]
fn each_let_copying_the_last_is_bounded_by_max_memory() {
    // `let aN = [aN-1, aN-1]` doubles what each `let` copies: without a bound, the process dies.
    let mut src = String::from("workflow w {\n  trigger webhook { path \"/w\" }\n  let a0 = [1]\n");
    for i in 1..=3000 {
        src.push_str(&format!("  let a{i} = [a{}, a{}]\n", i - 1, i - 1));
    }
    src.push_str("  respond 200 json { n: len(a3000) }\n}\nworkflow ok { trigger webhook { path \"/ok\" } respond 200 text \"ok\" }\n");
    let s = Server::start(&[("w.wf", &src)], &["--max-memory", "8MiB"]);
    let started = std::time::Instant::now();
    let r = request(s.addr, "POST", "/w", &[], b"");
    assert_eq!(r.status, 500);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(s.wait_log("outcome=failed").contains("passed 8 MiB (--max-memory)"));
    assert_eq!(request(s.addr, "POST", "/ok", &[], b"").status, 200, "the server is still there");
}

#[test]
fn a_let_that_reads_a_variable_for_the_last_time_moves_it_instead_of_copying() {
    // A 100,000-element array passed along 1,000 `let`s: each copy would count 1.6 MB against
    // the 8 MiB budget; each last read moves the value instead, so this costs nothing.
    let mut src = String::from(
        "workflow w {\n  trigger webhook { path \"/w\" }\n  extract { items = body \"items\" as array required }\n  let b0 = { data: items }\n",
    );
    for i in 1..1000 {
        src.push_str(&format!("  let b{i} = b{}\n", i - 1));
    }
    src.push_str("  respond 200 json { n: len(b999.data) }\n}\n");
    let s = Server::start(&[("w.wf", &src)], &["--max-memory", "8MiB"]);
    let body = format!("{{\"items\":{:?}}}", (0..100_000).collect::<Vec<u32>>());
    let r = request(s.addr, "POST", "/w", &[("Content-Type", "application/json")], body.as_bytes());
    assert_eq!(r.status, 200, "{}\n{}", r.body, s.log());
    assert_eq!(r.json()["n"], 100_000);
}

#[test]
fn a_chain_of_lets_each_wrapping_the_last_stops_at_the_nesting_limit() {
    // Row 2 of the hardening issue: 60,000 `let aN = [aN-1]`. Nothing is copied (each `aN-1`
    // moves into the new array), and past 256 levels of nesting the execution fails with a
    // clear reason: a deeper value would make copying, writing and dropping it recurse without
    // bound.
    let mut src = String::from("workflow w {\n  trigger webhook { path \"/w\" }\n  let a0 = [1]\n");
    for i in 1..60_000 {
        src.push_str(&format!("  let a{i} = [a{}]\n", i - 1));
    }
    src.push_str("  respond 200 json { n: len(a59999) }\n}\nworkflow ok { trigger webhook { path \"/ok\" } respond 200 text \"ok\" }\n");
    let s = Server::start(&[("w.wf", &src)], &[]);
    let started = std::time::Instant::now();
    let r = request(s.addr, "POST", "/w", &[], b"");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(s.wait_log("outcome=failed").contains("a value nested more than 256 levels deep"));
    assert_eq!(request(s.addr, "POST", "/ok", &[], b"").status, 200, "the server is still there");
}

#[test]
fn max_steps_bounds_the_work_of_one_execution() {
    let src = r#"workflow w {
  trigger webhook { path "/w" }
  extract { items = body "items" as array required }
  let squares = [x * x + x * 2 + 1 for x in items]
  respond 200 json { n: len(squares) }
}"#;
    let s = Server::start(&[("w.wf", src)], &["--max-steps", "5000"]);
    let small = format!("{{\"items\":{:?}}}", (0..100).collect::<Vec<u32>>());
    let r = request(s.addr, "POST", "/w", &[("Content-Type", "application/json")], small.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let big = format!("{{\"items\":{:?}}}", (0..5000).collect::<Vec<u32>>());
    let r = request(s.addr, "POST", "/w", &[("Content-Type", "application/json")], big.as_bytes());
    assert_eq!(r.status, 500);
    assert!(s
        .wait_log("outcome=failed")
        .contains("more than 5000 evaluation steps in one execution (--max-steps)"));
}

#[test]
fn an_http2_connection_that_only_pings_is_closed_when_idle() {
    let src = "workflow w { trigger webhook { path \"/w\" } respond 200 text \"ok\" }";
    let s = Server::start(&[("w.wf", src)], &["--idle-timeout", "1"]);
    let addr = s.addr;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let closed_after = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (_send, mut conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
        let mut pings = conn.ping_pong().expect("ping_pong");
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let started = std::time::Instant::now();
        // A PING every 200 ms, no request: the server closes the connection after about 1 s.
        while started.elapsed() < std::time::Duration::from_secs(10) {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if pings.ping(h2::Ping::opaque()).await.is_err() {
                break;
            }
        }
        let _ = driver.await;
        started.elapsed()
    });
    assert!(closed_after < std::time::Duration::from_secs(5), "still open after {closed_after:?}");
}
