//! Looking back through the real binary: `wf runs retry --status failed` and `--follow`, a
//! delivery exported as a test, and `wf runs replay` of the traffic kept against a change.

use crate::common::{Dir, Reply, Server, Upstream};
use crate::recovery::{runs, serve, shown_when, store};
use std::time::{Duration, Instant};

#[test]
fn runs_retry_by_status_marks_every_failed_execution_and_follow_prints_them_as_they_end() {
    let wf = r#"workflow flaky {
  trigger webhook { path "/flaky" mode async }
  log "ran"
  fail "always"
}
workflow fine {
  trigger webhook { path "/fine" }
  respond 200 text "ok"
}"#;
    let server = serve(Dir::new(&[("flaky.wf", wf)]), &[]);
    let store = store(&server);
    // Follows the store from now on, as JSON lines.
    let (mut follow, lines) = crate::common::follow(&store);
    std::thread::sleep(Duration::from_millis(700));
    let ids: Vec<String> = (0..3)
        .map(|_| server.post("/flaky", &[], "").header("x-wf-execution").expect("id").to_string())
        .collect();
    assert_eq!(server.post("/fine", &[], "").status, 200);
    for id in &ids {
        shown_when(&store, id, |s| s["outcome"] == "failed");
    }
    // Without an id, `--status failed` is required.
    let out = crate::common::wf(&["runs", "--store", &store, "retry"]);
    assert_eq!(out.status.code(), Some(2), "{}", crate::common::text(&out.stderr));
    let out =
        crate::common::wf(&["runs", "--store", &store, "retry", "--status", "failed", "--workflow", "flaky"]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    assert!(
        crate::common::text(&out.stdout).starts_with("3 failed execution(s) will run again"),
        "{}",
        crate::common::text(&out.stdout)
    );
    assert!(!crate::common::text(&out.stderr).contains("retrying"), "no progress line off a terminal");
    // Each runs again (and fails again): its log line twice.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.log().matches("ran").count() < 6 {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // `--follow` printed each execution once, as it ended: the three and the sync one.
    let printed: Vec<serde_json::Value> = (0..4)
        .map(|_| lines.recv_timeout(Duration::from_secs(10)).expect("a line"))
        .map(|l| serde_json::from_str(&l).expect("JSON"))
        .collect();
    let _ = follow.kill();
    let _ = follow.wait();
    let of = |id: &str| printed.iter().filter(|p| p["id"] == id).count();
    for id in &ids {
        assert!(of(id) >= 1, "{id} not followed: {printed:?}");
    }
    assert!(printed.iter().any(|p| p["workflow"] == "fine"), "{printed:?}");
    // On a terminal (`script` gives it one), a progress line, cleared before the summary.
    let command =
        format!("{} runs --store {store} retry --status failed --workflow flaky", crate::common::wf_bin());
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux) runs");
    let shown = crate::common::text(&out.stdout);
    assert!(
        shown.contains("\rretrying 0 of 3\x1b[K") && shown.contains("\r\x1b[K3 failed execution(s)"),
        "{shown:?}"
    );
}

#[test]
fn runs_export_makes_a_delivery_a_test_that_passes_beside_its_workflow() {
    let up = Upstream::start(|_, _| Reply::new(201, r#"{"queued":true}"#));
    let wf = format!(
        r#"workflow issues {{
  trigger webhook {{
    path "/issues"
    auth github secret("GH_SECRET")
  }}
  extract {{
    event  = header "X-GitHub-Event" required
    number = body "issue.number" as integer
  }}
  let ticket = http POST "{}" {{ json {{ number: number }} }}
  let stamp = run "echo" ["${{event}}"]
  respond 200 json {{ event: event, number: number, queued: ticket.json.queued, said: stamp.stdout }}
}}"#,
        up.url("/tickets")
    );
    let server = Server::start_with_store(
        Dir::new(&[("issues.wf", &wf)]),
        &["--allow-run", "--keep-answers"],
        &[("GH_SECRET", "gh-live-secret")],
    );
    let store = store(&server);
    let root = server.dir.path().to_path_buf();
    // A real delivery, signed as GitHub signs it, with a body large enough to go to a file.
    let body = format!(r#"{{"action":"opened","issue":{{"number":1347,"body":"{}"}}}}"#, "x".repeat(3000));
    let sig = format!(
        "sha256={}",
        crate::providers::hex(&crate::providers::openssl_hmac("sha256", b"gh-live-secret", body.as_bytes()))
    );
    let r = server.post(
        "/issues",
        &[("X-GitHub-Event", "issues"), ("X-Hub-Signature-256", &sig), ("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.header("x-wf-execution").expect("id").to_string();
    shown_when(&store, &id, |s| s["steps"].as_array().is_some_and(|st| st.len() == 2));
    let out = std::process::Command::new(crate::common::wf_bin())
        .args(["runs", "--store", &store, "export", &id, "--files", "issues.wf"])
        .current_dir(&root)
        .output()
        .expect("export");
    let block = crate::common::text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    assert!(block.contains(r#"sign github secret("GH_SECRET")"#), "{block}");
    assert!(block.contains("mock http POST") && block.contains("mock run \"echo\""), "{block}");
    assert!(block.contains(&format!("text file \"payloads/{id}.txt\"")), "{block}");
    assert!(block.contains(r#"expect text == "{\"event\":\"issues\",\"number\":1347"#), "{block}");
    assert!(!block.contains("gh-live-secret"), "{block}");
    // Pasted beside its workflow, it passes: no network, no secret set (the test value signs).
    std::fs::write(root.join("issues_test.wf"), &block).expect("write");
    let out = std::process::Command::new(crate::common::wf_bin())
        .args(["test", "issues.wf", "issues_test.wf"])
        .current_dir(&root)
        .env_remove("GH_SECRET")
        .output()
        .expect("wf test");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        crate::common::text(&out.stdout),
        crate::common::text(&out.stderr)
    );
    assert_eq!(up.received().len(), 1, "the test called nothing");
}

#[test]
fn runs_replay_says_what_a_change_would_have_done_to_the_traffic_kept_and_sends_nothing() {
    let up = Upstream::start(|_, _| Reply::new(200, r#"{"ok":true}"#));
    let source = |status: u16, extra: &str, sent: &str, small: &str| {
        format!(
            r#"workflow orders {{
  trigger webhook {{ path "/orders" }}
  extract {{ amount = body "amount" as number required }}
  let r = http POST "{url}" {{ json {{ {sent} }} }}
  {extra}
  if amount > 100 {{
    respond {status} json {{ big: true }}
  }}
  respond 200 json {{ {small} }}
}}"#,
            url = up.url("/ledger")
        )
    };
    let server = serve(
        Dir::new(&[("orders.wf", &source(200, "", "amount: amount", "big: false"))]),
        &["--keep-answers"],
    );
    let store = store(&server);
    let root = server.dir.path().to_path_buf();
    let json = ("Content-Type", "application/json");
    let small =
        server.post("/orders", &[json], r#"{"amount": 5}"#).header("x-wf-execution").expect("id").to_string();
    let big = server
        .post("/orders", &[json], r#"{"amount": 500}"#)
        .header("x-wf-execution")
        .expect("id")
        .to_string();
    for id in [&small, &big] {
        shown_when(&store, id, |s| s["steps"].as_array().is_some_and(|st| st.len() == 1));
    }
    let calls = up.received().len();
    let replay = |files: &str| {
        let out = std::process::Command::new(crate::common::wf_bin())
            .args(["runs", "--store", &store, "replay", "--workflow", "orders", "--files", files])
            .current_dir(&root)
            .output()
            .expect("replay");
        (out.status.code(), crate::common::text(&out.stdout), crate::common::text(&out.stderr))
    };
    // The workflow as it is: the same answers, the same effects.
    let (code, out, err) = replay("orders.wf");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.ends_with("2 replayed: 2 same, 0 changed\n"), "{out}");
    // A change: big orders answered 202, and a second call for every order.
    std::fs::create_dir_all(root.join("next")).expect("dir");
    let extra = format!(r#"http POST "{}" {{ json {{ amount: amount }} }}"#, up.url("/audit"));
    let next = source(202, &extra, "amount: amount, cents: amount * 100", "big: false, currency: \"EUR\"");
    std::fs::write(root.join("next/orders.wf"), next).expect("write");
    let (code, out, err) = replay("next/orders.wf");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains(&format!("{big}  orders                changed")), "{out}");
    assert!(out.contains("answer  200 → 202"), "{out}");
    assert!(out.contains(&format!("+ http POST {}", up.url("/audit"))), "{out}");
    // The call made to the same place with another body, and the answer's JSON by path.
    assert!(
        out.contains(&format!("~ http POST {}: body", up.url("/ledger"))) && out.contains("cents"),
        "{out}"
    );
    assert!(out.contains(r#"answer json.currency: null → "EUR""#), "{out}");
    assert!(out.ends_with("2 replayed: 0 same, 2 changed\n"), "{out}");
    // Nothing was sent, nothing stored.
    assert_eq!(up.received().len(), calls, "replay called nothing");
    assert_eq!(runs(&store, &["--workflow", "orders"]).as_array().map_or(0, Vec::len), 2);
}

/// The peak memory (kB) of process `pid` as last seen, polled until it exits.
fn peak_while_running(child: &mut std::process::Child) -> u64 {
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    while child.try_wait().expect("wait").is_none() {
        if let Ok(text) = std::fs::read_to_string(&status) {
            let hwm = text.lines().find_map(|l| l.strip_prefix("VmHWM:"));
            if let Some(kb) = hwm.and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()) {
                peak = kb;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    peak
}

#[test]
fn runs_replay_reads_large_requests_a_page_at_a_time_in_bounded_memory() {
    let wf = r#"workflow big {
  trigger webhook { path "/big" }
  extract { n = header "X-N" }
  respond 200 json { n: n }
}"#;
    let server = serve(Dir::new(&[("big.wf", wf)]), &["--keep-body", "2MiB", "--max-body", "2MiB"]);
    let store = store(&server);
    // 120 executions with a 1 MiB body each: 120 MiB of requests kept.
    const COUNT: usize = 120;
    let body = "b".repeat(1 << 20);
    // In bursts of 30, each written before the next: requests that wait for the store's writer
    // longer than their share of memory allows are kept as their digest.
    for burst in 0..COUNT / 30 {
        let mut last = String::new();
        for n in burst * 30..(burst + 1) * 30 {
            let answer =
                server.post("/big", &[("X-N", &n.to_string()), ("Content-Type", "text/plain")], &body);
            assert_eq!(answer.status, 200);
            last = answer.header("x-wf-execution").expect("id").to_string();
        }
        shown_when(&store, &last, |s| s["request"]["body"].as_str().is_some_and(|b| b.len() == 1 << 20));
    }
    let mut replay = std::process::Command::new(crate::common::wf_bin())
        .args(["runs", "--store", &store, "replay", "--since", "1h", "--files", "big.wf"])
        .current_dir(server.dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("replay");
    let out = std::thread::spawn({
        let mut stdout = replay.stdout.take().expect("stdout");
        move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut text).expect("read");
            text
        }
    });
    let peak_kb = peak_while_running(&mut replay);
    let out = out.join().expect("output");
    assert!(out.ends_with(&format!("{COUNT} replayed: {COUNT} same, 0 changed\n")), "{out}");
    eprintln!("replay of {COUNT} MiB of requests: peak memory {peak_kb} kB");
    // Read whole, the requests alone would hold 120 MiB; a page at a time, a few dozen.
    assert!(peak_kb > 0 && peak_kb < 64 * 1024, "replay's peak memory: {peak_kb} kB");
}

#[test]
fn runs_export_keeps_binary_form_and_multipart_bodies_as_they_came_and_never_prints_a_credential() {
    let wf = r#"workflow uploads {
  trigger webhook {
    path "/uploads"
    auth bearer secret("UPLOAD_TOKEN")
  }
  extract {
    kind = query "kind"
    name = body "name"
  }
  respond 200 json { kind: kind, name: name }
}

workflow raw {
  trigger webhook {
    path "/raw"
    auth bearer secret("UPLOAD_TOKEN")
  }
  extract { kind = query "kind" }
  respond 200 json { kind: kind }
}"#;
    let server = Server::start_with_store(
        Dir::new(&[("uploads.wf", wf)]),
        &["--keep-answers"],
        &[("UPLOAD_TOKEN", "live-upload-token")],
    );
    let store = store(&server);
    let root = server.dir.path().to_path_buf();
    let bearer = ("Authorization", "Bearer live-upload-token");
    // Bytes that are not UTF-8, a form, and a multipart body with a file part of raw bytes.
    let binary: &[u8] = &[0x89, b'P', b'N', b'G', 0x00, 0xff, 0xfe, 0x10, 0x80];
    let multipart = [
        &b"--XyZ\r\ncontent-disposition: form-data; name=\"name\"\r\n\r\nreport\r\n"[..],
        b"--XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"r.bin\"\r\ncontent-type: application/octet-stream\r\n\r\n",
        binary,
        b"\r\n--XyZ--\r\n",
    ]
    .concat();
    let sent: [(&str, &str, &str, Vec<u8>); 3] = [
        ("/raw", "binary", "application/octet-stream", binary.to_vec()),
        ("/uploads", "form", "application/x-www-form-urlencoded", b"name=ada+lovelace&x=1".to_vec()),
        ("/uploads", "multipart", "multipart/form-data; boundary=XyZ", multipart),
    ];
    let mut ids = Vec::new();
    for (path, kind, content_type, body) in &sent {
        let r = crate::common::request(
            server.addr,
            "POST",
            &format!("{path}?kind={kind}"),
            &[bearer, ("Content-Type", content_type)],
            body,
        );
        assert_eq!(r.status, 200, "{kind}: {}", r.body);
        ids.push(r.header("x-wf-execution").expect("id").to_string());
    }
    for id in &ids {
        shown_when(&store, id, |s| s["request"].get("answer").is_some());
    }
    let mut tests = String::new();
    for id in &ids {
        let out = std::process::Command::new(crate::common::wf_bin())
            .args(["runs", "--store", &store, "export", id, "--files", "uploads.wf"])
            .current_dir(&root)
            .output()
            .expect("export");
        let block = crate::common::text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
        assert!(!block.contains("live-upload-token"), "{block}");
        assert!(block.contains(r#"Bearer ${secret("UPLOAD_TOKEN")}"#), "{block}");
        tests.push_str(&block);
    }
    // The binary body went to a file as it came; the form and the multipart body kept their
    // content types (the boundary with them).
    assert!(tests.contains(&format!("bytes file \"payloads/{}.bin\"", ids[0])), "{tests}");
    assert_eq!(std::fs::read(root.join(format!("payloads/{}.bin", ids[0]))).expect("payload"), binary);
    assert!(tests.contains(r#"content_type "application/x-www-form-urlencoded""#), "{tests}");
    assert!(tests.contains(r#"expect text == "{\"kind\":\"form\",\"name\":\"ada lovelace\"}""#), "{tests}");
    assert!(tests.contains(r#"content_type "multipart/form-data; boundary=XyZ""#), "{tests}");
    assert!(tests.contains(r#"expect text == "{\"kind\":\"multipart\",\"name\":\"report\"}""#), "{tests}");
    std::fs::write(root.join("uploads_test.wf"), &tests).expect("write");
    let out = std::process::Command::new(crate::common::wf_bin())
        .args(["test", "uploads.wf", "uploads_test.wf"])
        .current_dir(&root)
        .env_remove("UPLOAD_TOKEN")
        .output()
        .expect("wf test");
    let said = format!("{}{}", crate::common::text(&out.stdout), crate::common::text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{said}\n{tests}");
    assert!(said.contains("3 passed, 0 failed"), "{said}");
}

#[test]
fn runs_replay_finds_a_call_to_a_secret_url_the_same_though_the_journal_redacted_it() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok"));
    let wf = r#"workflow deployed {
  trigger webhook { path "/deployed" }
  http POST secret("HOOK_URL") { json { text: "deployed" } }
  respond 200 text "told"
}"#;
    let server = Server::start_with_store(
        Dir::new(&[("deployed.wf", wf)]),
        &[],
        &[("HOOK_URL", &up.url("/hooks/T000/B000/live-token"))],
    );
    let store = store(&server);
    let id = server.post("/deployed", &[], "").header("x-wf-execution").expect("id").to_string();
    let shown = shown_when(&store, &id, |s| s["steps"].as_array().is_some_and(|st| st.len() == 1));
    assert!(!shown.to_string().contains("live-token"), "{shown}");
    // Replayed where the secret is not set (its test value stands in): the same call.
    let out = std::process::Command::new(crate::common::wf_bin())
        .args(["runs", "--store", &store, "replay", &id, "--files", "deployed.wf"])
        .current_dir(server.dir.path())
        .env_remove("HOOK_URL")
        .output()
        .expect("replay");
    let said = crate::common::text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", crate::common::text(&out.stderr));
    assert!(said.ends_with("1 replayed: 1 same, 0 changed\n"), "{said}");
    assert_eq!(up.received().len(), 1, "replay called nothing");
}

#[test]
fn runs_on_a_store_of_an_older_schema_says_how_to_move_it_on() {
    let dir = Dir::new(&[]);
    let path = dir.path().join("state.db");
    rusqlite::Connection::open(&path)
        .and_then(|c| c.execute_batch("PRAGMA user_version = 4;"))
        .expect("store");
    for args in [&["replay"][..], &["export", "0000000000000001"], &[]] {
        let mut all = vec!["runs", "--store", path.to_str().expect("utf8")];
        all.extend_from_slice(args);
        let out = crate::common::wf(&all);
        let err = crate::common::text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("schema 4, older than this wf's") && err.contains("wf serve"), "{err}");
    }
}
