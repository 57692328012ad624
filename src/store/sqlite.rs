//! The embedded store: one SQLite file in WAL mode. One writer thread owns the writing
//! connection and commits in batches (group commit: it takes every write waiting, runs them in
//! one transaction, syncs once, then answers every caller waiting on the batch). Reads use a
//! second connection. A lock file beside the database keeps a second `wf serve` out.

use super::behind::{Behind, Gather};
use super::retry::{self, Retried};
use super::{
    attempts_made, hex, key, Cancel, Claim, Claimed, Commit, Ended, Filter, History, Key, Mode, NewRun,
    Outcome, Reading, Recorded, RunView, Series, StepState, StepView, Store, Unfinished, Version,
};
use crate::exec::callbacks::{Callback, CallbackState, Called, TokenHash};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

mod compressed;
mod history;

/// The schema this build writes; older files are migrated on open.
const SCHEMA_VERSION: i64 = 10;

/// Writes someone waits for (accepts, steps' ends) queued for the writer at most; beyond, they
/// wait for room.
const QUEUE: usize = super::WAITING;
/// Most writes in one transaction.
const BATCH: usize = 4_096;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS versions (
    hash   TEXT PRIMARY KEY,
    file   TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    id          INTEGER PRIMARY KEY,
    workflow    TEXT NOT NULL,
    mode        TEXT NOT NULL,
    state       TEXT NOT NULL,
    version     TEXT,
    started_ms  INTEGER NOT NULL,
    ended_ms    INTEGER,
    duration_ms INTEGER,
    status      INTEGER,
    outcome     TEXT,
    reason      TEXT,
    at          TEXT,
    logs        TEXT,
    request     TEXT,
    frame       TEXT,
    env_names   TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    retries     INTEGER NOT NULL DEFAULT 0,
    due_ms      INTEGER
);
CREATE INDEX IF NOT EXISTS executions_started ON executions (started_ms);
CREATE INDEX IF NOT EXISTS executions_open ON executions (state) WHERE state != 'ended';
CREATE INDEX IF NOT EXISTS executions_rejected ON executions (workflow, started_ms) WHERE outcome = 'rejected';
CREATE TABLE IF NOT EXISTS dedupe (
    workflow   TEXT NOT NULL,
    key        TEXT NOT NULL,
    execution  INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    answer     TEXT,
    PRIMARY KEY (workflow, key)
);
CREATE INDEX IF NOT EXISTS dedupe_execution ON dedupe (execution);
CREATE TABLE IF NOT EXISTS callbacks (
    hash       BLOB PRIMARY KEY,
    execution  INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    state      TEXT NOT NULL,
    reply      TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS debounce (
    workflow  TEXT NOT NULL,
    key       TEXT NOT NULL,
    latest    INTEGER NOT NULL,
    first_ms  INTEGER NOT NULL,
    latest_ms INTEGER NOT NULL,
    ended     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workflow, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orders (
    workflow    TEXT NOT NULL,
    key         TEXT NOT NULL,
    accepted_ms INTEGER NOT NULL,
    execution   INTEGER NOT NULL,
    PRIMARY KEY (workflow, key, accepted_ms, execution)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS orders_execution ON orders (execution);
CREATE TABLE IF NOT EXISTS rates (
    workflow  TEXT NOT NULL,
    key       TEXT NOT NULL,
    window_ms INTEGER NOT NULL,
    last_ms   INTEGER NOT NULL,
    starts    BLOB NOT NULL,
    PRIMARY KEY (workflow, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS steps (
    execution  INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    request    TEXT,
    result     TEXT,
    reason     TEXT,
    started_ms INTEGER,
    ended_ms   INTEGER,
    attempts   INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (execution, n)
);
";

enum Write {
    Accept(Box<NewRun>, Option<Key>),
    Claim(Key),
    Answered(Key, String),
    Release(Key),
    StepStarted {
        id: String,
        n: u32,
        kind: String,
        request: String,
        at: i64,
    },
    StepEnded {
        id: String,
        n: u32,
        result: Result<String, String>,
        at: i64,
    },
    StepValue {
        id: String,
        n: u32,
        kind: String,
        value: String,
        at: i64,
    },
    StepParked {
        id: String,
        n: u32,
        kind: String,
        due_ms: i64,
        attempts: u32,
    },
    /// A debounced run joins its key's series (see [`DEBOUNCE_SEEN`]).
    DebounceSeen {
        workflow: String,
        key: String,
        id: i64,
        at: i64,
    },
    /// An ordered run joins its key's line.
    OrderJoined {
        workflow: String,
        key: String,
        id: i64,
        at: i64,
    },
    /// An ordered run ended: it leaves its line, and the next run is due at once (unless
    /// `handed`: the next run was given its turn in this process).
    OrderDone {
        workflow: String,
        key: String,
        id: i64,
        handed: bool,
    },
    Ended(Box<Ended>),
    Flush,
}

/// Writes nobody waits for, gathered between two batches.
#[derive(Default)]
struct Gathered {
    writes: Vec<Write>,
    /// Sync executions that ended: their history (most of what a busy server writes), kept
    /// apart and whole, so that the request path makes no allocation for them.
    history: Vec<Ended>,
}

impl Gather for Gathered {
    fn len(&self) -> usize {
        self.writes.len() + self.history.len()
    }

    fn append(&mut self, later: &mut Self) {
        self.writes.append(&mut later.writes);
        self.history.append(&mut later.history);
    }

    fn truncate(&mut self, n: usize) {
        self.writes.truncate(n);
        self.history.truncate(n.saturating_sub(self.writes.len()));
    }
}

struct Cmd {
    write: Write,
    done: Option<oneshot::Sender<Result<Claim, String>>>,
}

/// The reading connection and the identity (device, inode) of the file it opened.
type Reader = (Connection, Option<(u64, u64)>);

/// The SQLite store.
pub(crate) struct Sqlite {
    tx: mpsc::Sender<Cmd>,
    /// Writes nobody waits for (history, step notes): gathered here without waking the writer,
    /// which takes them with its next batch (at the latest every [`GATHER`]).
    behind: Arc<Behind<Gathered>>,
    /// Why the last batch could not be written (none once one is): `/readyz` says it.
    trouble: Arc<Mutex<Option<String>>>,
    /// The reading connection, and the identity of the file it opened: for reads, and for the
    /// writes made apart from the writer (a retry marked, runs taken).
    reader: Arc<Mutex<Reader>>,
    /// A second connection for reads only (whose turn it is, the dashboard's pages): they do not
    /// wait behind a write of the other's.
    looker: Arc<Mutex<Reader>>,
    /// Told when a batch made a parked run due at once (the taker takes it then).
    woken: Arc<tokio::sync::Notify>,
    path: PathBuf,
    /// Held while the store is open: the lock that keeps a second `wf serve` out.
    _lock: nix::fcntl::Flock<std::fs::File>,
}

fn sql(e: rusqlite::Error) -> String {
    e.to_string()
}

/// Opens a connection with the store's settings: WAL, full sync on commit, a busy timeout.
fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    // One plan per statement whatever its parameters: without it, a statement on `executions`
    // with a bound value is prepared again at every use (the planner weighs each value against
    // the partial index of parked runs), which took most of the writer's time.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(sql)?;
    Ok(conn)
}

/// Statements each connection keeps prepared: more than the store uses, so that none is parsed
/// again (the writer's batches alone use more than the default 16).
const STATEMENTS: usize = 64;

impl Sqlite {
    /// Opens (creating when needed) the store at `path`, migrating its schema, and starts its
    /// writer. A directory it creates gets a `.gitignore` (the store is not source).
    #[cfg(test)]
    pub(crate) fn open(path: &Path) -> Result<Sqlite, String> {
        let lock = lock(path)?;
        Sqlite::open_locked(path, lock).map_err(|(why, _)| why)
    }

    /// Opens the store whose lock is held; gives the lock back when the file cannot be opened
    /// (corrupt, unreadable), so the caller can try again later.
    pub(crate) fn open_locked(path: &Path, lock: Lock) -> Result<Sqlite, (String, Lock)> {
        let writer = match writer_connection(path) {
            Ok(w) => w,
            Err(why) => return Err((why, lock)),
        };
        let reader = match connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE) {
            Ok(r) => r,
            Err(why) => return Err((why, lock)),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let behind: Arc<Behind<Gathered>> = Arc::default();
        let gathered = behind.clone();
        let trouble: Arc<Mutex<Option<String>>> = Arc::default();
        let told = trouble.clone();
        let file = path.to_path_buf();
        let woken = Arc::new(tokio::sync::Notify::new());
        let wakes = woken.clone();
        let spawned = std::thread::Builder::new()
            .name("wf-store".into())
            .spawn(move || write_loop(writer, &file, rx, &gathered, &told, &wakes));
        if let Err(e) = spawned {
            return Err((format!("cannot start the store's writer: {e}"), lock));
        }
        let looker = match connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
            Ok(r) => r,
            Err(why) => return Err((why, lock)),
        };
        let reader = Arc::new(Mutex::new((reader, identity(path))));
        let looker = Arc::new(Mutex::new((looker, identity(path))));
        Ok(Sqlite { tx, behind, trouble, reader, looker, woken, path: path.to_path_buf(), _lock: lock.0 })
    }

    /// Gathers a write the caller does not wait for (see [`Behind`]).
    fn later(&self, write: Write) {
        self.behind.push(|g| g.writes.push(write));
    }

    /// Sends a write and resolves once its batch is committed.
    fn durable(&self, write: Write) -> Commit<'_> {
        let claimed = self.claimed(write);
        Box::pin(async move { claimed.await.map(|_| ()) })
    }

    /// Sends a write and resolves with what it found once its batch is committed.
    fn claimed(&self, write: Write) -> Claimed<'_> {
        Box::pin(async move {
            let (done, wait) = oneshot::channel();
            self.tx
                .send(Cmd { write, done: Some(done) })
                .await
                .map_err(|_| "the store's writer stopped".to_string())?;
            wait.await.map_err(|_| "the store's writer stopped".to_string())?
        })
    }

    /// Reads on the blocking pool (a read may wait for the file), with the reading connection.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Reading<'_, T> {
        self.on(&self.reader, OpenFlags::SQLITE_OPEN_READ_WRITE, f)
    }

    /// A run left its `order by` line (`handed`: its turn went to the next run in this process).
    fn order_out(&self, workflow: &str, key: &str, id: &str, handed: bool) -> Reading<'_, ()> {
        let write =
            Write::OrderDone { workflow: workflow.into(), key: key.into(), id: super::key(id), handed };
        self.behind.push_always(|g| g.writes.push(write));
        Box::pin(std::future::ready(Ok(())))
    }

    /// Reads only, on the blocking pool, with the connection that never writes.
    fn look<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Reading<'_, T> {
        self.on(&self.looker, OpenFlags::SQLITE_OPEN_READ_ONLY, f)
    }

    /// A short read (a lookup by an index) with the connection that never writes: made at once
    /// when that connection is free, else on the blocking pool like [`Sqlite::look`]. Spares a
    /// read that takes microseconds two thread hand-offs.
    fn glance<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Reading<'_, T> {
        if let Ok(mut guard) = self.looker.try_lock() {
            let now = identity(&self.path);
            if now != guard.1 {
                if let Ok(conn) = connect(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
                    *guard = (conn, now);
                }
            }
            return Box::pin(std::future::ready(f(&guard.0).map_err(sql)));
        }
        self.look(f)
    }

    fn on<T: Send + 'static>(
        &self,
        conn: &Arc<Mutex<Reader>>,
        flags: OpenFlags,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Reading<'_, T> {
        let (reader, path) = (conn.clone(), self.path.clone());
        Box::pin(async move {
            let read = move || {
                let mut guard = reader.lock().map_err(|_| "the store's reader is unusable".to_string())?;
                // A store deleted or replaced while open: read the file that is there now.
                let now = identity(&path);
                if now != guard.1 {
                    if let Ok(conn) = connect(&path, flags) {
                        *guard = (conn, now);
                    }
                }
                f(&guard.0).map_err(sql)
            };
            tokio::task::spawn_blocking(read).await.map_err(|_| "the store's reader stopped".to_string())?
        })
    }
}

/// Opens a store for reading only (`wf runs` while `wf serve` runs).
pub(crate) fn open_read_only(path: &Path) -> Result<ReadOnly, String> {
    if !path.exists() {
        return Err(format!("no store at {} (wf serve creates it; see --store)", path.display()));
    }
    let conn = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| format!("cannot open the store {}: {e}", path.display()))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
    if version < SCHEMA_VERSION {
        return Err(format!(
            "the store {} has schema {version}, older than this wf's {SCHEMA_VERSION}: start this wf's `wf serve` on it once (it moves the store to schema {SCHEMA_VERSION} as it starts), then read it",
            path.display()
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(format!(
            "the store {} has schema {version}, newer than this wf's {SCHEMA_VERSION}: use a newer wf",
            path.display()
        ));
    }
    Ok(ReadOnly { conn: std::sync::Mutex::new(conn) })
}

/// A store opened by `wf runs`: listing, showing and pruning, beside a running `wf serve`.
pub(crate) struct ReadOnly {
    conn: std::sync::Mutex<Connection>,
}

impl ReadOnly {
    /// Runs `f` on the connection, at once (`wf runs` waits for nothing else).
    fn now<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Reading<'_, T> {
        let done = match self.conn.lock() {
            Ok(conn) => f(&conn).map_err(sql),
            Err(_) => Err("the store's connection is unusable".to_string()),
        };
        Box::pin(std::future::ready(done))
    }
}

impl History for ReadOnly {
    fn list(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        self.now(|conn| list(conn, filter))
    }

    fn show(&self, id: &str) -> Reading<'_, Option<RunView>> {
        self.now(|conn| show(conn, id))
    }

    fn whole(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        self.now(|conn| whole(conn, filter))
    }

    fn prune(&self, before_ms: i64, batch: usize) -> Reading<'_, usize> {
        self.now(|conn| prune(conn, before_ms, batch))
    }

    fn retry(&self, id: &str, from_start: bool) -> Reading<'_, Retried> {
        self.now(|conn| retry_in(conn, id, from_start))
    }

    fn cancel(&self, id: &str) -> Reading<'_, Cancel> {
        self.now(|conn| cancel_in(conn, id))
    }

    fn keyed(&self, key: &str) -> Reading<'_, Vec<String>> {
        self.now(|conn| keyed_in(conn, key))
    }
}

/// Whose turn it is on a key's line: its earliest run that has not ended (a run whose row is
/// gone, pruned, is not waited for).
fn order_head(conn: &Connection, workflow: &str, okey: &str) -> Result<Option<String>, rusqlite::Error> {
    order_front(conn, workflow, okey).map(|front| front.into_iter().next())
}

/// The first two runs of a key's line that have not ended. (The limit is written in the
/// statement: bound as a parameter, it has SQLite prepare the statement again at every use.)
fn order_front(conn: &Connection, workflow: &str, okey: &str) -> Result<Vec<String>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.execution FROM orders o JOIN executions e ON e.id = o.execution
         WHERE o.workflow = ?1 AND o.key = ?2 AND e.state != 'ended'
         ORDER BY o.accepted_ms, o.execution LIMIT 2",
    )?;
    let ids = stmt.query_map(params![workflow, okey], |r| r.get::<_, i64>(0))?;
    ids.map(|id| id.map(hex)).collect()
}

/// The executions whose `dedupe` key is `key`, newest first (at most 50).
fn keyed_in(conn: &Connection, key: &str) -> Result<Vec<String>, rusqlite::Error> {
    let mut stmt =
        conn.prepare_cached("SELECT execution FROM dedupe WHERE key = ?1 ORDER BY expires_ms DESC LIMIT 50")?;
    let ids = stmt.query_map([key], |r| r.get::<_, i64>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(ids.into_iter().map(super::hex).collect())
}

/// Ends waiting run `id` as cancelled, its callbacks with it.
fn cancel_in(conn: &Connection, id: &str) -> Result<Cancel, rusqlite::Error> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let now = super::now_ms();
    let ended = tx.execute(
        "UPDATE executions SET state = 'ended', outcome = 'cancelled', reason = 'cancelled', ended_ms = ?2,
             duration_ms = ?2 - started_ms, due_ms = NULL
         WHERE id = ?1 AND state IN ('parked', 'retry')",
        params![key(id), now],
    )?;
    let found = if ended == 1 {
        tx.execute(
            "UPDATE callbacks SET state = 'cancelled' WHERE execution = ?1 AND state = 'waiting'",
            params![key(id)],
        )?;
        Cancel::Cancelled
    } else {
        let state: Option<String> = tx
            .query_row("SELECT state FROM executions WHERE id = ?1", params![key(id)], |r| r.get(0))
            .optional()?;
        match state {
            Some(s) => Cancel::NotWaiting(super::State::parse(&s).unwrap_or(super::State::Ended)),
            // A sync execution in the history never waits.
            None if history::show(&tx, id)?.is_some() => Cancel::NotWaiting(super::State::Ended),
            None => Cancel::Unknown,
        }
    };
    tx.commit()?;
    Ok(found)
}

/// Marks failed run `id` to run again, keeping the steps that succeeded (see
/// `store::retry`); `wf serve` takes it within seconds, or at its next start.
fn retry_in(conn: &Connection, id: &str, from_start: bool) -> Result<Retried, rusqlite::Error> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let Some(run) = show(&tx, id)? else { return Ok(Retried::Unknown) };
    let row: Option<bool> = tx
        .query_row("SELECT frame IS NOT NULL FROM executions WHERE id = ?1", params![key(id)], |r| r.get(0))
        .optional()?;
    let kept = match run.mode {
        Mode::Sync => retry::kept_whole(run.request.as_ref()),
        Mode::Async => row.unwrap_or(false),
    };
    if let Some(why) = retry::refusal(id, run.mode, run.state, run.outcome, kept) {
        return Ok(Retried::Refused(why));
    }
    if row.is_none() {
        // A sync execution's record leaves the compact history for a row of its own, which the
        // serving process takes (with its request) and ends like a run.
        history::take(&tx, id)?;
        tx.execute(
            "INSERT INTO executions (id, workflow, mode, state, started_ms, ended_ms, duration_ms, status, outcome, reason, at, logs, attempts, request)
             VALUES (?1, ?2, ?3, 'ended', ?4, ?5, ?6, ?7, 'failed', ?8, ?9, ?10, ?11, ?12)",
            params![
                key(id),
                run.workflow,
                run.mode.as_str(),
                run.started_ms,
                run.started_ms.saturating_add(run.duration_ms.unwrap_or(0)),
                run.duration_ms,
                run.status,
                run.reason,
                run.at,
                serde_json::to_string(&run.logs).unwrap_or_default(),
                run.attempts,
                run.request.as_ref().map(Value::to_string),
            ],
        )?;
    }
    let steps: Vec<retry::Journaled<'_>> = run
        .steps
        .iter()
        .map(|s| retry::Journaled {
            n: s.n,
            kind: &s.kind,
            finished: s.state == StepState::Finished,
            result: s.result.clone(),
        })
        .collect();
    if let Some(from) = retry::redo_from(&steps, from_start) {
        tx.execute("DELETE FROM steps WHERE execution = ?1 AND n >= ?2", params![key(id), from])?;
    }
    let marked = tx.execute(
        "UPDATE executions SET state = 'retry', retries = retries + 1
             WHERE id = ?1 AND state = 'ended' AND outcome = 'failed'",
        params![key(id)],
    )?;
    tx.commit()?;
    Ok(if marked == 1 { Retried::Marked } else { Retried::Unknown })
}

fn migrate(conn: &mut Connection) -> Result<(), String> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "it has schema {version}, newer than this wf's {SCHEMA_VERSION}; use a newer wf"
        ));
    }
    if version < SCHEMA_VERSION {
        let tx = conn.transaction().map_err(sql)?;
        if version == 1 {
            // 2: parked runs have a due time.
            tx.execute_batch("ALTER TABLE executions ADD COLUMN due_ms INTEGER").map_err(sql)?;
        }
        // 3: the history of sync executions is kept a batch per row (`history.rs`); the
        // executions a version 2 file kept as rows stay there, listed with the rest.
        // 4: `dedupe` keys are found by their execution (a failed run lets go of its key); a
        // history record keeps the attempts its effects made.
        if version == 3 {
            history::add_attempts(&tx).map_err(sql)?;
            tx.execute_batch("ALTER TABLE history ADD COLUMN requests BLOB").map_err(sql)?;
        }
        // 4: a run counts the retries asked of it (their calls' idempotency keys differ).
        if (1..4).contains(&version) {
            tx.execute_batch("ALTER TABLE executions ADD COLUMN retries INTEGER NOT NULL DEFAULT 0")
                .map_err(sql)?;
        }
        // 10: history rows are written compressed; those written before stay as they are.
        if (3..10).contains(&version) {
            tx.execute_batch("ALTER TABLE history ADD COLUMN form INTEGER NOT NULL DEFAULT 0")
                .map_err(sql)?;
        }
        tx.execute_batch(SCHEMA).map_err(sql)?;
        // 8: waiting runs are found by their due time (the taker looks every second).
        tx.execute_batch(
            "CREATE INDEX IF NOT EXISTS executions_due ON executions (due_ms) WHERE state = 'parked'",
        )
        .map_err(sql)?;
        tx.execute_batch(history::SCHEMA).map_err(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).map_err(sql)?;
        tx.commit().map_err(sql)?;
        // 9: `rate` windows are a new table.
        // 7: debounce series are a new table.
        // 6: callbacks (and the key their tokens are derived from) are new tables.
        // 5: a file made before gives freed pages back too, once rebuilt (once).
        if (1..5).contains(&version) {
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;").map_err(sql)?;
        }
    }
    Ok(())
}

/// See [`history::read_any`] (the fuzz target `history_row`).
pub(crate) fn read_history_row(bytes: &[u8]) -> (usize, usize, usize) {
    history::read_any(bytes)
}

/// The held lock of a store: one `wf serve` per store file.
pub(crate) struct Lock(nix::fcntl::Flock<std::fs::File>);

/// Takes the store's lock (creating its directory, with a `.gitignore`, and an empty database
/// file when needed). The lock is on the database file itself (`flock`, which SQLite's own
/// record locks do not touch), so a second `wf serve` is refused whatever path names the file: a
/// symlink, a hard link, a relative path. The descriptor stays open as long as the store.
pub(crate) fn lock(path: &Path) -> Result<Lock, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let _ =
                std::fs::write(dir.join(".gitignore"), "# wf's store (wf serve --store): not source.\n*\n");
        }
    }
    // Read-only is enough for the lock (a store that is not writable yet is waited for).
    let file = match std::fs::File::open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new().create(true).append(true).open(path)
        }
        Err(e) => Err(e),
    }
    .map_err(|e| format!("cannot open the store {}: {e}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map(Lock)
        .map_err(|_| format!("the store {} is in use by another `wf serve`", path.display()))
}

/// Whether the store's files are still SQLite's: a database file (and its write-ahead log)
/// overwritten in place while open would take writes nobody can read again, and be lost at the
/// next start. Two reads of a few bytes before each batch.
fn intact(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileExt as _;
    let head = |file: &Path, n: usize| -> Option<Vec<u8>> {
        let f = std::fs::File::open(file).ok()?;
        let mut buf = vec![0u8; n];
        f.read_exact_at(&mut buf, 0).ok().map(|()| buf)
    };
    let bad =
        || Err(format!("the store {} is not a database any more (its file was overwritten)", path.display()));
    if head(path, 16).is_some_and(|h| h != b"SQLite format 3\0") {
        return bad();
    }
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if head(&wal, 4).is_some_and(|h| h != [0x37, 0x7f, 0x06, 0x82] && h != [0x37, 0x7f, 0x06, 0x83]) {
        return bad();
    }
    Ok(())
}

/// The writing connection: WAL, a sync on every commit, the schema migrated.
fn writer_connection(path: &Path) -> Result<Connection, String> {
    // Only the writer thread uses this connection: SQLite need not lock its own mutexes for it.
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut writer =
        connect(path, flags).map_err(|e| format!("cannot open the store {}: {e}", path.display()))?;
    writer
        // auto_vacuum first: it holds only for a file that has no table yet (a new store);
        // older files are rebuilt for it once, by `migrate`.
        .execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
        )
        .map_err(|e| format!("cannot open the store {}: {e}", path.display()))?;
    migrate(&mut writer).map_err(|e| format!("the store {}: {e}", path.display()))?;
    // A file this process may not write (wf running as a user that does not own it) opens
    // read-only: not open, then, until it can be written (nothing is acknowledged meanwhile).
    if writer.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
        return Err(format!(
            "the store {} is read-only: this process cannot write it or its folder",
            path.display()
        ));
    }
    Ok(writer)
}

/// The identity (device, inode) of the file at `path`, if there is one.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// How long gathered writes (history) may wait for a batch when no one waits for a commit.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

fn write_loop(
    mut conn: Connection,
    path: &Path,
    mut rx: mpsc::Receiver<Cmd>,
    behind: &Behind<Gathered>,
    trouble: &Mutex<Option<String>>,
    woken: &tokio::sync::Notify,
) {
    let mut woke = false;
    let Ok(clock) = tokio::runtime::Builder::new_current_thread().enable_time().build() else { return };
    let mut known: HashSet<String> = HashSet::new();
    // Executions with journaled steps that have not ended yet: a sync one's history record
    // says it had steps, so that pruning it deletes them too.
    let mut stepped: HashSet<i64> = HashSet::new();
    let mut batch: Vec<Cmd> = Vec::with_capacity(BATCH);
    // What was gathered since the last batch (the writes of a failed batch first).
    let mut gathered = Gathered::default();
    let mut opened = identity(path);
    let mut open = true;
    while open {
        // A write someone waits for starts a batch at once; gathered ones wait up to GATHER.
        match clock.block_on(async { tokio::time::timeout(GATHER, rx.recv()).await }) {
            Ok(Some(first)) => batch.push(first),
            Ok(None) => open = false,
            Err(_) => {}
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        behind.take(&mut gathered);
        if gathered.len() == 0 && batch.is_empty() {
            continue;
        }
        // Gathered writes were made before the waited ones they could follow (a step's start
        // before its end), so they go first.
        let mut waited = std::mem::take(&mut batch);
        batch.extend(gathered.writes.drain(..).map(|write| Cmd { write, done: None }));
        batch.append(&mut waited);
        // A store deleted (or replaced) while open would take writes into a file nobody can read
        // again: write to a new one at the path instead.
        let now = identity(path);
        let reopened = if now == opened {
            Ok(())
        } else {
            writer_connection(path).map(|c| {
                conn = c;
                known.clear();
                opened = identity(path);
                tracing::warn!(target: "wf::store", "the store {} was deleted or replaced: writing to a new one", path.display());
            })
        };
        let result = reopened.and_then(|()| intact(path)).and_then(|()| {
            apply(&mut conn, &batch, &[gathered.history.as_slice()], &mut known, &mut stepped, &mut woke)
        });
        // A run the batch made due at once (the next of an `order by` line) is taken now.
        if std::mem::take(&mut woke) && result.is_ok() {
            woken.notify_one();
        }
        if let Ok(mut t) = trouble.lock() {
            *t = result.as_ref().err().cloned();
        }
        // The writes nobody waits for of a batch that failed, to try again.
        let mut failed = Gathered::default();
        for (i, cmd) in batch.drain(..).enumerate() {
            match (cmd.done, &result) {
                (Some(done), Ok(claims)) => {
                    let _ = done.send(Ok(claims.get(i).cloned().unwrap_or(Claim::First)));
                }
                (Some(done), Err(why)) => {
                    let _ = done.send(Err(why.clone()));
                }
                (None, Err(_)) => failed.writes.push(cmd.write),
                (None, Ok(_)) => {}
            }
        }
        match &result {
            Ok(_) => behind.written(),
            Err(why) => {
                // Versions written in a batch that failed are not there after all.
                known.clear();
                failed.history.append(&mut gathered.history);
                let lost = behind.failed(&mut failed);
                if lost > 0 {
                    tracing::error!(target: "wf::store", dropped = lost, "writes not kept: {why}");
                }
                // Not a busy loop while the store cannot be written.
                std::thread::sleep(std::time::Duration::from_millis(100));
                // A connection that went bad (a file made read-only, then writable again) is
                // opened anew; one that cannot be opened is kept, to fail the next batch too.
                if let Ok(fresh) = writer_connection(path) {
                    conn = fresh;
                    known.clear();
                }
            }
        }
    }
}

/// Claims a `dedupe` key unless an execution holds it unexpired: then names that execution.
fn claim(tx: &rusqlite::Transaction<'_>, k: &Key) -> Result<Claim, String> {
    let held: Option<(i64, Option<String>)> = tx
        .prepare_cached(
            "SELECT execution, answer FROM dedupe WHERE workflow = ?1 AND key = ?2 AND expires_ms > ?3",
        )
        .and_then(|mut s| {
            s.query_row(params![k.workflow, k.key, super::now_ms()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql)?;
    if let Some((of, answer)) = held {
        let answer = answer.and_then(|a| serde_json::from_str(&a).ok());
        return Ok(Claim::Duplicate { of: hex(of), answer });
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO dedupe (workflow, key, execution, expires_ms, answer) VALUES (?1, ?2, ?3, ?4, NULL)",
    )
    .and_then(|mut s| s.execute(params![k.workflow, k.key, key(&k.id), k.expires_ms]))
    .map_err(sql)?;
    Ok(Claim::First)
}

/// Deletes a workflow's rejections but the newest `?2`.
const TRIM_REJECTED: &str = "DELETE FROM executions WHERE outcome = 'rejected' AND workflow = ?1 AND id IN
     (SELECT id FROM executions WHERE outcome = 'rejected' AND workflow = ?1
      ORDER BY started_ms DESC, id DESC LIMIT -1 OFFSET ?2)";

/// Runs a batch of writes in one transaction; gives what each claim found.
/// An execution's end: its history row (a run kept since its acceptance is updated).
/// A debounced run joins its key's series: it names the series' newest run when it is newer
/// (by acceptance, then id); a series that ended starts again with it.
const DEBOUNCE_SEEN: &str =
    "INSERT INTO debounce (workflow, key, latest, first_ms, latest_ms) VALUES (?1, ?2, ?3, ?4, ?4)
     ON CONFLICT (workflow, key) DO UPDATE SET
         latest = CASE WHEN debounce.ended = 1
             OR (excluded.latest_ms, excluded.latest) > (debounce.latest_ms, debounce.latest)
             THEN excluded.latest ELSE debounce.latest END,
         latest_ms = CASE WHEN debounce.ended = 1 THEN excluded.latest_ms
             ELSE max(debounce.latest_ms, excluded.latest_ms) END,
         first_ms = CASE WHEN debounce.ended = 1 THEN excluded.first_ms
             ELSE min(debounce.first_ms, excluded.first_ms) END,
         ended = 0";

const ENDED: &str = "INSERT INTO executions (id, workflow, mode, state, started_ms, ended_ms, duration_ms, status, outcome, reason, at, logs, attempts)
     VALUES (?1, ?2, ?3, 'ended', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
     ON CONFLICT (id) DO UPDATE SET state = 'ended', ended_ms = excluded.ended_ms,
     duration_ms = excluded.duration_ms, status = excluded.status, outcome = excluded.outcome,
     reason = excluded.reason, at = excluded.at, logs = excluded.logs,
     attempts = executions.attempts + excluded.attempts,
     frame = CASE WHEN excluded.outcome = 'failed' THEN frame ELSE NULL END";

fn apply(
    conn: &mut Connection,
    batch: &[Cmd],
    history: &[&[Ended]],
    known: &mut HashSet<String>,
    stepped: &mut HashSet<i64>,
    woke: &mut bool,
) -> Result<Vec<Claim>, String> {
    // Immediate: the write lock is taken (waiting for another connection's write, within the
    // busy timeout) before anything is read. A deferred transaction that read a `dedupe` key
    // while the pruner or the retry poller wrote could not become a write afterwards ("database
    // is locked", at once), and every caller in the batch got 503.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
    let mut claims = Vec::with_capacity(batch.len());
    // The statement of ended async runs, looked up once.
    let mut ended = None;
    // Sync executions that ended: their history, written after the loop, a row per block of ids.
    let mut sync: Vec<(i64, &Ended, bool)> = Vec::new();
    // Workflows whose rejections this batch writes: trimmed to the newest after the loop.
    let mut rejected: Vec<&str> = Vec::new();
    for cmd in batch {
        let mut found = Claim::First;
        match &cmd.write {
            Write::Claim(k) => found = claim(&tx, k)?,
            Write::Release(k) => {
                tx.prepare_cached(
                    "DELETE FROM dedupe WHERE workflow = ?1 AND key = ?2 AND execution = ?3 AND answer IS NULL",
                )
                .and_then(|mut s| s.execute(params![k.workflow, k.key, key(&k.id)]))
                .map_err(sql)?;
            }
            Write::Answered(k, answer) => {
                tx.prepare_cached(
                    "UPDATE dedupe SET answer = ?4 WHERE workflow = ?1 AND key = ?2 AND execution = ?3",
                )
                .and_then(|mut s| s.execute(params![k.workflow, k.key, key(&k.id), answer]))
                .map_err(sql)?;
            }
            Write::Accept(run, dedupe) => {
                if let Some(k) = dedupe {
                    found = claim(&tx, k)?;
                    if found != Claim::First {
                        claims.push(found);
                        continue;
                    }
                }
                if !known.contains(&run.version.hash) {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO versions (hash, file, source) VALUES (?1, ?2, ?3)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![run.version.hash, run.version.file, &*run.version.source])
                    })
                    .map_err(sql)?;
                    known.insert(run.version.hash.clone());
                }
                tx.prepare_cached(
                    "INSERT INTO executions (id, workflow, mode, state, version, started_ms, request, frame, env_names)
                     VALUES (?1, ?2, 'async', 'queued', ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        key(&run.id),
                        run.workflow,
                        run.version.hash,
                        run.accepted_ms,
                        run.request,
                        run.frame,
                        serde_json::to_string(&run.env_names).unwrap_or_default(),
                    ])
                })
                .map_err(sql)?;
            }
            Write::StepStarted { id, n, kind, request, at } => {
                stepped.insert(key(id));
                tx.prepare_cached(
                    "INSERT INTO steps (execution, n, kind, state, request, started_ms) VALUES (?1, ?2, ?3, 'started', ?4, ?5)
                     ON CONFLICT (execution, n) DO UPDATE SET state = 'started', started_ms = excluded.started_ms,
                     attempts = attempts + 1, result = NULL, reason = NULL",
                )
                .and_then(|mut s| s.execute(params![key(id), n, kind, request, at]))
                .map_err(sql)?;
                tx.prepare_cached(
                    "UPDATE executions SET state = 'running' WHERE id = ?1 AND state = 'queued'",
                )
                .and_then(|mut s| s.execute(params![key(id)]))
                .map_err(sql)?;
            }
            Write::StepEnded { id, n, result, at } => {
                stepped.insert(key(id));
                let (state, value, reason) = match result {
                    Ok(v) => ("finished", Some(v.as_str()), None),
                    Err(r) => ("failed", None, Some(r.as_str())),
                };
                tx.prepare_cached(
                    "INSERT INTO steps (execution, n, kind, state, result, reason, ended_ms) VALUES (?1, ?2, '', ?3, ?4, ?5, ?6)
                     ON CONFLICT (execution, n) DO UPDATE SET state = excluded.state, result = excluded.result,
                     reason = excluded.reason, ended_ms = excluded.ended_ms",
                )
                .and_then(|mut s| s.execute(params![key(id), n, state, value, reason, at]))
                .map_err(sql)?;
            }
            Write::StepValue { id, n, kind, value, at } => {
                stepped.insert(key(id));
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO steps (execution, n, kind, state, result, started_ms, ended_ms)
                     VALUES (?1, ?2, ?3, 'finished', ?4, ?5, ?5)",
                )
                .and_then(|mut s| s.execute(params![key(id), n, kind, value, at]))
                .map_err(sql)?;
            }
            Write::Flush => {}
            Write::DebounceSeen { workflow, key, id, at } => {
                tx.prepare_cached(DEBOUNCE_SEEN)
                    .and_then(|mut s| s.execute(params![workflow, key, id, at]))
                    .map_err(sql)?;
            }
            Write::OrderDone { workflow, key: okey, id, handed } => {
                tx.prepare_cached("DELETE FROM orders WHERE workflow = ?1 AND key = ?2 AND execution = ?3")
                    .and_then(|mut s| s.execute(params![workflow, okey, id]))
                    .map_err(sql)?;
                let next = if *handed { None } else { order_head(&tx, workflow, okey).map_err(sql)? };
                if let Some(next) = next {
                    let due = tx
                        .prepare_cached("UPDATE executions SET due_ms = 0 WHERE id = ?1 AND state = 'parked'")
                        .and_then(|mut s| s.execute(params![key(&next)]))
                        .map_err(sql)?;
                    *woke |= due > 0;
                }
            }
            Write::OrderJoined { workflow, key, id, at } => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO orders (workflow, key, accepted_ms, execution) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![workflow, key, at, id]))
                .map_err(sql)?;
            }
            Write::StepParked { id, n, kind, due_ms, attempts } => {
                stepped.insert(key(id));
                let made = serde_json::json!({"attempts": attempts}).to_string();
                tx.prepare_cached(
                    "INSERT INTO steps (execution, n, kind, state, result) VALUES (?1, ?2, ?4, 'waiting', ?3)
                     ON CONFLICT (execution, n) DO UPDATE SET state = 'waiting', result = excluded.result, reason = NULL",
                )
                .and_then(|mut s| s.execute(params![key(id), n, made, kind]))
                .map_err(sql)?;
                tx.prepare_cached("UPDATE executions SET state = 'parked', due_ms = ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![key(id), due_ms]))
                    .map_err(sql)?;
            }
            Write::Ended(e) => {
                stepped.remove(&e.id);
                if e.outcome == Outcome::Rejected && !rejected.contains(&&*e.workflow) {
                    rejected.push(&e.workflow);
                }
                let statement = match &mut ended {
                    Some(s) => s,
                    None => ended.insert(tx.prepare_cached(ENDED).map_err(sql)?),
                };
                statement
                    .execute(params![
                        e.id,
                        e.workflow,
                        e.mode.as_str(),
                        e.started_ms,
                        e.started_ms.saturating_add(e.duration_ms),
                        e.duration_ms,
                        e.status,
                        e.outcome.as_str(),
                        e.reason,
                        e.at,
                        serde_json::to_string(&e.logs).unwrap_or_default(),
                        e.attempts,
                    ])
                    .map_err(sql)?;
                if e.outcome == Outcome::Failed && e.mode == Mode::Async {
                    // A failed run lets go of its delivery's key: the sender's redelivery runs.
                    tx.prepare_cached("DELETE FROM dedupe WHERE execution = ?1 AND answer IS NULL")
                        .and_then(|mut s| s.execute(params![e.id]))
                        .map_err(sql)?;
                }
            }
        }
        claims.push(found);
    }
    drop(ended);
    for workflow in rejected {
        tx.prepare_cached(TRIM_REJECTED)
            .and_then(|mut s| s.execute(params![workflow, super::REJECTED_KEPT as i64]))
            .map_err(sql)?;
    }
    for e in history.iter().flat_map(|h| h.iter()) {
        sync.push((e.id, e, !stepped.is_empty() && stepped.remove(&e.id)));
    }
    history::write(&tx, &mut sync).map_err(sql)?;
    tx.commit().map_err(sql)?;
    Ok(claims)
}

impl History for Sqlite {
    fn list(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        let filter = filter.clone();
        self.look(move |conn| list(conn, &filter))
    }

    fn show(&self, id: &str) -> Reading<'_, Option<RunView>> {
        let id = id.to_string();
        self.look(move |conn| show(conn, &id))
    }

    fn whole(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        let filter = filter.clone();
        self.look(move |conn| whole(conn, &filter))
    }

    fn prune(&self, before_ms: i64, batch: usize) -> Reading<'_, usize> {
        self.read(move |conn| prune(conn, before_ms, batch))
    }

    fn retry(&self, id: &str, from_start: bool) -> Reading<'_, Retried> {
        let id = id.to_string();
        self.read(move |conn| retry_in(conn, &id, from_start))
    }

    fn cancel(&self, id: &str) -> Reading<'_, Cancel> {
        let id = id.to_string();
        self.read(move |conn| cancel_in(conn, &id))
    }

    fn keyed(&self, key: &str) -> Reading<'_, Vec<String>> {
        let key = key.to_string();
        self.read(move |conn| keyed_in(conn, &key))
    }
}

impl Store for Sqlite {
    fn callback_key(&self) -> Reading<'_, [u8; 32]> {
        let mut fresh = [0u8; 32];
        if let Err(e) = getrandom::fill(&mut fresh) {
            return Box::pin(std::future::ready(Err(format!("no random key: {e}"))));
        }
        self.read(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES ('callback_key', ?1)",
                params![fresh.to_vec()],
            )?;
            let key: Vec<u8> =
                conn.query_row("SELECT value FROM settings WHERE name = 'callback_key'", [], |r| r.get(0))?;
            Ok(<[u8; 32]>::try_from(key.as_slice()).unwrap_or(fresh))
        })
    }

    fn callback_made(&self, hash: TokenHash, id: &str, n: u32, expires_ms: i64) -> Reading<'_, ()> {
        let id = key(id);
        self.read(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO callbacks (hash, execution, n, expires_ms, state) VALUES (?1, ?2, ?3, ?4, 'waiting')",
                params![hash.to_vec(), id, n, expires_ms],
            )?;
            Ok(())
        })
    }

    fn callback(&self, hash: TokenHash) -> Reading<'_, Option<Callback>> {
        self.read(move |conn| callback_row(conn, &hash))
    }

    fn callback_called(&self, hash: TokenHash, reply: Value, now_ms: i64) -> Reading<'_, Called> {
        self.read(move |conn| {
            let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
            let taken = tx.execute(
                "UPDATE callbacks SET state = 'called', reply = ?2 WHERE hash = ?1 AND state = 'waiting' AND expires_ms > ?3",
                params![hash.to_vec(), reply.to_string(), now_ms],
            )?;
            let called = if taken == 1 {
                // Its run, parked waiting for it, is due now.
                tx.execute(
                    "UPDATE executions SET due_ms = 0 WHERE state = 'parked'
                     AND id = (SELECT execution FROM callbacks WHERE hash = ?1)",
                    params![hash.to_vec()],
                )?;
                Called::Taken
            } else if callback_row(&tx, &hash)?.is_some() {
                Called::Gone
            } else {
                Called::Unknown
            };
            tx.commit()?;
            Ok(called)
        })
    }

    fn wait_parked(&self, id: &str, n: u32, hash: TokenHash) -> Reading<'_, Recorded> {
        let id = key(id);
        self.read(move |conn| {
            let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO steps (execution, n, kind, state, result) VALUES (?1, ?2, 'wait', 'waiting', '{\"attempts\":0}')
                 ON CONFLICT (execution, n) DO UPDATE SET state = 'waiting', result = excluded.result, reason = NULL",
                params![id, n],
            )?;
            // Due when it expires, or at once when it was called meanwhile.
            tx.execute(
                "UPDATE executions SET state = 'parked', due_ms = coalesce(
                     (SELECT CASE WHEN state = 'waiting' THEN expires_ms ELSE 0 END FROM callbacks WHERE hash = ?2), 0)
                 WHERE id = ?1",
                params![id, hash.to_vec()],
            )?;
            tx.commit()?;
            Ok(Recorded::Kept)
        })
    }

    fn callback_expired(&self, hash: TokenHash) -> Reading<'_, ()> {
        self.read(move |conn| {
            conn.execute(
                "UPDATE callbacks SET state = 'expired' WHERE hash = ?1 AND state = 'waiting'",
                params![hash.to_vec()],
            )?;
            Ok(())
        })
    }

    fn accept(&self, run: NewRun, dedupe: Option<Key>) -> Claimed<'_> {
        self.claimed(Write::Accept(Box::new(run), dedupe))
    }

    fn claim(&self, key: Key) -> Claimed<'_> {
        self.claimed(Write::Claim(key))
    }

    fn answered(&self, key: Key, answer: Value) {
        self.later(Write::Answered(key, answer.to_string()));
    }

    fn release(&self, key: Key) {
        self.later(Write::Release(key));
    }

    fn step_started(&self, id: &str, n: u32, kind: &str, request: Value) {
        let write = Write::StepStarted {
            id: id.into(),
            n,
            kind: kind.into(),
            request: request.to_string(),
            at: super::now_ms(),
        };
        self.later(write);
    }

    fn step_ended(&self, id: &str, n: u32, result: &Result<Value, String>) -> Reading<'_, Recorded> {
        let result = result.as_ref().map(Value::to_string).map_err(Clone::clone);
        let kept = self.durable(Write::StepEnded { id: id.into(), n, result, at: super::now_ms() });
        Box::pin(async move { kept.await.map(|()| Recorded::Kept) })
    }

    fn step_parked(&self, id: &str, n: u32, kind: &str, due_ms: i64, attempts: u32) -> Reading<'_, Recorded> {
        let kept = self.durable(Write::StepParked { id: id.into(), n, kind: kind.into(), due_ms, attempts });
        Box::pin(async move { kept.await.map(|()| Recorded::Kept) })
    }

    fn step_noted(&self, id: &str, n: u32, result: &Result<Value, String>) {
        let result = result.as_ref().map(Value::to_string).map_err(Clone::clone);
        self.later(Write::StepEnded { id: id.into(), n, result, at: super::now_ms() });
    }

    fn step_value(&self, id: &str, n: u32, kind: &str, value: &Value) {
        let write = Write::StepValue {
            id: id.into(),
            n,
            kind: kind.into(),
            value: value.to_string(),
            at: super::now_ms(),
        };
        self.later(write);
    }

    fn ended(&self, e: Ended) {
        // Executions of async workflows (their runs, and the deliveries turned away or seen
        // before) are rows; sync ones go to the compact history.
        // Rejections are rows too, the newest `REJECTED_KEPT` of each workflow kept.
        if e.kept {
            // A kept run's end is never dropped: were it lost, the run would run again.
            return self.behind.push_always(|g| g.writes.push(Write::Ended(Box::new(e))));
        }
        if e.mode != Mode::Sync || e.outcome == Outcome::Rejected {
            return self.later(Write::Ended(Box::new(e)));
        }
        self.behind.push(|g| g.history.push(e));
    }

    fn unfinished(&self) -> Reading<'_, Vec<Unfinished>> {
        self.read(|conn| open_runs(conn, &format!("e.id IN ({NOT_PARKED} UNION ALL {DUE})")))
    }

    fn retried(&self) -> Reading<'_, Vec<Unfinished>> {
        self.read(|conn| open_runs(conn, &format!("e.id IN ({MARKED} UNION ALL {DUE})")))
    }

    fn flush(&self) -> Commit<'_> {
        self.durable(Write::Flush)
    }

    fn dropped(&self) -> u64 {
        self.behind.dropped()
    }

    fn behind(&self) -> bool {
        self.behind.full()
    }

    fn debounce_seen(&self, workflow: &str, key: &str, id: &str, accepted_ms: i64) -> Reading<'_, ()> {
        // Through the writer: committed in the same batch as the runs accepted with it.
        let write = Write::DebounceSeen {
            workflow: workflow.into(),
            key: key.into(),
            id: super::key(id),
            at: accepted_ms,
        };
        Box::pin(self.durable(write))
    }

    fn order_joined(&self, workflow: &str, key: &str, id: &str, accepted_ms: i64) -> Reading<'_, ()> {
        // Gathered, never dropped: the writer takes gathered writes after the commands of a
        // batch, so the run's accept, sent after this, is committed with it or after it.
        let write = Write::OrderJoined {
            workflow: workflow.into(),
            key: key.into(),
            id: super::key(id),
            at: accepted_ms,
        };
        self.behind.push_always(|g| g.writes.push(write));
        Box::pin(std::future::ready(Ok(())))
    }

    fn woken(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.woken.clone())
    }

    fn order_head(&self, workflow: &str, key: &str) -> Reading<'_, Option<String>> {
        let (workflow, okey) = (workflow.to_string(), key.to_string());
        self.look(move |conn| order_head(conn, &workflow, &okey))
    }

    fn order_front(&self, workflow: &str, key: &str) -> Reading<'_, Vec<String>> {
        let (workflow, okey) = (workflow.to_string(), key.to_string());
        self.glance(move |conn| order_front(conn, &workflow, &okey))
    }

    fn order_done(&self, workflow: &str, key: &str, id: &str) -> Reading<'_, ()> {
        // Gathered, never dropped, like the run's end: the runs that end together hand on their
        // lines in one commit, and a batch that made a run due wakes the taker (`woken`).
        self.order_out(workflow, key, id, false)
    }

    fn order_left(&self, workflow: &str, key: &str, id: &str) -> Reading<'_, ()> {
        self.order_out(workflow, key, id, true)
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
        self.read(move |conn| {
            let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
            let kept: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT starts FROM rates WHERE workflow = ?1 AND key = ?2",
                    params![workflow, rkey],
                    |r| r.get(0),
                )
                .optional()?;
            let mut starts = kept.map(|b| super::rate::decode(&b)).unwrap_or_default();
            let before = starts.clone();
            let next = super::rate::take(&mut starts, n, window_ms, now_ms);
            // Kept when a start was taken, and when starts were moved back to a clock set back.
            if starts != before {
                tx.execute(
                    "INSERT INTO rates (workflow, key, window_ms, last_ms, starts) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (workflow, key) DO UPDATE SET window_ms = ?3, last_ms = ?4, starts = ?5",
                    params![workflow, rkey, window_ms, now_ms, super::rate::encode(&starts)],
                )?;
            }
            tx.commit()?;
            Ok(next)
        })
    }

    fn debounce_series(&self, workflow: &str, key: &str) -> Reading<'_, Option<Series>> {
        let (workflow, dkey) = (workflow.to_string(), key.to_string());
        self.read(move |conn| {
            conn.query_row(
                "SELECT latest, first_ms, latest_ms FROM debounce WHERE workflow = ?1 AND key = ?2",
                params![workflow, dkey],
                |r| Ok(Series { latest: hex(r.get(0)?), first_ms: r.get(1)?, latest_ms: r.get(2)? }),
            )
            .optional()
        })
    }

    fn debounce_done(&self, workflow: &str, key: &str, id: &str) -> Reading<'_, ()> {
        let (workflow, dkey, id) = (workflow.to_string(), key.to_string(), super::key(id));
        self.read(move |conn| {
            conn.execute(
                "UPDATE debounce SET ended = 1 WHERE workflow = ?1 AND key = ?2 AND latest = ?3",
                params![workflow, dkey, id],
            )?;
            Ok(())
        })
    }

    fn waiting(&self) -> Reading<'_, Vec<(&'static str, u64)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT coalesce(s.kind, 'http'), count(*) FROM executions e
                 LEFT JOIN steps s ON s.execution = e.id AND s.state = 'waiting'
                 WHERE e.state = 'parked' GROUP BY 1",
            )?;
            let rows =
                stmt.query_map([], |r| Ok((super::waits_for(&r.get::<_, String>(0)?), r.get::<_, i64>(1)?)))?;
            let mut out: Vec<(&'static str, u64)> = Vec::new();
            for row in rows {
                let (what, n) = row?;
                match out.iter_mut().find(|(w, _)| *w == what) {
                    Some(x) => x.1 += u64::try_from(n).unwrap_or(0),
                    None => out.push((what, u64::try_from(n).unwrap_or(0))),
                }
            }
            Ok(out)
        })
    }

    fn trouble(&self) -> Option<String> {
        self.trouble.lock().ok().and_then(|t| t.clone())
    }
}

/// The async runs in `which` state, oldest first, with their finished steps; they are `queued`
/// from now on, and count one more attempt.
/// The runs not ended and not waiting (their index: a partial one names `state != 'ended'`).
const NOT_PARKED: &str = "SELECT id FROM executions WHERE state != 'ended' AND state != 'parked'";
/// The runs marked for a retry.
const MARKED: &str = "SELECT id FROM executions WHERE state = 'retry' AND state != 'ended'";
/// The waiting runs due now (`?1`), found by their due time, not by a look at every run.
const DUE: &str = "SELECT id FROM executions WHERE state = 'parked' AND due_ms <= ?1";

fn open_runs(conn: &Connection, which: &str) -> Result<Vec<Unfinished>, rusqlite::Error> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let mut runs = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT e.id, e.workflow, e.frame, e.started_ms, v.hash, v.file, v.source, e.retries, e.mode, e.request
             FROM executions e LEFT JOIN versions v ON v.hash = e.version
             WHERE {which} AND (v.hash IS NOT NULL OR e.mode = 'sync') ORDER BY e.started_ms, e.id"
        ))?;
        let rows = stmt.query_map(params![super::now_ms()], |r| {
            let frame: Option<String> = r.get(2)?;
            let hash: Option<String> = r.get(4)?;
            let version = match hash {
                Some(hash) => {
                    Some(Version { hash, file: r.get(5)?, source: Arc::from(r.get::<_, String>(6)?) })
                }
                None => None,
            };
            let mode: Mode = r.get(8)?;
            let request: Option<String> = r.get(9)?;
            Ok(Unfinished {
                id: hex(r.get(0)?),
                workflow: r.get(1)?,
                frame: frame.and_then(|f| serde_json::from_str(&f).ok()).unwrap_or(Value::Null),
                request: (mode == Mode::Sync)
                    .then(|| request.and_then(|q| serde_json::from_str(&q).ok()))
                    .flatten(),
                accepted_ms: r.get(3)?,
                version,
                journal: Vec::new(),
                waiting: None,
                retries: r.get(7)?,
            })
        })?;
        for run in rows {
            runs.push(run?);
        }
        let mut steps = tx.prepare_cached(
            "SELECT n, result, state FROM steps WHERE execution = ?1 AND state IN ('finished', 'waiting') ORDER BY n",
        )?;
        let mut taken = tx.prepare_cached(
            "UPDATE executions SET state = CASE WHEN state = 'running' THEN state ELSE 'queued' END
             WHERE id = ?1",
        )?;
        for run in &mut runs {
            let rows = steps.query_map(params![key(&run.id)], |r| {
                let text: Option<String> = r.get(1)?;
                Ok((
                    r.get::<_, u32>(0)?,
                    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null),
                    r.get::<_, String>(2)?,
                ))
            })?;
            for row in rows {
                match row? {
                    (n, v, state) if state == "waiting" => run.waiting = Some((n, attempts_made(&v))),
                    (n, v, _) => run.journal.push((n, Ok(v))),
                }
            }
            taken.execute(params![key(&run.id)])?;
        }
    }
    tx.commit()?;
    Ok(runs)
}

const COLUMNS: &str =
    "id, workflow, mode, state, outcome, status, started_ms, duration_ms, reason, at, attempts, logs, request";

fn view(r: &rusqlite::Row<'_>) -> Result<RunView, rusqlite::Error> {
    let logs: Option<String> = r.get(11)?;
    let request: Option<String> = r.get(12)?;
    Ok(RunView {
        id: hex(r.get(0)?),
        workflow: r.get(1)?,
        mode: r.get(2)?,
        state: r.get(3)?,
        outcome: r.get(4)?,
        status: r.get(5)?,
        started_ms: r.get(6)?,
        duration_ms: r.get(7)?,
        reason: r.get(8)?,
        at: r.get(9)?,
        attempts: r.get(10)?,
        logs: logs.and_then(|l| serde_json::from_str(&l).ok()).unwrap_or_default(),
        request: request.and_then(|q| serde_json::from_str(&q).ok()),
        steps: Vec::new(),
    })
}

/// The callback whose token has this hash.
fn callback_row(conn: &Connection, hash: &TokenHash) -> Result<Option<Callback>, rusqlite::Error> {
    conn.query_row(
        "SELECT execution, n, expires_ms, state, reply FROM callbacks WHERE hash = ?1",
        params![hash.to_vec()],
        |r| {
            let state: String = r.get(3)?;
            let reply: Option<String> = r.get(4)?;
            Ok(Callback {
                execution: hex(r.get(0)?),
                n: r.get(1)?,
                expires_ms: r.get(2)?,
                state: CallbackState::parse(&state).unwrap_or(CallbackState::Expired),
                reply: reply.and_then(|t| serde_json::from_str(&t).ok()),
            })
        },
    )
    .optional()
}

fn list(conn: &Connection, f: &Filter) -> Result<Vec<RunView>, rusqlite::Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM executions
         WHERE (?1 IS NULL OR workflow = ?1) AND (?2 IS NULL OR outcome = ?2 OR state = ?2) AND started_ms >= ?3
           AND (started_ms < ?5 OR (started_ms = ?5 AND id < ?6))
         ORDER BY started_ms DESC, id DESC LIMIT ?4"
    ))?;
    let limit = i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX);
    let (after_ms, after_id) = f.after_keys();
    let rows = stmt.query_map(
        params![f.workflow, f.status.map(|s| s.stored()), f.since_ms.unwrap_or(0), limit, after_ms, after_id],
        view,
    )?;
    let mut all = rows.collect::<Result<Vec<_>, _>>()?;
    // The sync executions' history, kept apart, merged in.
    all.extend(history::list(conn, f)?);
    all.sort_by_key(|r| std::cmp::Reverse((r.started_ms, key(&r.id))));
    all.truncate(f.limit.max(1));
    Ok(all)
}

fn show(conn: &Connection, id: &str) -> Result<Option<RunView>, rusqlite::Error> {
    let found = conn
        .query_row(&format!("SELECT {COLUMNS} FROM executions WHERE id = ?1"), params![key(id)], view)
        .optional()?;
    // Else a sync execution, in the history kept apart.
    let found = match found {
        Some(run) => Some(run),
        None => history::show(conn, id)?,
    };
    let Some(mut run) = found else { return Ok(None) };
    run.steps = steps(conn, key(id))?;
    Ok(Some(run))
}

/// The journal of execution `id`.
fn steps(conn: &Connection, id: i64) -> Result<Vec<StepView>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT n, kind, state, request, result, reason, ended_ms - started_ms FROM steps WHERE execution = ?1 ORDER BY n",
    )?;
    let json = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok());
    let rows = stmt.query_map(params![id], |r| {
        Ok(StepView {
            n: r.get(0)?,
            kind: r.get(1)?,
            state: r.get(2)?,
            request: json(r.get(3)?),
            result: json(r.get(4)?),
            reason: r.get(5)?,
            took_ms: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// A page of executions whole: `list`'s, with their requests (the history's read a row at a
/// time, not once per execution) and journals.
fn whole(conn: &Connection, f: &Filter) -> Result<Vec<RunView>, rusqlite::Error> {
    let mut page = list(conn, f)?;
    history::requests(conn, &mut page)?;
    for run in &mut page {
        run.steps = steps(conn, key(&run.id))?;
    }
    Ok(page)
}

/// Deletes ended executions that started before `before_ms`: async runs (with their steps) a
/// `batch` at a time, then as many rows of sync history (a row holds one execution or more).
/// Gives how many executions went: `batch` or more when there may be more to delete.
fn prune(conn: &Connection, before_ms: i64, batch: usize) -> Result<usize, rusqlite::Error> {
    let limit = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM steps WHERE execution IN
         (SELECT id FROM executions WHERE state = 'ended' AND started_ms < ?1 ORDER BY started_ms LIMIT ?2)",
        params![before_ms, limit],
    )?;
    tx.execute("DELETE FROM dedupe WHERE expires_ms < ?1", params![super::now_ms()])?;
    tx.execute("DELETE FROM debounce WHERE ended = 1 AND latest_ms < ?1", params![before_ms])?;
    // Lines' runs that ended (or are gone) and were not taken off (a run cancelled, a crash).
    tx.execute(
        "DELETE FROM orders WHERE accepted_ms < ?1 AND NOT EXISTS
             (SELECT 1 FROM executions e WHERE e.id = orders.execution AND e.state != 'ended')",
        params![before_ms],
    )?;
    tx.execute("DELETE FROM callbacks WHERE state != 'waiting' AND expires_ms < ?1", params![before_ms])?;
    tx.execute("DELETE FROM rates WHERE last_ms + window_ms < ?1", params![super::now_ms()])?;
    let mut gone = tx.execute(
        "DELETE FROM executions WHERE id IN
         (SELECT id FROM executions WHERE state = 'ended' AND started_ms < ?1 ORDER BY started_ms LIMIT ?2)",
        params![before_ms, limit],
    )?;
    let rows = batch.max(1).saturating_sub(gone);
    if rows > 0 {
        gone += history::prune(&tx, before_ms, rows)?;
    }
    tx.commit()?;
    // The pages freed go back to the file system (the file shrinks at the next checkpoint).
    if gone > 0 {
        // Stepped to its end: each step gives back one page.
        let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
        let mut pages = vacuum.query([])?;
        while pages.next()?.is_some() {}
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another connection (the pruner, the retry poller) writes while the writer's batch reads
    /// a `dedupe` key: the batch waits for it instead of failing every caller in it with 503.
    #[test]
    fn a_batch_waits_for_another_connection_s_write_instead_of_failing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let mut conn = writer_connection(&path).expect("open");
        let other = Connection::open(&path).expect("other");
        other.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
        other.execute_batch("BEGIN IMMEDIATE; DELETE FROM dedupe WHERE expires_ms < 0;").expect("a write");
        let committer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            other.execute_batch("COMMIT").expect("commit");
        });
        let key = Key {
            workflow: "w".into(),
            key: "k".into(),
            id: "0000000000000001".into(),
            expires_ms: i64::MAX,
        };
        let batch = [Cmd { write: Write::Claim(key), done: None }];
        let claims = apply(&mut conn, &batch, &[], &mut HashSet::new(), &mut HashSet::new(), &mut false);
        committer.join().expect("committer");
        assert_eq!(claims, Ok(vec![Claim::First]));
    }

    /// A sync execution of workflow `w` that answered 200.
    fn sync_ended(id: i64, started_ms: i64) -> Ended {
        history::tests::ended(id as u64, started_ms, "w")
    }

    #[tokio::test]
    async fn a_schema_9_store_keeps_its_plain_history_beside_rows_written_compressed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        drop(Sqlite::open(&path).expect("create"));
        {
            let conn = Connection::open(&path).expect("open");
            let record = (
                5i64,
                "w",
                200u16,
                "responded",
                1i64,
                1i64,
                None::<String>,
                None::<String>,
                vec!["hi"],
                0u32,
            );
            conn.execute_batch("ALTER TABLE history DROP COLUMN form; PRAGMA user_version = 9;")
                .expect("schema 9");
            conn.execute(
                "INSERT INTO history (block, first_ms, last_ms, count, records) VALUES (0, 1, 1, 1, ?1)",
                params![postcard::to_stdvec(&record).expect("encode")],
            )
            .expect("a row as schema 9 wrote it");
        }
        let store = Sqlite::open(&path).expect("migrated");
        store.ended(Ended { status: 201, ..sync_ended(6, 2) });
        store.flush().await.expect("flush");
        let listed = store.list(&Filter { limit: 10, ..Filter::default() }).await.expect("list");
        let shown: Vec<(&str, Option<u16>)> = listed.iter().map(|r| (r.id.as_str(), r.status)).collect();
        assert_eq!(shown, [("0000000000000006", Some(201)), ("0000000000000005", Some(200))]);
        let forms: Vec<i64> = store
            .read(|c| {
                c.prepare("SELECT form FROM history ORDER BY form")?.query_map([], |r| r.get(0))?.collect()
            })
            .await
            .expect("forms");
        assert_eq!(forms, [0, 1]);
    }

    #[tokio::test]
    async fn a_schema_1_store_is_migrated_and_keeps_its_runs_and_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).expect("create");
            let v1 = SCHEMA
                .replace("\n    retries     INTEGER NOT NULL DEFAULT 0,", "")
                .replace(",\n    due_ms      INTEGER", "");
            assert_ne!(v1, SCHEMA, "schema 1 had no due time");
            conn.execute_batch(&v1).expect("schema 1");
            conn.execute_batch(
                "PRAGMA user_version = 1;
                 INSERT INTO versions VALUES ('h', 'w.wf', 'workflow w {}');
                 INSERT INTO executions (id, workflow, mode, state, version, started_ms, frame)
                 VALUES (7, 'w', 'async', 'queued', 'h', 1, '[]');
                 INSERT INTO executions (id, workflow, mode, state, started_ms, status, outcome, logs)
                 VALUES (8, 'w', 'sync', 'ended', 2, 200, 'responded', '[]');",
            )
            .expect("a run");
        }
        let store = Sqlite::open(&path).expect("migrated");
        let open = store.unfinished().await.expect("unfinished");
        assert_eq!(open.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["0000000000000007"]);
        store.step_parked("0000000000000007", 1, "http", 5, 1).await.expect("parks");
        let version: i64 =
            store.read(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0))).await.expect("read");
        assert_eq!(version, SCHEMA_VERSION);
        // A sync execution kept as a row before schema 3 is listed with those kept in blocks.
        let mut later = sync_ended(9, 3);
        store.ended(later.clone());
        later.id = 10;
        later.started_ms = 0;
        store.ended(later);
        store.flush().await.expect("flush");
        let listed = store.list(&Filter { limit: 10, ..Filter::default() }).await.expect("list");
        let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["0000000000000009", "0000000000000008", "0000000000000007", "000000000000000a"]);
        assert_eq!(store.show("0000000000000008").await.expect("show").map(|r| r.mode), Some(Mode::Sync));
    }
}
