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
        let (keyed, plain): (Vec<Accepting>, Vec<Accepting>) = batch.drain(..).partition(|a| a.key.is_some());
        if !plain.is_empty() {
            let committed =
                inner.accept_batch(&plain, &connections).await.map(|()| vec![Claim::First; plain.len()]);
            answer(&inner, plain, committed);
        }
        if !keyed.is_empty() {
            let claims = inner.accept_keyed(&keyed, &connections).await;
            answer(&inner, keyed, claims);
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
