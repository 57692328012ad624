//! The workers that run accepted async executions: each takes the next run from the queue (or a
//! run set aside for its workflow's `concurrency` whose place is free now, see
//! [`super::places`]), runs it (on the blocking pool when it loops), and ends it: its record
//! reported and kept, its `dedupe` key let go when it failed. A run a step parked or another
//! instance took over is not ended here.

use crate::exec::places::{Placed, Waiting, LOOK_EVERY};
use crate::exec::runs;
use crate::request::handle::{self, Job, Record};
use crate::store::Store;
use futures_util::FutureExt as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Told of every run that ended (the log line, the metrics).
pub(crate) type Report = Arc<dyn Fn(&Record) + Send + Sync>;

/// Wakes the taker of runs due (the next run of an `order by` line is due once a run ends).
pub(crate) type Wake = Arc<dyn Fn() + Send + Sync>;

/// Shown every run's end as the store is given it (the dashboard's live rows), when set.
pub(crate) type Watch = Option<Arc<dyn Fn(&crate::store::Ended) + Send + Sync>>;

/// Runs accepted async executions one after another until every sender is gone and the queue
/// (and the runs set aside for a place) is empty. A run whose workflow has no place free is set
/// aside ([`Waiting`]), not waited for: the worker takes the next run meanwhile.
pub(crate) async fn worker(
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    report: Report,
    watch: Watch,
    store: Arc<dyn Store>,
    waiting: Arc<Waiting>,
    lines: Arc<crate::exec::lines::Lines>,
    wake: Wake,
) {
    // Runs of an `order by` key set aside here that are to be taken now, each with whether its
    // key's place here is its own already (its turn came when the run before it ended here).
    let mut turns: std::collections::VecDeque<(Job, bool)> = std::collections::VecDeque::new();
    loop {
        let mut turn = false;
        let taken = match turns.pop_front() {
            // Its turn: it keeps its key's place here, waiting for a place of its workflow's
            // `concurrency` in this worker (set aside, it would lose its turn).
            Some((job, true)) => {
                turn = true;
                let place = match job.served.running.clone() {
                    Some(limit) => limit.acquire_owned().await.ok(),
                    None => None,
                };
                Some((job, place))
            }
            Some((job, false)) => match waiting.place(job) {
                Placed::Now(job, place) => Some((job, place)),
                Placed::SetAside => continue,
                Placed::Full(job) => {
                    let place = match job.served.running.clone() {
                        Some(limit) => limit.acquire_owned().await.ok(),
                        None => None,
                    };
                    Some((job, place))
                }
            },
            None => None,
        };
        let (job, _running) = match taken.or_else(|| waiting.next().map(|(job, place)| (job, Some(place)))) {
            Some(taken) => taken,
            None => {
                // The lock is held only while waiting, so the drain can take what is left;
                // while runs are set aside, let go of it now and then to look for their places.
                let next = {
                    let mut rx = rx.lock().await;
                    if waiting.is_empty() {
                        Some(rx.recv().await)
                    } else {
                        tokio::time::timeout(LOOK_EVERY, rx.recv()).await.ok()
                    }
                };
                match next {
                    // Time to look at the runs set aside again.
                    None => continue,
                    // The queue is closed and empty: the runs set aside are what is left.
                    Some(None) => match waiting.any().await {
                        Some(next) => next,
                        None => break,
                    },
                    Some(Some(job)) => match waiting.place(job) {
                        Placed::Now(job, place) => (job, place),
                        Placed::SetAside => continue,
                        Placed::Full(job) => {
                            let place = match job.served.running.clone() {
                                Some(limit) => limit.acquire_owned().await.ok(),
                                None => None,
                            };
                            (job, place)
                        }
                    },
                }
            }
        };
        // wf's own code has no panics (clippy denies them); should one slip in anyway, it ends
        // that execution, not the worker and every execution queued behind it.
        let (workflow, id) = (job.served.name.clone(), job.id);
        // The caller of an async run got the trigger's answer, whatever the run does after.
        let answered = job.served.immediate.as_ref().map_or(200, |a| a.status);
        let job_mode = job.served.wf.mode;
        // `order by`: the run's key, for the next run on its line to be told when it ends. A run
        // of its key under way here goes first: this one is set aside behind it.
        let line = job.order_key();
        let job = if turn {
            job
        } else {
            let Some(job) = lines.take(job, line.as_deref()) else { continue };
            job
        };
        // `concurrency N` among every process sharing the store: waited for here.
        let placed = match job.served.wf.concurrency {
            Some(limit) => wait_for_place(&store, &job.served.name, limit, &id.to_string()).await,
            None => false,
        };
        let ran = if job.served.plan.heavy {
            // Executions that loop run on the blocking pool, off the threads that answer requests.
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || runtime.block_on(handle::run_job(job))).await.map_err(|_| ())
        } else {
            // Effects are awaited: a worker waiting for a call holds no thread.
            std::panic::AssertUnwindSafe(handle::run_job(job)).catch_unwind().await.map_err(|_| ())
        };
        if placed {
            store.free_place(&workflow, &id.to_string());
        }
        match ran {
            Ok(handle::Ran::Stopped(stop)) => {
                // Not ended: kept with its due time and taken again then (by any instance), or
                // taken over by another instance. The runs set aside behind it wait in the store.
                tracing::info!(target: "wf::server", %workflow, execution = %id, "{}", stop.describe());
                if let Some(line) = &line {
                    turns.extend(lines.ended(&workflow, line, true).into_iter().map(|j| (j, false)));
                }
            }
            Ok(handle::Ran::Ended(record)) => {
                report(&record);
                // A failed run lets go of its delivery's key as the store records its end, so
                // that the sender's redelivery runs.
                let mut ended = runs::ended(record);
                ended.kept = true;
                // An async run's caller got the trigger's answer; a sync execution run again
                // (`wf runs retry`) keeps the status its workflow gave this time.
                if job_mode == crate::lang::ast::Mode::Async {
                    ended.status = answered;
                }
                if let Some(w) = &watch {
                    w(&ended);
                }
                store.ended(ended);
                if let Some(line) = &line {
                    let next = lines.ended(&workflow, line, false);
                    let ended_id = id.to_string();
                    let (store, workflow, line, id) =
                        (store.clone(), workflow.clone(), line.clone(), ended_id.clone());
                    let handed = !next.is_empty();
                    let wakes_itself = store.woken().is_some();
                    let done = async move {
                        let done = if handed {
                            store.order_left(&workflow, &line, &id).await
                        } else {
                            store.order_done(&workflow, &line, &id).await
                        };
                        if let Err(why) = &done {
                            tracing::warn!(target: "wf::store", %workflow, execution = %id, "the line of its order key was not told of its end: {why}");
                        }
                        done.is_ok()
                    };
                    // The line is told while this worker goes on: the next run set aside here takes
                    // its turn now (see `Steps::turn_after`); else the next run on the line, if
                    // any, waits parked, and is taken now, not at the taker's next look (a store
                    // that says when it made a run due wakes the taker itself).
                    let wake = wake.clone();
                    tokio::spawn(async move {
                        if done.await && !handed && !wakes_itself {
                            wake();
                        }
                    });
                    turns.extend(next.into_iter().map(|mut j| {
                        j.steps.turn_after(&ended_id);
                        (j, true)
                    }));
                }
                // Ends are never dropped (the run would run again): when the writes waiting for
                // the writer pile up, the next run is taken once they are written.
                if store.behind() {
                    if let Err(why) = store.flush().await {
                        tracing::warn!(target: "wf::store", %workflow, execution = %id, "the run's end is not written yet: {why}");
                    }
                }
            }
            Err(_) => {
                tracing::error!(target: "wf::server", %workflow, execution = %id, "async execution panicked");
                if let Some(line) = &line {
                    turns.extend(lines.ended(&workflow, line, true).into_iter().map(|j| (j, false)));
                }
            }
        }
    }
}

/// Waits for a place of a workflow's `concurrency` shared with other processes; true once one
/// is held (false when the store shares none).
async fn wait_for_place(store: &Arc<dyn Store>, workflow: &str, limit: u32, id: &str) -> bool {
    loop {
        let Some(placing) = store.place(workflow, limit, id) else { return false };
        match placing.await {
            Ok(true) => return true,
            Ok(false) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(why) => {
                tracing::warn!(target: "wf::store", execution = %id, "cannot take a place of the workflow's concurrency: {why}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
