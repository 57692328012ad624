//! The starts a trigger's `rate N per D` counts: for each key, the times of the starts in the
//! last window, kept by the store (so that the count holds across restarts and instances) as a
//! list of milliseconds since the epoch.

/// Takes a start at `now_ms` when fewer than `n` of `starts` fell in the window of `window_ms`
/// before it (`None`: taken, and noted in `starts`); else says when the next start is allowed.
/// Starts older than the window are dropped. A start noted at a time after `now_ms` (the
/// system's clock was set back) counts as made now: the window neither waits for the clock to
/// catch up (a stall) nor forgets it (a burst).
pub(crate) fn take(starts: &mut Vec<i64>, n: u32, window_ms: i64, now_ms: i64) -> Option<i64> {
    for t in starts.iter_mut() {
        *t = (*t).min(now_ms);
    }
    let since = now_ms.saturating_sub(window_ms);
    starts.retain(|t| *t > since);
    starts.sort_unstable();
    let n = usize::try_from(n.max(1)).unwrap_or(usize::MAX);
    if starts.len() < n {
        starts.push(now_ms);
        return None;
    }
    // The window allows a start once all but n - 1 of these have left it.
    starts.get(starts.len() - n).map(|t| t.saturating_add(window_ms).max(now_ms.saturating_add(1)))
}

/// The starts as the stores keep them: each time as 8 bytes, little-endian.
pub(crate) fn encode(starts: &[i64]) -> Vec<u8> {
    starts.iter().flat_map(|t| t.to_le_bytes()).collect()
}

/// The starts kept by [`encode`]; trailing bytes that make no time are ignored.
pub(crate) fn decode(bytes: &[u8]) -> Vec<i64> {
    bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_n_starts_in_any_window() {
        let mut starts = Vec::new();
        for t in [0, 10, 20] {
            assert_eq!(take(&mut starts, 3, 1_000, t), None);
        }
        // The fourth waits until the first has left the window.
        assert_eq!(take(&mut starts, 3, 1_000, 500), Some(1_000));
        assert_eq!(take(&mut starts, 3, 1_000, 1_000), None);
        assert_eq!(take(&mut starts, 3, 1_000, 1_005), Some(1_010));
        assert_eq!(starts, [10, 20, 1_000]);
    }

    #[test]
    fn a_clock_set_back_neither_stalls_nor_lets_a_burst_through() {
        let mut starts = Vec::new();
        let hour = 3_600_000;
        for t in [hour, hour + 1, hour + 2] {
            assert_eq!(take(&mut starts, 3, 1_000, t), None);
        }
        // The clock goes back an hour: the three starts count as made now (no burst)...
        assert_eq!(take(&mut starts, 3, 1_000, 0), Some(1_000));
        // ... and the window is free again one window later, not an hour later (no stall).
        assert_eq!(take(&mut starts, 3, 1_000, 1_000), None);
    }

    #[test]
    fn kept_as_bytes() {
        assert_eq!(decode(&encode(&[1, -2, i64::MAX])), [1, -2, i64::MAX]);
        assert_eq!(decode(&[1, 2, 3]), Vec::<i64>::new());
    }
}
