//! Journaled steps: wraps the steps of an async run so that every step is recorded in the store,
//! and a resumed run is given the recorded results of the steps that had finished instead of
//! performing them again. A step that was under way at a crash has no result: it runs again
//! (an `http` call with the same idempotency key, since the key is the execution id and step).

use crate::exec::callbacks::{self, CallbackState, Callbacks};
use crate::request::served::Served;
use crate::request::step::{self, ParkedSlot, Pending, Step, StepError, Steps, Stop};
use crate::store::{Recorded, Store};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(crate) struct Journaled {
    inner: Box<dyn Steps>,
    store: Arc<dyn Store>,
    /// Its secrets never reach the store: a URL or a reason that holds one is kept redacted.
    served: Arc<Served>,
    id: String,
    /// An async run waits for each step's end to be kept before the next starts; a sync
    /// execution (never resumed) only notes its steps for the history.
    durable: bool,
    /// Results of the steps that finished before a restart, by step number (shared with the
    /// forks that perform a `parallel` loop's iterations).
    replay: Arc<Mutex<HashMap<u32, Result<Value, String>>>>,
    /// Where a step that parks the run leaves its due time (a kept run's steps may park).
    parked: Option<ParkedSlot>,
    /// Where this server's callbacks are called (a kept run may make them).
    callbacks: Option<Arc<Callbacks>>,
    /// The tokens of the callbacks this run made: never journaled (a body or a result that
    /// holds one keeps `[token]` instead).
    tokens: Vec<String>,
    /// The run that handed this one its `order by` turn here (see [`Steps::turn_after`]).
    after: Option<String>,
    /// The step the run was parked on when it was taken again, if any.
    waited: Option<u32>,
}

/// How long a run waiting for its turn (`order by`) waits before it looks again, in
/// milliseconds, should the end of the run before it not wake it.
const ORDER_LOOK: i64 = 5_000;

impl Journaled {
    pub(crate) fn new(
        inner: Box<dyn Steps>,
        store: Arc<dyn Store>,
        served: Arc<Served>,
        id: String,
        journal: Vec<(u32, Result<Value, String>)>,
        parked: Option<ParkedSlot>,
        callbacks: Option<Arc<Callbacks>>,
    ) -> Journaled {
        let replay = Arc::new(Mutex::new(journal.into_iter().collect()));
        Journaled {
            inner,
            store,
            served,
            id,
            durable: true,
            replay,
            parked,
            callbacks,
            tokens: Vec::new(),
            after: None,
            waited: None,
        }
    }

    /// A run taken again from its park on step `n`.
    pub(crate) fn waited(mut self, n: Option<u32>) -> Journaled {
        self.waited = n;
        self
    }

    /// The steps of a sync execution: recorded for its history, never waited for.
    pub(crate) fn noted(
        inner: Box<dyn Steps>,
        store: Arc<dyn Store>,
        served: Arc<Served>,
        id: String,
    ) -> Journaled {
        Journaled {
            inner,
            store,
            served,
            id,
            durable: false,
            replay: Arc::default(),
            parked: None,
            callbacks: None,
            tokens: Vec::new(),
            after: None,
            waited: None,
        }
    }

    /// A step's end as the store keeps it: its result or its failure's reason with the
    /// workflow's secrets redacted (a service may echo one back). A run resumed from the
    /// journal reads the redacted result.
    fn kept<'r>(&self, result: &'r Result<Value, String>) -> std::borrow::Cow<'r, Result<Value, String>> {
        if self.served.secrets.is_empty() {
            return std::borrow::Cow::Borrowed(result);
        }
        match result {
            Ok(v) => std::borrow::Cow::Owned(Ok(self.served.redact_value(v.clone()))),
            Err(why) => {
                let mut why = why.clone();
                self.served.redact(&mut why);
                std::borrow::Cow::Owned(Err(why))
            }
        }
    }
}

/// What the journal shows of a step's request: a URL and the body sent (its text up to 64 KiB,
/// else its size; `""` when none), a program and its arguments, each with the workflow's secrets
/// redacted; never headers or environment (they carry credentials). `wf runs replay` compares
/// the steps it asks for in this same form.
pub(crate) fn summary(served: &Served, s: &Step) -> (&'static str, Value) {
    let shown = |text: &str| {
        let mut text = text.to_string();
        served.redact(&mut text);
        text
    };
    match s {
        Step::Http(h) if h.body.is_empty() => {
            ("http", json!({"method": h.method.as_str(), "url": shown(&h.url), "body": ""}))
        }
        Step::Http(h) if h.body.len() > crate::request::received::KEEP_BODY => {
            ("http", json!({"method": h.method.as_str(), "url": shown(&h.url), "body_size": h.body.len()}))
        }
        Step::Http(h) => (
            "http",
            json!({"method": h.method.as_str(), "url": shown(&h.url), "body": shown(&String::from_utf8_lossy(&h.body))}),
        ),
        Step::Run(r) => {
            let args: Vec<String> = r.args.iter().map(|a| shown(a)).collect();
            ("run", json!({"program": shown(&r.program), "args": args}))
        }
        Step::Now => ("now", Value::Null),
        Step::Uuid => ("uuid", Value::Null),
        Step::Sleep(d) => ("sleep", json!({"seconds": d.as_secs_f64()})),
        Step::Callback(timeout) => ("callback", json!({"timeout": timeout.as_secs()})),
        Step::Wait(token) => ("wait", json!({"callback": crate::exec::callbacks::shown_id(token)})),
        Step::Debounce { key, .. } => ("debounce", json!({"key": shown(key)})),
        Step::Order(key) => ("order", json!({"key": shown(key)})),
        Step::Rate { key, .. } => ("rate", json!({"key": shown(key)})),
    }
}

impl Journaled {
    /// The recorded result of step `n`, taken (a step is answered from the journal once).
    fn recorded(&self, n: u32) -> Option<Result<Value, String>> {
        self.replay.lock().ok().and_then(|mut r| r.remove(&n))
    }

    /// Keeps the due time a step that parked the run left, and stops the run.
    async fn park(&mut self, kind: &str) -> Result<Value, StepError> {
        let parked = self.parked.as_ref().and_then(|slot| slot.lock().ok().and_then(|mut p| p.take()));
        let Some(p) = parked else {
            return Err(StepError::Failed("a step parked the run without saying until when".into()));
        };
        match self.store.step_parked(&self.id, p.n, kind, p.due_ms, p.attempts).await {
            Ok(Recorded::Kept) => Err(StepError::Stopped(Stop::Parked)),
            Ok(Recorded::Fenced) => Err(StepError::Stopped(Stop::Fenced)),
            Err(e) => {
                Err(StepError::Failed(format!("the run could not be parked until its next attempt: {e}")))
            }
        }
    }
}

impl Journaled {
    /// A value to journal with the tokens of this run's callbacks hidden.
    fn hide(&self, v: Value) -> Value {
        if self.tokens.is_empty() {
            return v;
        }
        let mut text = v.to_string();
        for t in &self.tokens {
            text = text.replace(t.as_str(), "[token]");
        }
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The trigger's `debounce`: superseded when a newer request with the key came; else
    /// parked until `wait` after the newest of the series was accepted (at the latest `max`
    /// after the first), then the series ends and the run goes on.
    async fn debounce(
        &mut self,
        n: u32,
        key: String,
        wait: std::time::Duration,
        max: Option<std::time::Duration>,
    ) -> Result<Value, StepError> {
        if let Some(recorded) = self.recorded(n) {
            return recorded.map_err(StepError::Failed);
        }
        if !self.durable {
            return Ok(Value::Null);
        }
        let workflow = self.served.name.clone();
        let failed = |e: String| StepError::Failed(format!("the debounce series could not be read: {e}"));
        let Some(series) = self.store.debounce_series(&workflow, &key).await.map_err(failed)? else {
            return Ok(Value::Null);
        };
        if series.latest != self.id {
            return Err(StepError::Stopped(Stop::Superseded));
        }
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let due = series
            .latest_ms
            .saturating_add(ms(wait))
            .min(max.map_or(i64::MAX, |m| series.first_ms.saturating_add(ms(m))));
        if step::now_ms() < due {
            if let Some(mut slot) = self.parked.as_ref().and_then(|s| s.lock().ok()) {
                *slot = Some(step::Parked { n, due_ms: due, attempts: 0 });
            }
            return self.park("debounce").await;
        }
        if let Err(why) = self.store.debounce_done(&workflow, &key, &self.id).await {
            tracing::warn!(target: "wf::store", execution = %self.id, "the debounce series was not ended: {why}");
        }
        self.store.step_value(&self.id, n, "debounce", &Value::Null);
        Ok(Value::Null)
    }

    /// The trigger's `order by`: the run goes on when it is the earliest of its key's line not
    /// ended; else it parks until the run before it ends (which makes it due at once), looking
    /// again every [`ORDER_LOOK`] should that word be missed.
    async fn order(&mut self, n: u32, key: String) -> Result<Value, StepError> {
        if let Some(recorded) = self.recorded(n) {
            return recorded.map_err(StepError::Failed);
        }
        if !self.durable {
            return Ok(Value::Null);
        }
        let failed = |e: String| StepError::Failed(format!("the order of the runs could not be read: {e}"));
        let front = self.store.order_front(&self.served.name, &key).await.map_err(failed)?;
        // Its turn: first on the line, or just behind the run that handed it its turn here
        // (which ended, its end on its way to the store ahead of anything this run writes).
        let before = self.after.as_deref();
        let turn = match front.as_slice() {
            [] => true,
            [head, ..] if *head == self.id => true,
            [head] => Some(head.as_str()) == before,
            [head, next, ..] => Some(head.as_str()) == before && *next == self.id,
        };
        if !turn {
            let due = step::now_ms().saturating_add(ORDER_LOOK);
            if let Some(mut slot) = self.parked.as_ref().and_then(|s| s.lock().ok()) {
                *slot = Some(step::Parked { n, due_ms: due, attempts: 0 });
            }
            let parked = self.park("order").await;
            // The run before it may have ended between the look and the park, and found it not
            // parked yet: look again now that it is, and take its turn at once if it came.
            if matches!(parked, Err(StepError::Stopped(Stop::Parked))) {
                if let Ok(Some(head)) = self.store.order_head(&self.served.name, &key).await {
                    if head == self.id && self.store.order_done(&self.served.name, &key, "").await.is_ok() {
                        if let Some(cb) = &self.callbacks {
                            cb.called.notify_one();
                        }
                    }
                }
            }
            return parked;
        }
        // Its turn came at once: nothing to journal (a run taken again looks again). A run that
        // waited its turn parked has its step end.
        if self.waited == Some(n) {
            self.store.step_value(&self.id, n, "order", &Value::Null);
        }
        Ok(Value::Null)
    }

    /// The trigger's `rate`: the run starts when its key's window allows one more start; else it
    /// parks until the window will, and asks again then (another run may have taken the start).
    async fn rate(&mut self, n: u32, key: String, at_most: u32, window: i64) -> Result<Value, StepError> {
        if let Some(recorded) = self.recorded(n) {
            return recorded.map_err(StepError::Failed);
        }
        if !self.durable {
            // A sync execution's start was taken before it ran (over the rate: `429`).
            return Ok(Value::Null);
        }
        let taking = self.store.rate_take(&self.served.name, &key, at_most, window, step::now_ms());
        let next = taking
            .await
            .map_err(|e| StepError::Failed(format!("the rate's window could not be read: {e}")))?;
        let Some(due_ms) = next else {
            self.store.step_value(&self.id, n, "rate", &Value::Null);
            return Ok(Value::Null);
        };
        if let Some(mut slot) = self.parked.as_ref().and_then(|s| s.lock().ok()) {
            *slot = Some(step::Parked { n, due_ms, attempts: 0 });
        }
        self.park("rate").await
    }

    /// `callback`: made again when a run resumes (its token is derived, never kept), so the
    /// journal keeps it with its token hidden.
    async fn callback(&mut self, n: u32, timeout: std::time::Duration) -> Result<Value, StepError> {
        self.recorded(n);
        let Some(cb) = self.callbacks.clone().filter(|_| self.durable) else {
            return Err(StepError::Failed("a callback needs an async run of `wf serve`".into()));
        };
        let failed = |e: String| StepError::Failed(format!("the callback could not be kept: {e}"));
        let key = self.store.callback_key().await.map_err(failed)?;
        let token = callbacks::token(&key, &self.id, n);
        let hash = callbacks::hash(&token).ok_or_else(|| failed("no token".into()))?;
        let expires_ms =
            step::now_ms().saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX));
        self.store.callback_made(hash, &self.id, n, expires_ms).await.map_err(failed)?;
        let (kind, request) = summary(&self.served, &Step::Callback(timeout));
        self.store.step_started(&self.id, n, kind, request);
        let hidden = json!({ "url": format!("{}{}[token]", cb.public_url, callbacks::PATH), "id": callbacks::shown_id(&token) });
        if !self.tokens.contains(&token) {
            self.tokens.push(token.clone());
        }
        match self.store.step_ended(&self.id, n, &Ok(hidden)).await {
            Ok(Recorded::Fenced) => Err(StepError::Stopped(Stop::Fenced)),
            _ => Ok(cb.value(&token)),
        }
    }

    /// `wait`: the call when it came (journaled), `null` once the timeout passed, else the run
    /// parks until one of them.
    async fn wait(&mut self, n: u32, token: String) -> Result<Value, StepError> {
        if let Some(recorded) = self.recorded(n) {
            return recorded.map_err(StepError::Failed);
        }
        let not_made = || StepError::Failed("`wait` waits for a callback this run made".into());
        let hash = callbacks::hash(&token).ok_or_else(not_made)?;
        let found = self
            .store
            .callback(hash)
            .await
            .map_err(|e| StepError::Failed(format!("cannot read the callback: {e}")))?;
        let c = found.filter(|c| c.execution == self.id).ok_or_else(not_made)?;
        let (kind, request) = summary(&self.served, &Step::Wait(token));
        self.store.step_started(&self.id, n, kind, request);
        let result = match c.state {
            CallbackState::Called => Ok(c.reply.unwrap_or(Value::Null)),
            CallbackState::Expired | CallbackState::Cancelled => Ok(Value::Null),
            CallbackState::Waiting if c.expires_ms <= step::now_ms() => {
                self.store.callback_expired(hash).await.map_err(StepError::Failed)?;
                Ok(Value::Null)
            }
            CallbackState::Waiting => {
                // Parked until it is called or expires; what the writer holds goes first.
                let _ = self.store.flush().await;
                return match self.store.wait_parked(&self.id, n, hash).await {
                    Ok(Recorded::Kept) => Err(StepError::Stopped(Stop::Parked)),
                    Ok(Recorded::Fenced) => Err(StepError::Stopped(Stop::Fenced)),
                    Err(e) => Err(StepError::Failed(format!("the run could not wait for its callback: {e}"))),
                };
            }
        };
        let kept = self.kept(&result).into_owned();
        match self.store.step_ended(&self.id, n, &kept).await {
            Ok(Recorded::Fenced) => Err(StepError::Stopped(Stop::Fenced)),
            _ => result.map_err(StepError::Failed),
        }
    }
}

impl Steps for Journaled {
    fn attempts(&self) -> u32 {
        self.inner.attempts()
    }

    fn fork(&self) -> Option<Box<dyn Steps>> {
        Some(Box::new(Journaled {
            inner: self.inner.fork()?,
            store: self.store.clone(),
            served: self.served.clone(),
            id: self.id.clone(),
            durable: self.durable,
            replay: self.replay.clone(),
            parked: self.parked.clone(),
            callbacks: self.callbacks.clone(),
            tokens: self.tokens.clone(),
            after: None,
            waited: self.waited,
        }))
    }

    fn join(&mut self, fork: &dyn Steps) {
        self.inner.join(fork);
    }

    fn turn_after(&mut self, before: &str) {
        self.after = Some(before.to_string());
    }

    fn perform(&mut self, n: u32, s: Step) -> Pending<'_> {
        match s {
            Step::Callback(timeout) => return Box::pin(self.callback(n, timeout)),
            Step::Wait(token) => return Box::pin(self.wait(n, token)),
            Step::Debounce { key, wait, max } => return Box::pin(self.debounce(n, key, wait, max)),
            Step::Order(key) => return Box::pin(self.order(n, key)),
            Step::Rate { key, n: at_most, window_ms } => {
                return Box::pin(self.rate(n, key, at_most, window_ms))
            }
            _ => {}
        }
        if let Some(recorded) = self.recorded(n) {
            return Box::pin(std::future::ready(recorded.map_err(StepError::Failed)));
        }
        let (kind, request) = summary(&self.served, &s);
        let request = self.hide(request);
        if matches!(s, Step::Now | Step::Uuid) {
            let result = step::local(&s);
            if let Ok(v) = &result {
                self.store.step_value(&self.id, n, kind, v);
            }
            return Box::pin(std::future::ready(result));
        }
        // A sleep's start and end are not waited for (nor is its start written: a start written
        // without its end would hide that it had parked): lost in a crash, the run is still
        // parked on it, and taken again it has slept.
        let slept = self.durable && matches!(s, Step::Sleep(_));
        if !slept {
            self.store.step_started(&self.id, n, kind, request);
        }
        Box::pin(async move {
            let result = match self.inner.perform(n, s).await {
                Ok(v) => Ok(v),
                Err(StepError::Failed(why)) => Err(why),
                Err(StepError::Stopped(Stop::Parked)) => return self.park(kind).await,
                Err(stop @ StepError::Stopped(Stop::Fenced | Stop::Superseded)) => return Err(stop),
            };
            let kept = self.kept(&result);
            let kept = match (&*kept, self.tokens.is_empty()) {
                (Ok(v), false) => std::borrow::Cow::Owned(Ok(self.hide(v.clone()))),
                _ => kept,
            };
            if slept {
                if let Ok(v) = &result {
                    self.store.step_value(&self.id, n, kind, v);
                }
                return result.map_err(StepError::Failed);
            }
            if !self.durable {
                self.store.step_noted(&self.id, n, &kept);
                return result.map_err(StepError::Failed);
            }
            // The next step starts only once this one's end is kept; should the store fail,
            // the run goes on (after a crash the step would run again). A run another instance
            // took over stops here: its new owner runs it.
            match self.store.step_ended(&self.id, n, &kept).await {
                Ok(Recorded::Fenced) => Err(StepError::Stopped(Stop::Fenced)),
                Err(why) => {
                    tracing::warn!(target: "wf::store", execution = %self.id, step = n, "step not journaled: {why}");
                    result.map_err(StepError::Failed)
                }
                Ok(Recorded::Kept) => result.map_err(StepError::Failed),
            }
        })
    }
}
