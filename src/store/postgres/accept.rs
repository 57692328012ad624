//! Accepted runs without a `dedupe` key, gathered and inserted a batch per statement (each
//! column's values as an array) by a thread of their own, each caller answered once its batch
//! has committed.
//!
//! The thread runs its own single-threaded runtime with its own connection: a batch's commit
//! is noticed as soon as the database answers, not once the request tasks of the server's
//! runtime let the accepting task run, and the next batch (every run that arrived meanwhile)
//! goes at once.

use super::connect::{pool, Target};
use super::*;

/// An accepted run (without a `dedupe` key) waiting for its batch.
pub(super) struct Accepting {
    pub(super) id: i64,
    pub(super) run: NewRun,
    pub(super) request: String,
    pub(super) frame: String,
    pub(super) env: String,
    pub(super) done: oneshot::Sender<Result<(), String>>,
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
        let committed = inner.accept_batch(&batch, &connections).await;
        if committed.is_err() {
            // The commit may have happened with its answer lost: such runs would be kept under
            // this instance and never run here (their callers got 503). They are let go once
            // the database answers again, for any instance to take.
            if let Ok(mut doubt) = inner.in_doubt.lock() {
                doubt.extend(batch.iter().map(|a| a.id));
            }
        }
        for a in batch.drain(..) {
            let _ = a.done.send(committed.clone());
        }
    }
}
