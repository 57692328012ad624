//! Accepted runs without a `dedupe` key, gathered and inserted a batch per statement (each
//! column's values as an array) by a few tasks, each caller answered once its batch has
//! committed.

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
/// Tasks committing batches of accepted runs at once (each on its own connection).
pub(super) const ACCEPTERS: usize = 1;

/// Takes the accepted runs waiting (as many as there are, up to a batch) and commits them.
pub(super) async fn accept_batches(
    inner: Arc<Inner>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Accepting>>>,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
            while batch.len() < ACCEPT_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        let committed = inner.accept_batch(&batch).await;
        if committed.is_err() {
            // The commit may have happened with its answer lost: such runs would be kept under
            // this instance and never run here (their callers got 503). They are let go once
            // the database answers again, for any instance to take.
            if let Ok(mut doubt) = inner.in_doubt.lock() {
                doubt.extend(batch.iter().map(|a| a.id));
            }
        }
        for a in batch {
            let _ = a.done.send(committed.clone());
        }
    }
}
