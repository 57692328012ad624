//! The shared store's schema and statements: created or migrated at start under an advisory
//! lock, so that instances may start at once.

use super::connect::{pooled, sql};
use deadpool_postgres::Pool;

/// The schema this build writes.
pub(super) const SCHEMA_VERSION: i32 = 1;
/// The advisory lock held while the schema is migrated, so instances may start at once.
pub(super) const MIGRATION_LOCK: i64 = 0x7766_7374_6f72_6531;
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS wf_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS wf_versions (
    hash   TEXT PRIMARY KEY,
    file   TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS wf_instances (
    id          TEXT PRIMARY KEY,
    lease_until TIMESTAMPTZ NOT NULL,
    started     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS wf_executions (
    id          BIGINT PRIMARY KEY,
    workflow    TEXT NOT NULL,
    mode        TEXT NOT NULL,
    state       TEXT NOT NULL,
    version     TEXT,
    owner       TEXT,
    started_ms  BIGINT NOT NULL,
    ended_ms    BIGINT,
    duration_ms BIGINT,
    status      INTEGER,
    outcome     TEXT,
    reason      TEXT,
    at          TEXT,
    logs        TEXT,
    request     TEXT,
    frame       TEXT,
    env_names   TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_ms      BIGINT
);
ALTER TABLE wf_executions ADD COLUMN IF NOT EXISTS due_ms BIGINT;
ALTER TABLE wf_executions ADD COLUMN IF NOT EXISTS retries INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS wf_executions_started ON wf_executions (started_ms);
CREATE INDEX IF NOT EXISTS wf_executions_open ON wf_executions (started_ms) WHERE state <> 'ended';
CREATE INDEX IF NOT EXISTS wf_executions_rejected ON wf_executions (workflow, started_ms) WHERE outcome = 'rejected';
CREATE TABLE IF NOT EXISTS wf_dedupe (
    workflow   TEXT NOT NULL,
    key        TEXT NOT NULL,
    execution  BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    answer     TEXT,
    PRIMARY KEY (workflow, key)
);
CREATE INDEX IF NOT EXISTS wf_dedupe_execution ON wf_dedupe (execution);
CREATE TABLE IF NOT EXISTS wf_places (
    workflow  TEXT NOT NULL,
    place     INTEGER NOT NULL,
    owner     TEXT NOT NULL,
    execution BIGINT NOT NULL,
    PRIMARY KEY (workflow, place)
);
CREATE TABLE IF NOT EXISTS wf_steps (
    execution  BIGINT NOT NULL,
    n          INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    request    TEXT,
    result     TEXT,
    reason     TEXT,
    started_ms BIGINT,
    ended_ms   BIGINT,
    attempts   INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (execution, n)
);
CREATE TABLE IF NOT EXISTS wf_callbacks (
    hash       BYTEA PRIMARY KEY,
    execution  BIGINT NOT NULL,
    n          INTEGER NOT NULL,
    expires_ms BIGINT NOT NULL,
    state      TEXT NOT NULL,
    reply      TEXT
);
CREATE TABLE IF NOT EXISTS wf_debounce (
    workflow  TEXT NOT NULL,
    key       TEXT NOT NULL,
    latest    BIGINT NOT NULL,
    first_ms  BIGINT NOT NULL,
    latest_ms BIGINT NOT NULL,
    ended     BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (workflow, key)
);
ALTER TABLE wf_debounce ADD COLUMN IF NOT EXISTS ended BOOLEAN NOT NULL DEFAULT false;
CREATE TABLE IF NOT EXISTS wf_orders (
    workflow    TEXT NOT NULL,
    key         TEXT NOT NULL,
    accepted_ms BIGINT NOT NULL,
    execution   BIGINT NOT NULL,
    PRIMARY KEY (workflow, key, accepted_ms, execution)
);
CREATE INDEX IF NOT EXISTS wf_orders_execution ON wf_orders (execution);
CREATE TABLE IF NOT EXISTS wf_rates (
    workflow  TEXT NOT NULL,
    key       TEXT NOT NULL,
    window_ms BIGINT NOT NULL,
    last_ms   BIGINT NOT NULL,
    starts    BIGINT[] NOT NULL,
    PRIMARY KEY (workflow, key)
);
CREATE TABLE IF NOT EXISTS wf_settings (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
";

/// A run parked waiting for its callback, only while this instance owns it: due when the
/// callback expires, or at once when it was called meanwhile (the callback's row is locked, so
/// a call at the same moment either comes first and is seen, or comes after and finds the run
/// parked).
pub(super) const WAIT_PARKED: &str = "
WITH cb AS (SELECT state, expires_ms FROM wf_callbacks WHERE hash = $3 FOR UPDATE),
mine AS (
    UPDATE wf_executions SET state = 'parked', owner = NULL,
        due_ms = coalesce((SELECT CASE WHEN state = 'waiting' THEN expires_ms ELSE 0 END FROM cb), 0)
    WHERE id = $1 AND owner = $2
    RETURNING id)
INSERT INTO wf_steps (execution, n, kind, state, result, ended_ms) SELECT id, $4, 'wait', 'waiting', '{\"attempts\":0}', $5 FROM mine
ON CONFLICT (execution, n) DO UPDATE SET state = 'waiting', result = EXCLUDED.result, reason = NULL,
    ended_ms = EXCLUDED.ended_ms";

/// A batch of accepted runs in one statement: each column's values as an array. A plain insert
/// (no `ON CONFLICT`, which costs a check and a confirmation per row): ids are new, and an id
/// already taken fails the batch, whose callers are told 503, rather than answering 202 for a
/// run that was not kept.
pub(super) const INSERT_RUNS: &str = "
INSERT INTO wf_executions (id, workflow, mode, state, version, owner, started_ms, request, frame, env_names)
SELECT t.id, t.workflow, 'async', 'queued', t.version, $4, t.started_ms, t.request, t.frame, t.env_names
FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[])
    AS t(id, workflow, version, started_ms, request, frame, env_names)";

/// One run and its key in one statement: the run is inserted only when the key was claimed.
pub(super) const INSERT_KEYED_RUN: &str = "
WITH k AS (
    INSERT INTO wf_dedupe (workflow, key, execution, expires_ms) VALUES ($9, $10, $1, $11)
    ON CONFLICT (workflow, key) DO UPDATE SET execution = EXCLUDED.execution,
        expires_ms = EXCLUDED.expires_ms, answer = NULL
    WHERE wf_dedupe.expires_ms <= $12
    RETURNING execution)
INSERT INTO wf_executions (id, workflow, mode, state, version, owner, started_ms, request, frame, env_names)
SELECT $1::BIGINT, $2::TEXT, 'async', 'queued', $3::TEXT, $4::TEXT, $5::BIGINT, $6::TEXT, $7::TEXT, $8::TEXT FROM k
ON CONFLICT (id) DO NOTHING RETURNING id";

/// A batch of runs with `dedupe` keys in one statement (each column's values as an array, no
/// key twice): each key claimed, in the keys' order (so that two instances claiming the same
/// keys wait for each other in one order, never in a cycle), and the runs whose key was claimed
/// inserted.
pub(super) const INSERT_KEYED_RUNS: &str = "
WITH t AS (
    SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[],
        $9::TEXT[], $10::TEXT[], $11::BIGINT[])
        AS t(id, workflow, version, started_ms, request, frame, env_names, key_workflow, key, expires_ms)),
k AS (
    INSERT INTO wf_dedupe (workflow, key, execution, expires_ms)
    SELECT key_workflow, key, id, expires_ms FROM t ORDER BY key_workflow, key
    ON CONFLICT (workflow, key) DO UPDATE SET execution = EXCLUDED.execution,
        expires_ms = EXCLUDED.expires_ms, answer = NULL
    WHERE wf_dedupe.expires_ms <= $12
    RETURNING execution)
INSERT INTO wf_executions (id, workflow, mode, state, version, owner, started_ms, request, frame, env_names)
SELECT t.id, t.workflow, 'async', 'queued', t.version, $4, t.started_ms, t.request, t.frame, t.env_names
FROM t JOIN k ON k.execution = t.id
RETURNING id";

pub(super) const CLAIM_KEY: &str = "
INSERT INTO wf_dedupe (workflow, key, execution, expires_ms) VALUES ($1, $2, $3, $4)
ON CONFLICT (workflow, key) DO UPDATE SET execution = EXCLUDED.execution,
    expires_ms = EXCLUDED.expires_ms, answer = NULL
WHERE wf_dedupe.expires_ms <= $5
RETURNING execution";

pub(super) const HELD_KEY: &str =
    "SELECT execution, answer FROM wf_dedupe WHERE workflow = $1 AND key = $2 AND expires_ms > $3";

/// A step's end, recorded only while this instance owns the run.
pub(super) const STEP_ENDED: &str = "
WITH mine AS (SELECT id FROM wf_executions WHERE id = $1 AND owner = $2 FOR SHARE)
INSERT INTO wf_steps (execution, n, kind, state, result, reason, ended_ms)
SELECT id, $3, '', $4, $5, $6, $7 FROM mine
ON CONFLICT (execution, n) DO UPDATE SET state = EXCLUDED.state, result = EXCLUDED.result,
    reason = EXCLUDED.reason, ended_ms = EXCLUDED.ended_ms";

/// A run parked until its step's next attempt is due: let go (any instance takes it once due),
/// only while this instance owns it.
pub(super) const STEP_PARKED: &str = "
WITH mine AS (
    UPDATE wf_executions SET state = 'parked', due_ms = $3, owner = NULL WHERE id = $1 AND owner = $2
    RETURNING id)
INSERT INTO wf_steps (execution, n, kind, state, result, ended_ms) SELECT id, $4, $7, 'waiting', $5, $6 FROM mine
ON CONFLICT (execution, n) DO UPDATE SET state = 'waiting', result = EXCLUDED.result, reason = NULL,
    ended_ms = EXCLUDED.ended_ms";

/// A sync step's end (a sync execution has no owner to check).
pub(super) const STEP_NOTED: &str = "
INSERT INTO wf_steps (execution, n, kind, state, result, reason, ended_ms) VALUES ($1, $2, '', $3, $4, $5, $6)
ON CONFLICT (execution, n) DO UPDATE SET state = EXCLUDED.state, result = EXCLUDED.result,
    reason = EXCLUDED.reason, ended_ms = EXCLUDED.ended_ms";

/// A step's start. Gathered writes may reach the database after the step's end (which is
/// written at once): a start never undoes an end at or after it.
pub(super) const STEP_STARTED: &str = "
INSERT INTO wf_steps (execution, n, kind, state, request, started_ms) VALUES ($1, $2, $3, 'started', $4, $5)
ON CONFLICT (execution, n) DO UPDATE SET kind = EXCLUDED.kind, request = EXCLUDED.request,
    started_ms = EXCLUDED.started_ms,
    state = CASE WHEN wf_steps.ended_ms >= EXCLUDED.started_ms THEN wf_steps.state ELSE 'started' END,
    result = CASE WHEN wf_steps.ended_ms >= EXCLUDED.started_ms THEN wf_steps.result END,
    reason = CASE WHEN wf_steps.ended_ms >= EXCLUDED.started_ms THEN wf_steps.reason END,
    attempts = CASE WHEN wf_steps.started_ms IS NULL THEN wf_steps.attempts ELSE wf_steps.attempts + 1 END";

pub(super) const RUNNING: &str =
    "UPDATE wf_executions SET state = 'running' WHERE id = ANY($1) AND state = 'queued'";

pub(super) const STEP_VALUE: &str = "
INSERT INTO wf_steps (execution, n, kind, state, result, started_ms, ended_ms) VALUES ($1, $2, $3, 'finished', $4, $5, $5)
ON CONFLICT (execution, n) DO UPDATE SET kind = EXCLUDED.kind, state = 'finished', result = EXCLUDED.result,
    started_ms = EXCLUDED.started_ms, ended_ms = EXCLUDED.ended_ms";

/// An execution's end: a sync one's whole record; an async run's end only while this instance
/// owns it.
/// Each column's values as an array, a row per execution (no id twice).
pub(super) const ENDED: &str = "
INSERT INTO wf_executions (id, workflow, mode, state, started_ms, ended_ms, duration_ms, status, outcome, reason, at, logs, attempts, request)
SELECT t.id, t.workflow, t.mode, 'ended', t.started_ms, t.ended_ms, t.duration_ms, t.status, t.outcome, t.reason, t.at,
    t.logs, t.attempts, t.request
FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::INTEGER[], $8::TEXT[],
    $9::TEXT[], $10::TEXT[], $11::TEXT[], $13::INTEGER[], $14::TEXT[])
    AS t(id, workflow, mode, started_ms, ended_ms, duration_ms, status, outcome, reason, at, logs, attempts, request)
ON CONFLICT (id) DO UPDATE SET state = 'ended', ended_ms = EXCLUDED.ended_ms,
    duration_ms = EXCLUDED.duration_ms, status = EXCLUDED.status, outcome = EXCLUDED.outcome,
    reason = EXCLUDED.reason, at = EXCLUDED.at, logs = EXCLUDED.logs,
    attempts = wf_executions.attempts + EXCLUDED.attempts,
    request = COALESCE(EXCLUDED.request, wf_executions.request),
    frame = CASE WHEN EXCLUDED.outcome = 'failed' THEN wf_executions.frame END
WHERE wf_executions.mode = 'sync' OR wf_executions.owner = $12";

/// Deletes a workflow's rejections but the newest `$2`.
pub(super) const TRIM_REJECTED: &str = "
DELETE FROM wf_executions WHERE id IN (
    SELECT id FROM wf_executions WHERE outcome = 'rejected' AND workflow = $1
    ORDER BY started_ms DESC, id DESC OFFSET $2)";

/// The `dedupe` key of a run that failed, let go.
pub(super) const RELEASE_FAILED: &str = "DELETE FROM wf_dedupe WHERE execution = $1 AND answer IS NULL";

/// Takes runs no live instance holds: their owner's lease expired, or they have no owner.
pub(super) const TAKE_RUNS: &str = "
UPDATE wf_executions e SET owner = $1,
    state = CASE WHEN e.state = 'running' THEN 'running' ELSE 'queued' END
WHERE e.id IN (
    SELECT c.id FROM wf_executions c
    WHERE c.state <> 'ended'
      AND (c.owner IS NULL OR NOT EXISTS
           (SELECT 1 FROM wf_instances i WHERE i.id = c.owner AND i.lease_until > now()))
      AND (c.state <> 'parked' OR c.due_ms <= $3)
    ORDER BY c.started_ms, c.id LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING e.id, e.workflow, e.frame, e.started_ms, e.version, e.retries, e.mode, e.request";

/// Takes a free place of a workflow's `concurrency`: one no live instance holds.
pub(super) const TAKE_PLACE: &str = "
WITH free AS (
    SELECT s FROM generate_series(0, $2::INTEGER - 1) s
    WHERE NOT EXISTS (SELECT 1 FROM wf_places p JOIN wf_instances i ON i.id = p.owner
                      WHERE p.workflow = $1 AND p.place = s AND i.lease_until > now())
    ORDER BY s LIMIT 1)
INSERT INTO wf_places (workflow, place, owner, execution) SELECT $1, s, $3, $4 FROM free
ON CONFLICT (workflow, place) DO UPDATE SET owner = EXCLUDED.owner, execution = EXCLUDED.execution
WHERE NOT EXISTS (SELECT 1 FROM wf_instances i WHERE i.id = wf_places.owner AND i.lease_until > now())
RETURNING place";

pub(super) const COLUMNS: &str =
    "id, workflow, mode, state, outcome, status, started_ms, duration_ms, reason, at, attempts, logs, request";

/// Why a migration did not happen.
enum Unmigrated {
    /// PostgreSQL ended a lock wait as a deadlock: an instance already serving held a lock the
    /// schema's statements wait for. Trying again is right.
    Deadlock(String),
    Failed(String),
}

/// A database error as [`Unmigrated`], by its SQLSTATE.
fn unmigrated(e: tokio_postgres::Error) -> Unmigrated {
    if e.code() == Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED) {
        Unmigrated::Deadlock(sql(e))
    } else {
        Unmigrated::Failed(sql(e))
    }
}

/// Creates or migrates the schema, under an advisory lock so several instances may start at once.
pub(super) async fn migrate(pool: &Pool) -> Result<(), String> {
    let mut tries = 0;
    loop {
        match migrate_once(pool).await {
            Ok(()) => return Ok(()),
            Err(Unmigrated::Deadlock(_)) if tries < 4 => tries += 1,
            Err(Unmigrated::Deadlock(why) | Unmigrated::Failed(why)) => return Err(why),
        }
    }
}

async fn migrate_once(pool: &Pool) -> Result<(), Unmigrated> {
    let mut client = pool.get().await.map_err(|e| Unmigrated::Failed(pooled(e)))?;
    let tx = client.transaction().await.map_err(unmigrated)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(unmigrated)?;
    tx.batch_execute(SCHEMA).await.map_err(unmigrated)?;
    let found: Option<i32> = tx
        .query_opt("SELECT max(version) FROM wf_schema", &[])
        .await
        .map_err(unmigrated)?
        .and_then(|r| r.get(0));
    match found {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(Unmigrated::Failed(format!(
                "it has schema {v}, newer than this wf's {SCHEMA_VERSION}; use a newer wf"
            )));
        }
        Some(_) => {}
        None => {
            tx.execute("INSERT INTO wf_schema (version) VALUES ($1)", &[&SCHEMA_VERSION])
                .await
                .map_err(unmigrated)?;
        }
    }
    tx.commit().await.map_err(unmigrated)
}
