//! `--store memory`: the store that keeps everything in the process and nothing on disk
//! (benchmarks, tests, a quick look). It keeps the same contract as the others while the process
//! lives: accepted runs until they end, their journal, parked runs until due, `dedupe` keys within
//! their window, retries; of ended executions it keeps the last [`KEPT`] for `wf runs`-like
//! reading from the process itself (the dashboard). A sync execution keeps its record, not its
//! request or its steps. Nothing survives a restart.

mod keys;

use super::retry::{self, Retried};
use super::{
    Cancel, Claim, Claimed, Commit, Ended, Filter, History, Key, Mode, NewRun, Outcome, Reading, Recorded,
    RunView, Series, State, StepState, StepView, Store, Unfinished, Version,
};
use crate::exec::callbacks::{Callback, CallbackState, Called, TokenHash};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Ended executions kept, the oldest forgotten first.
pub(crate) const KEPT: usize = 1_000;

/// One journaled step.
#[derive(Clone, Debug)]
struct Step {
    kind: String,
    state: StepState,
    request: Option<Value>,
    result: Option<Value>,
    reason: Option<String>,
}

/// What a kept run needs to run again: an async run's version and frame; nothing for a sync
/// execution a retry runs again (from its request, under the workflow served now).
#[derive(Debug)]
struct Kept {
    version: Option<Arc<Version>>,
    frame: Value,
}

/// One execution: a run accepted and not ended, or the record of one that ended.
#[derive(Debug)]
struct Execution {
    view: RunView,
    /// An async run's version and frame (kept while it may run again).
    kept: Option<Kept>,
    steps: BTreeMap<u32, Step>,
    /// A parked run's due time.
    due_ms: Option<i64>,
    /// Marked by a retry: taken by the next [`Store::retried`].
    marked: bool,
    retries: u32,
    /// The `dedupe` key it claimed.
    key: Option<(String, String)>,
    /// Counted among the ended executions kept (once, however often a retry ends it again).
    counted: bool,
}

impl Execution {
    fn new(id: &str, workflow: &str, mode: Mode, started_ms: i64) -> Execution {
        Execution {
            view: RunView {
                id: id.to_string(),
                workflow: workflow.to_string(),
                mode,
                state: State::Queued,
                outcome: None,
                status: None,
                started_ms,
                duration_ms: None,
                reason: None,
                at: None,
                attempts: 0,
                logs: Vec::new(),
                request: None,
                steps: Vec::new(),
            },
            kept: None,
            steps: BTreeMap::new(),
            due_ms: None,
            marked: false,
            retries: 0,
            key: None,
            counted: false,
        }
    }

    /// Its finished steps (and the one that parked it), as a resumed run reads them.
    fn unfinished(&self, kept: &Kept) -> Unfinished {
        let mut journal = Vec::new();
        let mut waiting = None;
        for (n, s) in &self.steps {
            match s.state {
                StepState::Finished => journal.push((*n, Ok(s.result.clone().unwrap_or(Value::Null)))),
                StepState::Waiting => {
                    waiting = Some((*n, s.result.as_ref().map_or(0, super::attempts_made)));
                }
                StepState::Started | StepState::Failed => {}
            }
        }
        Unfinished {
            id: self.view.id.clone(),
            workflow: self.view.workflow.clone(),
            version: kept.version.as_deref().cloned(),
            frame: kept.frame.clone(),
            request: (self.view.mode == Mode::Sync).then(|| self.view.request.clone()).flatten(),
            accepted_ms: self.view.started_ms,
            journal,
            waiting,
            retries: self.retries,
        }
    }

    /// Whether [`Store::unfinished`] (`all`) or [`Store::retried`] takes it now.
    fn to_take(&self, all: bool, now: i64) -> bool {
        if self.kept.is_none() {
            return false;
        }
        match self.view.state {
            State::Waiting => self.due_ms.is_some_and(|due| due <= now),
            State::Ended => false,
            State::Queued | State::Running => all || self.marked,
        }
    }
}

#[derive(Default)]
struct Inner {
    executions: HashMap<i64, Execution>,
    /// Ended executions in the order they ended, to forget the oldest past [`KEPT`].
    ended: VecDeque<i64>,
    keys: keys::Keys,
    callbacks: HashMap<TokenHash, Callback>,
    /// Debounce series, and whether each ended.
    debounce: HashMap<(String, String), (Series, bool)>,
    /// `order by` lines: each key's runs by acceptance (then id), until each ends.
    orders: HashMap<(String, String), std::collections::BTreeSet<(i64, i64)>>,
    /// The callback key: random, made at its first use (nothing outlives the process).
    callback_key: Option<[u8; 32]>,
    /// `rate` windows: each key's window and its starts in it.
    rates: HashMap<(String, String), (i64, Vec<i64>)>,
    /// How many keys `rates` had when windows that had passed were last let go.
    rates_pruned: usize,
}

impl Inner {
    /// The earliest run of a key's line that has not ended.
    fn order_head(&self, workflow: &str, key: &str) -> Option<String> {
        self.order_front(workflow, key, 1).pop()
    }

    /// The first `n` runs of a key's line that have not ended.
    fn order_front(&self, workflow: &str, key: &str, n: usize) -> Vec<String> {
        let Some(line) = self.orders.get(&(workflow.to_string(), key.to_string())) else { return Vec::new() };
        line.iter()
            .filter(|(_, run)| self.executions.get(run).is_some_and(|x| x.view.state != State::Ended))
            .take(n)
            .map(|(_, run)| super::hex(*run))
            .collect()
    }

    fn entry(&mut self, id: &str, mode: Mode) -> &mut Execution {
        self.executions.entry(super::key(id)).or_insert_with(|| Execution::new(id, "", mode, super::now_ms()))
    }

    fn step(&mut self, id: &str, n: u32) -> &mut Step {
        let e = self.entry(id, Mode::Sync);
        e.steps.entry(n).or_insert_with(|| Step {
            kind: String::new(),
            state: StepState::Started,
            request: None,
            result: None,
            reason: None,
        })
    }

    fn accept(&mut self, run: NewRun, dedupe: Option<Key>) -> Claim {
        let claimed = dedupe.as_ref().map(|k| (k.workflow.clone(), k.key.clone()));
        if let Some(k) = dedupe {
            let found = self.keys.claim(k);
            if found != Claim::First {
                return found;
            }
        }
        let id = super::key(&run.id);
        if self.executions.contains_key(&id) {
            return Claim::First;
        }
        let mut e = Execution::new(&run.id, &run.workflow, Mode::Async, run.accepted_ms);
        e.view.request = serde_json::from_str(&run.request).ok();
        e.kept = Some(Kept {
            version: Some(run.version),
            frame: serde_json::from_str(&run.frame).unwrap_or(Value::Null),
        });
        e.key = claimed;
        self.executions.insert(id, e);
        Claim::First
    }

    fn ended(&mut self, e: Ended) {
        let id = super::hex(e.id);
        let request = e.request.as_ref().and_then(|r| serde_json::from_str(&r.to_json()).ok());
        let x = self
            .executions
            .entry(e.id)
            .or_insert_with(|| Execution::new(&id, &e.workflow, e.mode, e.started_ms));
        let first = !std::mem::replace(&mut x.counted, true);
        if x.view.workflow.is_empty() {
            // A sync execution whose steps were noted before it ended.
            x.view.workflow = e.workflow.to_string();
            x.view.mode = e.mode;
            x.view.started_ms = e.started_ms;
        }
        x.view.state = State::Ended;
        x.view.outcome = Some(e.outcome);
        x.view.status = Some(e.status);
        x.view.duration_ms = Some(e.duration_ms);
        x.view.reason = e.reason;
        x.view.at = e.at;
        x.view.logs = e.logs;
        x.view.attempts = x.view.attempts.saturating_add(i64::from(e.attempts));
        x.due_ms = None;
        x.marked = false;
        if request.is_some() {
            x.view.request = request;
        }
        if e.outcome != Outcome::Failed {
            x.kept = None;
        }
        let release = (e.outcome == Outcome::Failed && e.mode == Mode::Async).then(|| x.key.take()).flatten();
        if let Some((workflow, key)) = release {
            self.keys.release(Key { workflow, key, id, expires_ms: 0 });
        }
        if first {
            self.ended.push_back(e.id);
        }
        while self.ended.len() > KEPT {
            let Some(old) = self.ended.pop_front() else { break };
            if self.executions.get(&old).is_some_and(|x| x.view.state == State::Ended) {
                self.executions.remove(&old);
            }
        }
    }

    fn view(&self, x: &Execution) -> RunView {
        let mut view = x.view.clone();
        view.steps = x
            .steps
            .iter()
            .map(|(n, s)| StepView {
                n: *n,
                kind: s.kind.clone(),
                state: s.state,
                request: s.request.clone(),
                result: s.result.clone(),
                reason: s.reason.clone(),
                took_ms: None,
            })
            .collect();
        view
    }

    fn retry(&mut self, id: &str, from_start: bool) -> Retried {
        let Some(x) = self.executions.get_mut(&super::key(id)) else { return Retried::Unknown };
        if x.view.workflow.is_empty() {
            return Retried::Unknown;
        }
        let kept = match x.view.mode {
            Mode::Sync => retry::kept_whole(x.view.request.as_ref()),
            Mode::Async => x.kept.is_some(),
        };
        if let Some(why) = retry::refusal(id, x.view.mode, x.view.state, x.view.outcome, kept) {
            return Retried::Refused(why);
        }
        if x.view.mode == Mode::Sync {
            x.kept = Some(Kept { version: None, frame: Value::Null });
        }
        let steps: Vec<retry::Journaled<'_>> = x
            .steps
            .iter()
            .map(|(n, s)| retry::Journaled {
                n: *n,
                kind: &s.kind,
                finished: s.state == StepState::Finished,
                result: s.result.clone(),
            })
            .collect();
        if let Some(from) = retry::redo_from(&steps, from_start) {
            x.steps.retain(|n, _| *n < from);
        }
        x.view.state = State::Queued;
        x.marked = true;
        x.retries = x.retries.saturating_add(1);
        Retried::Marked
    }

    fn take(&mut self, all: bool) -> Vec<Unfinished> {
        let now = super::now_ms();
        let mut runs: Vec<Unfinished> = Vec::new();
        for x in self.executions.values_mut() {
            if !x.to_take(all, now) {
                continue;
            }
            let Some(kept) = &x.kept else { continue };
            runs.push(x.unfinished(kept));
            x.marked = false;
            x.due_ms = None;
            if x.view.state == State::Waiting {
                x.view.state = State::Queued;
            }
        }
        runs.sort_by_key(|r| (r.accepted_ms, super::key(&r.id)));
        runs
    }
}

/// The store in memory.
#[derive(Default)]
pub(crate) struct Memory(Mutex<Inner>);

impl Memory {
    /// Runs `f` on what is kept (a poisoned lock means a panic in wf's own code while holding
    /// it: what it held is still the best there is).
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }
}

/// What is already there, as a store's answer.
fn ready<'a, T: Send + 'a>(value: T) -> Reading<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl History for Memory {
    fn list(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        let status = filter.status.map(|s| s.as_str());
        let mut all: Vec<RunView> = self.with(|inner| {
            inner
                .executions
                .values()
                .filter(|x| !x.view.workflow.is_empty())
                .filter(|x| filter.workflow.as_ref().is_none_or(|w| *w == x.view.workflow))
                .filter(|x| {
                    status.is_none_or(|s| {
                        x.view.state.as_str() == s || x.view.outcome.is_some_and(|o| o.as_str() == s)
                    })
                })
                .filter(|x| x.view.started_ms >= filter.since_ms.unwrap_or(0))
                .filter(|x| filter.is_after(x.view.started_ms, super::key(&x.view.id)))
                .map(|x| x.view.clone())
                .collect()
        });
        all.sort_by_key(|r| std::cmp::Reverse((r.started_ms, super::key(&r.id))));
        all.truncate(filter.limit.max(1));
        ready(all)
    }

    fn show(&self, id: &str) -> Reading<'_, Option<RunView>> {
        let found = self.with(|inner| {
            inner
                .executions
                .get(&super::key(id))
                .filter(|x| !x.view.workflow.is_empty())
                .map(|x| inner.view(x))
        });
        ready(found)
    }

    fn prune(&self, before_ms: i64, batch: usize) -> Reading<'_, usize> {
        let gone = self.with(|inner| {
            let mut old: Vec<(i64, i64)> = inner
                .executions
                .iter()
                .filter(|(_, x)| x.view.state == State::Ended && x.view.started_ms < before_ms)
                .map(|(id, x)| (x.view.started_ms, *id))
                .collect();
            old.sort_unstable();
            old.truncate(batch.max(1));
            for (_, id) in &old {
                inner.executions.remove(id);
            }
            inner.ended.retain(|id| inner.executions.contains_key(id));
            old.len()
        });
        ready(gone)
    }

    fn retry(&self, id: &str, from_start: bool) -> Reading<'_, Retried> {
        ready(self.with(|inner| inner.retry(id, from_start)))
    }

    fn keyed(&self, key: &str) -> Reading<'_, Vec<String>> {
        ready(self.with(|inner| inner.keys.keyed(key)))
    }

    fn cancel(&self, id: &str) -> Reading<'_, Cancel> {
        ready(self.with(|inner| {
            let run = super::key(id);
            let Some(x) = inner.executions.get_mut(&run).filter(|x| !x.view.workflow.is_empty()) else {
                return Cancel::Unknown;
            };
            if x.view.state != State::Waiting && !(x.view.state == State::Queued && x.marked) {
                return Cancel::NotWaiting(x.view.state);
            }
            let now = super::now_ms();
            x.view.state = State::Ended;
            x.view.outcome = Some(Outcome::Cancelled);
            x.view.reason = Some("cancelled".into());
            x.view.duration_ms = Some(now.saturating_sub(x.view.started_ms));
            (x.kept, x.due_ms, x.marked) = (None, None, false);
            for c in inner
                .callbacks
                .values_mut()
                .filter(|c| c.execution == id && c.state == CallbackState::Waiting)
            {
                c.state = CallbackState::Cancelled;
            }
            Cancel::Cancelled
        }))
    }
}

impl Store for Memory {
    fn keeps_requests(&self) -> bool {
        false
    }

    fn accept(&self, run: NewRun, dedupe: Option<Key>) -> Claimed<'_> {
        ready(self.with(|inner| inner.accept(run, dedupe)))
    }

    fn claim(&self, key: Key) -> Claimed<'_> {
        ready(self.with(|inner| inner.keys.claim(key)))
    }

    fn answered(&self, key: Key, answer: Value) {
        self.with(|inner| inner.keys.answered(key, answer));
    }

    fn release(&self, key: Key) {
        self.with(|inner| inner.keys.release(key));
    }

    fn step_started(&self, id: &str, n: u32, kind: &str, request: Value) {
        self.with(|inner| {
            let e = inner.entry(id, Mode::Sync);
            if e.view.state == State::Queued && e.kept.is_some() {
                e.view.state = State::Running;
            }
            let s = inner.step(id, n);
            *s = Step {
                kind: kind.to_string(),
                state: StepState::Started,
                request: Some(request),
                result: None,
                reason: None,
            };
        });
    }

    fn step_ended(&self, id: &str, n: u32, result: &Result<Value, String>) -> Reading<'_, Recorded> {
        self.step_noted(id, n, result);
        ready(Recorded::Kept)
    }

    fn step_parked(&self, id: &str, n: u32, kind: &str, due_ms: i64, attempts: u32) -> Reading<'_, Recorded> {
        self.with(|inner| {
            let s = inner.step(id, n);
            if s.kind.is_empty() {
                s.kind = kind.into();
            }
            s.state = StepState::Waiting;
            s.result = Some(serde_json::json!({ "attempts": attempts }));
            s.reason = None;
            let e = inner.entry(id, Mode::Async);
            e.view.state = State::Waiting;
            e.due_ms = Some(due_ms);
        });
        ready(Recorded::Kept)
    }

    fn step_noted(&self, id: &str, n: u32, result: &Result<Value, String>) {
        self.with(|inner| {
            let s = inner.step(id, n);
            match result {
                Ok(v) => (s.state, s.result, s.reason) = (StepState::Finished, Some(v.clone()), None),
                Err(why) => (s.state, s.result, s.reason) = (StepState::Failed, None, Some(why.clone())),
            }
        });
    }

    fn step_value(&self, id: &str, n: u32, kind: &str, value: &Value) {
        self.with(|inner| {
            *inner.step(id, n) = Step {
                kind: kind.to_string(),
                state: StepState::Finished,
                request: None,
                result: Some(value.clone()),
                reason: None,
            };
        });
    }

    fn ended(&self, e: Ended) {
        self.with(|inner| inner.ended(e));
    }

    fn unfinished(&self) -> Reading<'_, Vec<Unfinished>> {
        ready(self.with(|inner| inner.take(true)))
    }

    fn retried(&self) -> Reading<'_, Vec<Unfinished>> {
        ready(self.with(|inner| inner.take(false)))
    }

    fn flush(&self) -> Commit<'_> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn dropped(&self) -> u64 {
        0
    }

    fn durable(&self) -> bool {
        false
    }

    fn debounce_seen(&self, workflow: &str, key: &str, id: &str, accepted_ms: i64) -> Reading<'_, ()> {
        self.with(|inner| {
            let fresh = Series { latest: id.to_string(), first_ms: accepted_ms, latest_ms: accepted_ms };
            let (s, ended) = inner
                .debounce
                .entry((workflow.to_string(), key.to_string()))
                .or_insert_with(|| (fresh.clone(), false));
            if *ended {
                (*s, *ended) = (fresh, false);
            } else if (accepted_ms, super::key(id)) > (s.latest_ms, super::key(&s.latest)) {
                (s.latest, s.latest_ms) = (id.to_string(), accepted_ms);
            }
            s.first_ms = s.first_ms.min(accepted_ms);
        });
        ready(())
    }

    fn order_joined(&self, workflow: &str, key: &str, id: &str, accepted_ms: i64) -> Reading<'_, ()> {
        self.with(|inner| {
            inner
                .orders
                .entry((workflow.to_string(), key.to_string()))
                .or_default()
                .insert((accepted_ms, super::key(id)));
        });
        ready(())
    }

    fn order_head(&self, workflow: &str, key: &str) -> Reading<'_, Option<String>> {
        ready(self.with(|inner| inner.order_head(workflow, key)))
    }

    fn order_front(&self, workflow: &str, key: &str) -> Reading<'_, Vec<String>> {
        ready(self.with(|inner| inner.order_front(workflow, key, 2)))
    }

    fn rate_take(
        &self,
        workflow: &str,
        key: &str,
        n: u32,
        window_ms: i64,
        now_ms: i64,
    ) -> Reading<'_, Option<i64>> {
        ready(self.with(|inner| {
            // Keys come from requests: windows that have passed are let go as keys pile up.
            if inner.rates.len() > inner.rates_pruned.saturating_mul(2).max(1_024) {
                inner
                    .rates
                    .retain(|_, (window, starts)| starts.iter().any(|t| t.saturating_add(*window) > now_ms));
                inner.rates_pruned = inner.rates.len();
            }
            let (window, starts) =
                inner.rates.entry((workflow.to_string(), key.to_string())).or_insert((window_ms, Vec::new()));
            *window = window_ms;
            super::rate::take(starts, n, window_ms, now_ms)
        }))
    }

    fn order_done(&self, workflow: &str, key: &str, id: &str) -> Reading<'_, ()> {
        self.with(|inner| {
            let name = (workflow.to_string(), key.to_string());
            if let Some(line) = inner.orders.get_mut(&name) {
                line.retain(|(_, run)| *run != super::key(id));
                if line.is_empty() {
                    inner.orders.remove(&name);
                }
            }
            if let Some(next) = inner.order_head(workflow, key) {
                if let Some(x) =
                    inner.executions.get_mut(&super::key(&next)).filter(|x| x.view.state == State::Waiting)
                {
                    x.due_ms = Some(0);
                }
            }
        });
        ready(())
    }

    fn debounce_series(&self, workflow: &str, key: &str) -> Reading<'_, Option<Series>> {
        ready(self.with(|inner| {
            inner.debounce.get(&(workflow.to_string(), key.to_string())).map(|(s, _)| s.clone())
        }))
    }

    fn debounce_done(&self, workflow: &str, key: &str, id: &str) -> Reading<'_, ()> {
        self.with(|inner| {
            if let Some((s, ended)) = inner.debounce.get_mut(&(workflow.to_string(), key.to_string())) {
                *ended |= s.latest == id;
            }
        });
        ready(())
    }

    fn waiting(&self) -> Reading<'_, Vec<(&'static str, u64)>> {
        ready(self.with(|inner| {
            let mut out: Vec<(&'static str, u64)> = Vec::new();
            for x in inner.executions.values().filter(|x| x.view.state == State::Waiting) {
                let kind = x
                    .steps
                    .values()
                    .find(|s| s.state == StepState::Waiting)
                    .map_or("http", |s| s.kind.as_str());
                let what = super::waits_for(kind);
                match out.iter_mut().find(|(w, _)| *w == what) {
                    Some(c) => c.1 += 1,
                    None => out.push((what, 1)),
                }
            }
            out
        }))
    }

    fn callback_key(&self) -> Reading<'_, [u8; 32]> {
        let made = self.with(|inner| match inner.callback_key {
            Some(k) => Ok(k),
            None => {
                let mut k = [0u8; 32];
                getrandom::fill(&mut k).map_err(|e| format!("no random key: {e}"))?;
                inner.callback_key = Some(k);
                Ok(k)
            }
        });
        Box::pin(std::future::ready(made))
    }

    fn callback_made(&self, hash: TokenHash, id: &str, n: u32, expires_ms: i64) -> Reading<'_, ()> {
        self.with(|inner| {
            inner.callbacks.entry(hash).or_insert_with(|| Callback {
                execution: id.to_string(),
                n,
                expires_ms,
                state: CallbackState::Waiting,
                reply: None,
            });
        });
        ready(())
    }

    fn callback(&self, hash: TokenHash) -> Reading<'_, Option<Callback>> {
        ready(self.with(|inner| inner.callbacks.get(&hash).cloned()))
    }

    fn callback_called(&self, hash: TokenHash, reply: Value, now_ms: i64) -> Reading<'_, Called> {
        ready(self.with(|inner| {
            let Some(c) = inner.callbacks.get_mut(&hash) else { return Called::Unknown };
            if c.state != CallbackState::Waiting || c.expires_ms <= now_ms {
                return Called::Gone;
            }
            c.state = CallbackState::Called;
            c.reply = Some(reply);
            let run = super::key(&c.execution);
            if let Some(e) = inner.executions.get_mut(&run).filter(|e| e.view.state == State::Waiting) {
                e.due_ms = Some(0);
            }
            Called::Taken
        }))
    }

    fn wait_parked(&self, id: &str, n: u32, hash: TokenHash) -> Reading<'_, Recorded> {
        self.with(|inner| {
            let due = inner.callbacks.get(&hash).map_or(0, |c| match c.state {
                CallbackState::Waiting => c.expires_ms,
                _ => 0,
            });
            let s = inner.step(id, n);
            if s.kind.is_empty() {
                s.kind = "wait".into();
            }
            s.state = StepState::Waiting;
            s.result = Some(serde_json::json!({ "attempts": 0 }));
            s.reason = None;
            let e = inner.entry(id, Mode::Async);
            e.view.state = State::Waiting;
            e.due_ms = Some(due);
        });
        ready(Recorded::Kept)
    }

    fn callback_expired(&self, hash: TokenHash) -> Reading<'_, ()> {
        self.with(|inner| {
            if let Some(c) = inner.callbacks.get_mut(&hash).filter(|c| c.state == CallbackState::Waiting) {
                c.state = CallbackState::Expired;
            }
        });
        ready(())
    }
}
