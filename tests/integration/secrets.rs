//! A planted `env()` secret never shows in anything wf writes: logs (both formats), answers,
//! diagnostics, `routes`, `test` output. Credentials sent by callers are never logged either.

use crate::common::{basic, request, Dir, Server};
use std::process::Command;

const SECRET: &str = "PLANTED-s3cr3t-9d2f";

const GUARDED: &str = r#"
workflow guarded {
  trigger webhook {
    path "/guarded"
    auth basic { user "psp" password env("WF_PLANTED") }
  }
  extract {
    token = header "X-Token" default ""
    n     = body "n" as integer default 0
  }
  if token == env("WF_PLANTED") {
    log "the token matched"
  }
  log "token was ${token}"
  if n == 1 {
    fail "refused, expected ${env("WF_PLANTED")}"
  }
  if n == 2 {
    let x = number(env("WF_PLANTED"))
  }
  respond 200 json { ok: true }
}

test "answers" {
  request POST "/guarded" {
    auth basic "psp" env("WF_PLANTED")
    json { n: 0 }
  }
  expect status == 200
}

test "fails on purpose, printing what it saw" {
  request POST "/guarded" {
    auth basic "psp" env("WF_PLANTED")
    header "X-Token" = env("WF_PLANTED")
    json { n: 1 }
  }
  expect status == 200
}
"#;

fn assert_clean(what: &str, out: &str) {
    let encoded = basic("psp", SECRET);
    let token = encoded.trim_start_matches("Basic ");
    assert!(!out.contains(SECRET), "{what} shows the secret:\n{out}");
    assert!(!out.contains(token), "{what} shows the encoded credentials:\n{out}");
}

fn run(args: &[&str]) -> String {
    let out = Command::new(crate::common::wf_bin())
        .args(args)
        .env("WF_PLANTED", SECRET)
        .env("NO_COLOR", "1")
        .output()
        .expect("wf runs");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_planted_secret_never_appears_in_any_output() {
    for format in ["human", "json"] {
        let s = Server::start_env(
            &[("guarded.wf", GUARDED)],
            &["--log-format", format],
            &[("WF_PLANTED", SECRET)],
        );
        let good = basic("psp", SECRET);
        let json = ("Content-Type", "application/json");
        type Call<'a> = (Vec<(&'a str, String)>, &'a str, u16);
        let calls: Vec<Call> = vec![
            (vec![("Authorization", good.clone())], r#"{"n": 0}"#, 200),
            (vec![("Authorization", good.clone()), ("X-Token", SECRET.to_string())], r#"{"n": 0}"#, 200),
            (vec![("Authorization", good.clone())], r#"{"n": 1}"#, 500),
            (vec![("Authorization", good.clone())], r#"{"n": 2}"#, 500),
            (vec![("Authorization", good.clone())], r#"{"n": "x"}"#, 400),
            (vec![("Authorization", basic("nobody", SECRET))], r#"{"n": 0}"#, 401),
            (vec![("Authorization", format!("Bearer {SECRET}"))], r#"{"n": 0}"#, 401),
            (vec![("Authorization", basic("psp", "wrong"))], r#"{"n": 0}"#, 401),
        ];
        let mut answers = String::new();
        for (headers, body, status) in &calls {
            let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.push(json);
            let r = request(s.addr, "POST", "/guarded", &h, body.as_bytes());
            assert_eq!(r.status, *status, "{body}: {r:?}");
            answers.push_str(&format!("{r:?}\n"));
        }
        assert_clean("answers", &answers);
        let log = s.wait_log("failed");
        let log = {
            // Wait for every execution's line, then read the whole log.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut log = log;
            while log.matches("guarded").count() < calls.len() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
                log = s.log();
            }
            log
        };
        assert!(log.contains("token was [redacted]"), "{format}: {log}");
        assert!(log.contains("refused, expected [redacted]"), "{format}: {log}");
        assert_clean(&format!("the {format} log"), &log);
    }

    let d = Dir::new(&[("guarded.wf", GUARDED)]);
    let dir = d.path().to_str().expect("utf8");
    for args in [
        vec!["routes", dir],
        vec!["routes", dir, "--format", "json"],
        vec!["check", dir],
        vec!["check", dir, "--format", "json"],
        vec!["test", dir],
    ] {
        let out = run(&args);
        assert_clean(&args.join(" "), &out);
    }
    let test_out = run(&["test", dir]);
    assert!(test_out.contains("1 passed") && test_out.contains("1 failed"), "{test_out}");

    // Diagnostics of a broken file that uses the secret.
    let broken = GUARDED.replace("respond 200 json { ok: true }", "respond 200 json { ok: nope }");
    let d = Dir::new(&[("broken.wf", &broken)]);
    let dir = d.path().to_str().expect("utf8");
    for args in [vec!["check", dir], vec!["check", dir, "--format", "json"], vec!["serve", dir]] {
        let out = run(&args);
        assert!(out.contains("nope"), "{out}");
        assert_clean(&args.join(" "), &out);
    }
}

#[test]
fn a_secret_may_be_an_http_url_and_is_shown_as_its_host_and_secret_nowhere_kept() {
    // The incoming-webhook URL is the secret; the service never answers in time, so the call
    // fails with a reason that names the URL.
    let up = crate::common::Upstream::start(|_, _| {
        crate::common::Reply::new(200, "ok").after(std::time::Duration::from_secs(3))
    });
    let hook = up.url("/services/T0PLANTED/B0PLANTED/XyZPLANTEDs3cr3t");
    let wf = r#"workflow notify {
  trigger webhook { path "/notify" mode async }
  http POST secret("SLACK_WEBHOOK_URL") { timeout 500ms json { text: "deployed" } }
}"#;
    let dir = Dir::new(&[("notify.wf", wf)]);
    let check = run(&["check", dir.path().to_str().expect("utf8")]);
    assert!(check.contains("ok"), "a secret URL passes check: {check}");
    let root = dir.path().to_path_buf();
    let store = root.join("state.db");
    let server = Server::start_with_store(dir, &[], &[("SLACK_WEBHOOK_URL", &hook)]);
    let id = server.post("/notify", &[], "").header("x-wf-execution").expect("id").to_string();
    let log = server.wait_log("timed out");
    assert_eq!(
        up.received().first().map(|r| r.path.clone()),
        Some("/services/T0PLANTED/B0PLANTED/XyZPLANTEDs3cr3t".into())
    );
    let host = hook.split("/services").next().unwrap_or_default().to_string();
    assert!(log.contains(&format!("{host}/[secret]")), "shown as its host: {log}");
    assert!(!log.contains("PLANTED"), "{log}");
    // What `wf runs show` prints, and every byte the store keeps.
    let store_arg = store.to_str().expect("utf8");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let shown = loop {
        let out = crate::common::wf(&["runs", "--store", store_arg, "show", &id]);
        let text = crate::common::text(&out.stdout);
        if text.contains("failed") {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "never failed: {text}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(shown.contains(&format!("{host}/[secret]")), "{shown}");
    assert!(!shown.contains("PLANTED"), "{shown}");
    for file in std::fs::read_dir(&root).expect("dir").filter_map(Result::ok) {
        let name = file.file_name().to_string_lossy().into_owned();
        if name.starts_with("state.db") {
            let bytes = std::fs::read(file.path()).expect("read");
            let found = bytes.windows(b"PLANTEDs3cr3t".len()).any(|w| w == b"PLANTEDs3cr3t");
            assert!(!found, "{name} keeps the secret URL in plain text");
        }
    }
}

/// Everything the store keeps has the workflow's secrets redacted: a step's request (URL, `run`
/// arguments), a step's result (a service that echoes a secret back), log lines, the kept request
/// (a secret in the query or in a header whose name does not say so) and a sync answer kept for
/// duplicates. Every byte of the store's files is searched.
#[test]
fn a_secret_echoed_back_or_sent_anywhere_is_kept_nowhere_in_the_store() {
    let up = crate::common::Upstream::start(|_, r| {
        let echo = format!("{{\"seen\":\"{}\"}}", r.header("x-api-key").unwrap_or_default());
        crate::common::Reply::new(200, &echo).header("x-echo", r.header("x-api-key").unwrap_or_default())
    });
    let wf = format!(
        r#"workflow relay {{
  trigger webhook {{ path "/relay" dedupe delivery }}
  extract {{
    delivery = header "X-Delivery" required
    key = query "key"
  }}
  let r = http POST "{}?region=${{env("RELAY_REGION")}}" {{
    header "X-Api-Key" = secret("RELAY_KEY")
    json {{ ok: true }}
  }}
  let echo = run "echo" [env("RELAY_REGION")]
  log "the service saw ${{r.json.seen}}"
  respond 200 json {{ seen: r.json.seen, region: echo.stdout }}
}}"#,
        up.url("/echo")
    );
    let dir = Dir::new(&[("relay.wf", &wf)]);
    let root = dir.path().to_path_buf();
    let key = "PLANTED-key-77f1";
    let region = "PLANTED-region-5c";
    let server =
        Server::start_with_store(dir, &["--allow-run"], &[("RELAY_KEY", key), ("RELAY_REGION", region)]);
    let target = format!("/relay?key={key}");
    let r = server.post(&target, &[("X-Delivery", "d-1"), ("X-Forwarded-Key", key)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(key), "the caller gets what the workflow answers: {}", r.body);
    let id = r.header("x-wf-execution").expect("id").to_string();
    let store = root.join("state.db");
    let store_arg = store.to_str().expect("utf8");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let shown = loop {
        let out = crate::common::wf(&["runs", "--store", store_arg, "--format", "json", "show", &id]);
        let text = crate::common::text(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if v["outcome"] == "responded" && v["steps"].as_array().is_some_and(|s| s.len() == 2) {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "never kept: {text}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // A duplicate gets the kept answer.
    let again = server.post(&target, &[("X-Delivery", "d-1")], "");
    assert_eq!(again.header("x-wf-duplicate-of"), Some(id.as_str()));
    // Stopped (its last writes kept), its files still there.
    let mut server = server;
    server.signal("TERM");
    server.wait_exit();
    for secret in [key, region] {
        assert!(!shown.contains(secret), "wf runs show prints {secret}: {shown}");
        for file in std::fs::read_dir(&root).expect("dir").filter_map(Result::ok) {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.starts_with("state.db") {
                let bytes = std::fs::read(file.path()).expect("read");
                let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                assert!(!found, "{name} keeps {secret} in plain text");
            }
        }
    }
}
