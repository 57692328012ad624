//! Where `wf serve` puts executions: an async run is kept by the store (its `dedupe` key claimed
//! in the same transaction) and queued for a worker before its caller is answered; a sync
//! execution's key is claimed, its answer kept for duplicates or its key let go when it failed;
//! every execution's steps are journaled (a sync one's noted for its history).

use crate::effect::Effects;
use crate::exec::journal::Journaled;
use crate::exec::runs;
use crate::request::handle::{Accepted, Deciding, DedupeKey, Enqueue, ExecId, Job, Placing, Refused, Seen};
use crate::request::served::Served;
use crate::store::Store;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The async queue, the store that keeps accepted runs, and the effects every execution shares.
pub(crate) struct Queue {
    pub(crate) tx: mpsc::Sender<Job>,
    pub(crate) effects: Arc<Effects>,
    pub(crate) store: Arc<dyn Store>,
    /// `--keep-body`.
    pub(crate) keep_body: usize,
}

impl Queue {
    fn key(&self, served: &Served, id: ExecId, d: &DedupeKey) -> crate::store::Key {
        let window = i64::try_from(d.window.as_millis()).unwrap_or(i64::MAX);
        crate::store::Key {
            workflow: served.name.to_string(),
            key: d.key.clone(),
            id: id.to_string(),
            expires_ms: crate::store::now_ms().saturating_add(window),
        }
    }
}

fn seen(claim: crate::store::Claim) -> Seen {
    match claim {
        crate::store::Claim::First => Seen::First,
        crate::store::Claim::Duplicate { of, answer } => Seen::Duplicate { of, answer },
    }
}

impl Enqueue for Queue {
    fn keeps_requests(&self) -> bool {
        self.store.keeps_requests()
    }

    fn try_enqueue(&self, job: Job) -> Result<(), Job> {
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
        })
    }

    fn accept<'a>(&'a self, job: Job, request: Accepted<'a>, dedupe: Option<DedupeKey>) -> Deciding<'a> {
        Box::pin(async move {
            // A place in the queue first, so a run the store keeps is never refused after.
            let place = self.tx.clone().try_reserve_owned().map_err(|_| Refused::QueueFull)?;
            let key = dedupe.map(|d| self.key(&job.served, job.id, &d));
            let store = self.store.clone();
            // Kept and queued in a task of its own: should the caller go away while the run is
            // being committed, the run committed is still queued here (not left to a restart).
            let run = runs::new_run(&job, &request, self.keep_body);
            let id = job.id;
            // A `debounce` key: the run joins its series before it can start.
            let series = job.served.wf.debounce.as_ref().and_then(|d| {
                match crate::request::eval::eval(&d.key, &job.frame) {
                    Ok(k) if !k.is_null() => Some(crate::request::value::render_string(&k)),
                    _ => None,
                }
            });
            // An `order by` key: the run joins its key's line.
            let line = job.order_key();
            let kept = tokio::spawn(async move {
                // The run joins its line as it is kept: asked first, so that the store's writer
                // commits both in one batch (a line's entry for a run not kept, a duplicate, is
                // passed over and let go).
                let joining = async {
                    match &line {
                        Some(line) => {
                            let at = crate::store::now_ms();
                            store.order_joined(&job.served.name, line, &job.id.to_string(), at).await
                        }
                        None => Ok(()),
                    }
                };
                let (joined, claim) = tokio::join!(joining, store.accept(run, key));
                if let Err(why) = joined {
                    tracing::warn!(target: "wf::store", execution = %job.id, "the run did not join its order key's line: {why}");
                }
                if matches!(claim, Ok(crate::store::Claim::First)) {
                    if let Some(series) = series {
                        let seen = store.debounce_seen(
                            &job.served.name,
                            &series,
                            &job.id.to_string(),
                            crate::store::now_ms(),
                        );
                        if let Err(why) = seen.await {
                            tracing::warn!(target: "wf::store", execution = %job.id, "the run did not join its debounce series: {why}");
                        }
                    }
                    place.send(job);
                }
                claim
            });
            match kept.await {
                Ok(Ok(claim)) => Ok(seen(claim)),
                Ok(Err(why)) => {
                    tracing::error!(target: "wf::store", execution = %id, "cannot keep an accepted run: {why}");
                    Err(Refused::StoreUnavailable)
                }
                Err(_) => Err(Refused::StoreUnavailable),
            }
        })
    }

    fn claim<'a>(&'a self, served: &'a Served, id: ExecId, dedupe: DedupeKey) -> Deciding<'a> {
        let key = self.key(served, id, &dedupe);
        Box::pin(async move {
            self.store.claim(key).await.map(seen).map_err(|why| {
                tracing::error!(target: "wf::store", execution = %id, "cannot claim a dedupe key: {why}");
                Refused::StoreUnavailable
            })
        })
    }

    fn release(&self, served: &Served, id: ExecId, dedupe: DedupeKey) {
        let key = self.key(served, id, &dedupe);
        self.store.release(key);
    }

    fn answered(&self, served: &Served, id: ExecId, dedupe: DedupeKey, answer: serde_json::Value) {
        let key = self.key(served, id, &dedupe);
        self.store.answered(key, answer);
    }

    fn place<'a>(&'a self, served: &'a Served, id: ExecId) -> Placing<'a> {
        let limit = served.wf.concurrency.unwrap_or(u32::MAX);
        let id = id.to_string();
        let placing = self.store.place(&served.name, limit, &id);
        Box::pin(async move {
            match placing {
                None => Ok(true),
                Some(p) => p.await.map_err(|why| {
                    tracing::error!(target: "wf::store", execution = %id, "cannot take a place of the workflow's concurrency: {why}");
                    Refused::StoreUnavailable
                }),
            }
        })
    }

    fn rate<'a>(&'a self, served: &'a Served, key: String) -> crate::request::handle::Rating<'a> {
        let Some(rate) = &served.wf.rate else { return Box::pin(std::future::ready(Ok(None))) };
        let now = crate::request::step::now_ms();
        let taking = self.store.rate_take(&served.name, &key, rate.n, rate.window_ms, now);
        Box::pin(async move {
            taking.await.map_err(|why| {
                tracing::error!(target: "wf::store", workflow = %served.name, "cannot take a start of the workflow's rate: {why}");
                Refused::StoreUnavailable
            })
        })
    }

    fn free_place(&self, served: &Served, id: ExecId) {
        self.store.free_place(&served.name, &id.to_string());
    }

    fn steps(&self, id: ExecId, served: &Arc<Served>) -> Box<dyn crate::request::step::Steps> {
        if served.wf.mode == crate::lang::ast::Mode::Async {
            let (live, parked) = self.effects.kept_steps(id, served, None, 0);
            Box::new(Journaled::new(
                live,
                self.store.clone(),
                served.clone(),
                id.to_string(),
                Vec::new(),
                Some(parked),
                Some(self.effects.callbacks()),
            ))
        } else if self.store.keeps_requests() {
            Box::new(Journaled::noted(
                self.effects.steps(id, served),
                self.store.clone(),
                served.clone(),
                id.to_string(),
            ))
        } else {
            self.effects.steps(id, served)
        }
    }
}
