//! `http` and `run` through the real binary: a real loopback server for calls, real processes for
//! programs.

use crate::common::{Reply, Server, Upstream};
use std::time::{Duration, Instant};

/// A sync workflow that calls `url` with these block lines and answers with the result.
fn caller(url: &str, lines: &str) -> String {
    format!(
        r#"workflow call {{
  trigger webhook {{ path "/call" }}
  let r = http POST "{url}" {{
    json {{ event: "paid" }}
    {lines}
  }}
  respond 200 json r
}}
"#
    )
}

#[test]
fn retries_on_503_then_succeeds_with_one_idempotency_key() {
    let up = Upstream::start(
        |n, _| if n < 2 { Reply::new(503, "busy") } else { Reply::new(200, r#"{"ok":true}"#) },
    );
    let wf = caller(&up.url("/events"), "retry 3");
    let server = Server::start(&[("call.wf", &wf)], &[]);
    let started = Instant::now();
    let r = server.post("/call", &[], "");
    assert_eq!(r.status, 200, "{}", server.log());
    let j = r.json();
    assert_eq!(j["status"], 200);
    assert_eq!(j["json"]["ok"], true);
    let got = up.received();
    assert_eq!(got.len(), 3, "two 503s, then the answer");
    // Backoff: about 1 s then about 2 s (±20%).
    assert!(started.elapsed() >= Duration::from_millis(2300), "{:?}", started.elapsed());
    let execution = r.header("x-wf-execution").expect("execution id");
    let keys: Vec<&str> = got.iter().filter_map(|g| g.header("idempotency-key")).collect();
    assert_eq!(keys, vec![format!("{execution}-1"); 3], "one key across attempts");
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(String::from_utf8_lossy(&got[0].body), r#"{"event":"paid"}"#);
}

#[test]
fn retry_after_is_honoured() {
    let up = Upstream::start(|n, _| {
        if n == 0 {
            Reply::new(429, "slow down").header("Retry-After", "2")
        } else {
            Reply::new(200, "fine")
        }
    });
    let server = Server::start(&[("call.wf", &caller(&up.url("/x"), "retry 1"))], &[]);
    let started = Instant::now();
    let r = server.post("/call", &[], "");
    let waited = started.elapsed();
    assert_eq!(r.json()["text"], "fine", "{}", server.log());
    assert!(waited >= Duration::from_millis(1950), "retry-after 2 was not honoured: {waited:?}");
    assert_eq!(up.received().len(), 2);
}

#[test]
fn any_status_is_a_result_and_no_retry_means_one_attempt() {
    let up = Upstream::start(|_, _| Reply::new(500, "broken").header("X-Upstream", "a"));
    let server = Server::start(&[("call.wf", &caller(&up.url("/x"), ""))], &[]);
    let j = server.post("/call", &[], "").json();
    assert_eq!(j["status"], 500);
    assert_eq!(j["text"], "broken");
    assert_eq!(j["json"], serde_json::Value::Null);
    assert_eq!(j["headers"]["x-upstream"], "a");
    assert_eq!(up.received().len(), 1);
}

#[test]
fn a_timeout_fails_the_execution() {
    let up = Upstream::start(|_, _| Reply::new(200, "late").after(Duration::from_secs(3)));
    let server = Server::start(&[("call.wf", &caller(&up.url("/slow"), "timeout 300ms"))], &[]);
    let started = Instant::now();
    let r = server.post("/call", &[], "");
    assert_eq!(r.status, 500);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    server.wait_log("timed out after 300ms");
}

#[test]
fn connection_refused_after_the_last_attempt_fails_the_execution() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let server =
        Server::start(&[("call.wf", &caller(&format!("http://127.0.0.1:{port}/gone"), "retry 1"))], &[]);
    let r = server.post("/call", &[], "");
    assert_eq!(r.status, 500);
    assert!(!r.body.contains("127.0.0.1"), "the reason is not sent: {}", r.body);
    let log = server.wait_log("failed after 2 attempt(s)");
    assert!(log.to_lowercase().contains("refused"), "{log}");
}

#[test]
fn answers_over_10_mib_fail_the_step() {
    let up = Upstream::start(|_, _| Reply {
        status: 200,
        headers: vec![],
        body: vec![b'a'; 10 * 1024 * 1024 + 1],
        delay: Duration::ZERO,
    });
    let server = Server::start(&[("call.wf", &caller(&up.url("/big"), "retry 2"))], &[]);
    assert_eq!(server.post("/call", &[], "").status, 500);
    server.wait_log("over 10 MiB");
    assert_eq!(up.received().len(), 1, "a too-large answer is not retried");
}

/// The peak resident memory of process `pid` (VmHWM), in MiB.
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    kib >> 10
}

#[test]
fn an_answer_whose_json_would_not_fit_the_execution_s_memory_fails_before_it_is_parsed() {
    // 10 MiB of `0,` (just under the 10 MiB cap on answers): two bytes of text per value, tens
    // of bytes per value once parsed.
    let zeros = [b"[".to_vec(), b"0,".repeat((10 << 20) / 2 - 2), b"0]".to_vec()].concat();
    let up = Upstream::start(move |_, _| Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: zeros.clone(),
        delay: Duration::ZERO,
    });
    let server = Server::start(&[("call.wf", &caller(&up.url("/zeros"), ""))], &["--store", "memory"]);
    let addr = server.addr;
    let calls: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || crate::common::post_json(addr, "/call", b"{}").status))
        .collect();
    for c in calls {
        assert_eq!(c.join().expect("call"), 500);
    }
    server.wait_log("more than --max-memory leaves this execution");
    let peak = peak_mib(server.child.id());
    println!("eight 10 MiB answers at once: peak RSS {peak} MiB");
    // Each answer is read whole (10 MiB, and its buffer's growth) but never parsed: parsed, one
    // would take about 160 MiB (five million values), eight over a GiB. On a loaded machine more
    // of the eight are read at once (seen: 129 MiB while another build ran).
    assert!(peak > 0 && peak < 192, "eight such answers at once peaked at {peak} MiB");
    // A small answer within the budget is still a result.
    let small = Upstream::start(|_, _| Reply::new(200, "[0,0,0]"));
    let ok = Server::start(&[("call.wf", &caller(&small.url("/small"), ""))], &["--max-memory", "1MiB"]);
    let j = ok.post("/call", &[], "").json();
    assert_eq!(j["json"], serde_json::json!([0, 0, 0]));
}

#[test]
fn forms_headers_and_async_calls() {
    let up = Upstream::start(|_, _| Reply::new(204, ""));
    let wf = format!(
        r#"workflow relay {{
  trigger webhook {{ path "/relay" mode async }}
  extract {{ text = body "text" required }}
  http POST "{}" {{
    header "Authorization" = "Bearer t0ken"
    header "X-Skip" = null
    form {{ text: text, user: {{ id: 7 }} }}
  }}
  log "relayed"
}}"#,
        up.url("/hook")
    );
    let server = Server::start(&[("relay.wf", &wf)], &[]);
    let r = server.post("/relay", &[("Content-Type", "application/json")], r#"{"text":"a b&c"}"#);
    assert_eq!(r.status, 200);
    server.wait_log("relayed");
    let got = up.received();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].method.as_str(), got[0].path.as_str()), ("POST", "/hook"));
    assert_eq!(got[0].header("authorization"), Some("Bearer t0ken"));
    assert_eq!(got[0].header("x-skip"), None);
    assert_eq!(got[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(String::from_utf8_lossy(&got[0].body), "text=a+b%26c&user%5Bid%5D=7");
}

/// A sync workflow that runs `program` with `args` and these block lines, answering the result.
fn runner(program: &str, args: &str, lines: &str) -> String {
    format!(
        r#"workflow runner {{
  trigger webhook {{ path "/run" }}
  let r = run "{program}" {args} {{
    {lines}
  }}
  respond 200 json r
}}
"#
    )
}

fn run_result(program: &str, args: &str, lines: &str) -> (serde_json::Value, Server) {
    let server = Server::start_env(
        &[("run.wf", &runner(program, args, lines))],
        &["--allow-run"],
        &[("WF_TEST_LEAK", "should-not-pass")],
    );
    let r = server.post("/run", &[], "");
    assert_eq!(r.status, 200, "{}", server.log());
    (r.json(), server)
}

#[test]
fn arguments_arrive_intact_without_a_shell() {
    let (j, _s) = run_result("printf", r#"["%s|", "a b", "it's \"q\"", "$HOME;`x`"]"#, "");
    assert_eq!(j["code"], 0);
    assert_eq!(j["stdout"], "a b|it's \"q\"|$HOME;`x`|");
}

#[test]
fn stdin_exit_codes_and_stderr() {
    let (j, _s) = run_result("cat", "", r#"stdin "hello\nworld""#);
    assert_eq!(j["stdout"], "hello\nworld");
    let (j, _s) = run_result("sh", r#"["-c", "echo oops >&2; exit 3"]"#, "");
    assert_eq!(j["code"], 3, "a non-zero exit is a result");
    assert_eq!(j["stderr"], "oops\n");
}

#[test]
fn the_environment_is_minimal() {
    let (j, _s) = run_result("env", "", r#"env "DEPLOY_REF" = "main""#);
    let out = j["stdout"].as_str().expect("stdout");
    let mut names: Vec<&str> = out.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
    names.sort_unstable();
    assert_eq!(names, ["DEPLOY_REF", "PATH", "WF_EXECUTION", "WF_WORKFLOW"], "{out}");
    assert!(out.contains("WF_WORKFLOW=runner"));
    assert!(!out.contains("should-not-pass"));
}

#[test]
fn outputs_are_capped_at_1_mib() {
    let (j, _s) = run_result("head", r#"["-c", "3000000", "/dev/zero"]"#, "");
    assert_eq!(j["code"], 0);
    assert_eq!(j["stdout"].as_str().map(|s| s.len()), Some(1 << 20));
}

#[test]
fn a_program_that_exits_ends_its_step_though_a_child_it_left_keeps_its_output_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("background.pid");
    let script = format!("sleep 30 & echo $! > {}; echo started", pidfile.display());
    let wf = runner("sh", &format!("[\"-c\", \"{script}\"]"), "timeout 5s");
    let server = Server::start(&[("run.wf", &wf)], &["--allow-run"]);
    let started = Instant::now();
    let r = server.post("/run", &[], "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(2), "it waited for the child: {:?}", started.elapsed());
    let j = r.json();
    assert_eq!((j["code"].as_i64(), j["stdout"].as_str()), (Some(0), Some("started\n")), "{j}");
    // What it left in its group is killed with it.
    let pid = std::fs::read_to_string(&pidfile).expect("pid file").trim().to_string();
    gone_within_3s(&pid);
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let wf = runner("sh", &format!("[\"-c\", \"{script}\"]"), "timeout 500ms");
    let server = Server::start(&[("run.wf", &wf)], &["--allow-run"]);
    let started = Instant::now();
    let r = server.post("/run", &[], "");
    assert_eq!(r.status, 500);
    assert!(started.elapsed() < Duration::from_secs(5));
    server.wait_log("timed out after 500ms");
    let pid = std::fs::read_to_string(&pidfile).expect("pid file").trim().to_string();
    // The grandchild (the `sleep`) was killed with its group: within a moment it is gone.
    gone_within_3s(&pid);
}

#[test]
fn a_program_that_cannot_start_fails_the_execution() {
    let server = Server::start(&[("run.wf", &runner("./no-such-program", "", ""))], &["--allow-run"]);
    assert_eq!(server.post("/run", &[], "").status, 500);
    server.wait_log("cannot start it");
}

#[test]
fn serve_refuses_run_without_allow_run() {
    let dir = crate::common::Dir::new(&[("run.wf", &runner("true", "", ""))]);
    let out = crate::common::wf(&["serve", dir.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = crate::common::text(&out.stderr);
    assert!(err.contains("workflow `runner`") && err.contains("--allow-run"), "{err}");
}

#[test]
fn relative_programs_are_found_beside_the_workflow() {
    let dir = crate::common::Dir::new(&[("run.wf", &runner("scripts/hello.sh", r#"["there"]"#, ""))]);
    std::fs::create_dir(dir.path().join("scripts")).expect("mkdir");
    let script = dir.path().join("scripts/hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"hello $1 from $(basename \"$PWD\")\"\n").expect("write");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let name = dir.path().file_name().and_then(|n| n.to_str()).expect("name").to_string();
    let mut cmd = std::process::Command::new(crate::common::wf_bin());
    cmd.arg("serve").arg(dir.path()).args(["--listen", "127.0.0.1:0", "--allow-run"]);
    let server = Server::spawn(cmd, dir);
    let j = server.post("/run", &[], "").json();
    assert_eq!(j["stdout"], format!("hello there from {name}\n"));
}

#[test]
fn dir_sets_the_working_directory_relative_to_the_workflow() {
    let dir = crate::common::Dir::new(&[("run.wf", &runner("pwd", "", r#"dir "work""#))]);
    std::fs::create_dir(dir.path().join("work")).expect("mkdir");
    let expected = format!("{}\n", dir.path().join("work").canonicalize().expect("canonical").display());
    let mut cmd = std::process::Command::new(crate::common::wf_bin());
    cmd.arg("serve").arg(dir.path()).args(["--listen", "127.0.0.1:0", "--allow-run"]);
    let server = Server::spawn(cmd, dir);
    let j = server.post("/run", &[], "").json();
    assert_eq!(j["stdout"], expected);
}

/// Runs waiting for a place of their workflow's `concurrency` hold no worker: another
/// workflow's run starts at once though every worker's worth of runs waits behind a slow one.
#[test]
fn runs_waiting_for_their_place_hold_no_worker() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok").after(Duration::from_secs(1)));
    let wf = format!(
        r#"workflow slow {{
  trigger webhook {{ path "/slow" mode async concurrency 1 }}
  http POST "{url}" {{ timeout 5s }}
}}
workflow other {{
  trigger webhook {{ path "/other" mode async }}
  log "the other ran"
}}"#,
        url = up.url("/slow")
    );
    let server = Server::start(&[("c.wf", &wf)], &["--workers", "4", "--store", "memory"]);
    for _ in 0..20 {
        assert_eq!(server.post("/slow", &[], "").status, 200);
    }
    // Every worker's worth of runs is waiting for the one place.
    std::thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    assert_eq!(server.post("/other", &[], "").status, 200);
    server.wait_log("the other ran");
    let waited = sent.elapsed();
    // (It waited 20 s before: every worker held by a run waiting for the one place. Within a
    // second here; the bound leaves room for a loaded machine.)
    assert!(waited < Duration::from_secs(3), "the other workflow's run waited {waited:?}");
    // The slow ones still run one at a time, all of them.
    assert!(up.received().len() <= 2, "one at a time: {}", up.received().len());
}

#[test]
fn concurrency_turns_sync_callers_away_and_makes_async_runs_wait() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let (active, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, m) = (active.clone(), most.clone());
    let up = Upstream::start(move |_, _| {
        let now = a.fetch_add(1, Ordering::SeqCst) + 1;
        m.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        a.fetch_sub(1, Ordering::SeqCst);
        Reply::new(200, "ok")
    });
    let wf = format!(
        r#"workflow one_at_a_time {{
  trigger webhook {{ path "/sync" concurrency 1 }}
  http POST "{url}"
}}
workflow queued {{
  trigger webhook {{ path "/async" mode async concurrency 1 }}
  http POST "{url}"
  log "queued run done"
}}"#,
        url = up.url("/slow")
    );
    let server = Server::start(&[("c.wf", &wf)], &[]);
    let addr = server.addr;
    let first = std::thread::spawn(move || crate::common::request(addr, "POST", "/sync", &[], b""));
    std::thread::sleep(Duration::from_millis(100));
    let second = server.post("/sync", &[], "");
    assert_eq!(second.status, 429, "{}", second.body);
    assert_eq!(second.header("retry-after"), Some("1"));
    assert_eq!(first.join().expect("first").status, 200);

    most.store(0, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(server.post("/async", &[], "").status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.log().matches("queued run done").count() < 3 {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "async runs beyond the concurrency waited");
}

/// wf as a webhook sender: a receiver using the official Standard Webhooks library (Python's
/// `standardwebhooks`) accepts the calls `sign standard_webhooks` makes, each attempt signed
/// anew with the call's idempotency key as its id; GitHub's header is checked by `openssl`.
#[test]
fn signed_calls_are_accepted_by_the_official_standard_webhooks_library_and_github_s_check() {
    if !crate::common::have(
        crate::common::python_module("standardwebhooks"),
        "Python's standardwebhooks",
        "pip install standardwebhooks",
    ) {
        return;
    }
    let up = Upstream::start(|i, _| if i == 0 { Reply::new(503, "busy") } else { Reply::new(204, "") });
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let wf = format!(
        r#"workflow notify {{
  trigger webhook {{ path "/notify" }}
  http POST "{url}" {{
    json {{ type: "invoice.paid", n: 7 }}
    sign standard_webhooks secret("OUT_SECRET")
    retry 1
  }}
  http POST "{url}" {{
    text "hello"
    sign github secret("GH_OUT")
  }}
  respond 200 text "sent"
}}"#,
        url = up.url("/hooks")
    );
    let server = Server::start_env(
        &[("n.wf", &wf)],
        &["--store", "memory"],
        &[("OUT_SECRET", secret), ("GH_OUT", "gh-s3cret")],
    );
    let r = server.post("/notify", &[], "");
    assert_eq!(r.status, 200, "{}", r.body);
    let calls = up.received();
    assert_eq!(calls.len(), 3, "a retried signed call, then the GitHub one");
    let verify = r#"
import json, sys
from standardwebhooks import Webhook
msg = json.load(sys.stdin)
Webhook(msg["secret"]).verify(msg["body"].encode(), msg["headers"])
print("verified")
"#;
    for call in &calls[..2] {
        let headers: serde_json::Map<String, serde_json::Value> = call
            .headers
            .iter()
            .filter(|(n, _)| n.starts_with("webhook-"))
            .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let msg = serde_json::json!({
            "secret": secret,
            "body": String::from_utf8_lossy(&call.body),
            "headers": headers,
        });
        let out = crate::common::pipe("python3", &["-c", verify], msg.to_string().as_bytes());
        assert!(out.status.success(), "the library refused it: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(call.header("webhook-id"), call.header("idempotency-key"), "the id is the call's key");
    }
    // GitHub's documented check: HMAC-SHA256 of the body with the secret, hex, `sha256=`.
    let gh = &calls[2];
    let expected = format!(
        "sha256={}",
        crate::providers::hex(&crate::providers::openssl_hmac("sha256", b"gh-s3cret", &gh.body))
    );
    assert_eq!(gh.header("x-hub-signature-256"), Some(expected.as_str()));
}

/// Waits (at most 3 s) until process `pid` is gone (or a zombie nobody reaped yet).
fn gone_within_3s(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let alive = std::process::Command::new("kill").args(["-0", pid]).status().is_ok_and(|s| s.success());
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "));
        if !alive || zombie {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}
