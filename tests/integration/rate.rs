//! A trigger's `rate N per D`, through the real binary: sync callers over it get `429` with
//! `retry-after`, async runs wait for a start (holding nothing), the window is kept in the store
//! across a restart, and a clock set back neither stalls the window nor lets a burst through.

use crate::common::{Dir, Server};
use std::process::Command;
use std::time::{Duration, Instant};

fn serve(root: &std::path::Path, dir: Dir, env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(crate::common::wf_bin());
    let store = root.join("state.db");
    cmd.arg("serve")
        .arg(root)
        .args(["--listen", "127.0.0.1:0", "--store", store.to_str().expect("utf8")])
        .current_dir(root);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server::spawn(cmd, dir)
}

const SYNC: &str = r#"workflow forward {
  trigger webhook {
    path "/forward"
    rate 3 per 2s by account
  }
  extract {
    account = body "account"
  }
  respond 200 json { account: account }
}"#;

fn post(s: &Server, account: &str) -> crate::common::Resp {
    s.post("/forward", &[("Content-Type", "application/json")], &format!(r#"{{"account":"{account}"}}"#))
}

#[test]
fn sync_callers_over_the_rate_get_429_with_retry_after_and_the_window_outlives_a_restart() {
    let dir = Dir::new(&[("forward.wf", SYNC)]);
    let root = dir.path().to_path_buf();
    let mut first = serve(&root, dir, &[]);
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(post(&first, "a").status, 200);
    }
    let over = post(&first, "a");
    assert_eq!(over.status, 429, "{}", over.body);
    assert_eq!(over.json()["error"], "rate limited");
    let wait: u64 = over.header("retry-after").and_then(|v| v.parse().ok()).expect("retry-after");
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(over.json()["retry_after"], wait);
    // Another key has a window of its own.
    assert_eq!(post(&first, "b").status, 200);
    // Stopped and started again within the window: the starts were kept.
    first.signal("TERM");
    first.wait_exit();
    let second = serve(&root, Dir::new(&[]), &[]);
    if started.elapsed() < Duration::from_millis(1_800) {
        assert_eq!(post(&second, "a").status, 429, "the window was kept across the restart");
    }
    // Once the window has passed, callers are taken again.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(started.elapsed()) + Duration::from_millis(100));
    assert_eq!(post(&second, "a").status, 200);
    assert!(second.log().contains("over the workflow's rate"), "{}", second.log());
}

#[test]
fn async_runs_over_the_rate_wait_for_a_start_and_no_window_sees_more_than_its_count() {
    let (up, seen) = crate::common::noting_upstream(|_| String::new(), Duration::ZERO);
    let wf = format!(
        r#"workflow forward {{
  trigger webhook {{
    path "/forward"
    mode async
    rate 2 per 1s
  }}
  http POST "{}"
}}"#,
        up.url("/partner")
    );
    let dir = Dir::new(&[("forward.wf", &wf)]);
    let root = dir.path().to_path_buf();
    let s = serve(&root, dir, &[]);
    let sent = Instant::now();
    let ids: Vec<String> = (0..7)
        .map(|_| {
            let r = s.post("/forward", &[], "");
            assert_eq!(r.status, 200, "every run is accepted: {}", r.body);
            r.header("x-wf-execution").expect("id").to_string()
        })
        .collect();
    // Some wait, saying for what (looked for until the runs are taken: a busy machine may list
    // them still queued at first).
    let store = root.join("state.db");
    let deadline = Instant::now() + Duration::from_secs(10);
    let one = loop {
        let listed = crate::common::wf(&[
            "runs",
            "--store",
            store.to_str().expect("utf8"),
            "--status",
            "waiting",
            "--format",
            "json",
        ]);
        let waiting: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap_or_default();
        if let Some(id) = waiting[0]["id"].as_str() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "no run ever waited");
        std::thread::sleep(Duration::from_millis(50));
    };
    let shown = crate::waiting::show(&root, &one);
    let waits_for = shown["waits_for"].as_str().unwrap_or_default();
    assert!(shown["state"] == "ended" || waits_for.starts_with("rate"), "{shown}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while up.received().len() < ids.len() {
        assert!(Instant::now() < deadline, "only {} calls", up.received().len());
        std::thread::sleep(Duration::from_millis(20));
    }
    // 7 starts at 2 a second: the last no sooner than 3 windows on (and not stalled: a run
    // waiting is taken within about a second of the start its window allows, more when the
    // machine is busy with other tests).
    let took = sent.elapsed();
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(12), "{took:?}");
    // No window of 1 s saw more than 2 calls.
    let at: Vec<Instant> = seen.lock().expect("lock").iter().map(|(_, at)| *at).collect();
    for (i, t) in at.iter().enumerate() {
        let within = at[i..].iter().filter(|u| u.duration_since(*t) < Duration::from_millis(950)).count();
        assert!(within <= 2, "{within} calls within a second from call {i}");
    }
}

/// libfaketime's preload library, where Debian puts it.
fn faketime_library() -> Option<std::path::PathBuf> {
    let lib = std::fs::read_dir("/usr/lib").ok()?.filter_map(Result::ok).find_map(|d| {
        let p = d.path().join("faketime/libfaketime.so.1");
        p.exists().then_some(p)
    });
    lib.or_else(|| {
        Some(std::path::PathBuf::from("/usr/lib/faketime/libfaketime.so.1")).filter(|p| p.exists())
    })
}

#[test]
fn a_clock_set_back_an_hour_neither_stalls_the_rate_nor_lets_a_burst_through() {
    let lib = faketime_library();
    if !crate::common::have(lib.is_some(), "libfaketime", "apt-get install faketime") {
        return;
    }
    let lib = lib.expect("found");
    let dir = Dir::new(&[("forward.wf", SYNC)]);
    let root = dir.path().to_path_buf();
    // The server's wall clock is read from this file at every look (its monotonic clock is
    // left alone, as when an operator or NTP steps the system's time).
    let clock = root.join("clock");
    std::fs::write(&clock, "+0\n").expect("write");
    let s = serve(
        &root,
        dir,
        &[
            ("LD_PRELOAD", lib.to_str().expect("utf8")),
            ("FAKETIME_TIMESTAMP_FILE", clock.to_str().expect("utf8")),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    for _ in 0..3 {
        assert_eq!(post(&s, "a").status, 200);
    }
    assert_eq!(post(&s, "a").status, 429);
    // The system's time is set back an hour.
    std::fs::write(&clock, "-3600\n").expect("write");
    let back = Instant::now();
    // No burst: the three starts still count.
    let over = post(&s, "a");
    assert_eq!(over.status, 429, "a clock set back let a burst through: {}", over.body);
    let wait: u64 = over.header("retry-after").and_then(|v| v.parse().ok()).expect("retry-after");
    assert!(wait <= 2, "told to wait {wait} s, not the window's 2 s");
    // No stall: one window after the jump, callers are taken again (not an hour later).
    std::thread::sleep(Duration::from_millis(2_100).saturating_sub(back.elapsed()));
    let mut taken = 0;
    for _ in 0..5 {
        if post(&s, "a").status == 200 {
            taken += 1;
        }
    }
    assert_eq!(taken, 3, "one window after the jump, the window's count again");
}
