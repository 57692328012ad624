//! Runs that wait, through the real binary: a `sleep` parks its run (a row with a due time, no
//! worker held), which goes on when due, also after `kill -9` and a restart, without sleeping
//! again or redoing what it had done.

use crate::common::{Dir, Reply, Server, Upstream};
use std::process::Command;
use std::time::{Duration, Instant};

/// `wf serve ROOT --store ROOT/state.db`, run in ROOT: started again on the same store.
fn serve_at(root: &std::path::Path, dir: Dir) -> Server {
    let mut cmd = Command::new(crate::common::wf_bin());
    let store = root.join("state.db");
    cmd.arg("serve")
        .arg(root)
        .args(["--listen", "127.0.0.1:0", "--store", store.to_str().expect("utf8")])
        .current_dir(root);
    Server::spawn(cmd, dir)
}

fn show(root: &std::path::Path, id: &str) -> serde_json::Value {
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
    let parked = shown_when(&root, &id, Duration::from_secs(10), |s| s["state"] == "parked");
    let steps: Vec<(&str, &str)> = parked["steps"]
        .as_array()
        .map(|st| {
            st.iter().map(|s| (s["kind"].as_str().unwrap_or(""), s["state"].as_str().unwrap_or(""))).collect()
        })
        .unwrap_or_default();
    assert_eq!(steps, [("http", "finished"), ("sleep", "waiting")], "{parked}");
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
