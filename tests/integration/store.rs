//! The embedded store through the real binary: acknowledged runs survive `kill -9`, finished
//! steps are not repeated, `wf runs` reads the history, one `wf serve` per store.

use crate::common::{Dir, Reply, Server, Upstream};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// `wf serve DIR --store DIR/state.db` (plus `args`), started in DIR.
fn serve(dir: Dir, args: &[&str]) -> Server {
    let root = dir.path().to_path_buf();
    Server::spawn(serve_command(&root, args), dir)
}

/// `wf serve ROOT --store ROOT/state.db ARGS`, run in ROOT: a restart on the same files and store.
fn serve_command(root: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(crate::common::wf_bin());
    let store = root.join("state.db");
    cmd.arg("serve")
        .arg(root)
        .args(["--listen", "127.0.0.1:0", "--store", store.to_str().expect("utf8")])
        .args(args)
        .current_dir(root);
    cmd
}

fn kill9(server: &mut Server) {
    let _ = server.child.kill();
    let _ = server.child.wait();
}

fn runs(store: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["runs", "--store", store.to_str().expect("utf8"), "--format", "json"];
    all.extend_from_slice(args);
    let out = crate::common::wf(&all);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn acknowledged_runs_survive_kill_9_and_each_completes() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok").after(Duration::from_millis(30)));
    let wf = format!(
        r#"workflow relay {{
  trigger webhook {{ path "/relay" mode async }}
  extract {{ n = body "n" required }}
  let r = http POST "{}" {{ json {{ n: n }} retry 3 }}
  log "relayed ${{n}}"
}}"#,
        up.url("/count")
    );
    let dir = Dir::new(&[("relay.wf", &wf)]);
    let root = dir.path().to_path_buf();
    let mut first = serve(dir, &["--workers", "4", "--queue-size", "4096"]);
    let mut acked = Vec::new();
    for n in 0..2000 {
        let r = first.post("/relay", &[("Content-Type", "application/json")], &format!(r#"{{"n":{n}}}"#));
        assert_eq!(r.status, 200, "{}", r.body);
        acked.push(r.header("x-wf-execution").expect("id").to_string());
    }
    // 4 workers at 30 ms a call: most runs are still waiting when the process is killed.
    kill9(&mut first);
    let done_before = up.received().len();
    assert!(done_before < 2000, "the kill came too late to test anything ({done_before} done)");

    let second = Server::spawn(serve_command(&root, &["--workers", "64"]), Dir::new(&[]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let keys = loop {
        let mut keys: HashMap<String, usize> = HashMap::new();
        for r in up.received() {
            if let Some(k) = r.header("idempotency-key") {
                *keys.entry(k.to_string()).or_default() += 1;
            }
        }
        if acked.iter().all(|id| keys.contains_key(&format!("{id}-1"))) {
            break keys;
        }
        assert!(Instant::now() < deadline, "acknowledged runs missing after the restart:\n{}", second.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    // Only calls under way at the kill may run twice (at most the 4 workers' worth).
    let twice = keys.values().filter(|&&c| c > 1).count();
    assert!(twice <= 4, "{twice} calls ran twice");
    eprintln!("kill -9 with {done_before} of 2000 forwarded: all 2000 completed after the restart; {twice} ran twice");
    drop(first);
}

#[test]
fn finished_steps_are_not_repeated_after_kill_9() {
    let wf = r#"workflow steps {
  trigger webhook { path "/steps" mode async }
  let a = run "sh" ["-c", "echo one >> trace.txt"]
  let b = run "sleep" ["2"]
  let c = run "sh" ["-c", "echo three >> trace.txt"]
  log "all done"
}"#;
    let dir = Dir::new(&[("steps.wf", wf)]);
    let root = dir.path().to_path_buf();
    let mut first = serve(dir, &["--allow-run"]);
    assert_eq!(first.post("/steps", &[], "").status, 200);
    let trace = root.join("trace.txt");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&trace).unwrap_or_default().contains("one") {
        assert!(Instant::now() < deadline, "step 1 never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    kill9(&mut first);
    // Restart on the same directory and store.
    let second = Server::spawn(serve_command(&root, &["--allow-run"]), Dir::new(&[]));
    second.wait_log("all done");
    assert_eq!(std::fs::read_to_string(&trace).expect("trace"), "one\nthree\n", "step 1 ran once");
    // The run's end is history, written off the run's path: wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let list = loop {
        let list = runs(&root.join("state.db"), &[]);
        if list[0]["outcome"] == "completed" {
            break list;
        }
        assert!(Instant::now() < deadline, "the end was not recorded: {list}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The attempts its effects made in the turn that ended it: steps 2 and 3 (step 1 was
    // answered from the journal; the turn that was killed recorded no end).
    assert_eq!(list[0]["attempts"], 2, "{list}");
    let id = list[0]["id"].as_str().expect("id").to_string();
    let shown = runs(&root.join("state.db"), &["show", &id]);
    let states: Vec<&str> =
        shown["steps"].as_array().expect("steps").iter().filter_map(|s| s["state"].as_str()).collect();
    assert_eq!(states, ["finished", "finished", "finished"]);
    drop(first);
}

#[test]
fn runs_lists_and_shows_the_history_with_credentials_masked() {
    let wf = r#"workflow hook {
  trigger webhook { path "/hook" }
  extract { kind = body "kind" required }
  if kind == "bad" { fail "bad kind" }
  log "kind ${kind}"
  respond 200 json { ok: true }
}
workflow later {
  trigger webhook { path "/later" mode async }
  log "later"
  fail "after the answer"
}"#;
    let server = serve(Dir::new(&[("hook.wf", wf)]), &[]);
    let json = ("Content-Type", "application/json");
    let ok = server.post("/hook", &[json], r#"{"kind":"good"}"#);
    let bad = server.post("/hook", &[json], r#"{"kind":"bad"}"#);
    let later =
        server.post("/later?from=test", &[("Authorization", "Bearer hunter2"), json], r#"{"a":"\"é"}"#);
    server.wait_log("later");
    let store = server.dir.path().join("state.db");
    // History is written off the request path: wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let list = loop {
        let list = runs(&store, &[]);
        let rows = list.as_array().cloned().unwrap_or_default();
        if rows.len() >= 3 && rows.iter().all(|r| r["state"] == "ended") {
            break list;
        }
        assert!(Instant::now() < deadline, "history not written: {list}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let id = |r: &crate::common::Resp| r.header("x-wf-execution").expect("id").to_string();
    let ids: Vec<&str> = list.as_array().expect("list").iter().filter_map(|r| r["id"].as_str()).collect();
    assert!(ids.contains(&id(&ok).as_str()) && ids.contains(&id(&bad).as_str()));
    let failed = runs(&store, &["--status", "failed", "--workflow", "hook"]);
    assert_eq!(failed.as_array().map(Vec::len), Some(1));
    assert_eq!(failed[0]["reason"], "bad kind");
    assert!(failed[0]["at"].as_str().is_some_and(|a| a.ends_with("hook.wf:4:22")), "{}", failed[0]);
    let shown = runs(&store, &["show", &id(&later)]);
    assert_eq!(shown["mode"], "async");
    assert_eq!(shown["status"], 200, "an async run's answer is the one its caller got");
    assert_eq!(shown["request"]["headers"]["authorization"], "[masked]");
    assert!(!shown.to_string().contains("hunter2"));
    assert_eq!(shown["request"]["method"], "POST");
    assert_eq!(shown["request"]["target"], "/later?from=test");
    assert_eq!(shown["request"]["headers"]["content-type"], "application/json");
    assert_eq!(shown["request"]["body"], r#"{"a":"\"é"}"#);
    assert_eq!(runs(&store, &["--workflow", "later"]).as_array().map(Vec::len), Some(1));
    // The human table.
    let out = crate::common::wf(&["runs", "--store", store.to_str().expect("utf8")]);
    let table = crate::common::text(&out.stdout);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("failed") && table.contains("responded"), "{table}");
}

#[test]
fn a_second_serve_on_one_store_is_refused() {
    let first = serve(Dir::new(&[("a.wf", r#"workflow a { trigger webhook { path "/a" } }"#)]), &[]);
    let store = first.dir.path().join("state.db");
    let out = Command::new(crate::common::wf_bin())
        .arg("serve")
        .arg(first.dir.path())
        .args(["--listen", "127.0.0.1:0", "--store", store.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = crate::common::text(&out.stderr);
    assert!(err.contains("in use by another `wf serve`"), "{err}");
    // The file is one store whatever names it: a symlink and a hard link are refused too (the
    // lock is the file's own, so no lock file beside it can be deleted to get in).
    let other = tempfile::tempdir().expect("tempdir");
    let symlink = other.path().join("symlink.db");
    std::os::unix::fs::symlink(&store, &symlink).expect("symlink");
    let hard = other.path().join("hard.db");
    let linked = std::fs::hard_link(&store, &hard).is_ok();
    for path in [Some(symlink), linked.then_some(hard)].into_iter().flatten() {
        let out = Command::new(crate::common::wf_bin())
            .arg("serve")
            .arg(first.dir.path())
            .args(["--listen", "127.0.0.1:0", "--store", path.to_str().expect("utf8")])
            .output()
            .expect("run");
        let err = crate::common::text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
        assert!(err.contains("in use by another `wf serve`"), "{err}");
    }
}

#[test]
fn the_default_store_is_created_with_a_gitignore() {
    let dir = Dir::new(&[("a.wf", r#"workflow a { trigger webhook { path "/a" } }"#)]);
    let mut cmd = Command::new(crate::common::wf_bin());
    cmd.arg("serve")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("WF_STORE")
        .current_dir(dir.path());
    let server = Server::spawn(cmd, dir);
    let wf_dir = server.dir.path().join(".wf");
    assert!(wf_dir.join("state.db").exists());
    assert!(std::fs::read_to_string(wf_dir.join(".gitignore")).expect("gitignore").contains('*'));
}

#[test]
fn the_same_delivery_sent_50_times_at_once_runs_once() {
    let wf = r#"workflow events {
  trigger webhook { path "/events" mode async dedupe event_id window 1h respond 202 json { accepted: true } }
  extract { event_id = body "id" }
  log "ran ${event_id}"
}"#;
    for store in ["sqlite", "memory"] {
        let dir = Dir::new(&[("events.wf", wf)]);
        let server = if store == "memory" {
            Server::start(&[("events.wf", wf)], &["--store", "memory"])
        } else {
            serve(dir, &[])
        };
        let addr = server.addr;
        let answers: Vec<crate::common::Resp> = (0..50)
            .map(|_| {
                std::thread::spawn(move || {
                    crate::common::request(
                        addr,
                        "POST",
                        "/events",
                        &[("Content-Type", "application/json")],
                        br#"{"id":"evt_1"}"#,
                    )
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        assert!(
            answers.iter().all(|a| a.status == 202 && a.body == r#"{"accepted":true}"#),
            "{store}: {answers:?}"
        );
        let firsts: Vec<&crate::common::Resp> =
            answers.iter().filter(|a| a.header("x-wf-duplicate-of").is_none()).collect();
        assert_eq!(firsts.len(), 1, "{store}");
        let first = firsts[0].header("x-wf-execution").expect("id");
        assert!(
            answers.iter().filter_map(|a| a.header("x-wf-duplicate-of")).all(|of| of == first),
            "{store}"
        );
        // Another delivery, and a delivery without an id, run.
        let json = ("Content-Type", "application/json");
        assert!(server.post("/events", &[json], r#"{"id":"evt_2"}"#).header("x-wf-duplicate-of").is_none());
        assert!(server.post("/events", &[json], r#"{}"#).header("x-wf-duplicate-of").is_none());
        server.wait_log("ran evt_2");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(server.log().matches("ran evt_1").count(), 1, "{store}: {}", server.log());
    }
}

#[test]
fn a_sync_duplicate_gets_the_first_answer_again_or_409_while_it_runs() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok").after(Duration::from_millis(1500)));
    let wf = format!(
        r#"workflow pay {{
  trigger webhook {{ path "/pay" dedupe order }}
  extract {{ order = query "order" }}
  http POST "{}"
  respond 201 {{ header "X-Order" = order json {{ order: order, at: uuid() }} }}
}}"#,
        up.url("/slow")
    );
    let server = serve(Dir::new(&[("pay.wf", &wf)]), &[]);
    let addr = server.addr;
    let first = std::thread::spawn(move || crate::common::request(addr, "POST", "/pay?order=7", &[], b""));
    // The first execution holds its key once its call is under way (not after a fixed time: on
    // a loaded machine the first request may take longer than any guess to get there).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while up.received().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let busy = server.post("/pay?order=7", &[], "");
    assert_eq!(busy.status, 409, "{}", busy.body);
    assert_eq!(busy.header("retry-after"), Some("1"));
    let first = first.join().expect("first");
    assert_eq!(first.status, 201);
    std::thread::sleep(Duration::from_millis(200));
    let again = server.post("/pay?order=7", &[], "");
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "the same answer, uuid() and all");
    assert_eq!(again.header("x-order"), Some("7"));
    assert_eq!(again.header("x-wf-duplicate-of"), first.header("x-wf-execution"));
    assert_ne!(again.header("x-wf-execution"), first.header("x-wf-execution"));
    assert_eq!(up.received().len(), 1, "the duplicate did not call again");
    // Another order runs.
    assert!(server.post("/pay?order=8", &[], "").header("x-wf-duplicate-of").is_none());
}

#[test]
fn runs_retry_resumes_a_failed_run_from_its_journal() {
    // The service is too slow the first time (the call times out: the step fails), then answers.
    // (It listens all along: a port left free for later could be taken by another test.)
    let up = Upstream::start(|i, _| {
        let slow = if i == 0 { Duration::from_secs(3) } else { Duration::ZERO };
        Reply::new(204, "").after(slow)
    });
    let wf = format!(
        r#"workflow notify {{
  trigger webhook {{ path "/notify" mode async }}
  let a = run "sh" ["-c", "echo one >> trace.txt"]
  let r = http POST "{}" {{ timeout 1s }}
  log "notified ${{r.status}}"
}}"#,
        up.url("/hook")
    );
    let server = serve(Dir::new(&[("notify.wf", &wf)]), &["--allow-run"]);
    let root = server.dir.path().to_path_buf();
    let store = root.join("state.db");
    let id = server.post("/notify", &[], "").header("x-wf-execution").expect("id").to_string();
    server.wait_log("timed out");
    let deadline = Instant::now() + Duration::from_secs(5);
    while runs(&store, &["show", &id])["outcome"] != "failed" {
        assert!(Instant::now() < deadline, "the failure was not recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = crate::common::wf(&["runs", "--store", store.to_str().expect("utf8"), "retry", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    server.wait_log("notified 204");
    assert_eq!(std::fs::read_to_string(root.join("trace.txt")).expect("trace"), "one\n", "step 1 not redone");
    assert_eq!(up.received().len(), 2, "the failed call, then the retried one");
    let deadline = Instant::now() + Duration::from_secs(5);
    while runs(&store, &["show", &id])["outcome"] != "completed" {
        assert!(Instant::now() < deadline, "{}", runs(&store, &["show", &id]));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only a failed async run can be retried.
    let again = crate::common::wf(&["runs", "--store", store.to_str().expect("utf8"), "retry", &id]);
    assert_eq!(again.status.code(), Some(1));
}

const BOTH: &str = r#"workflow later {
  trigger webhook { path "/later" mode async }
  log "later ran"
}
workflow now {
  trigger webhook { path "/now" }
  respond 200 json { ok: true }
}"#;

#[test]
fn a_corrupt_store_at_start_gives_503_to_async_callers_until_it_can_be_opened() {
    let dir = Dir::new(&[("both.wf", BOTH)]);
    let store = dir.path().join("state.db");
    std::fs::write(&store, b"this is not a SQLite database, it is a text file that got in the way")
        .expect("write");
    let server = serve(dir, &[]);
    let r = server.post("/later", &[], "");
    assert_eq!(r.status, 503, "never a 200 for a run that is not kept: {}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"], "store unavailable");
    assert_eq!(server.post("/now", &[], "").status, 200, "sync workflows keep answering");
    server.wait_log("the store is unavailable");
    // The operator moves the bad file away: the store opens within seconds, and runs are kept.
    std::fs::rename(&store, server.dir.path().join("state.db.bad")).expect("rename");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = server.post("/later", &[], "");
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the store never opened: {}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    server.wait_log("later ran");
    assert!(server.log().contains("the store is open again"));
}

#[test]
fn a_store_deleted_while_serving_is_created_again() {
    let server = serve(Dir::new(&[("both.wf", BOTH)]), &[]);
    let store = server.dir.path().join("state.db");
    assert_eq!(server.post("/later", &[], "").status, 200);
    server.wait_log("later ran");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(server.dir.path().join(format!("state.db{ext}")));
    }
    let r = server.post("/later", &[], "");
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.header("x-wf-execution").expect("id").to_string();
    assert!(store.exists(), "a new store is written at the path");
    server.wait_log("was deleted or replaced");
    let deadline = Instant::now() + Duration::from_secs(5);
    while runs(&store, &["show", &id])["id"] != id.as_str() {
        assert!(Instant::now() < deadline, "the run is not in the new store");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sync_execution_s_steps_are_in_its_history() {
    let up = Upstream::start(|_, _| Reply::new(200, r#"{"ok":true}"#));
    let wf = format!(
        r#"workflow check {{
  trigger webhook {{ path "/check" }}
  let r = http GET "{}"
  respond 200 json {{ upstream: r.json.ok }}
}}"#,
        up.url("/health")
    );
    let server = serve(Dir::new(&[("check.wf", &wf)]), &[]);
    let r = server.post("/check", &[], "");
    assert_eq!(r.json()["upstream"], true);
    let id = r.header("x-wf-execution").expect("id").to_string();
    let store = server.dir.path().join("state.db");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = crate::common::wf(&[
            "runs",
            "--store",
            store.to_str().expect("utf8"),
            "show",
            &id,
            "--format",
            "json",
        ]);
        if out.status.code() == Some(0) {
            let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            if shown["steps"].as_array().is_some_and(|s| !s.is_empty()) {
                assert_eq!(shown["mode"], "sync");
                assert_eq!(shown["steps"][0]["kind"], "http");
                assert_eq!(shown["steps"][0]["state"], "finished");
                assert_eq!(shown["steps"][0]["result"]["status"], 200);
                break;
            }
        }
        assert!(Instant::now() < deadline, "the sync execution's steps never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_request_turned_away_by_concurrency_does_not_hold_its_dedupe_key() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok").after(Duration::from_millis(500)));
    let wf = format!(
        r#"workflow pay {{
  trigger webhook {{ path "/pay" dedupe order concurrency 1 }}
  extract {{ order = query "order" }}
  http POST "{}"
  respond 200 json {{ order: order }}
}}"#,
        up.url("/slow")
    );
    let server = serve(Dir::new(&[("pay.wf", &wf)]), &[]);
    let addr = server.addr;
    let first = std::thread::spawn(move || crate::common::request(addr, "POST", "/pay?order=1", &[], b""));
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(server.post("/pay?order=2", &[], "").status, 429);
    assert_eq!(first.join().expect("first").status, 200);
    let again = server.post("/pay?order=2", &[], "");
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.header("x-wf-duplicate-of").is_none(), "order 2 never ran before");
}

#[test]
fn a_caller_that_goes_away_does_not_hold_its_dedupe_key() {
    use std::io::Write as _;
    let up = Upstream::start(|_, _| Reply::new(200, "ok").after(Duration::from_millis(800)));
    let wf = format!(
        r#"workflow pay {{
  trigger webhook {{ path "/pay" dedupe order }}
  extract {{ order = query "order" }}
  http POST "{}"
  respond 200 json {{ order: order }}
}}"#,
        up.url("/slow")
    );
    let server = serve(Dir::new(&[("pay.wf", &wf)]), &[]);
    // A caller that gives up (a provider's timeout) while the execution waits for its call.
    let mut gone = std::net::TcpStream::connect(server.addr).expect("connect");
    gone.write_all(b"POST /pay?order=9 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").expect("send");
    std::thread::sleep(Duration::from_millis(200));
    drop(gone);
    std::thread::sleep(Duration::from_millis(300));
    // Its retry runs: the key was let go, so it is neither a 409 nor someone else's answer.
    let retry = server.post("/pay?order=9", &[], "");
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert!(retry.header("x-wf-duplicate-of").is_none());
}

#[test]
fn runs_not_drained_at_sigterm_stay_kept_and_resume_at_the_next_start() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok").after(Duration::from_secs(3)));
    let wf = format!(
        r#"workflow slow {{
  trigger webhook {{ path "/slow" mode async }}
  extract {{ n = body "n" required }}
  http POST "{}" {{ json {{ n: n }} timeout 10s }}
  log "delivered ${{n}}"
}}"#,
        up.url("/slow")
    );
    let dir = Dir::new(&[("slow.wf", &wf)]);
    let root = dir.path().to_path_buf();
    let mut first = serve(dir, &["--drain-timeout", "1", "--workers", "1"]);
    let json = ("Content-Type", "application/json");
    for n in 0..3 {
        assert_eq!(first.post("/slow", &[json], &format!(r#"{{"n":{n}}}"#)).status, 200);
    }
    first.signal("TERM");
    assert_eq!(first.wait_exit(), Some(0), "nothing is dropped with a store: {}", first.log());
    assert!(first.log().contains("resume at the next start"), "{}", first.log());
    let second = Server::spawn(serve_command(&root, &[]), Dir::new(&[]));
    for n in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !second.log().contains(&format!("delivered {n}")) {
            assert!(Instant::now() < deadline, "run {n} never delivered: {}", second.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sets the soft file-size limit (`ulimit -f`, in bytes) of a running process with `prlimit`.
fn file_size_limit(server: &Server, limit: &str) {
    let pid = server.child.id().to_string();
    let out = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--fsize={limit}:")])
        .output()
        .expect("prlimit");
    assert!(out.status.success(), "prlimit: {}", crate::common::text(&out.stderr));
}

#[test]
fn a_store_that_cannot_grow_gives_503_to_async_callers_and_recovers_when_it_can() {
    if !crate::common::have(
        Command::new("prlimit").arg("--version").output().is_ok_and(|o| o.status.success()),
        "prlimit",
        "apt-get install util-linux",
    ) {
        return;
    }
    let server = serve(Dir::new(&[("both.wf", BOTH)]), &[]);
    for _ in 0..5 {
        assert_eq!(server.post("/later", &[], "").status, 200);
    }
    // The store's files may not grow past 4 KiB: every write fails as on a full disk.
    file_size_limit(&server, "4096");
    for _ in 0..5 {
        let r = server.post("/later", &[], "");
        assert_eq!(r.status, 503, "never 200 for a run that was not committed: {}", r.body);
        assert_eq!(r.header("retry-after"), Some("1"));
        // Sync workflows keep answering.
        assert_eq!(server.post("/now", &[], "").status, 200);
    }
    server.wait_log("cannot keep an accepted run");
    // Room again: runs are kept and run.
    file_size_limit(&server, "unlimited");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = server.post("/later", &[], "");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(Instant::now() < deadline, "the store did not recover:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every run acknowledged ran, and its history was written once the store could grow again
    // (history that failed to be written is tried again).
    let store = server.dir.path().join("state.db");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kept = runs(&store, &["--workflow", "later", "--status", "completed"]);
        if kept.as_array().map_or(0, Vec::len) == 6 {
            break;
        }
        assert!(Instant::now() < deadline, "{kept}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_long_retry_wait_parks_the_run_and_frees_its_worker_even_across_a_restart() {
    // The service asks to come back in 2 s, then answers.
    let up = Upstream::start(|i, _| {
        if i == 0 {
            Reply::new(503, "busy").header("retry-after", "2")
        } else {
            Reply::new(200, "ok")
        }
    });
    let wf = format!(
        r#"workflow slow {{
  trigger webhook {{ path "/slow" mode async }}
  let r = http POST "{}" {{ retry 3 }}
  log "slow ${{r.status}}"
}}

workflow quick {{
  trigger webhook {{ path "/quick" mode async }}
  log "quick ran"
}}"#,
        up.url("/slow")
    );
    let dir = Dir::new(&[("both.wf", &wf)]);
    let root = dir.path().to_path_buf();
    let store = root.join("state.db");
    // One worker: a run that waited in it would hold up every other.
    let mut first = serve(dir, &["--workers", "1", "--park-after", "1s"]);
    let id = first.post("/slow", &[], "").header("x-wf-execution").expect("id").to_string();
    first.wait_log("parked until it is due");
    assert_eq!(first.post("/quick", &[], "").status, 200);
    first.wait_log("quick ran");
    let shown = runs(&store, &["show", &id]);
    assert_eq!(shown["state"], "waiting", "{shown}");
    assert_eq!(shown["steps"][0]["state"], "waiting", "{shown}");
    // A crash while it is parked loses nothing: the next serve runs it when it is due.
    kill9(&mut first);
    let second =
        Server::spawn(serve_command(&root, &["--workers", "1", "--park-after", "1s"]), Dir::new(&[]));
    second.wait_log("slow 200");
    let calls = up.received();
    assert_eq!(calls.len(), 2, "one attempt before parking, one after");
    let keys: Vec<_> = calls.iter().map(|c| c.header("idempotency-key").unwrap_or("").to_string()).collect();
    assert_eq!(keys, [format!("{id}-1"), format!("{id}-1")], "the same key on every attempt");
    let deadline = Instant::now() + Duration::from_secs(5);
    while runs(&store, &["show", &id])["outcome"] != "completed" {
        assert!(Instant::now() < deadline, "{}", runs(&store, &["show", &id]));
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn admin(server: &Server) -> std::net::SocketAddr {
    crate::common::admin_addr(server)
}

#[test]
fn a_store_overwritten_while_serving_acknowledges_nothing_more_and_readyz_says_why() {
    let server = serve(Dir::new(&[("both.wf", BOTH)]), &["--admin", "127.0.0.1:0"]);
    let admin = admin(&server);
    assert_eq!(server.post("/later", &[], "").status, 200);
    assert_eq!(crate::common::request(admin, "GET", "/readyz", &[], b"").status, 200);
    // The database file and its write-ahead log overwritten in place (same files, garbage).
    let store = server.dir.path().join("state.db");
    for file in [store.clone(), server.dir.path().join("state.db-wal")] {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).expect("open");
        f.write_all(&[0xab; 4096]).expect("overwrite");
    }
    for _ in 0..5 {
        let r = server.post("/later", &[], "");
        assert_eq!(r.status, 503, "never 200 for a run kept in a file nobody can read: {}", r.body);
    }
    assert_eq!(server.post("/now", &[], "").status, 200, "sync workflows keep answering");
    let ready = crate::common::request(admin, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.json()["reason"].as_str().is_some_and(|r| r.contains("not a database")), "{}", ready.body);
}

#[test]
fn a_store_read_only_at_start_is_opened_once_writable_and_its_runs_resume() {
    // As root the files' modes do not stop a write: the server runs as `nobody` then.
    let root_user = nix::unistd::Uid::effective().is_root();
    if root_user
        && !crate::common::have(
            Command::new("setpriv").arg("--version").output().is_ok_and(|o| o.status.success()),
            "setpriv",
            "apt-get install util-linux",
        )
    {
        return;
    }
    let dir = Dir::new(&[("both.wf", BOTH)]);
    let root = dir.path().to_path_buf();
    // A store with runs accepted and not ended: kept by a server killed while its one worker
    // sleeps.
    let slow = r#"workflow later {
  trigger webhook { path "/later" mode async }
  let nap = run "sleep" ["30"]
}
workflow now {
  trigger webhook { path "/now" }
  respond 200 json { ok: true }
}"#;
    std::fs::write(root.join("both.wf"), slow).expect("write");
    {
        let mut first =
            Server::spawn(serve_command(&root, &["--workers", "1", "--allow-run"]), Dir::new(&[]));
        for _ in 0..3 {
            assert_eq!(first.post("/later", &[], "").status, 200);
        }
        let _ = first.child.kill();
        let _ = first.child.wait();
    }
    std::fs::write(root.join("both.wf"), BOTH).expect("write");
    let mode = |path: &std::path::Path, m: u32| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).expect("chmod");
    };
    // Readable, not writable, by the server's user.
    mode(&root, 0o755);
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        if root.join(f).exists() {
            mode(&root.join(f), 0o644);
        }
    }
    let mut cmd = serve_command(&root, &["--admin", "127.0.0.1:0"]);
    if root_user {
        let program = cmd.get_program().to_owned();
        let args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
        let mut wrapped = Command::new("setpriv");
        wrapped
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program)
            .args(args)
            .current_dir(&root);
        cmd = wrapped;
    }
    let server = Server::spawn(cmd, dir);
    let admin = admin(&server);
    let r = server.post("/later", &[], "");
    assert_eq!(r.status, 503, "nothing acknowledged while the store cannot be written: {}", r.body);
    let ready = crate::common::request(admin, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.json()["reason"].as_str().is_some_and(|r| r.contains("state.db")), "{}", ready.body);
    // Made writable: within seconds, accepts work and the runs kept before resume.
    mode(&root, 0o777);
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        if root.join(f).exists() {
            mode(&root.join(f), 0o666);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = server.post("/later", &[], "");
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the store was not opened again:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    server.wait_log("resumed runs from the store");
    assert_eq!(crate::common::request(admin, "GET", "/readyz", &[], b"").status, 200);
}

#[test]
fn rejected_requests_are_kept_only_the_newest_per_workflow_and_pruning_gives_space_back() {
    let src = r#"workflow guarded {
  trigger webhook { path "/guarded" auth bearer secret("GUARD_TOKEN") }
  respond 200 text "ok"
}"#;
    let server = Server::start_with_store(Dir::new(&[("g.wf", src)]), &[], &[("GUARD_TOKEN", "tok-9")]);
    let store = server.dir.path().join("state.db");
    // Callers without credentials, many more than are kept.
    let addr = server.addr;
    let senders: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..400 {
                    assert_eq!(crate::common::request(addr, "POST", "/guarded", &[], b"{}").status, 401);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kept = runs(&store, &["--status", "rejected", "--limit", "100000"]);
        let n = kept.as_array().map_or(0, Vec::len);
        if n == 1_000 {
            break;
        }
        assert!(n <= 1_000, "{n} rejections kept");
        assert!(Instant::now() < deadline, "{n} rejections kept");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Pruning gives the pages it frees back (the store is incrementally vacuumed). The server is
    // stopped first, its last batches written: nothing frees pages after the prune.
    let mut server = server;
    server.signal("TERM");
    server.wait_exit();
    let out =
        crate::common::wf(&["runs", "--store", store.to_str().expect("utf8"), "prune", "--older-than", "0s"]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    let conn = rusqlite::Connection::open(&store).expect("open");
    let (vacuum, free): (i64, i64) = conn
        .query_row("SELECT (SELECT auto_vacuum FROM pragma_auto_vacuum), (SELECT freelist_count FROM pragma_freelist_count)", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("pragmas");
    assert_eq!((vacuum, free), (2, 0), "incremental auto-vacuum, no free page left");
    assert_eq!(runs(&store, &["--status", "rejected"]).as_array().map_or(0, Vec::len), 0);
}
