//! What every store does, written once and run against each store this build has.

use super::*;
use serde_json::json;

fn version() -> Version {
    Version {
        hash: "h1".into(),
        file: "hooks.wf".into(),
        source: Arc::from("workflow w { trigger webhook { } }"),
    }
}

fn run(id: &str, accepted_ms: i64) -> NewRun {
    NewRun {
        id: id.into(),
        workflow: "w".into(),
        version: Arc::new(version()),
        frame: json!(["a", 1]).to_string(),
        request:
            json!({"method": "POST", "path": "/w", "headers": {"authorization": "[masked]"}, "body": "{}"})
                .to_string(),
        env_names: vec!["TOKEN".into()],
        accepted_ms,
    }
}

fn ended(id: &str, mode: &'static str, started_ms: i64, outcome: &'static str) -> Ended {
    Ended {
        id: super::key(id),
        workflow: "w".into(),
        mode: if mode == "sync" { super::Mode::Sync } else { super::Mode::Async },
        started_ms,
        duration_ms: 5,
        status: 200,
        outcome: super::Outcome::parse(outcome).unwrap_or(super::Outcome::Failed),
        reason: (outcome == "failed").then(|| "boom".to_string()),
        at: (outcome == "failed").then(|| "hooks.wf:3:5".to_string()),
        logs: vec!["one".into(), "two".into()],
        attempts: 0,
        request: None,
        kept: mode != "sync",
    }
}

/// The contract: accepted runs are kept until they end, with their finished steps; history is
/// listed newest first and filtered; pruning removes only old ended executions. `first` accepts
/// runs and stops (lets go of them); `store` is the process that starts next on the same store
/// (the same object for a store one process uses).
pub(crate) async fn contract(first: &dyn Store, store: &dyn Store) {
    let started = store;
    let store = first;
    store.accept(run("00000000000000a1", 1_000), None).await.expect("accept");
    store.accept(run("00000000000000a2", 2_000), None).await.expect("accept");
    store.step_started("00000000000000a1", 1, "http", json!({"method": "POST", "url": "http://x"}));
    store.step_ended("00000000000000a1", 1, &Ok(json!({"status": 200}))).await.expect("step");
    store.step_value("00000000000000a1", 2, "uuid", &json!("u-1"));
    store.step_started("00000000000000a1", 3, "run", json!({"program": "x"}));
    store.step_ended("00000000000000a1", 3, &Err("timed out".into())).await.expect("step");
    store.flush().await.expect("flush");
    store.leave().await.expect("leave");
    let store = started;

    let open = store.unfinished().await.expect("unfinished");
    assert_eq!(
        open.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["00000000000000a1", "00000000000000a2"]
    );
    assert_eq!(open[0].frame, json!(["a", 1]));
    assert_eq!(open[0].version, Some(version()));
    // Finished steps come back; a failed one runs again.
    assert_eq!(open[0].journal, vec![(1, Ok(json!({"status": 200}))), (2, Ok(json!("u-1")))]);
    assert!(open[1].journal.is_empty());

    store.ended(ended("00000000000000a1", "async", 1_000, "completed"));
    store.ended(ended("00000000000000b1", "sync", 3_000, "failed"));
    store.ended(Ended {
        request: Some(received(b"{\"k\":2}", 1024)),
        ..ended("00000000000000b2", "sync", 4_000, "responded")
    });
    store.flush().await.expect("flush");

    let all = store.list(&Filter { limit: 50, ..Filter::default() }).await.expect("list");
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["00000000000000b2", "00000000000000b1", "00000000000000a2", "00000000000000a1"]);
    let failed = store
        .list(&Filter {
            status: Some(super::Status::Outcome(super::Outcome::Failed)),
            limit: 50,
            ..Filter::default()
        })
        .await
        .expect("list");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].reason.as_deref(), Some("boom"));
    // An ended run is not open any more; the other is.
    let queued = store
        .list(&Filter {
            status: Some(super::Status::State(super::State::Queued)),
            limit: 50,
            ..Filter::default()
        })
        .await
        .expect("list");
    assert_eq!(queued.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["00000000000000a2"]);
    let recent =
        store.list(&Filter { since_ms: Some(3_500), limit: 50, ..Filter::default() }).await.expect("list");
    assert_eq!(recent.len(), 1);
    assert_eq!(store.list(&Filter { limit: 2, ..Filter::default() }).await.expect("list").len(), 2);
    let other = store
        .list(&Filter { workflow: Some("other".into()), limit: 50, ..Filter::default() })
        .await
        .expect("list");
    assert!(other.is_empty());
    // Pages found by their key: one at a time, the same executions in the same order.
    let mut paged = Vec::new();
    let mut page = Filter { limit: 1, ..Filter::default() };
    while let Some(last) = store.list(&page).await.expect("list").pop() {
        page = page.next_page(&last);
        paged.push(last.id);
    }
    assert_eq!(paged, ids);
    // A page whole: each execution as `show` gives it, a sync one's request too.
    let whole = store.whole(&Filter { limit: 50, ..Filter::default() }).await.expect("whole");
    assert_eq!(whole.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ids);
    for r in &whole {
        let shown = store.show(&r.id).await.expect("show").expect("exists");
        assert_eq!(serde_json::to_value(r).ok(), serde_json::to_value(&shown).ok(), "{}", r.id);
    }
    assert_eq!(whole[3].steps.len(), 3);
    assert!(whole[0].request.is_some() || !store.keeps_requests(), "a kept request is read whole");

    let shown = store.show("00000000000000a1").await.expect("show").expect("exists");
    assert_eq!(
        (shown.mode.as_str(), shown.state.as_str(), shown.outcome.map(|o| o.as_str())),
        ("async", "ended", Some("completed"))
    );
    assert_eq!(shown.logs, ["one", "two"]);
    assert_eq!(
        shown.request.as_ref().map(|r| r["headers"]["authorization"].clone()),
        Some(json!("[masked]"))
    );
    let steps: Vec<(u32, &str, &str)> =
        shown.steps.iter().map(|s| (s.n, s.kind.as_str(), s.state.as_str())).collect();
    assert_eq!(steps, [(1, "http", "finished"), (2, "uuid", "finished"), (3, "run", "failed")]);
    assert_eq!(shown.steps[2].reason.as_deref(), Some("timed out"));
    assert!(store.show("ffffffffffffffff").await.expect("show").is_none());

    // Pruning takes ended executions older than the cut, in batches, never an unfinished run.
    assert_eq!(store.prune(3_500, 1).await.expect("prune"), 1);
    assert_eq!(store.prune(3_500, 100).await.expect("prune"), 1);
    let left: Vec<String> = store
        .list(&Filter { limit: 50, ..Filter::default() })
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, ["00000000000000b2", "00000000000000a2"]);
    assert_eq!(store.dropped(), 0);
}

/// The parking contract: a parked run is taken again once due (not before), with the attempts
/// its waiting step had made; its finished steps come back as ever.
pub(crate) async fn parking_contract(store: &dyn Store) {
    store.accept(run("00000000000000f1", 9_000), None).await.expect("accept");
    store.accept(run("00000000000000f2", 9_001), None).await.expect("accept");
    store.step_value("00000000000000f1", 1, "uuid", &json!("u-9"));
    store.step_started("00000000000000f1", 2, "http", json!({"method": "POST", "url": "http://x"}));
    store.flush().await.expect("flush");
    store.step_parked("00000000000000f1", 2, "http", now_ms() - 1, 3).await.expect("park");
    store.step_started("00000000000000f2", 1, "http", json!({"method": "POST", "url": "http://x"}));
    store.flush().await.expect("flush");
    store.step_parked("00000000000000f2", 1, "http", now_ms() + 3_600_000, 1).await.expect("park");
    let shown = store.show("00000000000000f2").await.expect("show").expect("kept");
    assert_eq!((shown.state.as_str(), shown.steps[0].state.as_str()), ("waiting", "waiting"));
    let taken = store.retried().await.expect("take");
    assert_eq!(
        taken.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["00000000000000f1"],
        "only the due one"
    );
    assert_eq!(taken[0].waiting, Some((2, 3)));
    assert_eq!(taken[0].journal, vec![(1, Ok(json!("u-9")))]);
    assert!(store.retried().await.expect("take").is_empty(), "taken once");
}

/// The callback contract: a callback is kept by its token's hash only, called once (whoever
/// else calls at the same time), and its run, parked waiting for it, is due at once when called,
/// also when the call came before the run parked; an expired callback is gone.
pub(crate) async fn callback_contract(store: &dyn Store) {
    use crate::exec::callbacks::{CallbackState, Called};
    let key = store.callback_key().await.expect("key");
    assert_eq!(store.callback_key().await.expect("key"), key, "one key per store");
    let later = now_ms() + 3_600_000;
    store.accept(run("00000000000000e1", 9_100), None).await.expect("accept");
    store.accept(run("00000000000000e2", 9_101), None).await.expect("accept");
    let (h1, h2, h3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    store.callback_made(h1, "00000000000000e1", 1, later).await.expect("made");
    store.callback_made(h1, "00000000000000e1", 1, later + 5).await.expect("made again");
    let c = store.callback(h1).await.expect("read").expect("kept");
    assert_eq!(
        (c.execution.as_str(), c.n, c.expires_ms, c.state),
        ("00000000000000e1", 1, later, CallbackState::Waiting)
    );
    // Parked waiting for it: not due before it is called.
    store.step_started("00000000000000e1", 2, "wait", json!({"callback": "01010101"}));
    store.flush().await.expect("flush");
    assert_eq!(store.wait_parked("00000000000000e1", 2, h1).await.expect("park"), Recorded::Kept);
    assert!(!store.retried().await.expect("take").iter().any(|r| r.id == "00000000000000e1"));
    let reply = json!({"method": "POST", "json": {"ok": true}});
    assert_eq!(store.callback_called(h1, reply.clone(), now_ms()).await.expect("call"), Called::Taken);
    assert_eq!(store.callback_called(h1, reply.clone(), now_ms()).await.expect("call"), Called::Gone);
    assert_eq!(
        store.callback_called([9u8; 32], reply.clone(), now_ms()).await.expect("call"),
        Called::Unknown
    );
    let taken = store.retried().await.expect("take");
    let e1 = taken.iter().find(|r| r.id == "00000000000000e1").expect("due once called");
    assert_eq!(e1.waiting, Some((2, 0)));
    let c = store.callback(h1).await.expect("read").expect("kept");
    assert_eq!((c.state, c.reply), (CallbackState::Called, Some(reply.clone())));
    // Called before its run parked: the run is due at once when it does.
    store.callback_made(h2, "00000000000000e2", 1, later).await.expect("made");
    assert_eq!(store.callback_called(h2, reply.clone(), now_ms()).await.expect("call"), Called::Taken);
    store.step_started("00000000000000e2", 2, "wait", json!({"callback": "02020202"}));
    store.flush().await.expect("flush");
    assert_eq!(store.wait_parked("00000000000000e2", 2, h2).await.expect("park"), Recorded::Kept);
    assert!(store.retried().await.expect("take").iter().any(|r| r.id == "00000000000000e2"));
    // Expired: gone, and marked so.
    store.callback_made(h3, "00000000000000e2", 3, now_ms() - 1).await.expect("made");
    assert_eq!(store.callback_called(h3, reply, now_ms()).await.expect("call"), Called::Gone);
    store.callback_expired(h3).await.expect("expired");
    assert_eq!(store.callback(h3).await.expect("read").map(|c| c.state), Some(CallbackState::Expired));
    // A waiting run cancelled: ended, its callbacks gone; a queued one is not waiting.
    let h4 = [4u8; 32];
    store.accept(run("00000000000000e3", 9_102), None).await.expect("accept");
    store.accept(run("00000000000000e4", 9_103), None).await.expect("accept");
    store.callback_made(h4, "00000000000000e3", 1, later).await.expect("made");
    store.step_started("00000000000000e3", 2, "wait", json!({"callback": "04040404"}));
    store.flush().await.expect("flush");
    store.wait_parked("00000000000000e3", 2, h4).await.expect("park");
    assert_eq!(store.cancel("00000000000000e3").await.expect("cancel"), super::Cancel::Cancelled);
    let shown = store.show("00000000000000e3").await.expect("show").expect("kept");
    assert_eq!((shown.state.as_str(), shown.outcome.map(|o| o.as_str())), ("ended", Some("cancelled")));
    assert_eq!(store.callback_called(h4, json!({}), now_ms()).await.expect("call"), Called::Gone);
    assert_eq!(
        store.cancel("00000000000000e3").await.expect("cancel"),
        super::Cancel::NotWaiting(super::State::Ended)
    );
    assert_eq!(
        store.cancel("00000000000000e4").await.expect("cancel"),
        super::Cancel::NotWaiting(super::State::Queued)
    );
    assert_eq!(store.cancel("00000000000000ef").await.expect("cancel"), super::Cancel::Unknown);
    let listed = store
        .list(&Filter {
            status: Some(super::Status::Outcome(super::Outcome::Cancelled)),
            limit: 10,
            ..Filter::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["00000000000000e3"]);
    // A debounce series: the newest by acceptance names it, whatever order they are told in;
    // only the newest ends it.
    store.debounce_seen("w", "repo-a", "00000000000000d1", 1_000).await.expect("seen");
    store.debounce_seen("w", "repo-a", "00000000000000d3", 3_000).await.expect("seen");
    store.debounce_seen("w", "repo-a", "00000000000000d2", 2_000).await.expect("seen");
    store.debounce_seen("w", "repo-b", "00000000000000d4", 500).await.expect("seen");
    let series = store.debounce_series("w", "repo-a").await.expect("series").expect("open");
    assert_eq!(
        series,
        super::Series { latest: "00000000000000d3".into(), first_ms: 1_000, latest_ms: 3_000 }
    );
    store.debounce_done("w", "repo-a", "00000000000000d2").await.expect("done");
    assert!(store.debounce_series("w", "repo-a").await.expect("series").is_some(), "only the newest ends it");
    store.debounce_done("w", "repo-a", "00000000000000d3").await.expect("done");
    // Ended, it still names its newest (an older run waking later is superseded) ...
    let ended = store.debounce_series("w", "repo-a").await.expect("series").expect("kept");
    assert_eq!(ended.latest, "00000000000000d3");
    // ... and a later request starts a new series.
    store.debounce_seen("w", "repo-a", "00000000000000d5", 2_500).await.expect("seen");
    let again = store.debounce_series("w", "repo-a").await.expect("series").expect("open");
    assert_eq!(again, super::Series { latest: "00000000000000d5".into(), first_ms: 2_500, latest_ms: 2_500 });
    assert!(store.debounce_series("w", "repo-b").await.expect("series").is_some());
}

fn key(key: &str, id: &str, expires_ms: i64) -> Key {
    Key { workflow: "w".into(), key: key.into(), id: id.into(), expires_ms }
}

/// The dedupe contract: a key is claimed once within its window, in the same transaction as the
/// run it belongs to; a sync claim keeps its answer for the duplicates.
/// `order by` lines: whose turn it is, and the next run due once the one before it ends.
pub(crate) async fn order_contract(store: &dyn Store) {
    let (a, b, c, other) = ("0000000000000701", "0000000000000702", "0000000000000703", "0000000000000704");
    for (id, at) in [(a, 10_000), (b, 10_001), (c, 10_001), (other, 9_000)] {
        store.accept(run(id, at), None).await.expect("accept");
    }
    // Told out of order, as instances sharing a store may: the line is by acceptance, then id.
    store.order_joined("w", "order-7", c, 10_001).await.expect("joined");
    store.order_joined("w", "order-7", a, 10_000).await.expect("joined");
    store.order_joined("w", "order-7", b, 10_001).await.expect("joined");
    store.order_joined("w", "order-8", other, 9_000).await.expect("joined");
    // (SQLite writes the entries with the next batch: the accepts that follow them.)
    store.flush().await.expect("flush");
    assert_eq!(store.order_head("w", "order-7").await.expect("head").as_deref(), Some(a));
    assert_eq!(store.order_head("w", "order-8").await.expect("head").as_deref(), Some(other));
    assert_eq!(store.order_head("w", "order-9").await.expect("head"), None);
    // b waits for its turn, far off; a ends: b is due at once.
    let parked = store.step_parked(b, 1, "order", now_ms() + 3_600_000, 0).await.expect("parked");
    assert_eq!(parked, Recorded::Kept);
    store.ended(ended(a, "async", 10_000, "failed"));
    store.flush().await.expect("flush");
    store.order_done("w", "order-7", a).await.expect("done");
    store.flush().await.expect("flush");
    assert_eq!(store.order_head("w", "order-7").await.expect("head").as_deref(), Some(b));
    let taken: Vec<String> = store.retried().await.expect("retried").into_iter().map(|u| u.id).collect();
    assert!(taken.contains(&b.to_string()), "the next run is due once the one before it ended: {taken:?}");
    // A run that ended without leaving its line (cancelled, a crash) is not waited for.
    store.ended(ended(b, "async", 10_001, "completed"));
    store.flush().await.expect("flush");
    assert_eq!(store.order_head("w", "order-7").await.expect("head").as_deref(), Some(c));
    for id in [c, other] {
        store.ended(ended(id, "async", 10_001, "completed"));
        store.order_done("w", if id == c { "order-7" } else { "order-8" }, id).await.expect("done");
    }
    store.flush().await.expect("flush");
    assert_eq!(store.order_head("w", "order-7").await.expect("head"), None);
}

/// `rate` windows: at most `n` starts per window and key, counted across every process sharing
/// the store (`one` and `two`), atomically, and through a clock set back.
pub(crate) async fn rate_contract(one: &dyn Store, two: &dyn Store) {
    let base = now_ms();
    for (t, store) in [(base, one), (base + 10, two), (base + 20, one)] {
        assert_eq!(store.rate_take("w", "acct-1", 3, 1_000, t).await.expect("take"), None);
    }
    // The fourth waits until the first start leaves the window; another key has its own.
    assert_eq!(two.rate_take("w", "acct-1", 3, 1_000, base + 500).await.expect("take"), Some(base + 1_000));
    assert_eq!(two.rate_take("w", "acct-2", 3, 1_000, base + 500).await.expect("take"), None);
    assert_eq!(one.rate_take("other", "acct-1", 3, 1_000, base + 500).await.expect("take"), None);
    assert_eq!(one.rate_take("w", "acct-1", 3, 1_000, base + 1_000).await.expect("take"), None);
    // The clock set back an hour: no burst, and no stall past one window.
    let back = base - 3_600_000;
    assert_eq!(one.rate_take("w", "acct-1", 3, 1_000, back).await.expect("take"), Some(back + 1_000));
    assert_eq!(two.rate_take("w", "acct-1", 3, 1_000, back + 1_000).await.expect("take"), None);
    // Twenty takes at once, from both: three starts.
    let takes = (0..20).map(|i| {
        let store = if i % 2 == 0 { one } else { two };
        store.rate_take("w", "burst", 3, 60_000, base)
    });
    let taken = futures_util::future::join_all(takes).await;
    let started = taken.iter().filter(|t| matches!(t, Ok(None))).count();
    assert_eq!(started, 3, "{taken:?}");
}

pub(crate) async fn dedupe_contract(store: &dyn Store) {
    let later = now_ms() + 60_000;
    let first = store.accept(run("00000000000000c1", 5_000), Some(key("evt_1", "00000000000000c1", later)));
    assert_eq!(first.await.expect("accept"), Claim::First);
    let again = store.accept(run("00000000000000c2", 5_001), Some(key("evt_1", "00000000000000c2", later)));
    assert_eq!(
        again.await.expect("accept"),
        Claim::Duplicate { of: "00000000000000c1".into(), answer: None }
    );
    assert!(store.show("00000000000000c1").await.expect("show").is_some());
    assert!(store.show("00000000000000c2").await.expect("show").is_none(), "a duplicate is not kept");
    // The dashboard's search finds a run by its delivery's key.
    assert_eq!(store.keyed("evt_1").await.expect("keyed"), vec!["00000000000000c1".to_string()]);
    assert!(store.keyed("evt_none").await.expect("keyed").is_empty());

    assert_eq!(store.claim(key("evt_2", "00000000000000d1", later)).await.expect("claim"), Claim::First);
    let busy = store.claim(key("evt_2", "00000000000000d2", later)).await.expect("claim");
    assert_eq!(busy, Claim::Duplicate { of: "00000000000000d1".into(), answer: None });
    store.answered(key("evt_2", "00000000000000d1", later), json!({"status": 201}));
    // An answer is written with the next batch.
    store.flush().await.expect("flush");
    let done = store.claim(key("evt_2", "00000000000000d3", later)).await.expect("claim");
    assert_eq!(
        done,
        Claim::Duplicate { of: "00000000000000d1".into(), answer: Some(json!({"status": 201})) }
    );
    // An expired key is claimed anew.
    assert_eq!(
        store.claim(key("evt_3", "00000000000000e1", now_ms() - 1)).await.expect("claim"),
        Claim::First
    );
    assert_eq!(store.claim(key("evt_3", "00000000000000e2", later)).await.expect("claim"), Claim::First);
    // Fifty claims of one key at once: one first.
    let claims: Vec<_> =
        (0..50).map(|i| store.claim(key("evt_4", &format!("{:016x}", 0xf00 + i), later))).collect();
    let mut firsts = 0;
    for c in claims {
        if c.await.expect("claim") == Claim::First {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1);
}

/// The retry contract, through [`History`] (the store itself, or a reader `wf runs` opens
/// beside it): only a failed run that ended may be retried; a retry keeps the steps that
/// succeeded before the first one that did not, and the run is taken again counting the retry.
/// A failed run lets go of its `dedupe` key.
pub(crate) async fn retry_contract(store: &dyn Store, history: &dyn History) {
    use super::retry::Retried;
    let later = now_ms() + 60_000;
    let id = "00000000000000e7";
    let claim = store.accept(run(id, 7_000), Some(key("evt_7", id, later))).await.expect("accept");
    assert_eq!(claim, Claim::First);
    store.step_started(id, 1, "run", json!({"program": "sh"}));
    store.step_ended(id, 1, &Ok(json!({"code": 0, "stdout": "", "stderr": ""}))).await.expect("step");
    store.step_value(id, 2, "now", &json!("2026-01-01T00:00:00.000Z"));
    store.step_started(id, 3, "http", json!({"method": "POST", "url": "http://x"}));
    store.step_ended(id, 3, &Ok(json!({"status": 503}))).await.expect("step");
    store.step_started(id, 4, "http", json!({"method": "POST", "url": "http://y"}));
    store.step_ended(id, 4, &Ok(json!({"status": 200}))).await.expect("step");
    store.flush().await.expect("flush");
    let refused = history.retry(id, false).await.expect("retry");
    assert!(matches!(&refused, Retried::Refused(why) if why.contains("is running")), "{refused:?}");
    store.ended(ended(id, "async", 7_000, "failed"));
    store.flush().await.expect("flush");
    // The failed run let go of its key: the sender's redelivery is a first delivery.
    let again = store.claim(key("evt_7", "00000000000000e8", later)).await.expect("claim");
    assert_eq!(again, Claim::First);
    assert_eq!(history.retry("00000000000000ee", false).await.expect("retry"), Retried::Unknown);
    assert_eq!(history.retry(id, false).await.expect("retry"), Retried::Marked);
    let twice = history.retry(id, false).await.expect("retry");
    assert!(matches!(&twice, Retried::Refused(_)), "marked once: {twice:?}");
    let taken = store.retried().await.expect("take");
    let run = taken.iter().find(|r| r.id == id).expect("taken again");
    assert_eq!(run.retries, 1);
    assert_eq!(
        run.journal,
        vec![
            (1, Ok(json!({"code": 0, "stdout": "", "stderr": ""}))),
            (2, Ok(json!("2026-01-01T00:00:00.000Z")))
        ],
        "the 503 and everything after it are done again"
    );
    store.ended(ended(id, "async", 7_000, "failed"));
    store.flush().await.expect("flush");
    assert_eq!(history.retry(id, true).await.expect("retry"), Retried::Marked);
    let taken = store.retried().await.expect("take");
    let run = taken.iter().find(|r| r.id == id).expect("taken again");
    assert_eq!((run.retries, run.journal.len()), (2, 0), "from the start");
    store.ended(ended(id, "async", 7_000, "completed"));
    store.flush().await.expect("flush");
    let done = history.retry(id, false).await.expect("retry");
    assert!(matches!(&done, Retried::Refused(why) if why.contains("ended as completed")), "{done:?}");
    // The first start is kept through every retry.
    let shown = history.show(id).await.expect("show").expect("kept");
    assert_eq!(shown.started_ms, 7_000);
}

/// The rejections contract: a store keeps each workflow's newest [`REJECTED_KEPT`] rejected
/// requests, no more.
pub(crate) async fn rejected_contract(store: &dyn Store) {
    let total = REJECTED_KEPT + 50;
    for i in 0..total {
        let mut e = ended(&format!("{:016x}", 0x7000_0000 + i), "sync", 20_000 + i as i64, "rejected");
        e.workflow = "guarded".into();
        e.status = 401;
        store.ended(e);
    }
    store.flush().await.expect("flush");
    let kept = store
        .list(&Filter {
            workflow: Some("guarded".into()),
            status: Some(super::Status::Outcome(super::Outcome::Rejected)),
            limit: total * 2,
            ..Filter::default()
        })
        .await
        .expect("list");
    assert!(kept.len() <= REJECTED_KEPT && kept.len() >= REJECTED_KEPT / 2, "{} kept", kept.len());
    assert_eq!(kept[0].id, format!("{:016x}", 0x7000_0000 + total - 1), "the newest is kept");
    let oldest = format!("{:016x}", 0x7000_0000);
    assert!(store.show(&oldest).await.expect("show").is_none(), "the oldest went");
}

/// A sync execution's request as its store keeps it (`keep`: `--keep-body`).
fn received(body: &[u8], keep: usize) -> Arc<crate::request::received::Received> {
    let src = "workflow w {\n  trigger webhook { path \"/w\" }\n  extract { a = body \"a\" }\n  respond 200 text \"ok\"\n}\n";
    let loaded = crate::lang::loader::load_str("hooks.wf", src);
    let router = crate::request::served::build(loaded.program, &|_| None).expect("a workflow");
    let served = router.workflows().next().expect("served").clone();
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", http::HeaderValue::from_static("application/json"));
    headers.insert("authorization", http::HeaderValue::from_static("Bearer hunter2"));
    let waiting = Arc::new(crate::request::body_memory::BodyMemory::new(1 << 20));
    let uri: http::Uri = "/w?x=1".parse().expect("uri");
    Arc::new(crate::request::received::Received::take(
        (&http::Method::POST, &uri, &headers),
        body,
        keep,
        &waiting,
        &served,
    ))
}

/// The sync retry contract: a failed sync execution that kept its request whole is retried in
/// the background: taken with its request (no version: it runs under the workflow served now),
/// its successful steps kept; it ends again in place, keeping its first start and counting every
/// attempt. One whose body was kept only as its digest cannot be.
pub(crate) async fn sync_retry_contract(store: &dyn Store, history: &dyn History) {
    use super::retry::Retried;
    let id = "00000000000000d7";
    store.step_started(id, 1, "http", json!({"method": "POST", "url": "http://x"}));
    store.step_noted(id, 1, &Ok(json!({"status": 200})));
    store.step_started(id, 2, "http", json!({"method": "POST", "url": "http://y"}));
    store.step_noted(id, 2, &Ok(json!({"status": 503})));
    let mut failed = ended(id, "sync", 8_000, "failed");
    failed.request = Some(received(br#"{"a":1}"#, 1024));
    failed.attempts = 2;
    store.ended(failed);
    let digest = "00000000000000d8";
    let mut too_big = ended(digest, "sync", 8_001, "failed");
    too_big.request = Some(received(br#"{"a":2}"#, 1));
    store.ended(too_big);
    store.flush().await.expect("flush");
    let refused = history.retry(digest, false).await.expect("retry");
    assert!(matches!(&refused, Retried::Refused(why) if why.contains("request whole")), "{refused:?}");
    assert_eq!(history.retry(id, false).await.expect("retry"), Retried::Marked);
    let shown = history.show(id).await.expect("show").expect("kept");
    assert_eq!((shown.mode, shown.state), (super::Mode::Sync, super::State::Queued));
    let taken = store.retried().await.expect("take");
    let run = taken.iter().find(|r| r.id == id).expect("taken");
    assert_eq!(run.version, None, "it runs under the workflow served now");
    let request = run.request.as_ref().expect("its request");
    assert_eq!((request["body"].as_str(), request["target"].as_str()), (Some(r#"{"a":1}"#), Some("/w?x=1")));
    assert_eq!(request["headers"]["authorization"], "[masked]");
    assert_eq!(run.journal, vec![(1, Ok(json!({"status": 200})))], "the 503 is done again");
    let mut again = ended(id, "sync", 9_999, "responded");
    (again.kept, again.attempts) = (true, 1);
    store.ended(again);
    store.flush().await.expect("flush");
    let shown = history.show(id).await.expect("show").expect("kept");
    assert_eq!(
        (shown.state, shown.outcome, shown.started_ms, shown.attempts),
        (super::State::Ended, Some(super::Outcome::Responded), 8_000, 3)
    );
    let listed = history.list(&Filter { limit: 10_000, ..Filter::default() }).await.expect("list");
    assert_eq!(listed.iter().filter(|r| r.id == id).count(), 1, "listed once");
}

#[tokio::test]
async fn memory_keeps_the_contract() {
    let store = memory::Memory::default();
    contract(&store, &store).await;
    dedupe_contract(&store).await;
    parking_contract(&store).await;
    retry_contract(&store, &store).await;
    sync_retry_contract(&store, &store).await;
    rejected_contract(&store).await;
    // (a2 and c1 never ended; f1 was taken again; f2 is parked for an hour.)
    let open: Vec<String> = store.unfinished().await.expect("unfinished").into_iter().map(|r| r.id).collect();
    assert_eq!(open, ["00000000000000a2", "00000000000000c1", "00000000000000f1"]);
    // Of ended executions it keeps the last `KEPT`.
    for i in 0..memory::KEPT as i64 + 10 {
        store.ended(ended(&format!("{:016x}", 0x1000 + i), "sync", 10_000 + i, "responded"));
    }
    let all = store.list(&Filter { limit: usize::MAX, ..Filter::default() }).await.expect("list");
    let ended_kept = all.iter().filter(|r| r.state == super::State::Ended).count();
    assert_eq!(ended_kept, memory::KEPT);
    assert_eq!(all[0].id, format!("{:016x}", 0x1000 + memory::KEPT + 9));
    callback_contract(&store).await;
    order_contract(&store).await;
    rate_contract(&store, &store).await;
}

#[tokio::test]
async fn sqlite_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state").join("state.db");
    let store = sqlite::Sqlite::open(&path).expect("open");
    contract(&store, &store).await;
    dedupe_contract(&store).await;
    parking_contract(&store).await;
    retry_contract(&store, &store).await;
    assert!(dir.path().join("state/.gitignore").exists(), "a directory the store creates is ignored by git");
    // One `wf serve` per file.
    let second = sqlite::Sqlite::open(&path).err().expect("the second open is refused");
    assert!(second.contains("in use by another `wf serve`"), "{second}");
    drop(store);
    // What was kept is there after a reopen.
    let again = sqlite::Sqlite::open(&path).expect("reopen");
    // (a2 and c1 never ended; f1 was taken again; f2 is parked for an hour.)
    let open: Vec<String> = again.unfinished().await.expect("unfinished").into_iter().map(|r| r.id).collect();
    assert_eq!(open, ["00000000000000a2", "00000000000000c1", "00000000000000f1"]);
    // `wf runs` beside the serving process: the same contract through its reader.
    let other = tempfile::tempdir().expect("tempdir");
    let path = other.path().join("state.db");
    let store = sqlite::Sqlite::open(&path).expect("open");
    let reader = sqlite::open_read_only(&path).expect("reader");
    retry_contract(&store, &reader).await;
    sync_retry_contract(&store, &reader).await;
    rejected_contract(&store).await;
    callback_contract(&store).await;
    order_contract(&store).await;
    rate_contract(&store, &store).await;
}

#[tokio::test]
async fn postgres_keeps_the_contract() {
    let Some(pg) = super::test_postgres::Cluster::start() else { return };
    let lease = std::time::Duration::from_secs(30);
    let first = postgres::Postgres::connect(&pg.url, lease).await.expect("connect");
    let next = postgres::Postgres::connect(&pg.url, lease).await.expect("connect");
    contract(&first, &next).await;
    dedupe_contract(&next).await;
    parking_contract(&next).await;
    retry_contract(&next, &next).await;
    let reader = postgres::Reader::connect(&pg.url).await.expect("reader");
    let other = postgres::Postgres::connect(&pg.url, lease).await.expect("connect");
    retry_contract_again(&other, &reader).await;
    sync_retry_contract(&other, &reader).await;
    rejected_contract(&other).await;
    callback_contract(&other).await;
    order_contract(&other).await;
    rate_contract(&other, &next).await;
    // Two `wf runs retry` of one run at once, while an instance takes runs: marked once, run once.
    let id = "00000000000000ea";
    other.accept(run(id, 7_200), None).await.expect("accept");
    other.ended(ended(id, "async", 7_200, "failed"));
    other.flush().await.expect("flush");
    let second = postgres::Reader::connect(&pg.url).await.expect("reader");
    // (`first` has left: what it took, a live instance may take again; the two racing here live.)
    let (a, b, taken) = tokio::join!(reader.retry(id, false), second.retry(id, false), next.retried());
    let marked = [a.expect("retry"), b.expect("retry")]
        .iter()
        .filter(|r| **r == super::retry::Retried::Marked)
        .count();
    assert_eq!(marked, 1);
    let mut runs = taken.expect("take").into_iter().filter(|r| r.id == id).count();
    runs += other.retried().await.expect("take").into_iter().filter(|r| r.id == id).count();
    runs += next.retried().await.expect("take").into_iter().filter(|r| r.id == id).count();
    assert_eq!(runs, 1, "taken by one instance");
}

/// The retry contract once more on a store that has run it (other ids).
async fn retry_contract_again(store: &dyn Store, history: &dyn History) {
    use super::retry::Retried;
    let id = "00000000000000e9";
    store.accept(run(id, 7_100), None).await.expect("accept");
    store.step_started(id, 1, "run", json!({"program": "sh"}));
    store.step_ended(id, 1, &Ok(json!({"code": 2, "stdout": "", "stderr": ""}))).await.expect("step");
    store.ended(ended(id, "async", 7_100, "failed"));
    store.flush().await.expect("flush");
    assert_eq!(history.retry(id, false).await.expect("retry"), Retried::Marked);
    let taken = store.retried().await.expect("take");
    let run = taken.iter().find(|r| r.id == id).expect("taken again");
    assert_eq!((run.retries, run.journal.len()), (1, 0), "a run that exited 2 is done again");
}
