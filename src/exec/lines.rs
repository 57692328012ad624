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
