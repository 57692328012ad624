//! Runs taken again from the store: at start (every run accepted and not ended), every two
//! seconds or when the store says so (runs `wf runs retry` marked, parked runs now due, runs of
//! instances that died), each under the version of the workflow it was accepted with, its
//! finished steps answered from the journal; and the history pruned.

use crate::effect::Effects;
use crate::exec::journal::Journaled;
use crate::request::eval::Budget;
use crate::request::handle::{ExecId, Job};
use crate::request::served::{Router, Served};
use crate::store::standby::Standby;
use crate::store::{self, Ended, Store, Unfinished, Version};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The workflows served now (a sync execution run again by `wf runs retry` kept no version of
/// its own: it runs under them).
pub(crate) type Current = Arc<dyn Fn() -> Arc<Router> + Send + Sync>;

/// What taking runs again needs: where they are kept and queued, and how they run.
#[derive(Clone)]
pub(crate) struct Taker {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) effects: Arc<Effects>,
    pub(crate) tx: mpsc::Sender<Job>,
    pub(crate) secrets_dir: Option<std::path::PathBuf>,
    pub(crate) budget: Budget,
    pub(crate) current: Current,
}

/// Queues every run the store holds that had not ended, under the version it was accepted with,
/// its finished steps replayed from the journal. A run whose version cannot be served any more
/// (a secret it needs is unset) ends as failed, saying why.
pub(crate) async fn resume(taker: &Taker) {
    match taker.store.unfinished().await {
        Ok(runs) => queue(runs, taker).await,
        Err(why) => tracing::error!(target: "wf::store", "cannot read the runs to resume: {why}"),
    }
}

/// Every second, or at once when the store says runs may be there: opens the store if it
/// could not be opened yet (then resumes its runs), and queues the runs there are to take (the
/// failed runs `wf runs retry` marked; with a shared store, the runs of instances that died or
/// let go of them).
pub(crate) async fn take_retries(taker: Taker, standby: Option<Arc<Standby>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let woken = taker.store.woken();
    let callbacks = taker.effects.callbacks();
    let mut open = standby.as_ref().is_none_or(|s| s.why().is_empty());
    loop {
        match &woken {
            Some(w) => tokio::select! {
                _ = tick.tick() => {}
                () = w.notified() => {}
                () = callbacks.called.notified() => {}
            },
            None => tokio::select! {
                _ = tick.tick() => {}
                () = callbacks.called.notified() => {}
            },
        }
        if !open {
            let Some(s) = standby.clone() else { continue };
            if tokio::task::spawn_blocking(move || s.try_open()).await.unwrap_or(false) {
                open = true;
                tracing::info!(target: "wf::store", "the store is open again");
                resume(&taker).await;
            }
            continue;
        }
        // Taken a batch at a time, until none is left.
        loop {
            match taker.store.retried().await {
                Ok(runs) if runs.is_empty() => break,
                Ok(runs) => queue(runs, &taker).await,
                Err(why) => {
                    tracing::warn!(target: "wf::store", "cannot take the runs to run: {why}");
                    break;
                }
            }
        }
    }
}

/// Queues runs taken from the store under their versions (a retried sync execution under the
/// workflows served now, its frame extracted again from its request), finished steps replayed.
async fn queue(runs: Vec<Unfinished>, taker: &Taker) {
    if runs.is_empty() {
        return;
    }
    let store = &taker.store;
    let mut versions: HashMap<String, Result<Arc<Router>, String>> = HashMap::new();
    let mut resumed = 0usize;
    for run in runs {
        let router = match &run.version {
            Some(v) => versions
                .entry(v.hash.clone())
                .or_insert_with(|| build(v, taker.secrets_dir.as_deref()).map(Arc::new))
                .clone(),
            None => Ok((taker.current)()),
        };
        let served = match &router {
            Ok(r) => r.workflows().find(|s| *s.name == *run.workflow).cloned(),
            Err(_) => None,
        };
        let Some(served) = served else {
            let why = match router {
                Err(why) => why,
                Ok(_) if run.version.is_none() => {
                    format!("workflow `{}` is not served any more", run.workflow)
                }
                Ok(_) => format!("workflow `{}` is not in its version any more", run.workflow),
            };
            give_up(store, &run, &why);
            continue;
        };
        let mut run = run;
        if let Some(request) = run.request.take() {
            match crate::request::handle::frame_of_kept(&served, &request).await {
                Ok(frame) => run.frame = Value::Array(frame),
                Err(why) => {
                    give_up(store, &run, &format!("its request no longer gives its values: {why}"));
                    continue;
                }
            }
        }
        let Some(mut job) = job(store, &taker.effects, &served, run) else { continue };
        job.budget = taker.budget;
        if taker.tx.send(job).await.is_err() {
            return;
        }
        resumed += 1;
    }
    tracing::info!(target: "wf::store", resumed, "resumed runs from the store");
}

fn build(version: &Version, secrets_dir: Option<&Path>) -> Result<Router, String> {
    let loaded = crate::lang::loader::load_str(&version.file, &version.source);
    if loaded.has_errors() {
        return Err("its version no longer passes check".to_string());
    }
    let env = |name: &str| std::env::var(name).ok();
    crate::request::served::build_in(loaded.program, &env, secrets_dir)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

fn job(store: &Arc<dyn Store>, effects: &Arc<Effects>, served: &Arc<Served>, run: Unfinished) -> Option<Job> {
    let id = u64::from_str_radix(&run.id, 16).ok().map(ExecId)?;
    let mut frame = match run.frame {
        Value::Array(values) => values,
        _ => Vec::new(),
    };
    frame.resize(served.wf.slots, Value::Null);
    let (live, parked) = effects.kept_steps(id, served, run.waiting, run.retries);
    let steps = Box::new(
        Journaled::new(
            live,
            store.clone(),
            served.clone(),
            run.id.clone(),
            run.journal,
            Some(parked),
            Some(effects.callbacks()),
        )
        .waited(run.waiting.map(|(n, _)| n)),
    );
    Some(Job {
        served: served.clone(),
        frame,
        id,
        accepted: Instant::now(),
        steps,
        budget: Budget::default(),
        dedupe: None,
    })
}

fn give_up(store: &Arc<dyn Store>, run: &Unfinished, why: &str) {
    let reason = format!("cannot resume: {why}");
    tracing::error!(target: "wf::store", execution = %run.id, workflow = %run.workflow, "{reason}");
    store.ended(Ended {
        id: store::key(&run.id),
        workflow: run.workflow.as_str().into(),
        mode: if run.version.is_some() { store::Mode::Async } else { store::Mode::Sync },
        started_ms: run.accepted_ms,
        duration_ms: store::now_ms().saturating_sub(run.accepted_ms),
        status: 200,
        outcome: store::Outcome::Failed,
        reason: Some(reason),
        at: None,
        logs: Vec::new(),
        attempts: 0,
        request: None,
        kept: true,
    });
}

/// Deletes history older than `retain`, a thousand executions at a time, every minute.
pub(crate) async fn prune_every_minute(store: Arc<dyn Store>, retain: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let cut = store::now_ms().saturating_sub(i64::try_from(retain.as_millis()).unwrap_or(i64::MAX));
        loop {
            match store.prune(cut, 1000).await {
                Ok(n) if n >= 1000 => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(why) => {
                    tracing::warn!(target: "wf::store", "pruning the history failed: {why}");
                    break;
                }
            }
        }
    }
}
