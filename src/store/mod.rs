//! The store: what `wf serve` keeps. Async runs are committed before the caller gets its answer
//! and kept until they have run; each effect of a run is a journaled step; every execution, sync
//! or async, leaves a history record. `sqlite.rs` is the embedded store (one file, one writer
//! thread committing in batches); `postgres/` the store several instances share (leases,
//! fencing, `LISTEN/NOTIFY`); `standby.rs` stands for it while it cannot be opened; `retry.rs` is
//! the rule of `wf runs retry` every store applies; `columns.rs` reads the record's typed words
//! back; `memory.rs` is `--store memory`, the same contract kept in the process only;
//! `behind.rs` gathers the writes nobody waits for into the databases' next batch, with one
//! failure policy ([`WAITING`]); `contract.rs` holds the tests every store passes. The execution
//! core (`exec/`) writes through [`Store`]; `wf runs` reads through [`History`].
//!
//! Layering: `exec/`, `serve/` and `tools/` use this; this uses `request/` and `lang/`.

mod behind;
mod columns;
pub(crate) mod memory;
pub(crate) mod postgres;
pub(crate) mod rate;
pub(crate) mod retry;
pub(crate) mod sqlite;
pub(crate) mod standby;

use crate::exec::callbacks::{Callback, Called, TokenHash};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub(crate) use crate::request::outcome::{Mode, Outcome, State, Status, StepState};
pub(crate) use crate::request::served::Version;

/// An accepted async run, to keep until it has run.
#[derive(Clone, Debug)]
pub(crate) struct NewRun {
    /// The execution id (16 hex digits, as in `x-wf-execution`).
    pub id: String,
    pub workflow: String,
    /// Shared with the workflow served.
    pub version: Arc<Version>,
    /// The execution's frame once its values were extracted (JSON text of an array, slot by
    /// slot): what a resumed run starts from.
    pub frame: String,
    /// The request as shown by `wf runs show` (JSON text): method, path, headers (credentials
    /// and signatures masked), body as text.
    pub request: String,
    /// The names of the `env()` variables and secrets the workflow reads, never their values.
    pub env_names: Vec<String>,
    /// Milliseconds since the epoch.
    pub accepted_ms: i64,
}

/// An execution that ended (sync or async), for the history.
#[derive(Clone, Debug)]
pub(crate) struct Ended {
    /// The execution's id as the store keys it (its 64 bits; written in hex where shown).
    pub id: i64,
    /// Shared with the workflow served.
    pub workflow: Arc<str>,
    pub mode: Mode,
    pub started_ms: i64,
    pub duration_ms: i64,
    pub status: u16,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// `file:line:column` of a failure.
    pub at: Option<String>,
    pub logs: Vec<String>,
    /// The attempts its effects made (in this turn: a retried run's are added to its earlier
    /// ones).
    pub attempts: u32,
    /// A sync execution's request, written as text by the store's writer (an async run's was
    /// kept when it was accepted).
    pub request: Option<Arc<crate::request::received::Received>>,
    /// Its execution is a run the store keeps as a row until it ends (every run a worker ends:
    /// async runs, and sync executions `wf runs retry` runs again), not a sync execution
    /// answered on its request's path.
    pub kept: bool,
}

/// A run accepted but not ended when the store was last closed: resumed at start.
#[derive(Clone, Debug)]
pub(crate) struct Unfinished {
    pub id: String,
    pub workflow: String,
    /// The version it was accepted with; `None` for a sync execution `wf runs retry` runs again
    /// (it kept its request, not its version): it runs under the workflow served now.
    pub version: Option<Version>,
    pub frame: Value,
    /// A retried sync execution's request as kept: its frame is extracted from it again.
    pub request: Option<Value>,
    pub accepted_ms: i64,
    /// The steps that finished, with their results (or failure reasons).
    pub journal: Vec<(u32, Result<Value, String>)>,
    /// The step that parked the run (an `http` call waiting for its next attempt) and the
    /// attempts it had made.
    pub waiting: Option<(u32, u32)>,
    /// How many times `wf runs retry` asked for it to run again.
    pub retries: u32,
}

/// One execution as `wf runs` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct RunView {
    pub id: String,
    pub workflow: String,
    pub mode: Mode,
    pub state: State,
    pub outcome: Option<Outcome>,
    pub status: Option<u16>,
    pub started_ms: i64,
    pub duration_ms: Option<i64>,
    pub reason: Option<String>,
    pub at: Option<String>,
    pub attempts: i64,
    pub logs: Vec<String>,
    pub request: Option<Value>,
    pub steps: Vec<StepView>,
}

/// One journaled step as `wf runs show` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct StepView {
    pub n: u32,
    pub kind: String,
    pub state: StepState,
    pub request: Option<Value>,
    pub result: Option<Value>,
    pub reason: Option<String>,
    /// How long it took, from its start to its end, where the store keeps both (the dashboard's
    /// timeline).
    #[serde(skip)]
    pub took_ms: Option<i64>,
}

/// Which executions `wf runs` lists.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    pub workflow: Option<String>,
    /// An outcome (`failed`, …) or a state (`queued`, `running`).
    pub status: Option<Status>,
    pub since_ms: Option<i64>,
    pub limit: usize,
    /// Only executions listed after this one (its start and id): the next page, found by its
    /// key rather than counted, so a far page costs what the first does.
    pub after: Option<(i64, String)>,
}

impl Filter {
    /// The key of the page after `last` (the last execution of this page).
    pub(crate) fn next_page(&self, last: &RunView) -> Filter {
        Filter { after: Some((last.started_ms, last.id.clone())), ..self.clone() }
    }

    /// Whether an execution that started at `started_ms` with id key `id` comes after the
    /// page's key (newest first: started earlier, or at once with a smaller id).
    pub(crate) fn is_after(&self, started_ms: i64, id: i64) -> bool {
        self.after.as_ref().is_none_or(|(ms, last)| (started_ms, id) < (*ms, key(last)))
    }

    /// The page's key as the stores' query parameters: start and id key, or the first page's.
    pub(crate) fn after_keys(&self) -> (i64, i64) {
        self.after.as_ref().map_or((i64::MAX, i64::MAX), |(ms, last)| (*ms, key(last)))
    }
}

/// The runs a `debounce` key has seen since the series began: the newest, and when the first
/// and the newest were accepted.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Series {
    pub latest: String,
    pub first_ms: i64,
    pub latest_ms: i64,
}

/// What `wf runs cancel` found.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cancel {
    Cancelled,
    /// Not waiting: its state.
    NotWaiting(State),
    Unknown,
}

/// Resolves when what was written is durable (or could not be written).
pub(crate) type Commit<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A delivery's `dedupe` key, claimed by an execution until it expires.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub workflow: String,
    pub key: String,
    /// The execution that claims it.
    pub id: String,
    pub expires_ms: i64,
}

/// What claiming a key found.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Claim {
    /// The key is new (or expired): this execution runs.
    First,
    /// Seen within its window: the first execution, and its answer once a sync one has one.
    Duplicate { of: String, answer: Option<Value> },
}

/// Resolves with what claiming found, once durable.
pub(crate) type Claimed<'a> = Pin<Box<dyn Future<Output = Result<Claim, String>> + Send + 'a>>;

/// Resolves with what a read (or a maintenance write) found.
pub(crate) type Reading<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// What `wf runs` reads and changes of the executions a store keeps: every store, and the
/// readers `wf runs` opens beside a running `wf serve` (which must not take the store over).
pub(crate) trait History: Send + Sync {
    /// Lists executions, newest first.
    fn list(&self, filter: &Filter) -> Reading<'_, Vec<RunView>>;
    /// One execution, whole (request, steps, logs).
    fn show(&self, id: &str) -> Reading<'_, Option<RunView>>;
    /// Deletes ended executions older than `before_ms`, about `batch` at a time; gives how many
    /// went: `batch` or more when there may be more (a store that keeps history in blocks may
    /// delete a whole block at once), fewer when there are no more.
    fn prune(&self, before_ms: i64, batch: usize) -> Reading<'_, usize>;
    /// Marks a failed run to run again, keeping the steps that succeeded (all of them forgotten
    /// `from_start`; see [`retry`]); a `wf serve` on the store takes it.
    fn retry(&self, id: &str, from_start: bool) -> Reading<'_, retry::Retried>;
    /// Ends a waiting run (parked: sleeping, waiting for a callback or an `http` retry's next
    /// attempt; or marked for a retry) as `cancelled`; its callbacks answer `410` from then on.
    fn cancel(&self, id: &str) -> Reading<'_, Cancel>;
    /// The executions whose `dedupe` key is `key` (in any workflow), newest first, at most 50:
    /// the dashboard's search. Keys are kept for their window only.
    fn keyed(&self, _key: &str) -> Reading<'_, Vec<String>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
    /// A page of executions whole (request, steps, logs), as `show` gives each: those `list`
    /// gives for `filter`. `wf runs replay` reads them a page at a time.
    fn whole(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        let filter = filter.clone();
        Box::pin(async move {
            let page = self.list(&filter).await?;
            let mut out = Vec::with_capacity(page.len());
            for r in page {
                out.extend(self.show(&r.id).await?);
            }
            Ok(out)
        })
    }
}

/// A store of runs, steps, dedupe keys and history: the SQLite store (and the stand-in that
/// waits for it to open), the PostgreSQL store and the store in memory; `store::contract` holds
/// the tests every store passes.
pub(crate) trait Store: History {
    /// Whether what it keeps outlives the process (all but `--store memory`).
    fn durable(&self) -> bool {
        true
    }
    /// Whether a sync execution's request and steps are kept with its record (all but
    /// `--store memory`, which keeps the record only).
    fn keeps_requests(&self) -> bool {
        true
    }
    /// Keeps an accepted async run; resolves once it is durable. Until then the caller must not
    /// be answered. With a `dedupe` key, the key is claimed in the same transaction: when it was
    /// already claimed, the run is not kept and the first execution is named.
    fn accept(&self, run: NewRun, dedupe: Option<Key>) -> Claimed<'_>;
    /// Claims a sync execution's `dedupe` key.
    fn claim(&self, key: Key) -> Claimed<'_>;
    /// Keeps the answer a sync execution gave under its key, for duplicates to get again.
    fn answered(&self, key: Key, answer: Value);
    /// Lets go of a key a sync execution claimed and will not answer (its caller went away).
    fn release(&self, key: Key);
    /// Notes that step `n` of run `id` started (written with the next batch, not waited for).
    fn step_started(&self, id: &str, n: u32, kind: &str, request: Value);
    /// Records how step `n` ended; resolves once durable, so the next step starts only after.
    fn step_ended(&self, id: &str, n: u32, result: &Result<Value, String>) -> Reading<'_, Recorded>;
    /// Parks run `id`: its step `n` (an `http` call, `attempts` made) is due again at `due_ms`.
    /// The run stops; it is taken again (with [`Store::retried`]) once due. Resolves once
    /// durable.
    fn step_parked(&self, id: &str, n: u32, kind: &str, due_ms: i64, attempts: u32) -> Reading<'_, Recorded>;
    /// Records how a step of a sync execution ended, written with the next batch (a sync
    /// execution is not resumed, so nothing waits for it).
    fn step_noted(&self, id: &str, n: u32, result: &Result<Value, String>);
    /// Records a step answered at once (`now()`, `uuid()`), written with the next batch.
    fn step_value(&self, id: &str, n: u32, kind: &str, value: &Value);
    /// Records an execution's end: a sync execution's history, an async run's end (after
    /// which it is not resumed). Written off the caller's path, in batches.
    fn ended(&self, e: Ended);
    /// The runs accepted and not ended, oldest first, with their finished steps (at start: runs
    /// marked for a retry are taken too; parked runs only once due).
    fn unfinished(&self) -> Reading<'_, Vec<Unfinished>>;
    /// The runs to take now, taken (they are queued from now on): the failed runs `wf runs
    /// retry` marked, parked runs now due (and, with a shared store, runs no live process holds).
    fn retried(&self) -> Reading<'_, Vec<Unfinished>>;
    /// Resolves once every write sent before it is durable (at shutdown, in tests).
    fn flush(&self) -> Commit<'_>;
    /// Writes that could not be kept (a full queue of history writes, a failed batch), so far.
    fn dropped(&self) -> u64;
    /// A run with a `debounce` key was accepted at `accepted_ms`: the key's series names it when
    /// it is the newest (by acceptance, then id), and keeps the first's time; a series that
    /// ended starts again with it.
    fn debounce_seen(&self, _workflow: &str, _key: &str, _id: &str, _accepted_ms: i64) -> Reading<'_, ()> {
        no_callbacks()
    }
    /// A debounce key's series, if one is open.
    fn debounce_series(&self, _workflow: &str, _key: &str) -> Reading<'_, Option<Series>> {
        no_callbacks()
    }
    /// The series' newest run `id` starts: the series ends (it still names its newest run, so
    /// an older one that wakes later is superseded; a later request starts a new series).
    fn debounce_done(&self, _workflow: &str, _key: &str, _id: &str) -> Reading<'_, ()> {
        no_callbacks()
    }
    /// A run with an `order by` key was accepted at `accepted_ms`: it joins the key's line
    /// (SQLite: written with the next batch, so asked for before its accept, it is committed
    /// with it or before it).
    fn order_joined(&self, _workflow: &str, _key: &str, _id: &str, _accepted_ms: i64) -> Reading<'_, ()> {
        no_callbacks()
    }
    /// Whose turn it is on a key's line: its earliest accepted run (then lowest id) that has not
    /// ended. `None` when the line is empty.
    fn order_head(&self, _workflow: &str, _key: &str) -> Reading<'_, Option<String>> {
        no_callbacks()
    }
    /// The first two runs of a key's line that have not ended, in turn (see `order_head`).
    fn order_front(&self, _workflow: &str, _key: &str) -> Reading<'_, Vec<String>> {
        no_callbacks()
    }
    /// Run `id` ended and handed its key's turn to the next run in this process: it leaves its
    /// key's line (nobody needs waking; SQLite writes it with the next batch).
    fn order_left(&self, workflow: &str, key: &str, id: &str) -> Reading<'_, ()> {
        self.order_done(workflow, key, id)
    }
    /// Run `id` ended: it leaves its key's line, and the run whose turn it is now, if it waits
    /// for it, is due at once (PostgreSQL tells every instance; SQLite writes it with the next
    /// batch, with the run's end, and wakes the taker when it made a run due). With an `id` that names no run
    /// (`""`), only the latter.
    fn order_done(&self, _workflow: &str, _key: &str, _id: &str) -> Reading<'_, ()> {
        no_callbacks()
    }
    /// `rate N per D`: takes a start for `workflow`'s `key` at `now_ms` when fewer than `n` were
    /// taken in the `window_ms` before (`None`), else says when one is allowed (see
    /// [`rate::take`]); atomic across every process sharing the store.
    fn rate_take(
        &self,
        _workflow: &str,
        _key: &str,
        _n: u32,
        _window_ms: i64,
        _now_ms: i64,
    ) -> Reading<'_, Option<i64>> {
        no_callbacks()
    }
    /// The runs parked now, by what they wait for (`sleep`, `callback`, `retry`: an `http`
    /// call's next attempt), for `/metrics`.
    fn waiting(&self) -> Reading<'_, Vec<(&'static str, u64)>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
    /// Whether the writes nobody waits for have piled up past what may wait ([`WAITING`]): a
    /// worker then waits for them to be written before it takes its next run.
    fn behind(&self) -> bool {
        false
    }
    /// Why the store cannot keep what it is given now (not open yet, read-only, full,
    /// overwritten); `None` while it works. `/readyz` says it.
    fn trouble(&self) -> Option<String> {
        None
    }
    /// Lets go of the runs this process holds and did not finish (at shutdown, after the
    /// drain), for another process sharing the store to take at once. A store only one process
    /// uses keeps them for its next start.
    fn leave(&self) -> Commit<'_> {
        Box::pin(std::future::ready(Ok(())))
    }
    /// `concurrency N` across every process sharing the store: takes one of `limit` places of
    /// `workflow` for execution `id`; `false` when all are taken. `None` for a store one process
    /// uses: that process's own count is the whole count.
    fn place(&self, _workflow: &str, _limit: u32, _id: &str) -> Option<Reading<'_, bool>> {
        None
    }
    /// Frees the place execution `id` took.
    fn free_place(&self, _workflow: &str, _id: &str) {}
    /// The key callback tokens are derived from: kept by the store (made at its first use), so
    /// that a run resumed anywhere makes the same URLs.
    fn callback_key(&self) -> Reading<'_, [u8; 32]> {
        no_callbacks()
    }
    /// Keeps the callback step `n` of run `id` made (only its token's hash), expiring at
    /// `expires_ms`; one already kept stays as it is (a resumed run makes it again).
    fn callback_made(&self, _hash: TokenHash, _id: &str, _n: u32, _expires_ms: i64) -> Reading<'_, ()> {
        no_callbacks()
    }
    /// The callback whose token has this hash.
    fn callback(&self, _hash: TokenHash) -> Reading<'_, Option<Callback>> {
        no_callbacks()
    }
    /// A call to a callback: when it waits and has not expired, the call is kept and its run,
    /// if parked waiting for it, is due at once; once only, whoever else calls at the same time.
    fn callback_called(&self, _hash: TokenHash, _reply: Value, _now_ms: i64) -> Reading<'_, Called> {
        no_callbacks()
    }
    /// Parks run `id` at step `n`, waiting for the callback: due at the callback's expiry, or at
    /// once when it was called meanwhile.
    fn wait_parked(&self, _id: &str, _n: u32, _hash: TokenHash) -> Reading<'_, Recorded> {
        no_callbacks()
    }
    /// A callback whose timeout passed: later calls get `410`.
    fn callback_expired(&self, _hash: TokenHash) -> Reading<'_, ()> {
        no_callbacks()
    }
    /// Woken when runs may be there to take (a store shared between processes tells); the
    /// taker polls as well.
    fn woken(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
}

/// The one failure policy of the writes nobody waits for (history, step notes, kept answers),
/// which the SQLite and PostgreSQL stores gather and write in batches off the request path,
/// both through `behind.rs`: at most [`WAITING`] of
/// them wait; while the store fails (a full disk, a database that went away) they are tried again
/// with the next batches for at most [`KEEP_TRYING`]; past either bound they are dropped and
/// counted ([`Store::dropped`], `wf_store_dropped_writes`). Writes a caller waits for (an
/// accepted run, a step's end) are never dropped: they fail, and the caller is told.
pub(crate) const WAITING: usize = 65_536;
/// See [`WAITING`].
pub(crate) const KEEP_TRYING: std::time::Duration = std::time::Duration::from_secs(60);

/// Rejected requests (`401`, `403`, `405`, `413`, `415`, ...: they never ran) a store keeps per
/// workflow, the newest: callers without credentials cannot fill the disk. They are counted in
/// `/metrics` all the same.
pub(crate) const REJECTED_KEPT: usize = 1_000;

/// Whether a step's end (or a parked run's due time) was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    Kept,
    /// Not kept: another process sharing the store took the run over (this one's lease had
    /// expired). The run stops here; its new owner runs it.
    Fenced,
}

pub(crate) use crate::request::step::now_ms;

fn no_callbacks<'a, T: Send + 'a>() -> Reading<'a, T> {
    Box::pin(std::future::ready(Err("this store keeps no waiting runs".to_string())))
}

/// What a parked run waits for, by the kind of the step that parked it.
pub(crate) fn waits_for(step_kind: &str) -> &'static str {
    match step_kind {
        "sleep" => "sleep",
        "wait" => "callback",
        "debounce" => "debounce",
        "order" => "order",
        "rate" => "rate",
        _ => "retry",
    }
}

/// An execution id (16 hex digits) as a store's integer key (SQLite's rowid: no second index to
/// keep up).
pub(crate) fn key(id: &str) -> i64 {
    u64::from_str_radix(id, 16).map_or(-1, |v| v as i64)
}

/// The attempts a parked step had made, as its journal row keeps them (`{"attempts": N}`).
fn attempts_made(v: &Value) -> u32 {
    v["attempts"].as_u64().and_then(|a| u32::try_from(a).ok()).unwrap_or(0)
}

/// A store's integer key as the execution id.
fn hex(key: i64) -> String {
    format!("{:016x}", key as u64)
}

#[cfg(test)]
mod contract;
/// A throwaway PostgreSQL cluster (shared with the integration tests).
#[cfg(test)]
#[path = "../../tests/support/postgres.rs"]
pub(crate) mod test_postgres;
