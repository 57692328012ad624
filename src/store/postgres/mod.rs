//! The PostgreSQL store: several `wf serve` instances share one database.
//!
//! - An accepted run is one statement (with its `dedupe` key, one statement too: the key's
//!   `INSERT ... ON CONFLICT` and the run's insert in one data-modifying `WITH`), committed before
//!   the caller is answered. PostgreSQL's own group commit shares the WAL flush between callers.
//! - Each instance registers in `wf_instances` with a lease it renews on a heartbeat; the runs it
//!   accepted are its own (`owner`). A run whose owner's lease expired (or that no one owns: a
//!   retry, a run let go at shutdown) is taken with `FOR UPDATE SKIP LOCKED`, a batch at a time.
//! - Fencing: a step's end and a run's end are written only while the writer still owns the run
//!   (the run's row is locked `FOR SHARE` in the same statement). An instance that finds its lease
//!   expired takes a new identity, so the runs it was running can no longer record anything.
//! - `LISTEN wf_runs` wakes an instance when runs are let go or marked for a retry; it also polls.
//! - History and step notes are gathered and written every 10 ms in one transaction.

use super::behind::Behind;
use super::retry::{self, Retried};
use super::{
    attempts_made, hex, key, Cancel, Claim, Claimed, Commit, Ended, Filter, History, Key, Mode, NewRun,
    Outcome, Reading, Recorded, RunView, Series, State, StepView, Store, Unfinished, Version,
};
use crate::exec::callbacks::{Callback, CallbackState, Called, TokenHash};
use deadpool_postgres::Pool;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_postgres::Row;

mod accept;
mod connect;
mod reader;
mod schema;

use accept::*;
pub(crate) use connect::shown;
use connect::*;
pub(crate) use reader::Reader;
use reader::*;
use schema::*;

/// The channel instances listen on for runs to take.
pub(crate) const CHANNEL: &str = "wf_runs";
/// Runs taken in one go.
const TAKE: i64 = 256;

/// A write nobody waits for, gathered until the next batch.
enum Write {
    /// A run's first step started.
    Running(i64),
    /// A place of a workflow's `concurrency` freed.
    FreePlace(String, i64),
    Answered(Key, String),
    Release(Key),
    StepStarted {
        id: i64,
        n: i32,
        kind: String,
        request: String,
        at: i64,
    },
    StepNoted {
        id: i64,
        n: i32,
        result: Result<String, String>,
        at: i64,
    },
    StepValue {
        id: i64,
        n: i32,
        kind: String,
        value: String,
        at: i64,
    },
    Ended(Box<Ended>),
}

impl Write {
    /// When in a batch it is written: runs' rows (0), steps (1), keys (2).
    fn pass(&self) -> u8 {
        match self {
            Write::Running(_) | Write::Ended(_) => 0,
            Write::StepStarted { .. } | Write::StepNoted { .. } | Write::StepValue { .. } => 1,
            Write::Answered(..) | Write::Release(_) | Write::FreePlace(..) => 2,
        }
    }
}

/// A new instance identity: 16 random hex digits.
fn new_identity() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

struct Inner {
    pool: Pool,
    /// Accepted runs on their way to a batch.
    accepts: mpsc::Sender<Accepting>,
    /// Runs of batches whose commit failed: perhaps committed all the same.
    in_doubt: Mutex<Vec<i64>>,
    /// This instance's identity: the owner of the runs it holds. Changed when its lease is found
    /// expired, so that what it was running can no longer record anything.
    me: arc_swap::ArcSwap<String>,
    lease: Duration,
    /// Writes nobody waits for, gathered for the next batch.
    behind: Behind<Vec<Write>>,
    /// Held while a batch of gathered writes is written.
    writing: tokio::sync::Mutex<()>,
    /// Versions known to be in the database.
    known: Mutex<HashSet<String>>,
    /// Woken by `NOTIFY wf_runs`: runs may be there to take.
    woken: Arc<Notify>,
}

/// The PostgreSQL store of one `wf serve` instance.
pub(crate) struct Postgres {
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Dropped with the store: the accepting thread then stops.
    _accepting: oneshot::Sender<()>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Postgres {
    /// Connects, migrates the schema, registers this instance with a lease of `lease`, and starts
    /// the heartbeat, the batch writer and the listener.
    pub(crate) async fn connect(url: &str, lease: Duration) -> Result<Postgres, String> {
        let target = Target::parse(url)?;
        let pool = pool(&target, 32)?;
        migrate(&pool).await.map_err(|e| format!("the store {}: {e}", shown(url)))?;
        let (accepts, accepted) = mpsc::channel(ACCEPTS);
        let inner = Arc::new(Inner {
            pool,
            accepts,
            in_doubt: Mutex::new(Vec::new()),
            me: arc_swap::ArcSwap::from_pointee(new_identity()),
            lease,
            behind: Behind::default(),
            writing: tokio::sync::Mutex::new(()),
            known: Mutex::new(HashSet::new()),
            woken: Arc::new(Notify::new()),
        });
        inner.register().await?;
        let _accepting = accept::start(&target, inner.clone(), accepted)?;
        let tasks = vec![
            tokio::spawn(heartbeat(inner.clone())),
            tokio::spawn(write_gathered(inner.clone())),
            tokio::spawn(listen(target, inner.woken.clone())),
        ];
        Ok(Postgres { inner, tasks, _accepting })
    }

    #[cfg(test)]
    /// This instance's identity (the owner of the runs it holds).
    pub(crate) fn identity(&self) -> String {
        self.inner.me.load().to_string()
    }
}

impl Inner {
    async fn client(&self) -> Result<deadpool_postgres::Object, String> {
        self.pool.get().await.map_err(pooled)
    }

    fn lease_secs(&self) -> f64 {
        self.lease.as_secs_f64()
    }

    async fn register(&self) -> Result<(), String> {
        let client = self.client().await?;
        let me = self.me.load_full();
        client
            .execute(
                "INSERT INTO wf_instances (id, lease_until) VALUES ($1, now() + make_interval(secs => $2))
                 ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until",
                &[&*me, &self.lease_secs()],
            )
            .await
            .map_err(sql)?;
        Ok(())
    }

    /// Renews the lease; when it had expired, takes a new identity (the runs held under the old
    /// one may be another instance's by now).
    async fn renew(&self) -> Result<(), String> {
        let client = self.client().await?;
        let me = self.me.load_full();
        let renewed = client
            .execute(
                "UPDATE wf_instances SET lease_until = now() + make_interval(secs => $2)
                 WHERE id = $1 AND lease_until > now()",
                &[&*me, &self.lease_secs()],
            )
            .await
            .map_err(sql)?;
        if renewed == 0 {
            tracing::warn!(target: "wf::store", instance = %me, "this instance's lease had expired: the runs it held may be taken over, and what they do is no longer recorded; going on as a new instance");
            self.me.store(Arc::new(new_identity()));
            drop(client);
            self.register().await?;
        }
        Ok(())
    }

    /// Writes a version's text once.
    async fn version(&self, client: &deadpool_postgres::Object, v: &Version) -> Result<(), String> {
        if self.known.lock().is_ok_and(|k| k.contains(&v.hash)) {
            return Ok(());
        }
        let st = client
            .prepare_cached("INSERT INTO wf_versions (hash, file, source) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING")
            .await
            .map_err(sql)?;
        client.execute(&st, &[&v.hash, &v.file, &&*v.source]).await.map_err(sql)?;
        if let Ok(mut k) = self.known.lock() {
            k.insert(v.hash.clone());
        }
        Ok(())
    }

    fn later(&self, write: Write) {
        self.behind.push(|w| w.push(write));
    }

    /// Lets go of runs whose batch failed to commit (should they have been committed anyway).
    async fn release_in_doubt(&self) -> Result<(), String> {
        let ids = self.in_doubt.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default();
        if ids.is_empty() {
            return Ok(());
        }
        let released = async {
            let client = self.client().await?;
            let me = self.me.load_full();
            client
                .execute(
                    "UPDATE wf_executions SET owner = NULL WHERE id = ANY($1) AND owner = $2 AND state = 'queued'",
                    &[&ids, &*me],
                )
                .await
                .map_err(sql)
        }
        .await;
        match released {
            Ok(0) => Ok(()),
            Ok(n) => {
                tracing::warn!(target: "wf::store", runs = n, "runs whose callers were told 503 had been kept after all: they will run");
                Ok(())
            }
            Err(why) => {
                if let Ok(mut d) = self.in_doubt.lock() {
                    d.extend(ids);
                }
                Err(why)
            }
        }
    }

    /// Writes what was gathered, in one transaction. On failure the writes are tried again with
    /// the next batch (see [`Behind`]).
    async fn write_gathered(&self) -> Result<(), String> {
        // One batch at a time: a flush returns only once the batch under way is committed too.
        let _one = self.writing.lock().await;
        let mut batch = Vec::new();
        self.behind.take(&mut batch);
        if batch.is_empty() {
            return Ok(());
        }
        let written = async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(sql)?;
            let me = self.me.load_full();
            // Runs' rows first, then steps, then keys: a step's end (written at once) locks its
            // run's row and then its step's, so a batch that took them the other way round
            // could deadlock with it.
            // Within a pass the statements are pipelined (sent in order, not waited for one
            // by one).
            runs(&tx, &batch, &me).await.map_err(sql)?;
            for pass in 1..3 {
                let writes = batch.iter().filter(|w| w.pass() == pass).map(|w| apply(&tx, w));
                futures_util::future::try_join_all(writes).await.map_err(sql)?;
            }
            // Each workflow's rejections but the newest `REJECTED_KEPT` go.
            let mut rejected: Vec<&str> = Vec::new();
            for w in &batch {
                if let Write::Ended(e) = w {
                    if e.outcome == Outcome::Rejected && !rejected.contains(&&*e.workflow) {
                        rejected.push(&e.workflow);
                    }
                }
            }
            for workflow in rejected {
                let keep = super::REJECTED_KEPT as i64;
                tx.execute(TRIM_REJECTED, &[&workflow, &keep]).await.map_err(sql)?;
            }
            tx.commit().await.map_err(sql)
        }
        .await;
        match &written {
            Ok(()) => self.behind.written(),
            Err(why) => match self.behind.failed(&mut batch) {
                0 => tracing::warn!(target: "wf::store", "history not written yet (tried again): {why}"),
                lost => {
                    tracing::error!(target: "wf::store", dropped = lost, "history not written: dropped: {why}")
                }
            },
        }
        written
    }

    async fn held(&self, client: &deadpool_postgres::Object, k: &Key) -> Result<Option<Claim>, String> {
        let st = client.prepare_cached(HELD_KEY).await.map_err(sql)?;
        let row = client.query_opt(&st, &[&k.workflow, &k.key, &super::now_ms()]).await.map_err(sql)?;
        Ok(row.map(|r| {
            let answer: Option<String> = r.get(1);
            Claim::Duplicate { of: hex(r.get(0)), answer: answer.and_then(|a| serde_json::from_str(&a).ok()) }
        }))
    }

    async fn accept(&self, mut run: NewRun, dedupe: Option<Key>) -> Result<Claim, String> {
        // Runs are committed in batches (a statement each, after their versions) by the
        // accepting thread.
        let id = key(&run.id);
        let (request, frame) = (std::mem::take(&mut run.request), std::mem::take(&mut run.frame));
        let env = serde_json::to_string(&run.env_names).unwrap_or_default();
        let (done, claimed) = oneshot::channel();
        let run = Accepting { id, run, request, frame, env, key: dedupe, done };
        self.accepts.send(run).await.map_err(|_| "the store's accepting thread stopped".to_string())?;
        claimed.await.map_err(|_| "the store's accepting thread stopped".to_string())?
    }

    async fn claim(&self, k: Key) -> Result<Claim, String> {
        let client = self.client().await?;
        let st = client.prepare_cached(CLAIM_KEY).await.map_err(sql)?;
        for _ in 0..3 {
            let rows = client
                .query(&st, &[&k.workflow, &k.key, &key(&k.id), &k.expires_ms, &super::now_ms()])
                .await
                .map_err(sql)?;
            if !rows.is_empty() {
                return Ok(Claim::First);
            }
            if let Some(dup) = self.held(&client, &k).await? {
                return Ok(dup);
            }
        }
        Err("the dedupe key kept changing hands".into())
    }

    async fn step_ended(&self, id: i64, n: i32, result: Result<String, String>) -> Result<Recorded, String> {
        let client = self.client().await?;
        let st = client.prepare_cached(STEP_ENDED).await.map_err(sql)?;
        let me = self.me.load_full();
        let (state, value, reason) = match &result {
            Ok(v) => ("finished", Some(v.as_str()), None),
            Err(r) => ("failed", None, Some(r.as_str())),
        };
        let written = client
            .execute(&st, &[&id, &*me, &n, &state, &value, &reason, &super::now_ms()])
            .await
            .map_err(sql)?;
        if written == 0 {
            return Ok(Recorded::Fenced);
        }
        Ok(Recorded::Kept)
    }

    async fn step_parked(
        &self,
        id: i64,
        n: i32,
        kind: &str,
        due_ms: i64,
        attempts: u32,
    ) -> Result<Recorded, String> {
        let client = self.client().await?;
        let st = client.prepare_cached(STEP_PARKED).await.map_err(sql)?;
        let me = self.me.load_full();
        let made = serde_json::json!({"attempts": attempts}).to_string();
        let written = client
            .execute(&st, &[&id, &*me, &due_ms, &n, &made, &super::now_ms(), &kind])
            .await
            .map_err(sql)?;
        if written == 0 {
            return Ok(Recorded::Fenced);
        }
        Ok(Recorded::Kept)
    }

    /// Takes a place of `workflow`'s `concurrency` (a few tries: two instances may reach for
    /// the same free place at once).
    async fn place(&self, workflow: &str, limit: u32, id: i64) -> Result<bool, String> {
        let client = self.client().await?;
        let st = client.prepare_cached(TAKE_PLACE).await.map_err(sql)?;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        for _ in 0..3 {
            let me = self.me.load_full();
            let rows = client.query(&st, &[&workflow, &limit, &*me, &id]).await.map_err(sql)?;
            if !rows.is_empty() {
                return Ok(true);
            }
            // None free, or one taken under us: free places are looked for again.
            let held = client
                .query_one(
                    "SELECT count(*) FROM wf_places p JOIN wf_instances i ON i.id = p.owner
                     WHERE p.workflow = $1 AND i.lease_until > now()",
                    &[&workflow],
                )
                .await
                .map_err(sql)?;
            if held.get::<_, i64>(0) >= i64::from(limit) {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// Takes up to [`TAKE`] runs no live instance holds, oldest first, with their finished steps.
    async fn take(&self) -> Result<Vec<Unfinished>, String> {
        let mut client = self.client().await?;
        let me = self.me.load_full();
        let tx = client.transaction().await.map_err(sql)?;
        let rows = tx.query(TAKE_RUNS, &[&*me, &TAKE, &super::now_ms()]).await.map_err(sql)?;
        let mut runs = Vec::with_capacity(rows.len());
        for r in rows {
            // A sync execution `wf runs retry` runs again has no version: it runs under the
            // workflow served now, from its request.
            let mode: Mode = r.try_get(6).map_err(sql)?;
            let hash: Option<String> = r.get(4);
            let version = match hash {
                Some(hash) => {
                    let v = tx
                        .query_opt("SELECT file, source FROM wf_versions WHERE hash = $1", &[&hash])
                        .await
                        .map_err(sql)?;
                    let Some(v) = v else { continue };
                    Some(Version { hash, file: v.get(0), source: Arc::from(v.get::<_, String>(1)) })
                }
                None if mode == Mode::Sync => None,
                None => continue,
            };
            let request: Option<String> = r.get(7);
            let request =
                (mode == Mode::Sync).then(|| request.and_then(|q| serde_json::from_str(&q).ok())).flatten();
            let frame: Option<String> = r.get(2);
            let id: i64 = r.get(0);
            let steps = tx
                .query(
                    "SELECT n, result, state FROM wf_steps WHERE execution = $1 AND state IN ('finished', 'waiting')
                     ORDER BY n",
                    &[&id],
                )
                .await
                .map_err(sql)?;
            let (mut journal, mut waiting) = (Vec::new(), None);
            for s in &steps {
                let text: Option<String> = s.get(1);
                let n = u32::try_from(s.get::<_, i32>(0)).unwrap_or(0);
                let value = text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
                if s.get::<_, &str>(2) == "waiting" {
                    waiting = Some((n, attempts_made(&value)));
                } else {
                    journal.push((n, Ok(value)));
                }
            }
            runs.push(Unfinished {
                id: hex(id),
                workflow: r.get(1),
                version,
                request,
                frame: frame.and_then(|f| serde_json::from_str(&f).ok()).unwrap_or(Value::Null),
                accepted_ms: r.get(3),
                journal,
                waiting,
                retries: u32::try_from(r.get::<_, i32>(5)).unwrap_or(0),
            });
        }
        tx.commit().await.map_err(sql)?;
        runs.sort_by_key(|r| (r.accepted_ms, key(&r.id)));
        Ok(runs)
    }

    /// Lets go of the runs this instance holds (at shutdown): another instance takes them at once.
    async fn leave(&self) -> Result<(), String> {
        let mut client = self.client().await?;
        let me = self.me.load_full();
        let tx = client.transaction().await.map_err(sql)?;
        let released = tx
            .execute("UPDATE wf_executions SET owner = NULL WHERE owner = $1 AND state <> 'ended'", &[&*me])
            .await
            .map_err(sql)?;
        tx.execute("DELETE FROM wf_places WHERE owner = $1", &[&*me]).await.map_err(sql)?;
        tx.execute("DELETE FROM wf_instances WHERE id = $1", &[&*me]).await.map_err(sql)?;
        if released > 0 {
            tx.execute(&format!("NOTIFY {CHANNEL}"), &[]).await.map_err(sql)?;
        }
        tx.commit().await.map_err(sql)
    }
}

/// One gathered write, in the batch's transaction.
/// The runs' rows of a batch (the first pass): which runs started, and which executions ended,
/// a statement each, their values as arrays.
async fn runs(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &[Write],
    me: &str,
) -> Result<(), tokio_postgres::Error> {
    let ended: Vec<&Ended> =
        batch.iter().filter_map(|w| if let Write::Ended(e) = w { Some(&**e) } else { None }).collect();
    // A run that also ended in this batch is not marked running first: its end (written after,
    // whatever the run's state) is all that stays, and the row is rewritten once, not twice.
    let ending: HashSet<i64> = ended.iter().map(|e| e.id).collect();
    let running: Vec<i64> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Running(id) if !ending.contains(id) => Some(*id),
            _ => None,
        })
        .collect();
    if !running.is_empty() {
        let st = tx.prepare_cached(RUNNING).await?;
        tx.execute(&st, &[&running]).await?;
    }
    // One statement may not write a row twice: an execution that ended twice in a batch (a run
    // retried at once) is written a statement per end, in order.
    let mut seen = HashSet::with_capacity(ended.len());
    let groups: Vec<&[&Ended]> =
        if ended.iter().all(|e| seen.insert(e.id)) { vec![&ended[..]] } else { ended.chunks(1).collect() };
    let st = tx.prepare_cached(ENDED).await?;
    for group in groups.into_iter().filter(|g| !g.is_empty()) {
        let ids: Vec<i64> = group.iter().map(|e| e.id).collect();
        let workflows: Vec<&str> = group.iter().map(|e| &*e.workflow).collect();
        let modes: Vec<&str> = group.iter().map(|e| e.mode.as_str()).collect();
        let started: Vec<i64> = group.iter().map(|e| e.started_ms).collect();
        let ends: Vec<i64> = group.iter().map(|e| e.started_ms.saturating_add(e.duration_ms)).collect();
        let durations: Vec<i64> = group.iter().map(|e| e.duration_ms).collect();
        let statuses: Vec<i32> = group.iter().map(|e| i32::from(e.status)).collect();
        let outcomes: Vec<&str> = group.iter().map(|e| e.outcome.as_str()).collect();
        let reasons: Vec<Option<&str>> = group.iter().map(|e| e.reason.as_deref()).collect();
        let ats: Vec<Option<&str>> = group.iter().map(|e| e.at.as_deref()).collect();
        let logs: Vec<String> =
            group.iter().map(|e| serde_json::to_string(&e.logs).unwrap_or_default()).collect();
        let attempts: Vec<i32> =
            group.iter().map(|e| i32::try_from(e.attempts).unwrap_or(i32::MAX)).collect();
        let requests: Vec<Option<String>> =
            group.iter().map(|e| e.request.as_ref().map(|r| r.to_json())).collect();
        tx.execute(
            &st,
            &[
                &ids, &workflows, &modes, &started, &ends, &durations, &statuses, &outcomes, &reasons, &ats,
                &logs, &me, &attempts, &requests,
            ],
        )
        .await?;
    }
    // A failed run lets go of its delivery's key: the sender's redelivery runs.
    let failed = ended.iter().filter(|e| e.outcome == Outcome::Failed && e.mode == Mode::Async);
    for e in failed {
        let st = tx.prepare_cached(RELEASE_FAILED).await?;
        tx.execute(&st, &[&e.id]).await?;
    }
    Ok(())
}

async fn apply(tx: &deadpool_postgres::Transaction<'_>, write: &Write) -> Result<(), tokio_postgres::Error> {
    match write {
        Write::Answered(k, answer) => {
            let st = tx
                .prepare_cached(
                    "UPDATE wf_dedupe SET answer = $4 WHERE workflow = $1 AND key = $2 AND execution = $3",
                )
                .await?;
            tx.execute(&st, &[&k.workflow, &k.key, &key(&k.id), answer]).await?;
        }
        Write::Release(k) => {
            let st = tx
                .prepare_cached(
                    "DELETE FROM wf_dedupe WHERE workflow = $1 AND key = $2 AND execution = $3 AND answer IS NULL",
                )
                .await?;
            tx.execute(&st, &[&k.workflow, &k.key, &key(&k.id)]).await?;
        }
        Write::FreePlace(workflow, id) => {
            let st =
                tx.prepare_cached("DELETE FROM wf_places WHERE workflow = $1 AND execution = $2").await?;
            tx.execute(&st, &[workflow, id]).await?;
        }
        // Written a batch at a time, by `runs`.
        Write::Running(_) | Write::Ended(_) => {}
        Write::StepStarted { id, n, kind, request, at } => {
            let st = tx.prepare_cached(STEP_STARTED).await?;
            tx.execute(&st, &[id, n, kind, request, at]).await?;
        }
        Write::StepNoted { id, n, result, at } => {
            let (state, value, reason) = match result {
                Ok(v) => ("finished", Some(v.as_str()), None),
                Err(r) => ("failed", None, Some(r.as_str())),
            };
            let st = tx.prepare_cached(STEP_NOTED).await?;
            tx.execute(&st, &[id, n, &state, &value, &reason, at]).await?;
        }
        Write::StepValue { id, n, kind, value, at } => {
            let st = tx.prepare_cached(STEP_VALUE).await?;
            tx.execute(&st, &[id, n, kind, value, at]).await?;
        }
    }
    Ok(())
}

/// Renews the lease three times per lease.
async fn heartbeat(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval((inner.lease / 3).max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(why) = inner.renew().await {
            tracing::warn!(target: "wf::store", "cannot renew this instance's lease: {why}");
        }
    }
}

/// Every 10 ms, writes what was gathered.
async fn write_gathered(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _ = inner.write_gathered().await;
        let _ = inner.release_in_doubt().await;
    }
}

impl History for Postgres {
    fn prune(&self, before_ms: i64, batch: usize) -> Reading<'_, usize> {
        Box::pin(async move {
            let client = self.inner.client().await?;
            prune(&client, before_ms, batch).await
        })
    }

    fn list(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        let filter = filter.clone();
        Box::pin(async move {
            let client = self.inner.client().await?;
            list(&client, &filter).await
        })
    }

    fn whole(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        let filter = filter.clone();
        Box::pin(async move {
            let client = self.inner.client().await?;
            reader::whole(&client, &filter).await
        })
    }

    fn show(&self, id: &str) -> Reading<'_, Option<RunView>> {
        let id = id.to_string();
        Box::pin(async move {
            let client = self.inner.client().await?;
            show(&client, &id).await
        })
    }

    fn cancel(&self, id: &str) -> Reading<'_, Cancel> {
        let id = id.to_string();
        Box::pin(async move {
            let mut client = self.inner.client().await?;
            reader::cancel(&mut client, &id).await
        })
    }

    fn keyed(&self, key: &str) -> Reading<'_, Vec<String>> {
        let key = key.to_string();
        Box::pin(async move {
            let client = self.inner.client().await?;
            reader::keyed(&client, &key).await
        })
    }

    fn retry(&self, id: &str, from_start: bool) -> Reading<'_, Retried> {
        let id = id.to_string();
        Box::pin(async move {
            let mut client = self.inner.client().await?;
            retry(&mut client, &id, from_start).await
        })
    }
}

impl Store for Postgres {
    fn callback_key(&self) -> Reading<'_, [u8; 32]> {
        Box::pin(async move {
            let mut fresh = [0u8; 32];
            getrandom::fill(&mut fresh).map_err(|e| format!("no random key: {e}"))?;
            let client = self.inner.client().await?;
            client
                .execute(
                    "INSERT INTO wf_settings (name, value) VALUES ('callback_key', $1) ON CONFLICT (name) DO NOTHING",
                    &[&fresh.to_vec()],
                )
                .await
                .map_err(sql)?;
            let row = client
                .query_one("SELECT value FROM wf_settings WHERE name = 'callback_key'", &[])
                .await
                .map_err(sql)?;
            let key: Vec<u8> = row.get(0);
            Ok(<[u8; 32]>::try_from(key.as_slice()).unwrap_or(fresh))
        })
    }

    fn callback_made(&self, hash: TokenHash, id: &str, n: u32, expires_ms: i64) -> Reading<'_, ()> {
        let (id, n) = (key(id), i32::try_from(n).unwrap_or(i32::MAX));
        Box::pin(async move {
            let client = self.inner.client().await?;
            client
                .execute(
                    "INSERT INTO wf_callbacks (hash, execution, n, expires_ms, state) VALUES ($1, $2, $3, $4, 'waiting')
                     ON CONFLICT (hash) DO NOTHING",
                    &[&hash.to_vec(), &id, &n, &expires_ms],
                )
                .await
                .map_err(sql)?;
            Ok(())
        })
    }

    fn callback(&self, hash: TokenHash) -> Reading<'_, Option<Callback>> {
        Box::pin(async move {
            let client = self.inner.client().await?;
            let row = client
                .query_opt(
                    "SELECT execution, n, expires_ms, state, reply FROM wf_callbacks WHERE hash = $1",
                    &[&hash.to_vec()],
                )
                .await
                .map_err(sql)?;
            Ok(row.map(|r| {
                let state: String = r.get(3);
                let reply: Option<String> = r.get(4);
                Callback {
                    execution: hex(r.get(0)),
                    n: u32::try_from(r.get::<_, i32>(1)).unwrap_or(0),
                    expires_ms: r.get(2),
                    state: CallbackState::parse(&state).unwrap_or(CallbackState::Expired),
                    reply: reply.and_then(|t| serde_json::from_str(&t).ok()),
                }
            }))
        })
    }

    fn callback_called(&self, hash: TokenHash, reply: Value, now_ms: i64) -> Reading<'_, Called> {
        Box::pin(async move {
            let mut client = self.inner.client().await?;
            let tx = client.transaction().await.map_err(sql)?;
            let taken = tx
                .query_opt(
                    "UPDATE wf_callbacks SET state = 'called', reply = $2
                     WHERE hash = $1 AND state = 'waiting' AND expires_ms > $3 RETURNING execution",
                    &[&hash.to_vec(), &reply.to_string(), &now_ms],
                )
                .await
                .map_err(sql)?;
            let called = match taken {
                Some(row) => {
                    let run: i64 = row.get(0);
                    let due = tx
                        .execute(
                            "UPDATE wf_executions SET due_ms = 0 WHERE id = $1 AND state = 'parked'",
                            &[&run],
                        )
                        .await
                        .map_err(sql)?;
                    if due > 0 {
                        tx.batch_execute(&format!("NOTIFY {CHANNEL}")).await.map_err(sql)?;
                    }
                    Called::Taken
                }
                None => {
                    let known = tx
                        .query_opt("SELECT 1 FROM wf_callbacks WHERE hash = $1", &[&hash.to_vec()])
                        .await
                        .map_err(sql)?;
                    if known.is_some() {
                        Called::Gone
                    } else {
                        Called::Unknown
                    }
                }
            };
            tx.commit().await.map_err(sql)?;
            Ok(called)
        })
    }

    fn wait_parked(&self, id: &str, n: u32, hash: TokenHash) -> Reading<'_, Recorded> {
        let (id, n) = (key(id), i32::try_from(n).unwrap_or(i32::MAX));
        Box::pin(async move {
            let client = self.inner.client().await?;
            let me = self.inner.me.load_full();
            let written = client
                .execute(schema::WAIT_PARKED, &[&id, &*me, &hash.to_vec(), &n, &super::now_ms()])
                .await
                .map_err(sql)?;
            Ok(if written == 0 { Recorded::Fenced } else { Recorded::Kept })
        })
    }

    fn callback_expired(&self, hash: TokenHash) -> Reading<'_, ()> {
        Box::pin(async move {
            let client = self.inner.client().await?;
            client
                .execute(
                    "UPDATE wf_callbacks SET state = 'expired' WHERE hash = $1 AND state = 'waiting'",
                    &[&hash.to_vec()],
                )
                .await
                .map_err(sql)?;
            Ok(())
        })
    }

    fn accept(&self, run: NewRun, dedupe: Option<Key>) -> Claimed<'_> {
        Box::pin(self.inner.accept(run, dedupe))
    }

    fn claim(&self, key: Key) -> Claimed<'_> {
        Box::pin(self.inner.claim(key))
    }

    fn answered(&self, key: Key, answer: Value) {
        self.inner.later(Write::Answered(key, answer.to_string()));
    }

    fn release(&self, key: Key) {
        self.inner.later(Write::Release(key));
    }

    fn step_started(&self, id: &str, n: u32, kind: &str, request: Value) {
        self.inner.later(Write::Running(key(id)));
        self.inner.later(Write::StepStarted {
            id: key(id),
            n: i32::try_from(n).unwrap_or(i32::MAX),
            kind: kind.into(),
            request: request.to_string(),
            at: super::now_ms(),
        });
    }

    fn step_ended(&self, id: &str, n: u32, result: &Result<Value, String>) -> Reading<'_, Recorded> {
        let result = result.as_ref().map(Value::to_string).map_err(Clone::clone);
        let (id, n) = (key(id), i32::try_from(n).unwrap_or(i32::MAX));
        Box::pin(self.inner.step_ended(id, n, result))
    }

    fn step_parked(&self, id: &str, n: u32, kind: &str, due_ms: i64, attempts: u32) -> Reading<'_, Recorded> {
        let (id, n, kind) = (key(id), i32::try_from(n).unwrap_or(i32::MAX), kind.to_string());
        Box::pin(async move { self.inner.step_parked(id, n, &kind, due_ms, attempts).await })
    }

    fn step_noted(&self, id: &str, n: u32, result: &Result<Value, String>) {
        let result = result.as_ref().map(Value::to_string).map_err(Clone::clone);
        let (id, n) = (key(id), i32::try_from(n).unwrap_or(i32::MAX));
        self.inner.later(Write::StepNoted { id, n, result, at: super::now_ms() });
    }

    fn step_value(&self, id: &str, n: u32, kind: &str, value: &Value) {
        self.inner.later(Write::StepValue {
            id: key(id),
            n: i32::try_from(n).unwrap_or(i32::MAX),
            kind: kind.into(),
            value: value.to_string(),
            at: super::now_ms(),
        });
    }

    fn ended(&self, e: Ended) {
        if e.kept {
            // A kept run's end is never dropped: were it lost, the run would run again.
            return self.inner.behind.push_always(|w| w.push(Write::Ended(Box::new(e))));
        }
        self.inner.later(Write::Ended(Box::new(e)));
    }

    fn unfinished(&self) -> Reading<'_, Vec<Unfinished>> {
        Box::pin(self.inner.take())
    }

    fn retried(&self) -> Reading<'_, Vec<Unfinished>> {
        Box::pin(self.inner.take())
    }

    fn flush(&self) -> Commit<'_> {
        Box::pin(self.inner.write_gathered())
    }

    fn dropped(&self) -> u64 {
        self.inner.behind.dropped()
    }

    fn behind(&self) -> bool {
        self.inner.behind.full()
    }

    fn debounce_seen(&self, workflow: &str, key: &str, id: &str, accepted_ms: i64) -> Reading<'_, ()> {
        let (workflow, dkey, id) = (workflow.to_string(), key.to_string(), super::key(id));
        Box::pin(async move {
            let client = self.inner.client().await?;
            client
                .execute(
                    "INSERT INTO wf_debounce (workflow, key, latest, first_ms, latest_ms) VALUES ($1, $2, $3, $4, $4)
                     ON CONFLICT (workflow, key) DO UPDATE SET
                         latest = CASE WHEN wf_debounce.ended
                             OR (EXCLUDED.latest_ms, EXCLUDED.latest) > (wf_debounce.latest_ms, wf_debounce.latest)
                             THEN EXCLUDED.latest ELSE wf_debounce.latest END,
                         latest_ms = CASE WHEN wf_debounce.ended THEN EXCLUDED.latest_ms
                             ELSE GREATEST(wf_debounce.latest_ms, EXCLUDED.latest_ms) END,
                         first_ms = CASE WHEN wf_debounce.ended THEN EXCLUDED.first_ms
                             ELSE LEAST(wf_debounce.first_ms, EXCLUDED.first_ms) END,
                         ended = false",
                    &[&workflow, &dkey, &id, &accepted_ms],
                )
                .await
                .map_err(sql)?;
            Ok(())
        })
    }

    fn order_joined(&self, workflow: &str, key: &str, id: &str, accepted_ms: i64) -> Reading<'_, ()> {
        let (workflow, okey, id) = (workflow.to_string(), key.to_string(), super::key(id));
        Box::pin(async move {
            let client = self.inner.client().await?;
            client
                .execute(
                    "INSERT INTO wf_orders (workflow, key, accepted_ms, execution) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    &[&workflow, &okey, &accepted_ms, &id],
                )
                .await
                .map_err(sql)?;
            Ok(())
        })
    }

    fn order_head(&self, workflow: &str, key: &str) -> Reading<'_, Option<String>> {
        let (workflow, okey) = (workflow.to_string(), key.to_string());
        Box::pin(async move {
            let client = self.inner.client().await?;
            order_head(&client, &workflow, &okey).await
        })
    }

    fn order_front(&self, workflow: &str, key: &str) -> Reading<'_, Vec<String>> {
        let (workflow, okey) = (workflow.to_string(), key.to_string());
        Box::pin(async move {
            let client = self.inner.client().await?;
            order_front(&client, &workflow, &okey).await
        })
    }

    fn order_done(&self, workflow: &str, key: &str, id: &str) -> Reading<'_, ()> {
        let (workflow, okey, id) = (workflow.to_string(), key.to_string(), super::key(id));
        Box::pin(async move {
            let mut client = self.inner.client().await?;
            let tx = client.transaction().await.map_err(sql)?;
            tx.execute(
                "DELETE FROM wf_orders WHERE workflow = $1 AND key = $2 AND execution = $3",
                &[&workflow, &okey, &id],
            )
            .await
            .map_err(sql)?;
            if let Some(next) = order_head(&tx, &workflow, &okey).await? {
                let woke = tx
                    .execute(
                        "UPDATE wf_executions SET due_ms = 0 WHERE id = $1 AND state = 'parked'",
                        &[&super::key(&next)],
                    )
                    .await
                    .map_err(sql)?;
                if woke > 0 {
                    tx.batch_execute(&format!("NOTIFY {CHANNEL}")).await.map_err(sql)?;
                }
            }
            tx.commit().await.map_err(sql)
        })
    }

    fn rate_take(
        &self,
        workflow: &str,
        key: &str,
        n: u32,
        window_ms: i64,
        now_ms: i64,
    ) -> Reading<'_, Option<i64>> {
        let (workflow, rkey) = (workflow.to_string(), key.to_string());
        Box::pin(async move {
            let mut client = self.inner.client().await?;
            let tx = client.transaction().await.map_err(sql)?;
            // The key's row, made when missing, then locked: instances take starts one at a time.
            tx.execute(
                "INSERT INTO wf_rates (workflow, key, window_ms, last_ms, starts) VALUES ($1, $2, $3, 0, '{}')
                 ON CONFLICT DO NOTHING",
                &[&workflow, &rkey, &window_ms],
            )
            .await
            .map_err(sql)?;
            let row = tx
                .query_one(
                    "SELECT starts FROM wf_rates WHERE workflow = $1 AND key = $2 FOR UPDATE",
                    &[&workflow, &rkey],
                )
                .await
                .map_err(sql)?;
            let mut starts: Vec<i64> = row.try_get(0).map_err(sql)?;
            let before = starts.clone();
            let next = super::rate::take(&mut starts, n, window_ms, now_ms);
            // Kept when a start was taken, and when starts were moved back to a clock set back.
            if starts != before {
                tx.execute(
                    "UPDATE wf_rates SET window_ms = $3, last_ms = $4, starts = $5 WHERE workflow = $1 AND key = $2",
                    &[&workflow, &rkey, &window_ms, &now_ms, &starts],
                )
                .await
                .map_err(sql)?;
            }
            tx.commit().await.map_err(sql)?;
            Ok(next)
        })
    }

    fn debounce_series(&self, workflow: &str, key: &str) -> Reading<'_, Option<Series>> {
        let (workflow, dkey) = (workflow.to_string(), key.to_string());
        Box::pin(async move {
            let client = self.inner.client().await?;
            let row = client
                .query_opt(
                    "SELECT latest, first_ms, latest_ms FROM wf_debounce WHERE workflow = $1 AND key = $2",
                    &[&workflow, &dkey],
                )
                .await
                .map_err(sql)?;
            Ok(row.map(|r| Series { latest: hex(r.get(0)), first_ms: r.get(1), latest_ms: r.get(2) }))
        })
    }

    fn debounce_done(&self, workflow: &str, key: &str, id: &str) -> Reading<'_, ()> {
        let (workflow, dkey, id) = (workflow.to_string(), key.to_string(), super::key(id));
        Box::pin(async move {
            let client = self.inner.client().await?;
            client
                .execute(
                    "UPDATE wf_debounce SET ended = true WHERE workflow = $1 AND key = $2 AND latest = $3",
                    &[&workflow, &dkey, &id],
                )
                .await
                .map_err(sql)?;
            Ok(())
        })
    }

    fn waiting(&self) -> Reading<'_, Vec<(&'static str, u64)>> {
        Box::pin(async move {
            let client = self.inner.client().await?;
            let rows = client
                .query(
                    "SELECT coalesce(s.kind, 'http'), count(*) FROM wf_executions e
                     LEFT JOIN wf_steps s ON s.execution = e.id AND s.state = 'waiting'
                     WHERE e.state = 'parked' GROUP BY 1",
                    &[],
                )
                .await
                .map_err(sql)?;
            let mut out: Vec<(&'static str, u64)> = Vec::new();
            for r in &rows {
                let (what, n) = (
                    super::waits_for(&r.get::<_, String>(0)),
                    u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                );
                match out.iter_mut().find(|(w, _)| *w == what) {
                    Some(x) => x.1 += n,
                    None => out.push((what, n)),
                }
            }
            Ok(out)
        })
    }

    fn leave(&self) -> Commit<'_> {
        Box::pin(self.inner.leave())
    }

    fn place(&self, workflow: &str, limit: u32, id: &str) -> Option<Reading<'_, bool>> {
        let (workflow, id) = (workflow.to_string(), key(id));
        Some(Box::pin(async move { self.inner.place(&workflow, limit, id).await }))
    }

    fn free_place(&self, workflow: &str, id: &str) {
        self.inner.later(Write::FreePlace(workflow.to_string(), key(id)));
    }

    fn woken(&self) -> Option<Arc<Notify>> {
        Some(self.inner.woken.clone())
    }
}

/// Whose turn it is on a key's line: its earliest run that has not ended.
async fn order_head(
    client: &impl deadpool_postgres::GenericClient,
    workflow: &str,
    okey: &str,
) -> Result<Option<String>, String> {
    Ok(order_front(client, workflow, okey).await?.into_iter().next())
}

/// The first two runs of a key's line that have not ended.
async fn order_front(
    client: &impl deadpool_postgres::GenericClient,
    workflow: &str,
    okey: &str,
) -> Result<Vec<String>, String> {
    let rows = client
        .query(
            "SELECT o.execution FROM wf_orders o JOIN wf_executions e ON e.id = o.execution
             WHERE o.workflow = $1 AND o.key = $2 AND e.state <> 'ended'
             ORDER BY o.accepted_ms, o.execution LIMIT 2",
            &[&workflow, &okey],
        )
        .await
        .map_err(sql)?;
    Ok(rows.iter().map(|r| hex(r.get(0))).collect())
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_shown_url_has_no_password() {
        assert_eq!(shown("postgres://wf:s3cret@db:5432/wf"), "postgres://wf:***@db:5432/wf");
        assert_eq!(shown("postgres://wf@db/wf"), "postgres://wf@db/wf");
        assert_eq!(shown("host=db user=wf"), "host=db user=wf");
    }
}

#[cfg(test)]
mod shared {
    //! What sharing one database between instances takes: leases, taking over, fencing.

    use super::*;
    use crate::store::test_postgres::Cluster;
    use serde_json::json;

    fn run(id: u64) -> NewRun {
        NewRun {
            id: format!("{id:016x}"),
            workflow: "w".into(),
            version: Arc::new(Version {
                hash: "h".into(),
                file: "w.wf".into(),
                source: Arc::from("workflow w {}"),
            }),
            frame: "[]".into(),
            request: "{}".into(),
            env_names: Vec::new(),
            accepted_ms: i64::try_from(id).unwrap_or(0),
        }
    }

    /// Two instances on one database.
    async fn two_instances(pg: &Cluster) -> (Postgres, Postgres) {
        let lease = Duration::from_secs(30);
        let a = Postgres::connect(&pg.url, lease).await.expect("connect");
        (a, Postgres::connect(&pg.url, lease).await.expect("connect"))
    }

    /// Expires an instance's lease as if it had died.
    fn expire(pg: &Cluster, store: &Postgres) {
        pg.psql(&format!(
            "UPDATE wf_instances SET lease_until = now() - interval '1 second' WHERE id = '{}'",
            store.identity()
        ));
    }

    #[tokio::test]
    async fn a_dead_instance_s_runs_are_taken_once_and_its_late_results_refused() {
        let Some(pg) = Cluster::start() else { return };
        let lease = Duration::from_secs(30);
        let dead = Postgres::connect(&pg.url, lease).await.expect("connect");
        let (b, c) = (
            Postgres::connect(&pg.url, lease).await.expect("connect"),
            Postgres::connect(&pg.url, lease).await.expect("connect"),
        );
        for id in 1..=600 {
            dead.accept(run(id), None).await.expect("accept");
        }
        // A live instance's runs are nobody else's.
        assert!(b.unfinished().await.expect("take").is_empty());
        expire(&pg, &dead);
        // Two instances take at once: every run exactly once.
        let mut taken: Vec<String> = Vec::new();
        loop {
            let (x, y) = tokio::join!(b.retried(), c.retried());
            let (x, y) = (x.expect("take"), y.expect("take"));
            if x.is_empty() && y.is_empty() {
                break;
            }
            taken.extend(x.into_iter().chain(y).map(|r| r.id));
        }
        let unique: HashSet<&String> = taken.iter().collect();
        assert_eq!((taken.len(), unique.len()), (600, 600));
        // The dead instance wakes up late: what it would record is refused.
        let late = dead.step_ended(&format!("{:016x}", 1), 1, &Ok(json!({"status": 200}))).await;
        assert_eq!(late, Ok(Recorded::Fenced));
        dead.ended(completed(1));
        dead.flush().await.expect("flush");
        let shown = b.show(&format!("{:016x}", 1)).await.expect("show").expect("kept");
        assert_eq!(shown.state, crate::store::State::Queued, "a late end is not recorded");
        assert!(shown.steps.is_empty(), "a late step is not recorded");
        // Its lease renewed, it finds it had expired and goes on as a new instance.
        let old = dead.identity();
        dead.inner.renew().await.expect("renew");
        assert_ne!(dead.identity(), old);
        // The new owner records.
        let owner =
            if b.step_ended(&format!("{:016x}", 1), 1, &Ok(json!(1))).await.is_ok() { &b } else { &c };
        assert!(owner.step_ended(&format!("{:016x}", 1), 2, &Ok(json!(2))).await.is_ok());
    }

    #[tokio::test]
    async fn runs_let_go_at_shutdown_are_taken_at_once_and_a_waiting_instance_is_woken() {
        let Some(pg) = Cluster::start() else { return };
        let lease = Duration::from_secs(30);
        let leaving = Postgres::connect(&pg.url, lease).await.expect("connect");
        let staying = Postgres::connect(&pg.url, lease).await.expect("connect");
        let woken = staying.woken().expect("a shared store wakes");
        // The listener's first wake-up (on connecting) is taken here.
        tokio::time::timeout(Duration::from_secs(10), woken.notified()).await.expect("listening");
        leaving.accept(run(7), None).await.expect("accept");
        leaving.leave().await.expect("leave");
        tokio::time::timeout(Duration::from_secs(10), woken.notified()).await.expect("woken by NOTIFY");
        let taken = staying.retried().await.expect("take");
        assert_eq!(taken.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [format!("{:016x}", 7)]);
    }

    #[tokio::test]
    async fn a_run_whose_commit_answer_was_lost_is_let_go_for_any_instance() {
        let Some(pg) = Cluster::start() else { return };
        let (a, b) = two_instances(&pg).await;
        a.accept(run(42), None).await.expect("accept");
        // As if its batch had failed after committing: its caller was told 503.
        a.inner.in_doubt.lock().expect("lock").push(42);
        a.inner.release_in_doubt().await.expect("release");
        let taken = b.retried().await.expect("take");
        assert_eq!(taken.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [format!("{:016x}", 42)]);
    }

    fn completed(id: i64) -> Ended {
        Ended {
            id,
            workflow: "w".into(),
            mode: crate::store::Mode::Async,
            started_ms: id,
            duration_ms: 1,
            status: 200,
            outcome: crate::store::Outcome::Completed,
            reason: None,
            at: None,
            logs: Vec::new(),
            attempts: 1,
            request: None,
            kept: true,
        }
    }

    #[tokio::test]
    async fn a_run_that_starts_and_ends_in_one_batch_has_its_row_written_once() {
        let Some(pg) = Cluster::start() else { return };
        let store = Postgres::connect(&pg.url, Duration::from_secs(30)).await.expect("connect");
        store.accept(run(21), None).await.expect("accept");
        store.accept(run(22), None).await.expect("accept");
        pg.psql(
            "CREATE TABLE rewrites (id BIGINT NOT NULL);
             CREATE FUNCTION rewritten() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN INSERT INTO rewrites VALUES (NEW.id); RETURN NEW; END $$;
             CREATE TRIGGER rewritten AFTER UPDATE ON wf_executions FOR EACH ROW EXECUTE FUNCTION rewritten();",
        );
        // Run 21 starts its step and ends within one batch; run 22 only starts its step.
        for id in [21, 22] {
            store.step_started(&format!("{id:016x}"), 1, "http", json!({}));
        }
        store.ended(completed(21));
        store.flush().await.expect("flush");
        assert_eq!(pg.psql("SELECT id, count(*) FROM rewrites GROUP BY id ORDER BY id"), "21|1\n22|1");
        let shown = |id: u64| {
            let store = &store;
            async move { store.show(&format!("{id:016x}")).await.expect("show").expect("kept").state }
        };
        assert_eq!(shown(21).await, crate::store::State::Ended);
        assert_eq!(shown(22).await, crate::store::State::Running);
    }

    #[tokio::test]
    async fn an_id_already_kept_is_refused_not_acknowledged() {
        let Some(pg) = Cluster::start() else { return };
        let store = Postgres::connect(&pg.url, Duration::from_secs(30)).await.expect("connect");
        store.accept(run(31), None).await.expect("accept");
        let mut again = run(31);
        again.workflow = "other".into();
        assert!(store.accept(again, None).await.is_err(), "the caller is not told its run was kept");
        assert_eq!(pg.psql("SELECT workflow FROM wf_executions WHERE id = 31"), "w");
        store.accept(run(32), None).await.expect("the next batch is accepted");
    }

    #[tokio::test]
    async fn a_store_dropped_stops_accepting_and_closes_its_connections() {
        let Some(pg) = Cluster::start() else { return };
        let store = Postgres::connect(&pg.url, Duration::from_secs(30)).await.expect("connect");
        store.accept(run(41), None).await.expect("accept");
        let open = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wf'";
        assert_ne!(pg.psql(open), "0");
        drop(store);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pg.psql(open) != "0" {
            assert!(std::time::Instant::now() < deadline, "connections still open: {}", pg.psql(open));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn keyed_runs_accepted_at_once_claim_each_key_once_and_two_instances_never_deadlock() {
        let Some(pg) = Cluster::start() else { return };
        let (a, b) = two_instances(&pg).await;
        let later = crate::store::now_ms() + 60_000;
        let keyed = |id: u64, k: &str| {
            let key =
                Key { workflow: "w".into(), key: k.into(), id: format!("{id:016x}"), expires_ms: later };
            (run(id), Some(key))
        };
        // Forty runs over ten keys, half on each instance, each instance's keys in another order.
        let mut accepts = Vec::new();
        for i in 0..40u64 {
            let (store, k) = if i % 2 == 0 { (&a, i / 2 % 10) } else { (&b, 9 - i / 2 % 10) };
            let (run, key) = keyed(100 + i, &format!("evt_{k}"));
            accepts.push(async move { (100 + i, store.accept(run, key).await) });
        }
        let mut firsts = HashSet::new();
        let mut duplicates = Vec::new();
        for (id, claim) in futures_util::future::join_all(accepts).await {
            match claim.expect("accepted, no deadlock") {
                Claim::First => assert!(firsts.insert(id)),
                Claim::Duplicate { of, .. } => duplicates.push(of),
            }
        }
        assert_eq!((firsts.len(), duplicates.len()), (10, 30));
        let ids: HashSet<String> = firsts.iter().map(|id| format!("{id:016x}")).collect();
        assert!(duplicates.iter().all(|of| ids.contains(of)), "a duplicate names its key's first run");
        assert_eq!(pg.psql("SELECT count(*) FROM wf_executions"), "10");
        assert_eq!(pg.psql("SELECT count(DISTINCT execution) FROM wf_dedupe"), "10");
    }

    #[tokio::test]
    async fn instances_starting_at_once_migrate_the_schema_once() {
        let Some(pg) = Cluster::start() else { return };
        let lease = Duration::from_secs(30);
        let starts = (0..6).map(|_| Postgres::connect(&pg.url, lease));
        for started in futures_util::future::join_all(starts).await {
            assert!(started.is_ok(), "{:?}", started.err());
        }
        assert_eq!(pg.psql("SELECT count(*) FROM wf_schema"), "1");
    }

    #[tokio::test]
    async fn tls_is_used_and_the_server_certificate_verified() {
        let Some(pg) = Cluster::start_tls() else { return };
        let lease = Duration::from_secs(30);
        let ca = pg.ca_cert();
        let url = format!("{}?sslmode=require&sslrootcert={}", pg.url, ca.display());
        let store = Postgres::connect(&url, lease).await.expect("connects over TLS");
        store.accept(run(5), None).await.expect("accept");
        let over_tls = pg.psql(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'wf' AND s.ssl",
        );
        assert_ne!(over_tls, "0", "wf's connections use TLS");
        let reader = Reader::connect(&url).await.expect("wf runs over TLS");
        assert!(reader.show(&format!("{:016x}", 5)).await.expect("show").is_some());
        // A server whose certificate no trusted CA signed is refused.
        let unverified = format!("{}?sslmode=require", pg.url);
        let err = Postgres::connect(&unverified, lease).await.err().expect("refused");
        assert!(err.to_lowercase().contains("certificate"), "{err}");
        // The CA file given in key=value form too.
        let kv = format!(
            "host=127.0.0.1 port={} user=postgres sslmode=require sslrootcert={}",
            pg.port,
            ca.display()
        );
        assert!(Reader::connect(&kv).await.is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_database_is_an_error_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let url = format!("postgres://wf:pw@127.0.0.1:{}/wf", port.unwrap_or(1));
        let err = Postgres::connect(&url, Duration::from_secs(30)).await.err().expect("refused");
        assert!(err.contains("PostgreSQL") && !err.contains("pw@"), "{err}");
    }
}
