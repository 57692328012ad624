//! Write-behind: the writes nobody waits for (history, step notes, kept answers, keys let go),
//! gathered off the request path and written by the store's writer as one batch, with the one
//! failure policy every store applies ([`super::WAITING`], [`super::KEEP_TRYING`]): at most
//! `WAITING` of them wait; a batch that fails is tried again first with the next ones, until
//! the store has failed for `KEEP_TRYING`; past either bound they are dropped and counted.
//! The SQLite store's writer thread and the PostgreSQL store's writer task both use it.

use super::{KEEP_TRYING, WAITING};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What a store gathers: writes in the order they were made.
pub(crate) trait Gather: Default + Send {
    fn len(&self) -> usize;
    /// Moves `later`'s writes after this one's.
    fn append(&mut self, later: &mut Self);
    /// Keeps the first `n` writes.
    fn truncate(&mut self, n: usize);
}

impl<W: Send> Gather for Vec<W> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn append(&mut self, later: &mut Self) {
        Vec::append(self, later);
    }

    fn truncate(&mut self, n: usize) {
        Vec::truncate(self, n);
    }
}

/// The writes of a failed batch waiting to be tried again, and since when batches fail.
struct Failing<T> {
    again: T,
    since: Option<Instant>,
}

/// Writes gathered for a store's next batch.
pub(crate) struct Behind<T> {
    gathered: Mutex<T>,
    failing: Mutex<Failing<T>>,
    dropped: AtomicU64,
}

impl<T: Gather> Default for Behind<T> {
    fn default() -> Self {
        Behind {
            gathered: Mutex::default(),
            failing: Mutex::new(Failing { again: T::default(), since: None }),
            dropped: AtomicU64::new(0),
        }
    }
}

impl<T: Gather> Behind<T> {
    /// Gathers a write (`add` puts it in); beyond [`WAITING`] waiting, it is dropped and
    /// counted.
    pub(crate) fn push(&self, add: impl FnOnce(&mut T)) {
        match self.gathered.lock() {
            Ok(mut waiting) if waiting.len() < WAITING => add(&mut waiting),
            _ => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether as many writes wait as may ([`WAITING`]).
    pub(crate) fn full(&self) -> bool {
        self.gathered.lock().map_or(true, |w| w.len() >= WAITING)
    }

    /// Gathers a write that must not be lost (a kept run's end): past [`WAITING`] too. Its
    /// writer bounds them instead, by waiting for the batch (a worker waits for its run's end
    /// to be written before it takes the next run).
    pub(crate) fn push_always(&self, add: impl FnOnce(&mut T)) {
        if let Ok(mut waiting) = self.gathered.lock() {
            add(&mut waiting);
        }
    }

    /// The next batch, in `batch` (emptied first): the writes of a failed batch, then the ones
    /// gathered since. `batch` and the gathered writes trade places, so that both keep their
    /// room and the request path does not grow a vector again after every batch.
    pub(crate) fn take(&self, batch: &mut T) {
        batch.truncate(0);
        if let Ok(mut shared) = self.gathered.lock() {
            std::mem::swap(&mut *shared, batch);
        }
        if let Ok(mut failing) = self.failing.lock() {
            if failing.again.len() > 0 {
                let mut first = std::mem::take(&mut failing.again);
                first.append(batch);
                *batch = first;
            }
        }
    }

    /// The batch was written: the store works.
    pub(crate) fn written(&self) {
        if let Ok(mut failing) = self.failing.lock() {
            failing.since = None;
        }
    }

    /// The batch failed: its writes are tried again first with the next batch (as many as fit
    /// in [`WAITING`]), unless the store has failed for [`KEEP_TRYING`]: then they are dropped.
    /// Gives how many were dropped.
    pub(crate) fn failed(&self, batch: &mut T) -> usize {
        let Ok(mut failing) = self.failing.lock() else { return self.drop_all(batch) };
        let since = *failing.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= KEEP_TRYING {
            drop(failing);
            return self.drop_all(batch);
        }
        let lost = batch.len().saturating_sub(WAITING.saturating_sub(failing.again.len()));
        failing.again.append(batch);
        failing.again.truncate(WAITING);
        self.dropped.fetch_add(lost as u64, Ordering::Relaxed);
        lost
    }

    fn drop_all(&self, batch: &mut T) -> usize {
        let lost = batch.len();
        batch.truncate(0);
        self.dropped.fetch_add(lost as u64, Ordering::Relaxed);
        lost
    }

    /// Writes dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_must_not_be_lost_is_kept_past_the_bound() {
        let behind: Behind<Vec<usize>> = Behind::default();
        for i in 0..WAITING + 1 {
            behind.push(|w| w.push(i));
        }
        assert_eq!(behind.dropped(), 1, "past the bound, a write nobody waits for is dropped");
        behind.push_always(|w| w.push(usize::MAX));
        let mut batch = Vec::new();
        behind.take(&mut batch);
        assert_eq!((batch.len(), batch.last()), (WAITING + 1, Some(&usize::MAX)));
        assert_eq!(behind.dropped(), 1);
    }

    #[test]
    fn a_failed_batch_goes_first_next_time_and_nothing_waits_beyond_the_bound() {
        let behind: Behind<Vec<u32>> = Behind::default();
        for i in 0..3 {
            behind.push(|w| w.push(i));
        }
        let mut batch = Vec::new();
        behind.take(&mut batch);
        assert_eq!(batch, [0, 1, 2]);
        behind.push(|w| w.push(3));
        assert_eq!(behind.failed(&mut batch), 0);
        behind.take(&mut batch);
        assert_eq!(batch, [0, 1, 2, 3], "the failed writes first, in order");
        behind.written();
        behind.take(&mut batch);
        assert!(batch.is_empty());
        for i in 0..WAITING as u32 + 5 {
            behind.push(|w| w.push(i));
        }
        assert_eq!(behind.dropped(), 5);
    }

    #[test]
    fn past_keep_trying_a_failed_batch_is_dropped_and_counted() {
        let behind: Behind<Vec<u32>> = Behind::default();
        if let Ok(mut f) = behind.failing.lock() {
            f.since = Instant::now().checked_sub(KEEP_TRYING);
        }
        let mut batch = vec![1, 2];
        assert_eq!(behind.failed(&mut batch), 2);
        assert_eq!(behind.dropped(), 2);
        behind.take(&mut batch);
        assert!(batch.is_empty(), "nothing tried again");
    }
}
