//! A store that may not be open yet. `wf serve` starts even when its store file cannot be opened
//! (corrupt, unreadable): it holds the store's lock, async callers get `503` (nothing is
//! acknowledged that is not kept), sync workflows keep answering, and it tries again every few
//! seconds until the store opens.

use super::retry::Retried;
use super::sqlite::{self, Lock, Sqlite};
use super::{
    Cancel, Claimed, Commit, Ended, Filter, History, Key, NewRun, Reading, Recorded, RunView, Series, Store,
    Unfinished,
};
use crate::exec::callbacks::{Callback, Called, TokenHash};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) struct Standby {
    path: PathBuf,
    open: arc_swap::ArcSwapOption<Sqlite>,
    /// The lock, while the store is not open yet (then the open store holds it).
    lock: Mutex<Option<Lock>>,
    /// Why it is not open.
    why: Mutex<String>,
    dropped: AtomicU64,
}

impl Standby {
    /// Takes the store's lock and opens it; only a lock held by another `wf serve` is an error.
    pub(crate) fn open(path: &Path) -> Result<Standby, String> {
        let lock = sqlite::lock(path)?;
        let s = Standby {
            path: path.to_path_buf(),
            open: arc_swap::ArcSwapOption::empty(),
            lock: Mutex::new(Some(lock)),
            why: Mutex::new(String::new()),
            dropped: AtomicU64::new(0),
        };
        s.try_open();
        Ok(s)
    }

    /// Tries to open the store (again); true once it is open.
    pub(crate) fn try_open(&self) -> bool {
        if self.open.load().is_some() {
            return true;
        }
        let Ok(mut held) = self.lock.lock() else { return false };
        let Some(lock) = held.take() else { return self.open.load().is_some() };
        match Sqlite::open_locked(&self.path, lock) {
            Ok(store) => {
                self.open.store(Some(Arc::new(store)));
                true
            }
            Err((why, lock)) => {
                *held = Some(lock);
                if let Ok(mut w) = self.why.lock() {
                    *w = why;
                }
                false
            }
        }
    }

    /// Why the store is not open (empty once it is).
    pub(crate) fn why(&self) -> String {
        if self.open.load().is_some() {
            return String::new();
        }
        self.why.lock().map(|w| w.clone()).unwrap_or_default()
    }

    fn unavailable(&self) -> String {
        format!("the store is unavailable: {}", self.why())
    }

    fn not_open<T: Send + 'static>(&self) -> Reading<'_, T> {
        let why = self.unavailable();
        Box::pin(std::future::ready(Err(why)))
    }
}

impl History for Standby {
    fn prune(&self, before_ms: i64, batch: usize) -> Reading<'_, usize> {
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.prune(before_ms, batch).await }),
            None => self.not_open(),
        }
    }

    fn list(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        let filter = filter.clone();
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.list(&filter).await }),
            None => self.not_open(),
        }
    }

    fn show(&self, id: &str) -> Reading<'_, Option<RunView>> {
        let id = id.to_string();
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.show(&id).await }),
            None => self.not_open(),
        }
    }

    fn whole(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        let filter = filter.clone();
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.whole(&filter).await }),
            None => self.not_open(),
        }
    }

    fn cancel(&self, id: &str) -> Reading<'_, Cancel> {
        let id = id.to_string();
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.cancel(&id).await }),
            None => self.not_open(),
        }
    }

    fn keyed(&self, key: &str) -> Reading<'_, Vec<String>> {
        let key = key.to_string();
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.keyed(&key).await }),
            None => self.not_open(),
        }
    }

    fn retry(&self, id: &str, from_start: bool) -> Reading<'_, Retried> {
        let id = id.to_string();
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.retry(&id, from_start).await }),
            None => self.not_open(),
        }
    }
}

impl Store for Standby {
    fn callback_key(&self) -> Reading<'_, [u8; 32]> {
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.callback_key().await }),
            None => self.not_open(),
        }
    }

    fn callback_made(&self, hash: TokenHash, id: &str, n: u32, expires_ms: i64) -> Reading<'_, ()> {
        let id = id.to_string();
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.callback_made(hash, &id, n, expires_ms).await }),
            None => self.not_open(),
        }
    }

    fn callback(&self, hash: TokenHash) -> Reading<'_, Option<Callback>> {
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.callback(hash).await }),
            None => self.not_open(),
        }
    }

    fn callback_called(&self, hash: TokenHash, reply: Value, now_ms: i64) -> Reading<'_, Called> {
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.callback_called(hash, reply, now_ms).await }),
            None => self.not_open(),
        }
    }

    fn wait_parked(&self, id: &str, n: u32, hash: TokenHash) -> Reading<'_, Recorded> {
        let id = id.to_string();
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.wait_parked(&id, n, hash).await }),
            None => self.not_open(),
        }
    }

    fn callback_expired(&self, hash: TokenHash) -> Reading<'_, ()> {
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.callback_expired(hash).await }),
            None => self.not_open(),
        }
    }

    fn accept(&self, run: NewRun, dedupe: Option<Key>) -> Claimed<'_> {
        let open = self.open.load_full();
        Box::pin(async move {
            match open {
                Some(s) => s.accept(run, dedupe).await,
                None => Err(self.unavailable()),
            }
        })
    }

    fn claim(&self, key: Key) -> Claimed<'_> {
        let open = self.open.load_full();
        Box::pin(async move {
            match open {
                Some(s) => s.claim(key).await,
                None => Err(self.unavailable()),
            }
        })
    }

    fn answered(&self, key: Key, answer: Value) {
        match self.open.load_full() {
            Some(s) => s.answered(key, answer),
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn release(&self, key: Key) {
        if let Some(s) = self.open.load_full() {
            s.release(key);
        }
    }

    fn step_started(&self, id: &str, n: u32, kind: &str, request: Value) {
        if let Some(s) = self.open.load_full() {
            s.step_started(id, n, kind, request);
        }
    }

    fn step_ended(&self, id: &str, n: u32, result: &Result<Value, String>) -> Reading<'_, Recorded> {
        let open = self.open.load_full();
        let result = result.clone();
        let id = id.to_string();
        Box::pin(async move {
            match open {
                Some(s) => s.step_ended(&id, n, &result).await,
                None => Err(self.unavailable()),
            }
        })
    }

    fn step_parked(&self, id: &str, n: u32, kind: &str, due_ms: i64, attempts: u32) -> Reading<'_, Recorded> {
        let open = self.open.load_full();
        let (id, kind) = (id.to_string(), kind.to_string());
        Box::pin(async move {
            match open {
                Some(s) => s.step_parked(&id, n, &kind, due_ms, attempts).await,
                None => Err(self.unavailable()),
            }
        })
    }

    fn step_noted(&self, id: &str, n: u32, result: &Result<Value, String>) {
        if let Some(s) = &*self.open.load() {
            s.step_noted(id, n, result);
        }
    }

    fn step_value(&self, id: &str, n: u32, kind: &str, value: &Value) {
        if let Some(s) = &*self.open.load() {
            s.step_value(id, n, kind, value);
        }
    }

    fn ended(&self, e: Ended) {
        // A guard, not a clone of the `Arc`: this is on every request's path.
        match &*self.open.load() {
            Some(s) => s.ended(e),
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn unfinished(&self) -> Reading<'_, Vec<Unfinished>> {
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.unfinished().await }),
            None => self.not_open(),
        }
    }

    fn retried(&self) -> Reading<'_, Vec<Unfinished>> {
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.retried().await }),
            None => self.not_open(),
        }
    }

    fn flush(&self) -> Commit<'_> {
        let open = self.open.load_full();
        Box::pin(async move {
            match open {
                Some(s) => s.flush().await,
                None => Ok(()),
            }
        })
    }

    fn behind(&self) -> bool {
        self.open.load_full().is_some_and(|s| s.behind())
    }

    fn debounce_seen(&self, workflow: &str, key: &str, id: &str, accepted_ms: i64) -> Reading<'_, ()> {
        let (workflow, dkey, id) = (workflow.to_string(), key.to_string(), id.to_string());
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.debounce_seen(&workflow, &dkey, &id, accepted_ms).await }),
            None => self.not_open(),
        }
    }

    fn order_joined(&self, workflow: &str, key: &str, id: &str, accepted_ms: i64) -> Reading<'_, ()> {
        let (workflow, okey, id) = (workflow.to_string(), key.to_string(), id.to_string());
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.order_joined(&workflow, &okey, &id, accepted_ms).await }),
            None => self.not_open(),
        }
    }

    fn order_front(&self, workflow: &str, key: &str) -> Reading<'_, Vec<String>> {
        let (workflow, okey) = (workflow.to_string(), key.to_string());
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.order_front(&workflow, &okey).await }),
            None => self.not_open(),
        }
    }

    fn order_head(&self, workflow: &str, key: &str) -> Reading<'_, Option<String>> {
        let (workflow, okey) = (workflow.to_string(), key.to_string());
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.order_head(&workflow, &okey).await }),
            None => self.not_open(),
        }
    }

    fn rate_take(
        &self,
        workflow: &str,
        key: &str,
        n: u32,
        window_ms: i64,
        now_ms: i64,
    ) -> Reading<'_, Option<i64>> {
        let (workflow, rkey) = (workflow.to_string(), key.to_string());
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.rate_take(&workflow, &rkey, n, window_ms, now_ms).await }),
            None => self.not_open(),
        }
    }

    fn order_done(&self, workflow: &str, key: &str, id: &str) -> Reading<'_, ()> {
        let (workflow, okey, id) = (workflow.to_string(), key.to_string(), id.to_string());
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.order_done(&workflow, &okey, &id).await }),
            None => self.not_open(),
        }
    }

    fn debounce_series(&self, workflow: &str, key: &str) -> Reading<'_, Option<Series>> {
        let (workflow, dkey) = (workflow.to_string(), key.to_string());
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.debounce_series(&workflow, &dkey).await }),
            None => self.not_open(),
        }
    }

    fn debounce_done(&self, workflow: &str, key: &str, id: &str) -> Reading<'_, ()> {
        let (workflow, dkey, id) = (workflow.to_string(), key.to_string(), id.to_string());
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.debounce_done(&workflow, &dkey, &id).await }),
            None => self.not_open(),
        }
    }

    fn waiting(&self) -> Reading<'_, Vec<(&'static str, u64)>> {
        match self.open.load_full() {
            Some(s) => Box::pin(async move { s.waiting().await }),
            None => Box::pin(std::future::ready(Ok(Vec::new()))),
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed) + self.open.load_full().map_or(0, |s| s.dropped())
    }

    fn trouble(&self) -> Option<String> {
        match self.open.load_full() {
            Some(s) => s.trouble(),
            None => Some(self.why()).filter(|w| !w.is_empty()),
        }
    }
}
