//! Accepted runs, gathered and inserted a batch per statement (each column's values as an
//! array; runs with a `dedupe` key in a statement of their own that claims the keys) by a thread
//! of their own, each caller answered once its batch has committed.
//!
//! The thread runs its own single-threaded runtime with its own connection: a batch's commit
//! is noticed as soon as the database answers, not once the request tasks of the server's
//! runtime let the accepting task run, and the next batch (every run that arrived meanwhile)
//! goes at once.

use super::connect::{pool, Target};
use super::*;

/// An accepted run waiting for its batch.
pub(super) struct Accepting {
    pub(super) id: i64,
    pub(super) run: NewRun,
    pub(super) request: String,
    pub(super) frame: String,
    pub(super) env: String,
    pub(super) key: Option<Key>,
    pub(super) done: oneshot::Sender<Result<Claim, String>>,
}

/// Runs waiting for a batch at most; beyond, callers wait.
pub(super) const ACCEPTS: usize = 16_384;
/// Most runs in one batch.
pub(super) const ACCEPT_BATCH: usize = 1_024;

/// Starts the accepting thread; it stops when the returned sender is dropped (with the store).
pub(super) fn start(
    target: &Target,
    inner: Arc<Inner>,
    rx: mpsc::Receiver<Accepting>,
) -> Result<oneshot::Sender<()>, String> {
    // Its connections are made on its runtime, so that their I/O is driven there too.
    let connections = pool(target, 1)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the store's accepting thread: {e}"))?;
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("wf-accept".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    () = accept_batches(inner, rx, connections) => {}
                    _ = stopped => {}
                }
            });
        })
        .map_err(|e| format!("cannot start the store's accepting thread: {e}"))?;
    Ok(stop)
}

/// Takes the accepted runs waiting (as many as there are, up to a batch) and commits them.
async fn accept_batches(inner: Arc<Inner>, mut rx: mpsc::Receiver<Accepting>, connections: Pool) {
    let mut batch = Vec::with_capacity(ACCEPT_BATCH);
    while rx.recv_many(&mut batch, ACCEPT_BATCH).await > 0 {
        let mut plain = Vec::new();
        let mut keyed = Vec::new();
        for mut a in batch.drain(..) {
            match a.key.take() {
                Some(k) => keyed.push((a, k)),
                None => plain.push(a),
            }
        }
        if !plain.is_empty() {
            let committed =
                inner.accept_batch(&plain, &connections).await.map(|()| vec![Claim::First; plain.len()]);
            answer(&inner, plain, committed);
        }
        if !keyed.is_empty() {
            let claims = inner.accept_keyed(&keyed, &connections).await;
            answer(&inner, keyed.into_iter().map(|(a, _)| a).collect(), claims);
        }
    }
}

/// Answers each caller of a batch with its claim, or with why the batch failed.
fn answer(inner: &Inner, batch: Vec<Accepting>, claims: Result<Vec<Claim>, String>) {
    match claims {
        Ok(claims) => {
            for (a, claim) in batch.into_iter().zip(claims) {
                let _ = a.done.send(Ok(claim));
            }
        }
        Err(why) => {
            // The commit may have happened with its answer lost: such runs would be kept under
            // this instance and never run here (their callers got 503). They are let go once
            // the database answers again, for any instance to take.
            if let Ok(mut doubt) = inner.in_doubt.lock() {
                doubt.extend(batch.iter().map(|a| a.id));
            }
            for a in batch {
                let _ = a.done.send(Err(why.clone()));
            }
        }
    }
}

/// A batch's runs as the insert statements take them: each column's values as an array.
struct Columns<'a> {
    ids: Vec<i64>,
    workflows: Vec<&'a str>,
    versions: Vec<&'a str>,
    started: Vec<i64>,
    requests: Vec<&'a str>,
    frames: Vec<&'a str>,
    envs: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(runs: &[&'a Accepting]) -> Columns<'a> {
        Columns {
            ids: runs.iter().map(|a| a.id).collect(),
            workflows: runs.iter().map(|a| &*a.run.workflow).collect(),
            versions: runs.iter().map(|a| &*a.run.version.hash).collect(),
            started: runs.iter().map(|a| a.run.accepted_ms).collect(),
            requests: runs.iter().map(|a| &*a.request).collect(),
            frames: runs.iter().map(|a| &*a.frame).collect(),
            envs: runs.iter().map(|a| &*a.env).collect(),
        }
    }
}

impl Inner {
    /// A connection of the accepting thread's, once the runs' versions are in the database.
    async fn ready<'a>(
        &self,
        pool: &Pool,
        runs: impl Iterator<Item = &'a Accepting>,
    ) -> Result<deadpool_postgres::Object, String> {
        let client = pool.get().await.map_err(pooled)?;
        for a in runs {
            self.version(&client, &a.run.version).await?;
        }
        Ok(client)
    }

    /// Commits a batch of accepted runs in one statement.
    async fn accept_batch(&self, batch: &[Accepting], pool: &Pool) -> Result<(), String> {
        let client = self.ready(pool, batch.iter()).await?;
        let runs: Vec<&Accepting> = batch.iter().collect();
        let c = Columns::of(&runs);
        let me = self.me.load_full();
        let st = client.prepare_cached(INSERT_RUNS).await.map_err(sql)?;
        client
            .execute(
                &st,
                &[&c.ids, &c.workflows, &c.versions, &*me, &c.started, &c.requests, &c.frames, &c.envs],
            )
            .await
            .map_err(sql)?;
        Ok(())
    }

    /// Claims the keys of a batch of runs with a `dedupe` key and inserts the runs whose key
    /// was claimed, in one statement; the others (a key seen earlier, or twice in the batch)
    /// are looked up one by one. A claim for each run, in order.
    async fn accept_keyed(&self, batch: &[(Accepting, Key)], pool: &Pool) -> Result<Vec<Claim>, String> {
        let client = self.ready(pool, batch.iter().map(|(a, _)| a)).await?;
        // The first run of each key goes into the statement (one statement may not claim a key
        // twice).
        let mut seen = HashSet::with_capacity(batch.len());
        let firsts: Vec<&(Accepting, Key)> =
            batch.iter().filter(|(_, k)| seen.insert((&*k.workflow, &*k.key))).collect();
        let runs: Vec<&Accepting> = firsts.iter().map(|(a, _)| a).collect();
        let c = Columns::of(&runs);
        let key_workflows: Vec<&str> = firsts.iter().map(|(_, k)| &*k.workflow).collect();
        let keys: Vec<&str> = firsts.iter().map(|(_, k)| &*k.key).collect();
        let expiries: Vec<i64> = firsts.iter().map(|(_, k)| k.expires_ms).collect();
        let me = self.me.load_full();
        let st = client.prepare_cached(INSERT_KEYED_RUNS).await.map_err(sql)?;
        let inserted = client
            .query(
                &st,
                &[
                    &c.ids,
                    &c.workflows,
                    &c.versions,
                    &*me,
                    &c.started,
                    &c.requests,
                    &c.frames,
                    &c.envs,
                    &key_workflows,
                    &keys,
                    &expiries,
                    &crate::store::now_ms(),
                ],
            )
            .await
            .map_err(sql)?;
        let first: HashSet<i64> = inserted.iter().map(|r| r.get(0)).collect();
        let mut claims = Vec::with_capacity(batch.len());
        for (a, k) in batch {
            claims.push(if first.contains(&a.id) {
                Claim::First
            } else {
                self.accept_keyed_one(&client, a, k).await?
            });
        }
        Ok(claims)
    }

    /// One run with a `dedupe` key whose key was held when its batch was written: claimed
    /// (should its holder have expired since) or a duplicate of the holder.
    async fn accept_keyed_one(
        &self,
        client: &deadpool_postgres::Object,
        a: &Accepting,
        k: &Key,
    ) -> Result<Claim, String> {
        let me = self.me.load_full();
        let st = client.prepare_cached(INSERT_KEYED_RUN).await.map_err(sql)?;
        // The key's holder may expire between the insert and the look: then try again.
        for _ in 0..3 {
            let inserted = client
                .query(
                    &st,
                    &[
                        &a.id,
                        &a.run.workflow,
                        &a.run.version.hash,
                        &*me,
                        &a.run.accepted_ms,
                        &a.request,
                        &a.frame,
                        &a.env,
                        &k.workflow,
                        &k.key,
                        &k.expires_ms,
                        &crate::store::now_ms(),
                    ],
                )
                .await
                .map_err(sql)?;
            if !inserted.is_empty() {
                return Ok(Claim::First);
            }
            if let Some(dup) = self.held(client, k).await? {
                return Ok(dup);
            }
        }
        Err("the dedupe key kept changing hands".into())
    }
}
