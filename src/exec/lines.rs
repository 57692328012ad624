//! `order by` lines within this process: while a run of a key is under way here, the runs of
//! that key that reach a worker after it are set aside, in the order they came, holding no
//! worker, and the worker that ends the run takes the next one. A run set aside is still
//! `queued` in the store, whose line stays the truth (a run taken first checks that its turn has
//! come, and waits for it parked when it has not, as when another instance holds the key): this
//! only spares each run a take that would find it must wait.

use crate::request::handle::Job;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Runs set aside at most, in all lines; beyond, a run is taken at once (and waits its turn
/// parked in the store, holding nothing).
const MOST: usize = 65_536;

/// Each key (its workflow's name and the key) with a run under way here, and the runs set aside
/// behind it.
type Held = HashMap<(Arc<str>, String), VecDeque<Job>>;

/// The keys with a run under way here, each with the runs of the key set aside behind it, and
/// how many runs are set aside in all.
#[derive(Default)]
pub(crate) struct Lines {
    lines: Mutex<(Held, usize)>,
}

impl Lines {
    /// The run to take now, or `None` when a run of its key is under way here (it is set aside
    /// behind it). `key` is the run's `order by` key.
    pub(crate) fn take(&self, job: Job, key: Option<&str>) -> Option<Job> {
        let Some(key) = key else { return Some(job) };
        let Ok(mut guard) = self.lines.lock() else { return Some(job) };
        let (lines, held) = &mut *guard;
        let name = (job.served.name.clone(), key.to_string());
        match lines.get_mut(&name) {
            Some(behind) if *held < MOST => {
                behind.push_back(job);
                *held += 1;
                None
            }
            Some(_) => Some(job),
            None => {
                lines.insert(name, VecDeque::new());
                Some(job)
            }
        }
    }

    /// A run of `key` taken here ended (`stopped`: it was parked or taken over, not ended): the
    /// runs to take now. After an end, the next run set aside (the key stays under way here);
    /// after a stop, every run set aside, each to wait its turn parked in the store.
    pub(crate) fn ended(&self, workflow: &Arc<str>, key: &str, stopped: bool) -> Vec<Job> {
        let Ok(mut guard) = self.lines.lock() else { return Vec::new() };
        let (lines, held) = &mut *guard;
        let name = (workflow.clone(), key.to_string());
        let next = match lines.get_mut(&name) {
            Some(behind) if !stopped => behind.pop_front().map(|j| vec![j]).unwrap_or_default(),
            _ => Vec::new(),
        };
        if next.is_empty() {
            let behind: Vec<Job> = lines.remove(&name).map(Vec::from).unwrap_or_default();
            *held = held.saturating_sub(behind.len());
            return behind;
        }
        *held = held.saturating_sub(1);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::handle::ExecId;

    fn job(served: &Arc<crate::request::served::Served>, id: u64) -> Job {
        Job {
            served: served.clone(),
            frame: Vec::new(),
            id: ExecId(id),
            accepted: std::time::Instant::now(),
            steps: Box::new(crate::request::step::Clock),
            budget: crate::request::eval::Budget::default(),
            dedupe: None,
        }
    }

    #[test]
    fn runs_of_a_key_under_way_wait_behind_it_in_order_and_a_stop_lets_them_all_go() {
        let loaded = crate::lang::loader::load_str("w.wf", "workflow w { trigger webhook { path \"/w\" } }");
        let router = crate::request::served::build(loaded.program, &|_| None).expect("builds");
        let served = router.workflows().next().cloned().expect("served");
        let lines = Lines::default();
        // No key: taken at once, whatever is under way.
        assert!(lines.take(job(&served, 1), None).is_some());
        // The first of a key is taken; the next two wait behind it; another key does not.
        assert!(lines.take(job(&served, 2), Some("a")).is_some());
        assert!(lines.take(job(&served, 3), Some("a")).is_none());
        assert!(lines.take(job(&served, 4), Some("a")).is_none());
        assert!(lines.take(job(&served, 5), Some("b")).is_some());
        // 2 ends: 3's turn (the key stays under way); 3 ends: 4's.
        let name = served.name.clone();
        let next: Vec<u64> = lines.ended(&name, "a", false).iter().map(|j| j.id.0).collect();
        assert_eq!(next, [3]);
        assert!(lines.take(job(&served, 6), Some("a")).is_none(), "still under way");
        // 3 stops (parked): every run behind it goes, to wait its turn in the store.
        let gone: Vec<u64> = lines.ended(&name, "a", true).iter().map(|j| j.id.0).collect();
        assert_eq!(gone, [4, 6]);
        assert!(lines.take(job(&served, 7), Some("a")).is_some(), "the key is free again");
        // The last run of a key ends: nothing behind it, and the key is free.
        assert!(lines.ended(&name, "b", false).is_empty());
        assert!(lines.take(job(&served, 8), Some("b")).is_some());
    }
}
