//! Runs that wait, through the real binary: a `sleep` parks its run (a row with a due time, no
//! worker held), which goes on when due, also after `kill -9` and a restart, without sleeping
//! again or redoing what it had done.

use crate::common::{Dir, Reply, Server, Upstream};
use std::process::Command;
use std::time::{Duration, Instant};

/// `wf serve ROOT --store ROOT/state.db`, run in ROOT: started again on the same store.
fn serve_at(root: &std::path::Path, dir: Dir) -> Server {
    serve_with(root, dir, &[])
}

fn serve_with(root: &std::path::Path, dir: Dir, args: &[&str]) -> Server {
    let mut cmd = Command::new(crate::common::wf_bin());
    let store = root.join("state.db");
    cmd.arg("serve")
        .arg(root)
        .args(["--listen", "127.0.0.1:0", "--store", store.to_str().expect("utf8")])
        .args(args)
        .current_dir(root);
    Server::spawn(cmd, dir)
}

/// `/metrics` of a server started with `--admin 127.0.0.1:0`.
fn metrics(s: &Server) -> String {
    let addr = crate::common::admin_addr(s);
    crate::common::request(addr, "GET", "/metrics", &[], b"").body
}

/// `wf runs --store ROOT/state.db --format json show ID`.
pub(crate) fn show(root: &std::path::Path, id: &str) -> serde_json::Value {
    let store = root.join("state.db");
    let out = crate::common::wf(&[
        "runs",
        "--store",
        store.to_str().expect("utf8"),
        "--format",
        "json",
        "show",
        id,
    ]);
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Waits (at most `within`) until execution `id` satisfies `done`.
fn shown_when(
    root: &std::path::Path,
    id: &str,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let shown = show(root, id);
        if done(&shown) {
            return shown;
        }
        assert!(Instant::now() < deadline, "never reached: {shown}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sleep_parks_its_run_which_goes_on_when_due_even_after_kill_9_without_sleeping_again() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok"));
    let wf = format!(
        r#"workflow later {{
  trigger webhook {{ path "/later" mode async }}
  http POST "{before}"
  sleep 3s
  http POST "{after}"
  log "done"
}}"#,
        before = up.url("/before"),
        after = up.url("/after")
    );
    let dir = Dir::new(&[("later.wf", &wf)]);
    let root = dir.path().to_path_buf();
    let mut first = serve_at(&root, dir);
    let sent = Instant::now();
    let id = first.post("/later", &[], "").header("x-wf-execution").expect("id").to_string();
    // Parked on its sleep: a row with a due time, its first call done and journaled.
    let parked = shown_when(&root, &id, Duration::from_secs(10), |s| s["state"] == "waiting");
    let steps: Vec<(&str, &str)> = parked["steps"]
        .as_array()
        .map(|st| {
            st.iter().map(|s| (s["kind"].as_str().unwrap_or(""), s["state"].as_str().unwrap_or(""))).collect()
        })
        .unwrap_or_default();
    assert_eq!(steps, [("http", "finished"), ("sleep", "waiting")], "{parked}");
    assert_eq!(parked["waits_for"], "sleep", "{parked}");
    let out =
        crate::common::wf(&["runs", "--store", root.join("state.db").to_str().expect("utf8"), "show", &id]);
    assert!(
        crate::common::text(&out.stdout).contains("  waits for sleep\n"),
        "{}",
        crate::common::text(&out.stdout)
    );
    // Killed while it sleeps, started again: the run goes on when due, not 3 s after the start.
    let _ = first.child.kill();
    let _ = first.child.wait();
    // (The first server, killed, still holds the directory.)
    let _second = serve_at(&root, Dir::new(&[]));
    let ended = shown_when(&root, &id, Duration::from_secs(15), |s| s["state"] == "ended");
    let took = sent.elapsed();
    assert_eq!(ended["outcome"], "completed", "{ended}");
    assert_eq!(ended["logs"], serde_json::json!(["done"]), "{ended}");
    assert!(took >= Duration::from_secs(3), "it slept: {took:?}");
    assert!(took < Duration::from_secs(9), "taken when due, not slept again: {took:?}");
    let paths: Vec<String> = up.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/before", "/after"], "each call once");
}

/// An async workflow that asks for an approval at `up` and waits for it.
fn approval(up: &Upstream, timeout: &str) -> String {
    format!(
        r#"workflow deploy {{
  trigger webhook {{ path "/deploy" mode async }}
  let cb = callback timeout {timeout}
  http POST "{ask}" {{ json {{ approve: cb.url, id: cb.id }} }}
  let reply = wait cb
  if reply == null {{
    fail "nobody answered"
  }}
  log "approved by ${{reply.json.user}} with ${{reply.method}}"
}}"#,
        ask = up.url("/ask")
    )
}

/// The callback URL the run sent to `up`, once it did.
fn asked(up: &Upstream) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(r) = up.received().first() {
            let sent: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            return sent["approve"].as_str().expect("a URL").to_string();
        }
        assert!(Instant::now() < deadline, "the run never asked");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_run_waits_for_its_callback_which_answers_once_even_called_200_times_at_once() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok"));
    let dir = Dir::new(&[("deploy.wf", &approval(&up, "1h"))]);
    let root = dir.path().to_path_buf();
    let server = serve_with(&root, dir, &["--admin", "127.0.0.1:0"]);
    let id = server.post("/deploy", &[], "").header("x-wf-execution").expect("id").to_string();
    let url = asked(&up);
    let path =
        url.split_once(&server.addr.to_string()).map(|(_, p)| p.to_string()).expect("this server's URL");
    assert!(path.starts_with("/wf/callback/") && path.len() == "/wf/callback/".len() + 32, "{url}");
    // Waiting: parked, holding nothing, with what it waits for.
    let parked = shown_when(&root, &id, Duration::from_secs(10), |s| s["state"] == "waiting");
    assert!(parked["waits_for"].as_str().is_some_and(|w| w.starts_with("callback ")), "{parked}");
    let counted = metrics(&server);
    assert!(counted.contains("wf_waiting_runs{waits_for=\"callback\"} 1\n"), "{counted}");
    assert!(counted.contains("wf_waiting_runs{waits_for=\"sleep\"} 0\n"), "{counted}");
    assert!(!parked.to_string().contains(&path["/wf/callback/".len()..]), "the token is not kept: {parked}");
    // Tokens that are not one: 404.
    for bad in ["/wf/callback/", "/wf/callback/zz", "/wf/callback/0123456789abcdef0123456789abcdeg"] {
        assert_eq!(server.post(bad, &[], "").status, 404, "{bad}");
    }
    let unknown = format!("/wf/callback/{}", "0".repeat(32));
    assert_eq!(server.post(&unknown, &[], "").status, 404);
    let long = format!("/wf/callback/{}", "a".repeat(10_000));
    assert_eq!(server.post(&long, &[], "").status, 404);
    // Called 200 times at once: one is taken, the others are gone.
    let statuses = crate::common::post_at_once(&[server.addr], &path, 200, br#"{"user":"ada"}"#);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 199, "{statuses:?}");
    // The run goes on with the call.
    let ended = shown_when(&root, &id, Duration::from_secs(10), |s| s["state"] == "ended");
    assert_eq!(ended["outcome"], "completed", "{ended}");
    assert_eq!(ended["logs"], serde_json::json!(["approved by ada with POST"]), "{ended}");
    assert_eq!(server.post(&path, &[], "").status, 410, "a second call after the end");
    let counted = metrics(&server);
    for line in [
        "wf_callback_calls_total{result=\"taken\"} 1\n",
        "wf_callback_calls_total{result=\"gone\"} 200\n",
        "wf_callback_calls_total{result=\"unknown\"} 5\n",
        "wf_waiting_runs{waits_for=\"callback\"} 0\n",
    ] {
        assert!(counted.contains(line), "{line} in {counted}");
    }
}

#[test]
fn a_callback_survives_kill_9_and_one_not_called_in_time_gives_null() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok"));
    let dir = Dir::new(&[
        ("deploy.wf", &approval(&up, "1h")),
        (
            "late.wf",
            &approval(&up, "2s").replace("/deploy", "/late").replace("workflow deploy", "workflow late"),
        ),
    ]);
    let root = dir.path().to_path_buf();
    let mut first = serve_at(&root, dir);
    let id = first.post("/deploy", &[], "").header("x-wf-execution").expect("id").to_string();
    let url = asked(&up);
    shown_when(&root, &id, Duration::from_secs(10), |s| s["state"] == "waiting");
    let _ = first.child.kill();
    let _ = first.child.wait();
    let second = serve_at(&root, Dir::new(&[]));
    // The same token on the new server: the run goes on, its first call not made again.
    let path = format!("/wf/callback/{}", url.rsplit('/').next().unwrap_or_default());
    let r = crate::common::request(
        second.addr,
        "PUT",
        &path,
        &[("Content-Type", "application/json")],
        br#"{"user":"grace"}"#,
    );
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"ok":true}"#));
    let ended = shown_when(&root, &id, Duration::from_secs(10), |s| s["state"] == "ended");
    assert_eq!(ended["logs"], serde_json::json!(["approved by grace with PUT"]), "{ended}");
    assert_eq!(up.received().len(), 1, "asked once");
    // Not called within its 2 s: `wait` gives null, and a call after that is gone.
    let late = second.post("/late", &[], "").header("x-wf-execution").expect("id").to_string();
    let ended = shown_when(&root, &late, Duration::from_secs(10), |s| s["state"] == "ended");
    assert_eq!(
        (ended["outcome"].as_str(), ended["reason"].as_str()),
        (Some("failed"), Some("nobody answered")),
        "{ended}"
    );
    let sent: serde_json::Value = serde_json::from_slice(&up.received()[1].body).expect("json");
    let late_path = format!(
        "/wf/callback/{}",
        sent["approve"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default()
    );
    assert_eq!(second.post(&late_path, &[], "").status, 410);
}

#[test]
fn runs_cancel_ends_a_waiting_run_and_its_callback_is_gone() {
    let up = Upstream::start(|_, _| Reply::new(200, "ok"));
    let wf = format!(
        "{}\nworkflow nap {{\n  trigger webhook {{ path \"/nap\" mode async }}\n  sleep 2s\n  http POST \"{}\"\n}}\n",
        approval(&up, "1h"),
        up.url("/after-nap")
    );
    let dir = Dir::new(&[("deploy.wf", &wf)]);
    let root = dir.path().to_path_buf();
    let server = serve_at(&root, dir);
    let store = root.join("state.db").to_str().expect("utf8").to_string();
    let waiting = server.post("/deploy", &[], "").header("x-wf-execution").expect("id").to_string();
    let url = asked(&up);
    let napping = server.post("/nap", &[], "").header("x-wf-execution").expect("id").to_string();
    for id in [&waiting, &napping] {
        shown_when(&root, id, Duration::from_secs(10), |s| s["state"] == "waiting");
    }
    for id in [&waiting, &napping] {
        let out = crate::common::wf(&["runs", "--store", &store, "cancel", id]);
        assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
        let shown = show(&root, id);
        assert_eq!(
            (shown["state"].as_str(), shown["outcome"].as_str()),
            (Some("ended"), Some("cancelled")),
            "{shown}"
        );
    }
    // Its callback is gone; the sleep's end passes without the run going on.
    let path = format!("/wf/callback/{}", url.rsplit('/').next().unwrap_or_default());
    assert_eq!(server.post(&path, &[], "").status, 410);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!up.received().iter().any(|r| r.path == "/after-nap"), "a cancelled run ran on");
    assert_eq!(show(&root, &napping)["outcome"], "cancelled");
    // Cancelled again, or a run that does not wait: refused, saying why.
    let out = crate::common::wf(&["runs", "--store", &store, "cancel", &waiting]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::common::text(&out.stderr).contains("is ended, not waiting"),
        "{}",
        crate::common::text(&out.stderr)
    );
    let listed = crate::common::wf(&["runs", "--store", &store, "--status", "cancelled", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
}

#[test]
fn a_debounced_series_runs_its_newest_request_once_and_supersedes_the_others() {
    let wf = r#"workflow build {
  trigger webhook {
    path "/push"
    mode async
    debounce repo for 2s max 1h
  }
  extract {
    repo = body "repo"
    n    = body "n"
  }
  log "built ${repo ?? "nothing"} at ${n}"
}"#;
    let dir = Dir::new(&[("build.wf", wf)]);
    let root = dir.path().to_path_buf();
    let server = serve_at(&root, dir);
    let json = ("Content-Type", "application/json");
    let post = |repo: &str, n: usize| {
        let body = if repo.is_empty() {
            format!(r#"{{"n":{n}}}"#)
        } else {
            format!(r#"{{"repo":"{repo}","n":{n}}}"#)
        };
        let r = server.post("/push", &[json], &body);
        assert_eq!(r.status, 200, "{}", r.body);
        r.header("x-wf-execution").expect("id").to_string()
    };
    let a: Vec<String> = (0..20).map(|n| post("a", n)).collect();
    let b: Vec<String> = (0..3).map(|n| post("b", n)).collect();
    let none = post("", 0);
    let all: Vec<&String> = a.iter().chain(&b).chain(std::iter::once(&none)).collect();
    let ended: Vec<serde_json::Value> = all
        .iter()
        .map(|id| shown_when(&root, id, Duration::from_secs(15), |s| s["state"] == "ended"))
        .collect();
    let outcome = |i: usize| ended[i]["outcome"].as_str().unwrap_or_default().to_string();
    // Of each series, the newest ran; every other one ended superseded, without running.
    for (i, run) in ended.iter().enumerate().take(19) {
        assert_eq!(outcome(i), "superseded", "{run}");
        assert_eq!(run["logs"], serde_json::json!([]), "{run}");
    }
    assert_eq!(outcome(19), "completed");
    assert_eq!(ended[19]["logs"], serde_json::json!(["built a at 19"]));
    assert_eq!(
        (outcome(20), outcome(21), outcome(22)),
        ("superseded".into(), "superseded".into(), "completed".into())
    );
    assert_eq!(ended[22]["logs"], serde_json::json!(["built b at 2"]));
    // No key: not debounced.
    assert_eq!(ended[23]["logs"], serde_json::json!(["built nothing at 0"]));
    assert!(server.log().matches("built a").count() == 1, "{}", server.log());
    let listed = crate::common::wf(&[
        "runs",
        "--store",
        root.join("state.db").to_str().expect("utf8"),
        "--status",
        "superseded",
        "--format",
        "json",
    ]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(21), "{listed}");
}

#[test]
fn ordered_runs_of_one_key_run_one_at_a_time_in_the_order_accepted_even_across_kill_9() {
    // The service notes when each call came, and takes 400 ms to answer it.
    let tag = |b: &serde_json::Value| format!("{}{}", b["order"].as_str().unwrap_or("-"), b["n"]);
    let (up, seen) = crate::common::noting_upstream(tag, Duration::from_millis(400));
    let wf = format!(
        r#"workflow shop {{
  trigger webhook {{
    path "/shop"
    mode async
    order by order_id
  }}
  extract {{
    order_id = body "order"
    n        = body "n" as integer required
  }}
  http POST "{}" {{ json {{ order: order_id, n: n }} }}
}}"#,
        up.url("/orders")
    );
    let dir = Dir::new(&[("shop.wf", &wf)]);
    let root = dir.path().to_path_buf();
    let mut first = serve_at(&root, dir);
    let post = |s: &Server, order: &str, n: u32| {
        let body = if order.is_empty() {
            format!(r#"{{"n": {n}}}"#)
        } else {
            format!(r#"{{"order": "{order}", "n": {n}}}"#)
        };
        let r = s.post("/shop", &[("Content-Type", "application/json")], &body);
        assert_eq!(r.status, 200, "{}", r.body);
        r.header("x-wf-execution").expect("id").to_string()
    };
    // Two keys interleaved, and runs with no key (not ordered).
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(post(&first, "A", n));
        ids.push(post(&first, "B", n));
        ids.push(post(&first, "", n));
    }
    // A's second run waits for its turn: queued behind the first (in this process), or parked
    // saying so; then kill -9 while A's and B's runs are under way, and start again on the store.
    let first_a = shown_when(&root, &ids[0], Duration::from_secs(10), |s| s["state"] == "running");
    let second_a = show(&root, &ids[3]);
    assert!(
        second_a["state"] == "queued"
            || second_a["waits_for"].as_str().is_some_and(|w| w.starts_with("order")),
        "{second_a} while {first_a}"
    );
    std::thread::sleep(Duration::from_millis(600));
    let _ = first.child.kill();
    let _ = first.child.wait();
    let second = serve_at(&root, Dir::new(&[]));
    for id in &ids {
        let ended = shown_when(&root, id, Duration::from_secs(30), |s| s["state"] == "ended");
        assert_eq!(ended["outcome"], "completed", "{ended}");
    }
    drop(second);
    let seen = seen.lock().expect("lock").clone();
    // In the order accepted (a call in flight at the kill is made again, its run resumed), one
    // at a time: each call after the one before it was answered (400 ms).
    crate::common::one_at_a_time_in_order(&seen, &["A", "B"], 4, Duration::from_millis(380));
    // The runs with no key were not ordered: they did not wait for each other.
    let free: Vec<Instant> = seen.iter().filter(|(t, _)| t.starts_with('-')).map(|(_, at)| *at).collect();
    assert_eq!(free.len(), 4);
}

#[test]
fn a_parallel_loop_runs_8_at_once_and_after_kill_9_redoes_only_the_iterations_in_flight() {
    // Subscribers 0 to 7 answer at once, the others after 3 s: the kill comes while 8 to 15 are
    // in flight, after 0 to 7 were journaled.
    let up = Upstream::start(|_, r| {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let slow = body["to"].as_u64().is_some_and(|n| n >= 8);
        Reply::new(200, "ok").after(if slow { Duration::from_secs(3) } else { Duration::from_millis(50) })
    });
    let wf = format!(
        r#"workflow fan {{
  trigger webhook {{ path "/fan" mode async }}
  extract {{
    subs = body "subs" as array required
  }}
  for s in subs parallel 8 {{
    let r = http POST "{notify}" {{ json {{ to: s }} }}
    log "notified ${{s}}"
  }}
  http POST "{done}"
}}"#,
        notify = up.url("/notify"),
        done = up.url("/done")
    );
    let dir = Dir::new(&[("fan.wf", &wf)]);
    let root = dir.path().to_path_buf();
    let mut first = serve_at(&root, dir);
    let subs: Vec<u32> = (0..20).collect();
    let body = serde_json::json!({ "subs": subs }).to_string();
    let id = first
        .post("/fan", &[("Content-Type", "application/json")], &body)
        .header("x-wf-execution")
        .expect("id")
        .to_string();
    let calls = |up: &Upstream| -> Vec<(u64, String)> {
        up.received()
            .iter()
            .filter(|r| r.path == "/notify")
            .map(|r| {
                let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                (b["to"].as_u64().unwrap_or(99), r.header("idempotency-key").unwrap_or("").to_string())
            })
            .collect()
    };
    // 16 calls made: 0 to 7 answered, then 8 to 15 in flight at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls(&up).len() < 16 {
        assert!(Instant::now() < deadline, "never 16 calls: {:?}", calls(&up));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(calls(&up).len(), 16, "no more than 8 at once: {:?}", calls(&up));
    let _ = first.child.kill();
    let _ = first.child.wait();
    let before = calls(&up);
    let _second = serve_at(&root, Dir::new(&[]));
    let ended = shown_when(&root, &id, Duration::from_secs(30), |s| s["state"] == "ended");
    assert_eq!(ended["outcome"], "completed", "{ended}");
    let after = calls(&up);
    let mut made: std::collections::BTreeMap<u64, Vec<String>> = std::collections::BTreeMap::new();
    for (to, key) in &after {
        made.entry(*to).or_default().push(key.clone());
    }
    assert_eq!(made.len(), 20, "{after:?}");
    for (to, keys) in &made {
        if (8..16).contains(to) {
            // In flight at the kill: made again, with the same idempotency key.
            assert_eq!(keys.len(), 2, "subscriber {to}: {keys:?}");
            assert_eq!(keys[0], keys[1], "subscriber {to}: {keys:?}");
        } else {
            assert_eq!(keys.len(), 1, "subscriber {to} once: {keys:?} (before the kill: {before:?})");
        }
    }
    // Each iteration has a step of its own: 20 different idempotency keys.
    let distinct: std::collections::BTreeSet<&String> = made.values().map(|k| &k[0]).collect();
    assert_eq!(distinct.len(), 20);
    let logs = ended["logs"].as_array().map_or(0, Vec::len);
    assert_eq!(logs, 20, "{ended}");
    assert_eq!(up.received().iter().filter(|r| r.path == "/done").count(), 1);
}
