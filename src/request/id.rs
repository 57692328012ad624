//! Execution ids: what `x-wf-execution`, log lines and the store call an execution (16 hex
//! digits), and where a server's come from.

use http::HeaderValue;
use std::fmt;

/// An execution's id: shown in `x-wf-execution` and on its log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecId(pub u64);

impl fmt::Display for ExecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl ExecId {
    /// The id as 16 lower-case hex digits, written into `buf`.
    pub fn hex(self, buf: &mut [u8; 16]) -> &str {
        let digits = b"0123456789abcdef";
        for (i, b) in buf.iter_mut().enumerate() {
            *b = digits.get(((self.0 >> (60 - 4 * i)) & 0xf) as usize).copied().unwrap_or(b'0');
        }
        std::str::from_utf8(buf).unwrap_or("0")
    }

    /// The id as a header value, cut from a per-thread block of 16 KiB (one allocation per 1,024
    /// answers rather than one per answer).
    pub(crate) fn header(self) -> HeaderValue {
        thread_local! {
            static BLOCK: std::cell::RefCell<bytes::BytesMut> = std::cell::RefCell::new(bytes::BytesMut::new());
        }
        let mut buf = [0u8; 16];
        let hex = self.hex(&mut buf).as_bytes();
        let cut = BLOCK.with(|block| {
            let mut block = block.borrow_mut();
            if block.capacity() < hex.len() {
                *block = bytes::BytesMut::with_capacity(16 * 1024);
            }
            block.extend_from_slice(hex);
            block.split_to(hex.len()).freeze()
        });
        HeaderValue::from_maybe_shared(cut).unwrap_or(HeaderValue::from_static("0"))
    }
}

/// Where a server's execution ids come from: a random seed plus a count. Each thread takes counts
/// from the shared counter in blocks of 1,024, so threads do not share its cache line per
/// request; ids stay unique (servers in one process are told apart by their seeds).
#[derive(Debug)]
pub struct ExecIds {
    seed: u64,
    counter: std::sync::atomic::AtomicU64,
}

impl ExecIds {
    pub fn new(seed: u64) -> ExecIds {
        ExecIds { seed, counter: std::sync::atomic::AtomicU64::new(0) }
    }

    /// A new execution id.
    pub fn next(&self) -> ExecId {
        use std::sync::atomic::Ordering::Relaxed;
        const BLOCK: u64 = 1024;
        thread_local! {
            /// Whose block it is (the seed), its next count and where it ends.
            static BLOCKS: std::cell::Cell<(u64, u64, u64)> = const { std::cell::Cell::new((0, 0, 0)) };
        }
        let n = BLOCKS
            .try_with(|block| {
                let (owner, mut next, mut end) = block.get();
                if owner != self.seed || next == end {
                    next = self.counter.fetch_add(BLOCK, Relaxed);
                    end = next + BLOCK;
                }
                block.set((self.seed, next + 1, end));
                next
            })
            .unwrap_or_else(|_| self.counter.fetch_add(1, Relaxed));
        ExecId(self.seed.wrapping_add(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn ids_are_unique_across_threads_and_servers() {
        let (a, b) = (Arc::new(ExecIds::new(1 << 32)), ExecIds::new(2 << 32));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let a = a.clone();
                std::thread::spawn(move || (0..3_000).map(|_| a.next().0).collect::<Vec<_>>())
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for t in threads {
            for id in t.join().expect("thread") {
                assert!(seen.insert(id), "{id:x} given twice");
            }
        }
        // Two servers used from one thread, in turn: each keeps to its own counts.
        for _ in 0..3_000 {
            assert!(seen.insert(a.next().0));
            let id = b.next().0;
            assert_eq!(id >> 32, 2, "{id:x}");
            assert!(seen.insert(id));
        }
        assert_eq!(seen.len(), 18_000);
        assert!(b.counter.load(std::sync::atomic::Ordering::Relaxed) >= 3_000, "b counted its own");
    }

    #[test]
    fn ids_print_as_sixteen_hex_digits() {
        let id = ExecId(0x0123_4567_89ab_cdef);
        assert_eq!(id.to_string(), "0123456789abcdef");
        assert_eq!(id.header(), "0123456789abcdef");
    }
}
