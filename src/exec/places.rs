//! Runs waiting for a place of their workflow's `concurrency`: set aside, holding no worker, and
//! taken by the next worker that finds a place free (a worker looks when a run ends, and every
//! [`LOOK_EVERY`] while runs are set aside: a sync execution may free a place too). A worker
//! busy with one workflow's waiting runs is free for every other workflow's.

use crate::request::handle::Job;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedSemaphorePermit;

/// How often an idle worker looks for a set-aside run whose place is free.
pub(crate) const LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs set aside at most, per workflow; beyond, a worker waits for a place as it takes a run
/// (the queue before them is bounded by `--queue-size` in the same way).
const MOST: usize = 65_536;

/// What [`Waiting::place`] did with a run.
pub(crate) enum Placed {
    /// It may run now (with its place, when its workflow has a `concurrency`).
    Now(Job, Option<OwnedSemaphorePermit>),
    /// Set aside until a place is free.
    SetAside,
    /// No place, and no room to set it aside: the worker waits for a place.
    Full(Job),
}

/// The runs set aside, by workflow, oldest first.
#[derive(Default)]
pub(crate) struct Waiting {
    runs: Mutex<HashMap<Arc<str>, VecDeque<Job>>>,
    count: AtomicUsize,
}

impl Waiting {
    /// Whether any run is set aside.
    pub(crate) fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    /// A place for `job`, or sets it aside. Decided under the lock [`Waiting::next`] takes, so
    /// a place freed meanwhile is never missed: either it is taken here, or the run is set aside
    /// before the worker that freed it looks.
    pub(crate) fn place(&self, job: Job) -> Placed {
        let Some(limit) = job.served.running.clone() else { return Placed::Now(job, None) };
        let Ok(mut runs) = self.runs.lock() else { return Placed::Full(job) };
        // Runs set aside before it go first.
        let queued = runs.get(&job.served.name).is_some_and(|q| !q.is_empty());
        if !queued {
            if let Ok(place) = limit.try_acquire_owned() {
                return Placed::Now(job, Some(place));
            }
        }
        let q = runs.entry(job.served.name.clone()).or_default();
        if q.len() >= MOST {
            return Placed::Full(job);
        }
        q.push_back(job);
        self.count.fetch_add(1, Ordering::AcqRel);
        Placed::SetAside
    }

    /// The oldest set-aside run of a workflow with a place free now, with its place.
    pub(crate) fn next(&self) -> Option<(Job, OwnedSemaphorePermit)> {
        if self.is_empty() {
            return None;
        }
        let mut runs = self.runs.lock().ok()?;
        for q in runs.values_mut() {
            let Some(first) = q.front() else { continue };
            let Some(limit) = first.served.running.clone() else { continue };
            if let Ok(place) = limit.try_acquire_owned() {
                let job = q.pop_front()?;
                self.count.fetch_sub(1, Ordering::AcqRel);
                return Some((job, place));
            }
        }
        runs.retain(|_, q| !q.is_empty());
        None
    }

    /// At the drain: any set-aside run, once its place is free (the queue is closed: nothing
    /// else is left to do).
    pub(crate) async fn any(&self) -> Option<(Job, Option<OwnedSemaphorePermit>)> {
        let job = {
            let mut runs = self.runs.lock().ok()?;
            let job = runs.values_mut().find_map(VecDeque::pop_front)?;
            self.count.fetch_sub(1, Ordering::AcqRel);
            job
        };
        let place = match job.served.running.clone() {
            Some(limit) => limit.acquire_owned().await.ok(),
            None => None,
        };
        Some((job, place))
    }
}
