//! Several `wf serve` instances sharing one PostgreSQL database, through the real binary and a
//! throwaway cluster: every run executes once, a delivery sent to both runs once, the runs of an
//! instance killed with `kill -9` are finished by the other, and a database restart is survived.

use crate::common::{Dir, Reply, Resp, Server, Upstream};
use crate::postgres_cluster::Cluster;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// `wf serve DIR --store URL ARGS` (a directory of its own per instance, same workflow).
fn instance(wf: &str, url: &str, args: &[&str]) -> Server {
    let dir = Dir::new(&[("relay.wf", wf)]);
    let mut cmd = Command::new(crate::common::wf_bin());
    cmd.arg("serve")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--store", url])
        .args(args)
        .current_dir(dir.path());
    Server::spawn(cmd, dir)
}

/// An async workflow that makes one call to `up` per run (its idempotency key names the run).
fn relay(up: &Upstream, dedupe: bool) -> String {
    format!(
        r#"workflow relay {{
  trigger webhook {{
    path "/relay"
    mode async
    {}
  }}
  extract {{
    n = body "n" required
    delivery = header "x-delivery"
  }}
  let r = http POST "{}" {{ json {{ n: n }} retry 3 }}
  log "relayed ${{n}}"
}}"#,
        if dedupe { "dedupe delivery window 1h" } else { "" },
        up.url("/count")
    )
}

/// How many times each run's first call reached `up`, by execution id.
fn calls(up: &Upstream) -> HashMap<String, usize> {
    let mut runs: HashMap<String, usize> = HashMap::new();
    for r in up.received() {
        if let Some(id) = r.header("idempotency-key").and_then(|k| k.strip_suffix("-1")) {
            *runs.entry(id.to_string()).or_default() += 1;
        }
    }
    runs
}

/// Waits until every id in `acked` made its call; gives the calls.
fn all_called(
    up: &Upstream,
    acked: &[String],
    within: Duration,
    log: impl Fn() -> String,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + within;
    loop {
        let runs = calls(up);
        if acked.iter().all(|id| runs.contains_key(id)) {
            return runs;
        }
        let missing = acked.iter().filter(|id| !runs.contains_key(*id)).count();
        assert!(Instant::now() < deadline, "{missing} acknowledged runs never ran:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post(s: &Server, n: usize, delivery: Option<&str>) -> Resp {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(d) = delivery {
        headers.push(("x-delivery", d));
    }
    s.post("/relay", &headers, &format!(r#"{{"n":{n}}}"#))
}

#[test]
fn two_instances_run_each_run_once_and_a_delivery_sent_to_both_once() {
    let Some(pg) = Cluster::start() else { return };
    let up = Upstream::start(|_, _| Reply::new(200, "ok"));
    let wf = relay(&up, true);
    let (a, b) = (instance(&wf, &pg.url, &[]), instance(&wf, &pg.url, &[]));
    let mut acked = Vec::new();
    for n in 0..400 {
        let s = if n % 2 == 0 { &a } else { &b };
        let r = post(s, n, Some(&format!("d-{n}")));
        assert_eq!(r.status, 200, "{}", r.body);
        acked.push(r.header("x-wf-execution").expect("id").to_string());
    }
    // The same delivery to both instances at once, twenty times: one run each.
    let mut duplicates = 0;
    for n in 0..20 {
        let key = format!("twice-{n}");
        let (ra, rb) = std::thread::scope(|s| {
            let x = s.spawn(|| post(&a, 1000 + n, Some(&key)));
            let y = s.spawn(|| post(&b, 1000 + n, Some(&key)));
            (x.join().expect("a"), y.join().expect("b"))
        });
        assert_eq!((ra.status, rb.status), (200, 200), "{} {}", ra.body, rb.body);
        let dup: Vec<&Resp> =
            [&ra, &rb].into_iter().filter(|r| r.header("x-wf-duplicate-of").is_some()).collect();
        assert_eq!(dup.len(), 1, "exactly one of the two is the duplicate");
        let first = if dup[0].header("x-wf-execution") == ra.header("x-wf-execution") { &rb } else { &ra };
        assert_eq!(dup[0].header("x-wf-duplicate-of"), first.header("x-wf-execution"));
        acked.push(first.header("x-wf-execution").expect("id").to_string());
        duplicates += 1;
    }
    let runs = all_called(&up, &acked, Duration::from_secs(30), || format!("{}\n{}", a.log(), b.log()));
    let twice: Vec<_> = runs.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "runs that executed twice: {twice:?}");
    assert_eq!(runs.len(), acked.len(), "no run beyond the acknowledged ones (duplicates made none)");
    assert_eq!(duplicates, 20);
    // `wf runs` reads the shared history like a file's (written off the request path: within
    // moments).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = crate::common::wf(&["runs", "--store", &pg.url, "--format", "json", "--limit", "1000"]);
        assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let completed = listed
            .as_array()
            .expect("a list")
            .iter()
            .filter(|r| r["outcome"] == "completed" && r["workflow"] == "relay")
            .count();
        if completed == 420 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{completed} of 420 completed in the history:\n{}\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = crate::common::wf(&["runs", "--store", &pg.url, "show", &acked[0]]);
    let text = crate::common::text(&shown.stdout);
    assert!(text.contains("completed") && text.contains("http"), "{text}");
}

#[test]
fn kill_9_of_one_instance_its_runs_are_finished_by_the_other_after_the_lease() {
    let Some(pg) = Cluster::start() else { return };
    let up = Upstream::start(|_, _| Reply::new(200, "ok").after(Duration::from_millis(20)));
    let wf = relay(&up, false);
    // Long enough that the doomed instance keeps its lease while alive on a loaded machine (with
    // 2 s, a test run beside another whole test run starved it past its lease before the kill:
    // the other instance rightly took its runs, and 41 ran on both).
    let lease = ["--lease", "5s"];
    let mut doomed = instance(&wf, &pg.url, &["--workers", "2", "--queue-size", "4096", lease[0], lease[1]]);
    let other = instance(&wf, &pg.url, &[lease[0], lease[1]]);
    let mut acked = Vec::new();
    for n in 0..1000 {
        let r = post(&doomed, n, None);
        assert_eq!(r.status, 200, "{}", r.body);
        acked.push(r.header("x-wf-execution").expect("id").to_string());
    }
    let _ = doomed.child.kill();
    let _ = doomed.child.wait();
    let done_before = calls(&up).len();
    assert!(done_before < 1000, "the kill came too late to test anything ({done_before} done)");
    let started = Instant::now();
    let runs = all_called(&up, &acked, Duration::from_secs(60), || other.log());
    let twice = runs.values().filter(|&&c| c > 1).count();
    // Only the calls under way at the kill may run twice (the killed instance's 2 workers).
    assert!(twice <= 2, "{twice} calls ran twice");
    eprintln!(
        "kill -9 with {done_before} of 1000 done: the other instance finished the rest within {:?} of the kill (lease 5 s); {twice} calls ran twice",
        started.elapsed()
    );
}

#[test]
fn a_database_restart_under_load_gives_503_while_down_and_instances_recover_without_a_restart() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(pg) = Cluster::start() else { return };
    let up = Upstream::start(|_, _| Reply::new(200, "ok"));
    let wf = relay(&up, false);
    let (a, b) = (instance(&wf, &pg.url, &[]), instance(&wf, &pg.url, &[]));
    let stop = AtomicBool::new(false);
    // One caller per instance posts without pause through the restart; every run answered 200
    // must run, whatever happened around it.
    let load = |s: &Server| {
        let (mut acked, mut refused, mut n) = (Vec::new(), 0usize, 0usize);
        while !stop.load(Ordering::SeqCst) {
            let r = post(s, n, None);
            n += 1;
            match r.status {
                200 => acked.push(r.header("x-wf-execution").expect("id").to_string()),
                503 => refused += 1,
                other => panic!("{other}: {}", r.body),
            }
        }
        (acked, refused)
    };
    let (loads, during) = std::thread::scope(|sc| {
        let la = sc.spawn(|| load(&a));
        let lb = sc.spawn(|| load(&b));
        std::thread::sleep(Duration::from_millis(500));
        pg.down();
        // While it is down, nothing is acknowledged.
        std::thread::sleep(Duration::from_millis(300));
        let during = (post(&a, 9_000, None).status, post(&b, 9_001, None).status);
        std::thread::sleep(Duration::from_millis(700));
        pg.up();
        // Both instances take runs again within seconds, without a restart.
        let deadline = Instant::now() + Duration::from_secs(30);
        for s in [&a, &b] {
            while post(s, 9_100, None).status != 200 {
                assert!(Instant::now() < deadline, "still refused after the restart:\n{}", s.log());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        ([la.join().expect("a"), lb.join().expect("b")], during)
    });
    assert_eq!(during, (503, 503));
    let refused: usize = loads.iter().map(|(_, r)| r).sum();
    let acked: Vec<String> = loads.into_iter().flat_map(|(a, _)| a).collect();
    assert!(refused > 0, "the load never met the outage");
    let runs = all_called(&up, &acked, Duration::from_secs(30), || format!("{}\n{}", a.log(), b.log()));
    eprintln!("database restarted under load: {} runs acknowledged, all ran; {refused} refused with 503 while it was down", acked.len());
    let twice = runs.values().filter(|&&c| c > 1).count();
    assert_eq!(twice, 0, "runs that ran twice");
}

#[test]
fn concurrency_is_one_count_across_instances() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let Some(pg) = Cluster::start() else { return };
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n2, m2) = (now.clone(), most.clone());
    // Each call lasts 100 ms; the upstream notes how many were under way at once.
    let up = Upstream::start(move |_, _| {
        let under_way = n2.fetch_add(1, Ordering::SeqCst) + 1;
        m2.fetch_max(under_way, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        n2.fetch_sub(1, Ordering::SeqCst);
        Reply::new(200, "ok")
    });
    let wf = format!(
        r#"workflow relay {{
  trigger webhook {{ path "/relay" mode async concurrency 1 }}
  extract {{ n = body "n" required }}
  let r = http POST "{}" {{ json {{ n: n }} }}
}}

workflow pay {{
  trigger webhook {{ path "/pay" concurrency 1 }}
  let r = http POST "{}" {{ json {{ }} }}
  respond 200 json {{ ok: true }}
}}"#,
        up.url("/count"),
        up.url("/pay")
    );
    let (a, b) = (instance(&wf, &pg.url, &[]), instance(&wf, &pg.url, &[]));
    let mut acked = Vec::new();
    for n in 0..10 {
        for s in [&a, &b] {
            let r = post(s, n, None);
            assert_eq!(r.status, 200, "{}", r.body);
            acked.push(r.header("x-wf-execution").expect("id").to_string());
        }
    }
    all_called(&up, &acked, Duration::from_secs(30), || format!("{}\n{}", a.log(), b.log()));
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "runs of a `concurrency 1` workflow overlapped across instances"
    );
    // A sync request while the other instance runs one: 429.
    let (first, second) = std::thread::scope(|sc| {
        let x = sc.spawn(|| a.post("/pay", &[("Content-Type", "application/json")], "{}"));
        std::thread::sleep(Duration::from_millis(40));
        let y = sc.spawn(|| b.post("/pay", &[("Content-Type", "application/json")], "{}"));
        (x.join().expect("a"), y.join().expect("b"))
    });
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(second.status, 429, "{}", second.body);
    // Its place is free again once it answered.
    std::thread::sleep(Duration::from_millis(100));
    let again = b.post("/pay", &[("Content-Type", "application/json")], "{}");
    assert_eq!(again.status, 200, "{}", again.body);
}

/// `wf runs --store URL ARGS --format json`.
fn runs(url: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["runs", "--store", url, "--format", "json"];
    all.extend_from_slice(args);
    let out = crate::common::wf(&all);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn runs_retry_and_prune_work_on_the_shared_store() {
    let Some(pg) = Cluster::start() else { return };
    // The service is too slow the first time (the call times out: the step fails), then answers.
    let up = Upstream::start(|i, _| {
        let slow = if i == 0 { Duration::from_secs(3) } else { Duration::ZERO };
        Reply::new(204, "").after(slow)
    });
    let wf = format!(
        r#"workflow relay {{
  trigger webhook {{ path "/relay" mode async }}
  let r = http POST "{}" {{ timeout 1s }}
  log "relayed ${{r.status}}"
}}"#,
        up.url("/hook")
    );
    let (a, b) = (instance(&wf, &pg.url, &[]), instance(&wf, &pg.url, &[]));
    let id = a.post("/relay", &[], "").header("x-wf-execution").expect("id").to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs(&pg.url, &["show", &id])["outcome"] != "failed" {
        assert!(Instant::now() < deadline, "the failure was not recorded:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Retried: taken by an instance (woken by NOTIFY), the call made again.
    let out = crate::common::wf(&["runs", "--store", &pg.url, "retry", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs(&pg.url, &["show", &id])["outcome"] != "completed" {
        assert!(Instant::now() < deadline, "not retried:\n{}\n{}", a.log(), b.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(up.received().len(), 2, "the failed call, then the retried one");
    let shown = runs(&pg.url, &["show", &id]);
    assert_eq!(shown["attempts"], 2, "the failed call and the retried one: {shown}");
    assert_eq!(shown["logs"], serde_json::json!(["relayed 204"]), "{shown}");
    // Only a failed async run can be retried.
    let again = crate::common::wf(&["runs", "--store", &pg.url, "retry", &id]);
    assert_eq!(again.status.code(), Some(1));
    // The run's request is kept through its end; a sync execution keeps its own.
    assert_eq!(shown["request"]["target"], "/relay", "{shown}");
    let sync = format!(
        "{wf}\nworkflow echo {{\n  trigger webhook {{ path \"/echo\" }}\n  respond 200 text \"ok\"\n}}\n"
    );
    let c = instance(&sync, &pg.url, &[]);
    let echoed = c.post("/echo?x=1", &[("X-Token", "t-secret")], "hello");
    let echo = echoed.header("x-wf-execution").expect("id").to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let kept = loop {
        let out = crate::common::wf(&["runs", "--store", &pg.url, "--format", "json", "show", &echo]);
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if shown["request"].is_object() {
            break shown["request"].clone();
        }
        assert!(Instant::now() < deadline, "the sync request was not kept: {shown}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((kept["target"].as_str(), kept["body"].as_str()), (Some("/echo?x=1"), Some("hello")));
    assert_eq!(kept["headers"]["x-token"], "[masked]");
    drop(c);
    // Pruning takes ended executions.
    let out = crate::common::wf(&["runs", "--store", &pg.url, "prune", "--older-than", "0s"]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    assert!(
        crate::common::text(&out.stdout).contains("pruned 2 executions"),
        "{}",
        crate::common::text(&out.stdout)
    );
    assert_eq!(runs(&pg.url, &[]), serde_json::json!([]));
    // A database that is not a wf store is named as such, its password not shown.
    let other = format!("postgres://postgres:hunter2@127.0.0.1:{}/template1", pg.port);
    let out = crate::common::wf(&["runs", "--store", &other]);
    let err = crate::common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no wf store") && !err.contains("hunter2"), "{err}");
}

#[test]
fn runs_follow_and_replay_read_the_shared_store() {
    let Some(pg) = Cluster::start() else { return };
    let wf = r#"workflow echo {
  trigger webhook { path "/echo" }
  extract { n = query "n" as integer }
  respond 200 json { n: n }
}"#;
    let a = instance(wf, &pg.url, &[]);
    let (mut follow, lines) = crate::common::follow(&pg.url);
    std::thread::sleep(Duration::from_millis(700));
    let ids: Vec<String> = (0..3)
        .map(|n| a.post(&format!("/echo?n={n}"), &[], "").header("x-wf-execution").expect("id").to_string())
        .collect();
    let mut followed: Vec<String> = (0..3)
        .map(|_| {
            let line = lines.recv_timeout(Duration::from_secs(10)).expect("a line");
            let v: serde_json::Value = serde_json::from_str(&line).expect("json");
            v["id"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    let _ = follow.kill();
    let _ = follow.wait();
    followed.sort();
    let mut sent = ids.clone();
    sent.sort();
    assert_eq!(followed, sent);
    // Replayed against the workflow as it is: the same; against a change: changed.
    let dir = Dir::new(&[("echo.wf", wf), ("next/echo.wf", &wf.replace("respond 200", "respond 202"))]);
    let replay = |files: &str| {
        let out = Command::new(crate::common::wf_bin())
            .args(["runs", "--store", &pg.url, "replay", "--since", "1h", "--files", files])
            .current_dir(dir.path())
            .output()
            .expect("replay");
        (out.status.code(), crate::common::text(&out.stdout))
    };
    let (code, out) = replay("echo.wf");
    assert_eq!((code, out.ends_with("3 replayed: 3 same, 0 changed\n")), (Some(0), true), "{out}");
    let (code, out) = replay("next/echo.wf");
    assert_eq!((code, out.ends_with("3 replayed: 0 same, 3 changed\n")), (Some(1), true), "{out}");
}

#[test]
fn a_callback_called_on_two_instances_at_once_is_taken_once_and_its_run_goes_on() {
    let Some(pg) = Cluster::start() else { return };
    let up = Upstream::start(|_, _| Reply::new(200, "ok"));
    let wf = format!(
        r#"workflow relay {{
  trigger webhook {{ path "/relay" mode async }}
  let cb = callback timeout 1h
  http POST "{}" {{ json {{ approve: cb.url }} }}
  let reply = wait cb
  log "approved by ${{reply.json.user}}"
}}"#,
        up.url("/ask")
    );
    let (a, b) = (instance(&wf, &pg.url, &[]), instance(&wf, &pg.url, &[]));
    let id = a.post("/relay", &[], "").header("x-wf-execution").expect("id").to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = loop {
        if let Some(r) = up.received().first() {
            let sent: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            break sent["approve"].as_str().expect("url").to_string();
        }
        assert!(Instant::now() < deadline, "never asked:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    let path = format!("/wf/callback/{}", url.rsplit('/').next().unwrap_or_default());
    while runs(&pg.url, &["show", &id])["state"] != "waiting" {
        assert!(Instant::now() < deadline, "never parked:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let statuses = crate::common::post_at_once(&[a.addr, b.addr], &path, 40, br#"{"user":"ada"}"#);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 39, "{statuses:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = runs(&pg.url, &["show", &id]);
        if shown["state"] == "ended" {
            assert_eq!(shown["logs"], serde_json::json!(["approved by ada"]), "{shown}");
            break;
        }
        assert!(Instant::now() < deadline, "not resumed: {shown}\n{}\n{}", a.log(), b.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_order_key_held_by_an_instance_killed_goes_on_on_the_other_after_the_lease_in_order() {
    let Some(pg) = Cluster::start() else { return };
    // The service notes when each call came, and takes 300 ms to answer it.
    let (up, seen) = crate::common::noting_upstream(|b| format!("A{}", b["n"]), Duration::from_millis(300));
    let wf = format!(
        r#"workflow relay {{
  trigger webhook {{
    path "/relay"
    mode async
    order by "A"
  }}
  extract {{
    n = body "n" as integer required
  }}
  http POST "{}" {{ json {{ n: n }} }}
}}"#,
        up.url("/ordered")
    );
    let lease = ["--lease", "5s"];
    let mut doomed = instance(&wf, &pg.url, &lease);
    let other = instance(&wf, &pg.url, &lease);
    let send = |s: &Server, n: usize| {
        let r = s.post("/relay", &[("Content-Type", "application/json")], &format!(r#"{{"n": {n}}}"#));
        assert_eq!(r.status, 200, "{}", r.body);
    };
    // The line's first two runs accepted by the instance to be killed, the next two by the other.
    send(&doomed, 0);
    send(&doomed, 1);
    send(&other, 2);
    send(&other, 3);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().expect("lock").is_empty() {
        assert!(Instant::now() < deadline, "the first run never called");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Killed while its run holds the line: the others wait for its lease to expire.
    let _ = doomed.child.kill();
    let _ = doomed.child.wait();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.lock().expect("lock").iter().any(|(t, _)| t == "A3") {
        assert!(
            Instant::now() < deadline,
            "the line never went on: {:?}\n{}",
            seen.lock().map(|s| s.clone()),
            other.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(400));
    let calls = seen.lock().expect("lock").clone();
    crate::common::one_at_a_time_in_order(&calls, &["A"], 4, Duration::from_millis(280));
}
