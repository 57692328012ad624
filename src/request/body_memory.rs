//! The bytes all request bodies being read may hold together (`--max-body-memory`). Each request
//! reserves its bytes as they arrive (a caller that announces a body and sends nothing holds
//! nothing) and gives them back when its answer is made. A reservation is one atomic add, its return one
//! subtraction: no lock, no waiting (a request that cannot reserve is told to come back).

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct BodyMemory {
    used: AtomicUsize,
    max: usize,
}

/// Bytes reserved, returned when dropped.
#[derive(Debug)]
pub struct Reserved<'a> {
    memory: &'a BodyMemory,
    bytes: usize,
}

impl BodyMemory {
    pub fn new(max: usize) -> BodyMemory {
        BodyMemory { used: AtomicUsize::new(0), max }
    }

    /// Reserves `bytes`; `None` when they do not fit in what is left.
    pub fn reserve(&self, bytes: usize) -> Option<Reserved<'_>> {
        if bytes > self.max {
            return None;
        }
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before > self.max - bytes {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return None;
        }
        Some(Reserved { memory: self, bytes })
    }

    /// Reserves `bytes` for as long as the guard lives, wherever it goes (a kept request waiting
    /// for the store's writer); `None` when they do not fit.
    pub fn reserve_owned(self: &std::sync::Arc<Self>, bytes: usize) -> Option<OwnedReserved> {
        let reserved = self.reserve(bytes)?;
        std::mem::forget(reserved);
        Some(OwnedReserved { memory: self.clone(), bytes })
    }

    /// A reservation of nothing yet, grown as a body's bytes arrive ([`Reserved::grow`]).
    pub fn empty(&self) -> Reserved<'_> {
        Reserved { memory: self, bytes: 0 }
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Bytes reserved by [`BodyMemory::reserve_owned`], returned when dropped.
#[derive(Debug)]
pub struct OwnedReserved {
    memory: std::sync::Arc<BodyMemory>,
    bytes: usize,
}

impl Drop for OwnedReserved {
    fn drop(&mut self) {
        self.memory.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Reserved<'_> {
    /// Reserves `more` bytes besides; false (and nothing more reserved) when they do not fit.
    pub fn grow(&mut self, more: usize) -> bool {
        match self.memory.reserve(more) {
            Some(r) => {
                std::mem::forget(r);
                self.bytes += more;
                true
            }
            None => false,
        }
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.memory.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_budget_and_are_given_back() {
        let memory = BodyMemory::new(100);
        let a = memory.reserve(60).expect("fits");
        assert!(memory.reserve(41).is_none(), "over the budget");
        assert_eq!(memory.used(), 60, "a refused reservation leaves nothing behind");
        let b = memory.reserve(40).expect("fits exactly");
        assert!(memory.reserve(1).is_none());
        drop(a);
        assert_eq!(memory.used(), 40);
        assert!(memory.reserve(61).is_none());
        assert!(memory.reserve(usize::MAX).is_none(), "larger than the whole budget");
        drop(b);
        assert_eq!(memory.used(), 0);
        assert!(memory.reserve(100).is_some());
    }
}
