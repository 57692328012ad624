//! The history of sync executions in the embedded store: one row per batch (and per block of
//! 4,096 ids, and per 256 records), holding that batch's records one after another in a compact
//! binary form (`postcard`: numbers as varints, strings as length and bytes), compressed
//! (`compressed.rs`), rather than a row per execution.
//! Under load, SQLite's B-tree work per row was most of the writer's time; a batch's records
//! cost one insert. `wf runs` reads them back as rows: `list` takes the rows newest first and
//! stops once no older row can hold a record it would show; `show` looks in the rows of the id's
//! block; `prune` deletes whole rows, and rewrites the one row a cut falls inside.

use super::super::{hex, key, Ended, Filter, Mode, Outcome, RunView, State, Status};
use super::compressed::{self, Frames};
use crate::request::received::stored_json;
use rusqlite::{params, Connection, Transaction};

/// Ids whose records share a row when they end in one batch: `id >> BLOCK`.
const BLOCK: u32 = 12;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS history (
    block    INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms  INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    records  BLOB NOT NULL,
    stepped  TEXT,
    requests BLOB,
    form     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS history_block ON history (block);
CREATE INDEX IF NOT EXISTS history_first ON history (first_ms);
CREATE INDEX IF NOT EXISTS history_last ON history (last_ms);
";

/// One record as a row keeps it: id, workflow, status, outcome, started, duration, reason, at,
/// log lines, attempts its effects made (in this order, which is the encoding: change it only
/// with the schema version).
type Stored = (i64, String, u16, String, i64, i64, Option<String>, Option<String>, Vec<String>, u32);

/// The requests of a row's records, for `show` only (`list` never reads them): (id, request as
/// [`Received::to_stored`] keeps it, or as JSON text in rows written before it), in the same
/// compact form.
type Requests = Vec<(i64, Vec<u8>)>;

/// How a row's records and requests are written (its `form` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// 0, as schema 3 to 9 wrote them: the records one after another, the requests as
    /// postcard's form of [`Requests`].
    Plain,
    /// 1: compressed (`compressed.rs`), the records in a block, the requests in frames.
    Compressed,
}

impl rusqlite::types::FromSql for Form {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match value.as_i64()? {
            0 => Ok(Form::Plain),
            1 => Ok(Form::Compressed),
            n => Err(rusqlite::types::FromSqlError::OutOfRange(n)),
        }
    }
}

impl rusqlite::ToSql for Form {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(match self {
            Form::Plain => 0i64,
            Form::Compressed => 1,
        }))
    }
}

/// Most records in one row. The writer yields the processor between rows: on a machine whose
/// cores are busy answering requests, its work then comes in slices short enough not to hold
/// up a request behind it for long.
const ROW: usize = 256;

/// A record as schema 3 kept it (without attempts).
type StoredV3 = (i64, String, u16, String, i64, i64, Option<String>, Option<String>, Vec<String>);

/// Schema 3 to 4: every record gains its attempts (0: schema 3 did not count them).
pub(super) fn add_attempts(tx: &Transaction<'_>) -> Result<(), rusqlite::Error> {
    let mut rows: Vec<(i64, Vec<u8>)> = Vec::new();
    {
        let mut statement = tx.prepare("SELECT rowid, records FROM history")?;
        let mut found = statement.query([])?;
        while let Some(row) = found.next()? {
            rows.push((row.get(0)?, row.get(1)?));
        }
    }
    let mut update = tx.prepare("UPDATE history SET records = ?2 WHERE rowid = ?1")?;
    for (rowid, bytes) in rows {
        let mut rest: &[u8] = &bytes;
        let mut records = Vec::new();
        while let Ok((r, next)) = postcard::take_from_bytes::<StoredV3>(rest) {
            records.push((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, 0));
            rest = next;
        }
        update.execute(params![rowid, encode(&records)])?;
    }
    Ok(())
}

/// Writes the sync executions that ended in a batch (with whether each journaled steps): one row
/// per block of ids.
pub(super) fn write(tx: &Transaction<'_>, ended: &mut [(i64, &Ended, bool)]) -> Result<(), rusqlite::Error> {
    ended.sort_unstable_by_key(|(id, _, _)| *id);
    let mut statement = tx.prepare_cached(
        "INSERT INTO history (block, first_ms, last_ms, count, records, stepped, requests, form) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut raw: Vec<u8> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut requests = Frames::default();
    let groups = ended.chunk_by(|(a, _, _), (b, _, _)| a >> BLOCK == b >> BLOCK).flat_map(|g| g.chunks(ROW));
    for (i, group) in groups.enumerate() {
        let (Some((first_id, _, _)), Some(first_ms), Some(last_ms)) = (
            group.first(),
            group.iter().map(|(_, e, _)| e.started_ms).min(),
            group.iter().map(|(_, e, _)| e.started_ms).max(),
        ) else {
            continue;
        };
        if i > 0 {
            std::thread::yield_now();
        }
        raw.clear();
        for (id, e, _) in group {
            let record = (
                id,
                &*e.workflow,
                e.status,
                e.outcome.as_str(),
                e.started_ms,
                e.duration_ms,
                &e.reason,
                &e.at,
                &e.logs,
                e.attempts,
            );
            // Numbers, strings and options always encode (into a vector, which cannot fail).
            raw = postcard::to_extend(&record, std::mem::take(&mut raw)).unwrap_or_default();
        }
        bytes.clear();
        compressed::block(&raw, &mut bytes);
        // Their requests, written here on the writer's thread.
        requests.clear();
        for (id, e, _) in group {
            if let Some(r) = &e.request {
                requests.push(*id, |out| r.to_stored(out));
            }
        }
        // The executions that journaled steps (kept in the steps table): rare, pruned with them.
        let stepped: Vec<i64> = group.iter().filter(|(_, _, s)| *s).map(|(id, _, _)| *id).collect();
        let stepped = (!stepped.is_empty()).then(|| serde_json::to_string(&stepped).unwrap_or_default());
        statement.execute(params![
            first_id >> BLOCK,
            first_ms,
            last_ms,
            group.len() as i64,
            bytes,
            stepped,
            requests.finish(),
            Form::Compressed
        ])?;
    }
    Ok(())
}

/// The records a row of `form` holds (those before any damage, if it is damaged).
fn records(form: Form, bytes: &[u8]) -> Vec<Stored> {
    match form {
        Form::Plain => plain_records(bytes),
        Form::Compressed => compressed::unblock(bytes).map(|raw| plain_records(&raw)).unwrap_or_default(),
    }
}

/// Records one after another (those before any damage).
fn plain_records(mut bytes: &[u8]) -> Vec<Stored> {
    let mut all = Vec::new();
    while !bytes.is_empty() {
        match postcard::take_from_bytes::<Stored>(bytes) {
            Ok((record, rest)) => {
                all.push(record);
                bytes = rest;
            }
            Err(_) => break,
        }
    }
    all
}

/// Records one after another, as a row of [`Form::Plain`] holds them.
fn encode(records: &[Stored]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for r in records {
        let _ = postcard::to_io(r, &mut bytes);
    }
    bytes
}

fn view(r: Stored) -> RunView {
    let (id, workflow, status, outcome, started_ms, duration_ms, reason, at, logs, attempts) = r;
    RunView {
        id: hex(id),
        workflow,
        mode: Mode::Sync,
        state: State::Ended,
        outcome: Outcome::parse(&outcome),
        status: Some(status),
        started_ms,
        duration_ms: Some(duration_ms),
        reason,
        at,
        attempts: i64::from(attempts),
        logs,
        request: None,
        steps: Vec::new(),
    }
}

/// The newest records `f` selects, newest first (at most `f.limit`).
pub(super) fn list(conn: &Connection, f: &Filter) -> Result<Vec<RunView>, rusqlite::Error> {
    let limit = f.limit.max(1);
    let since = f.since_ms.unwrap_or(0);
    // A row whose first record started after the page's key holds none of the page.
    let (after_ms, _) = f.after_keys();
    let mut statement = conn.prepare(
        "SELECT last_ms, records, form FROM history WHERE last_ms >= ?1 AND first_ms <= ?2 ORDER BY last_ms DESC",
    )?;
    let mut rows = statement.query(params![since, after_ms])?;
    let mut found: Vec<Stored> = Vec::new();
    while let Some(row) = rows.next()? {
        let last_ms: i64 = row.get(0)?;
        // Every record of this row and the rest started at `last_ms` or before: once `limit`
        // records started later, none of them is shown.
        if found.len() >= limit && found.last().is_some_and(|r| r.4 > last_ms) {
            break;
        }
        let bytes: Vec<u8> = row.get(1)?;
        found.extend(records(row.get(2)?, &bytes).into_iter().filter(|r| {
            r.4 >= since
                && f.is_after(r.4, r.0)
                && f.workflow.as_ref().is_none_or(|w| *w == r.1)
                && f.status.is_none_or(|s| s.stored() == r.3 || s == Status::State(State::Ended))
        }));
        if found.len() >= limit {
            found.sort_unstable_by_key(|r| std::cmp::Reverse((r.4, r.0)));
            found.truncate(limit);
        }
    }
    found.sort_unstable_by_key(|r| std::cmp::Reverse((r.4, r.0)));
    found.truncate(limit);
    Ok(found.into_iter().map(view).collect())
}

/// The record of execution `id`, if the history has it.
pub(super) fn show(conn: &Connection, id: &str) -> Result<Option<RunView>, rusqlite::Error> {
    let id = key(id);
    let mut statement =
        conn.prepare("SELECT rowid, records, requests IS NOT NULL, form FROM history WHERE block = ?1")?;
    let mut rows = statement.query(params![id >> BLOCK])?;
    while let Some(row) = rows.next()? {
        let bytes: Vec<u8> = row.get(1)?;
        let form: Form = row.get(3)?;
        if let Some(r) = records(form, &bytes).into_iter().find(|r| r.0 == id) {
            let mut shown = view(r);
            if row.get::<_, bool>(2)? {
                read_requests(
                    conn,
                    (row.get(0)?, form),
                    |of| of == id,
                    |_, kept| {
                        shown.request = stored_json(kept).and_then(|text| serde_json::from_str(&text).ok());
                    },
                )?;
            }
            return Ok(Some(shown));
        }
    }
    Ok(None)
}

/// Fills in the requests of the sync executions among `runs` (those without one), reading from
/// each row of their blocks only the requests wanted.
pub(super) fn requests(conn: &Connection, runs: &mut [RunView]) -> Result<(), rusqlite::Error> {
    let wanted: std::collections::HashMap<i64, usize> = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.request.is_none() && r.mode == Mode::Sync)
        .map(|(i, r)| (key(&r.id), i))
        .collect();
    let blocks: std::collections::BTreeSet<i64> = wanted.keys().map(|id| id >> BLOCK).collect();
    let mut statement =
        conn.prepare_cached("SELECT rowid, form FROM history WHERE block = ?1 AND requests IS NOT NULL")?;
    for block in blocks {
        let rows: Vec<(i64, Form)> =
            statement.query_map(params![block], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        for row in rows {
            read_requests(
                conn,
                row,
                |id| wanted.contains_key(&id),
                |id, kept| {
                    if let Some(run) = wanted.get(&id).and_then(|&i| runs.get_mut(i)) {
                        run.request = stored_json(kept).and_then(|text| serde_json::from_str(&text).ok());
                    }
                },
            )?;
        }
    }
    Ok(())
}

/// Reads the requests row `rowid` of `form` keeps a piece at a time, giving `found` those
/// `wanted` says to read and skipping the others: a row holding many large requests costs only
/// the ones read (of [`Form::Compressed`], the frames that hold them). A damaged row gives what
/// came before the damage.
fn read_requests(
    conn: &Connection,
    (rowid, form): (i64, Form),
    wanted: impl Fn(i64) -> bool,
    mut found: impl FnMut(i64, &[u8]),
) -> Result<(), rusqlite::Error> {
    use compressed::read_varint as varint;
    use std::io::Read;
    let blob = conn.blob_open(rusqlite::MAIN_DB, c"history", c"requests", rowid, true)?;
    let size = blob.len() as u64;
    let mut r = std::io::BufReader::with_capacity(8 << 10, blob);
    if form == Form::Compressed {
        compressed::read_frames(&mut r, size, wanted, found);
        return Ok(());
    }
    // Plain: postcard's form of `Requests`, a count, then each id as a zigzag varint and
    // request as a varint length and bytes.
    let Some(count) = varint(&mut r) else { return Ok(()) };
    for _ in 0..count {
        let (Some(zigzag), Some(len)) = (varint(&mut r), varint(&mut r)) else { break };
        let id = compressed::unzigzag(zigzag);
        if len > size {
            break;
        }
        if wanted(id) {
            let mut kept = vec![0u8; len as usize];
            if r.read_exact(&mut kept).is_err() {
                break;
            }
            found(id, &kept);
        } else if r.seek_relative(len as i64).is_err() {
            break;
        }
    }
    Ok(())
}

/// A row looked at by `prune`: rowid, last_ms, count, records, stepped, requests, form.
type PruneRow = (i64, i64, i64, Vec<u8>, Option<String>, Option<Vec<u8>>, Form);

/// Deletes the records that started before `before_ms`, looking at `rows` rows at most (the
/// oldest first): a row all of whose records are older goes whole, a row the cut falls inside
/// is written again with the rest. Gives how many records went: `rows` or more when there may
/// be more (each row looked at holds at least one record older than the cut).
pub(super) fn prune(tx: &Transaction<'_>, before_ms: i64, rows: usize) -> Result<usize, rusqlite::Error> {
    let limit = i64::try_from(rows).unwrap_or(i64::MAX);
    let old: Vec<PruneRow> = {
        let mut statement = tx.prepare(
            "SELECT rowid, last_ms, count, records, stepped, requests, form FROM history WHERE first_ms < ?1 ORDER BY first_ms LIMIT ?2",
        )?;
        let found = statement.query_map(params![before_ms, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })?;
        found.collect::<Result<_, _>>()?
    };
    let mut gone = 0;
    let mut steps = tx.prepare_cached("DELETE FROM steps WHERE execution = ?1")?;
    for (rowid, last_ms, count, bytes, stepped, requests, form) in &old {
        let stepped: Vec<i64> =
            stepped.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        if *last_ms < before_ms {
            for id in &stepped {
                steps.execute(params![id])?;
            }
            tx.execute("DELETE FROM history WHERE rowid = ?1", params![rowid])?;
            gone += usize::try_from(*count).unwrap_or(0);
            continue;
        }
        let (kept, went): (Vec<Stored>, Vec<Stored>) =
            records(*form, bytes).into_iter().partition(|r| r.4 >= before_ms);
        for r in went.iter().filter(|r| stepped.contains(&r.0)) {
            steps.execute(params![r.0])?;
        }
        gone += went.len();
        let Some(first_ms) = kept.iter().map(|r| r.4).min() else {
            // Records that cannot be read back (a damaged row) are not kept either.
            tx.execute("DELETE FROM history WHERE rowid = ?1", params![rowid])?;
            continue;
        };
        rewrite(tx, *rowid, first_ms, &kept, stepped, requests.as_deref().map(|b| (*form, b)))?;
    }
    Ok(gone)
}

/// Writes row `rowid` again, compressed, with only the records `kept` (their steps and
/// requests with them); `requests` are the row's, of the form given.
fn rewrite(
    tx: &Transaction<'_>,
    rowid: i64,
    first_ms: i64,
    kept: &[Stored],
    stepped: Vec<i64>,
    requests: Option<(Form, &[u8])>,
) -> Result<(), rusqlite::Error> {
    let mut bytes = Vec::new();
    compressed::block(&encode(kept), &mut bytes);
    let stepped: Vec<i64> = stepped.into_iter().filter(|id| kept.iter().any(|r| r.0 == *id)).collect();
    let stepped = (!stepped.is_empty()).then(|| serde_json::to_string(&stepped).unwrap_or_default());
    let all: Requests = match requests {
        Some((Form::Compressed, b)) => compressed::all_requests(b),
        Some((Form::Plain, b)) => postcard::from_bytes::<Requests>(b).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut frames = Frames::default();
    for (id, request) in all.iter().filter(|(id, _)| kept.iter().any(|r| r.0 == *id)) {
        frames.push(*id, |out| out.extend_from_slice(request));
    }
    tx.execute(
        "UPDATE history SET first_ms = ?2, count = ?3, records = ?4, stepped = ?5, requests = ?6, form = ?7 WHERE rowid = ?1",
        params![rowid, first_ms, kept.len() as i64, bytes, stepped, frames.finish(), Form::Compressed],
    )?;
    Ok(())
}

/// A row of an id's block: rowid, records, stepped, requests, form.
type BlockRow = (i64, Vec<u8>, Option<String>, Option<Vec<u8>>, Form);

/// Takes the record of execution `id` out of the history (a `wf runs retry` makes it a run the
/// store keeps as a row of its own): gives it, with its request, if the history had it.
pub(super) fn take(tx: &Transaction<'_>, id: &str) -> Result<Option<RunView>, rusqlite::Error> {
    let Some(found) = show(tx, id)? else { return Ok(None) };
    let id = key(id);
    let rows: Vec<BlockRow> = {
        let mut statement =
            tx.prepare("SELECT rowid, records, stepped, requests, form FROM history WHERE block = ?1")?;
        let found = statement.query_map(params![id >> BLOCK], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        found.collect::<Result<_, _>>()?
    };
    for (rowid, bytes, stepped, requests, form) in rows {
        let all = records(form, &bytes);
        if !all.iter().any(|r| r.0 == id) {
            continue;
        }
        let kept: Vec<Stored> = all.into_iter().filter(|r| r.0 != id).collect();
        let Some(first_ms) = kept.iter().map(|r| r.4).min() else {
            tx.execute("DELETE FROM history WHERE rowid = ?1", params![rowid])?;
            continue;
        };
        let stepped: Vec<i64> =
            stepped.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        rewrite(tx, rowid, first_ms, &kept, stepped, requests.as_deref().map(|b| (form, b)))?;
    }
    Ok(Some(found))
}

/// Reads `bytes` as every part of a history row would be read: records of either form, and
/// requests in frames, those of even ids then all. Gives how many records, even requests and
/// requests came back. For the fuzz target `history_row`: a damaged row must read without
/// panicking or allocating what it cannot hold.
pub(super) fn read_any(bytes: &[u8]) -> (usize, usize, usize) {
    let mut even = 0;
    let mut r = std::io::Cursor::new(bytes);
    compressed::read_frames(&mut r, bytes.len() as u64, |id| id & 1 == 0, |_, _| even += 1);
    let records = records(Form::Compressed, bytes).len() + records(Form::Plain, bytes).len();
    (records, even, compressed::all_requests(bytes).len())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in super::super) fn ended(id: u64, started_ms: i64, workflow: &str) -> Ended {
        Ended {
            id: id as i64,
            workflow: workflow.into(),
            mode: crate::store::Mode::Sync,
            started_ms,
            duration_ms: 1,
            status: 200,
            outcome: crate::store::Outcome::Responded,
            reason: None,
            at: None,
            logs: vec![format!("log of {id}")],
            attempts: 0,
            request: None,
            kept: false,
        }
    }

    fn store() -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(super::super::SCHEMA).expect("the store's schema");
        conn.execute_batch(SCHEMA).expect("schema");
        conn
    }

    fn write_batch(conn: &mut Connection, batch: &[Ended]) {
        let tx = conn.transaction().expect("tx");
        // Executions whose logs say so journaled steps.
        let mut keyed: Vec<(i64, &Ended, bool)> =
            batch.iter().map(|e| (e.id, e, e.logs.iter().any(|l| l == "stepped"))).collect();
        write(&tx, &mut keyed).expect("write");
        tx.commit().expect("commit");
    }

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM history", [], |r| r.get(0)).expect("count")
    }

    fn ids(views: &[RunView]) -> Vec<String> {
        views.iter().map(|v| v.id.clone()).collect()
    }

    #[test]
    fn a_batch_is_a_row_per_block_of_ids_and_row_size_and_every_record_is_found_again() {
        let mut conn = store();
        // 5,000 ids from one counter, across two blocks, ending out of order; one far away.
        let mut batch: Vec<Ended> =
            (0..5_000u64).rev().map(|i| ended(0x7000_0000_0000_0000 + i, 10_000 + i as i64, "w")).collect();
        batch.push(ended(0x0123, 5, "other"));
        write_batch(&mut conn, &batch);
        // 4,096 ids in the first block, 904 in the second, one in a third: rows of 256 at most.
        assert_eq!(rows(&conn), (4_096 / ROW + 904usize.div_ceil(ROW) + 1) as i64);
        for id in [
            0x7000_0000_0000_0000u64,
            0x7000_0000_0000_0fff,
            0x7000_0000_0000_1000,
            0x7000_0000_0000_1387,
            0x0123,
        ] {
            let shown = show(&conn, &format!("{id:016x}")).expect("show").expect("found");
            assert_eq!(shown.logs, [format!("log of {id}")]);
            assert_eq!((shown.mode.as_str(), shown.state.as_str()), ("sync", "ended"));
        }
        assert!(show(&conn, "7000000000001388").expect("show").is_none());
    }

    #[test]
    fn schema_3_records_gain_their_attempts_and_keep_everything_else() {
        let mut conn = store();
        let old: StoredV3 = (5, "w".into(), 201, "responded".into(), 10, 2, None, None, vec!["hi".into()]);
        let mut bytes = postcard::to_stdvec(&old).expect("encode");
        bytes.extend(
            postcard::to_stdvec(&(
                6i64,
                "w",
                500u16,
                "failed",
                11i64,
                3i64,
                Some("boom"),
                None::<String>,
                Vec::<String>::new(),
            ))
            .expect("encode"),
        );
        conn.execute(
            "INSERT INTO history (block, first_ms, last_ms, count, records) VALUES (0, 10, 11, 2, ?1)",
            params![bytes],
        )
        .expect("a schema 3 row");
        let tx = conn.transaction().expect("tx");
        add_attempts(&tx).expect("migrated");
        tx.commit().expect("commit");
        let five = show(&conn, "0000000000000005").expect("show").expect("found");
        assert_eq!((five.status, five.logs.clone(), five.attempts), (Some(201), vec!["hi".to_string()], 0));
        let six = show(&conn, "0000000000000006").expect("show").expect("found");
        assert_eq!((six.reason.as_deref(), six.outcome), (Some("boom"), Some(Outcome::Failed)));
    }

    #[test]
    fn list_gives_the_newest_first_across_rows_and_filters() {
        let mut conn = store();
        // Three batches whose start times interleave: a slow execution ends in a later batch.
        write_batch(&mut conn, &[ended(1, 100, "a"), ended(2, 300, "b")]);
        write_batch(&mut conn, &[ended(0x5000, 200, "a"), ended(0x5001, 400, "a")]);
        write_batch(&mut conn, &[ended(0x9000, 150, "b")]);
        let all = list(&conn, &Filter { limit: 10, ..Filter::default() }).expect("list");
        assert_eq!(
            ids(&all),
            [
                "0000000000005001",
                "0000000000000002",
                "0000000000005000",
                "0000000000009000",
                "0000000000000001"
            ]
        );
        let two = list(&conn, &Filter { limit: 2, ..Filter::default() }).expect("list");
        assert_eq!(ids(&two), ["0000000000005001", "0000000000000002"]);
        let b = list(&conn, &Filter { workflow: Some("b".into()), limit: 10, ..Filter::default() })
            .expect("list");
        assert_eq!(ids(&b), ["0000000000000002", "0000000000009000"]);
        let recent =
            list(&conn, &Filter { since_ms: Some(250), limit: 10, ..Filter::default() }).expect("list");
        assert_eq!(ids(&recent), ["0000000000005001", "0000000000000002"]);
        let failed = list(
            &conn,
            &Filter { status: Some(Status::Outcome(Outcome::Failed)), limit: 10, ..Filter::default() },
        )
        .expect("list");
        assert!(failed.is_empty());
    }

    #[test]
    fn prune_deletes_old_rows_whole_and_rewrites_the_row_a_cut_falls_inside() {
        let mut conn = store();
        let stepped =
            |id: u64, started_ms: i64| Ended { logs: vec!["stepped".into()], ..ended(id, started_ms, "a") };
        write_batch(&mut conn, &[stepped(1, 100), ended(2, 200, "a")]);
        write_batch(&mut conn, &[stepped(3, 300), stepped(4, 500)]);
        write_batch(&mut conn, &[ended(5, 600, "a")]);
        for id in [1, 3, 4] {
            conn.execute(
                "INSERT INTO steps (execution, n, kind, state) VALUES (?1, 1, 'http', 'finished')",
                [id],
            )
            .expect("a step");
        }
        let steps = |conn: &Connection| -> Vec<i64> {
            let mut s = conn.prepare("SELECT execution FROM steps ORDER BY execution").expect("prepare");
            s.query_map([], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("rows")
        };
        let tx = conn.transaction().expect("tx");
        assert_eq!(prune(&tx, 400, 1).expect("prune"), 2, "the oldest row, whole");
        assert_eq!(steps(&tx), [3, 4], "with the steps of its executions");
        assert_eq!(prune(&tx, 400, 10).expect("prune"), 1, "one record of the next");
        assert_eq!(steps(&tx), [4]);
        assert_eq!(prune(&tx, 400, 10).expect("prune"), 0);
        tx.commit().expect("commit");
        let left = list(&conn, &Filter { limit: 10, ..Filter::default() }).expect("list");
        assert_eq!(ids(&left), ["0000000000000005", "0000000000000004"]);
        assert!(show(&conn, "0000000000000003").expect("show").is_none());
        // The row rewritten still says which of its executions had steps.
        let tx = conn.transaction().expect("tx");
        assert_eq!(prune(&tx, 10_000, 10).expect("prune"), 2);
        assert!(steps(&tx).is_empty());
    }

    /// Workflow `w` as served, and a budget for the bodies its requests keep.
    fn served() -> (
        std::sync::Arc<crate::request::served::Served>,
        std::sync::Arc<crate::request::body_memory::BodyMemory>,
    ) {
        let loaded = crate::lang::loader::load_str("w.wf", "workflow w { trigger webhook { path \"/w\" } }");
        let router = crate::request::served::build(loaded.program, &|_| None).expect("builds");
        let served = router.workflows().next().cloned().expect("served");
        (served, std::sync::Arc::new(crate::request::body_memory::BodyMemory::new(1 << 20)))
    }

    #[test]
    fn kept_requests_read_back_whole_and_survive_a_row_written_again() {
        use crate::request::received::Received;
        let (served, waiting) = served();
        let mut headers = http::HeaderMap::new();
        headers.insert("x-hub-signature-256", http::HeaderValue::from_static("sha256=abc"));
        let uri = http::Uri::from_static("/w?n=1");
        let with = |id: u64, started_ms: i64, body: &str| {
            let r =
                Received::take((&http::Method::POST, &uri, &headers), body.as_bytes(), 64, &waiting, &served);
            Ended { request: Some(std::sync::Arc::new(r)), ..ended(id, started_ms, "w") }
        };
        let mut conn = store();
        write_batch(&mut conn, &[with(1, 100, "{\"a\":1}"), with(2, 200, "é \" \\"), ended(3, 300, "w")]);
        let request = |conn: &Connection, id: &str| show(conn, id).expect("show").expect("found").request;
        let second = serde_json::json!({"method": "POST", "target": "/w?n=1",
            "headers": {"x-hub-signature-256": "[masked]"}, "body": "é \" \\"});
        assert_eq!(request(&conn, "0000000000000002"), Some(second.clone()));
        // Pruning the first writes the row again: the others keep their requests.
        let tx = conn.transaction().expect("tx");
        assert_eq!(prune(&tx, 150, 10).expect("prune"), 1);
        tx.commit().expect("commit");
        assert_eq!(request(&conn, "0000000000000002"), Some(second));
        assert_eq!(request(&conn, "0000000000000003"), None);
        let mut runs = list(&conn, &Filter { limit: 10, ..Filter::default() }).expect("list");
        requests(&conn, &mut runs).expect("requests");
        assert_eq!(runs.iter().filter(|r| r.request.is_some()).count(), 1);
    }

    #[test]
    fn rows_written_plain_before_schema_10_read_as_before_and_are_compressed_when_written_again() {
        use crate::request::received::Received;
        let (served, waiting) = served();
        let uri = http::Uri::from_static("/w");
        let kept = |body: &str| {
            let r = Received::take(
                (&http::Method::POST, &uri, &http::HeaderMap::new()),
                body.as_bytes(),
                64,
                &waiting,
                &served,
            );
            let mut bytes = Vec::new();
            r.to_stored(&mut bytes);
            bytes
        };
        let conn = store();
        let record = |id: i64, started_ms: i64| -> Stored {
            (
                id,
                "w".into(),
                200,
                "responded".into(),
                started_ms,
                1,
                None,
                None,
                vec![format!("log of {id}")],
                2,
            )
        };
        let requests: Requests = vec![(1, kept("one")), (2, kept("two"))];
        conn.execute(
            "INSERT INTO history (block, first_ms, last_ms, count, records, requests) VALUES (0, 100, 200, 2, ?1, ?2)",
            params![encode(&[record(1, 100), record(2, 200)]), postcard::to_stdvec(&requests).expect("encode")],
        )
        .expect("a plain row");
        let body = |conn: &Connection, id: &str| {
            show(conn, id).expect("show").expect("found").request.map(|r| r["body"].clone())
        };
        assert_eq!(body(&conn, "0000000000000002"), Some(serde_json::json!("two")));
        let all = list(&conn, &Filter { limit: 10, ..Filter::default() }).expect("list");
        assert_eq!(ids(&all), ["0000000000000002", "0000000000000001"]);
        assert_eq!((all[0].logs.clone(), all[0].attempts), (vec!["log of 2".to_string()], 2));
        // Pruned, the row is written again compressed, with the request it keeps.
        let mut conn = conn;
        let tx = conn.transaction().expect("tx");
        assert_eq!(prune(&tx, 150, 10).expect("prune"), 1);
        tx.commit().expect("commit");
        let form: Form = conn.query_row("SELECT form FROM history", [], |r| r.get(0)).expect("form");
        assert_eq!(form, Form::Compressed);
        assert_eq!(body(&conn, "0000000000000002"), Some(serde_json::json!("two")));
        assert!(show(&conn, "0000000000000001").expect("show").is_none());
    }

    #[test]
    fn a_row_is_written_compressed_and_takes_a_fraction_of_its_plain_bytes() {
        let mut conn = store();
        let batch: Vec<Ended> = (0..256u64).map(|i| ended(0x7000 + i, 1_000 + i as i64, "payment")).collect();
        write_batch(&mut conn, &batch);
        let (form, size): (Form, i64) = conn
            .query_row("SELECT form, length(records) FROM history", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("one row");
        let plain: Vec<Stored> = records(
            form,
            &conn.query_row("SELECT records FROM history", [], |r| r.get::<_, Vec<u8>>(0)).expect("row"),
        );
        assert_eq!((form, plain.len()), (Form::Compressed, 256));
        let plain_size = encode(&plain).len() as i64;
        assert!(size * 3 < plain_size, "{size} bytes compressed, {plain_size} plain");
    }

    #[test]
    fn a_row_damaged_anywhere_reads_without_panicking() {
        let mut records = Vec::new();
        let stored =
            |id: i64| -> Stored { (id, "w".into(), 200, "responded".into(), id, 1, None, None, vec![], 0) };
        compressed::block(&encode(&(0..40).map(stored).collect::<Vec<_>>()), &mut records);
        let mut frames = Frames::default();
        for id in 0..40 {
            frames.push(id, |out| out.extend_from_slice(format!("request {id:>300}").as_bytes()));
        }
        let requests = frames.finish().expect("frames").to_vec();
        assert_eq!(read_any(&records).0, 40);
        assert_eq!(read_any(&requests).2, 40);
        for whole in [records, requests] {
            for cut in 0..whole.len() {
                read_any(&whole[..cut]);
            }
            for at in 0..whole.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut damaged = whole.clone();
                    damaged[at] ^= flip;
                    let (records, even, all) = read_any(&damaged);
                    assert!(records <= 2 * damaged.len() && even <= damaged.len() && all <= damaged.len());
                }
            }
        }
    }

    #[test]
    fn a_damaged_row_gives_the_records_before_the_damage_and_is_pruned() {
        let mut conn = store();
        write_batch(&mut conn, &[ended(1, 100, "a"), ended(2, 200, "a"), ended(3, 300, "a")]);
        // A compressed row cut short reads as nothing; a plain one gives what came before.
        conn.execute_batch("UPDATE history SET records = substr(records, 1, length(records) - 3)")
            .expect("damage");
        assert!(list(&conn, &Filter { limit: 10, ..Filter::default() }).expect("list").is_empty());
        let stored = |id: i64, at: i64| -> Stored {
            (id, "a".into(), 200, "responded".into(), at, 1, None, None, vec![format!("log of {id}")], 0)
        };
        let plain = encode(&[stored(1, 100), stored(2, 200), stored(3, 300)]);
        conn.execute("UPDATE history SET records = ?1, form = 0", params![plain]).expect("plain");
        conn.execute_batch("UPDATE history SET records = substr(records, 1, length(records) - 3)")
            .expect("damage");
        let left = list(&conn, &Filter { limit: 10, ..Filter::default() }).expect("list");
        assert_eq!(ids(&left), ["0000000000000002", "0000000000000001"]);
        assert!(show(&conn, "0000000000000003").expect("show").is_none());
        conn.execute_batch("UPDATE history SET records = x'ffffffff'").expect("damage");
        assert!(list(&conn, &Filter { limit: 10, ..Filter::default() }).expect("list").is_empty());
        let tx = conn.transaction().expect("tx");
        prune(&tx, 250, 10).expect("prune");
        assert_eq!(rows(&tx), 0, "a row nothing can be read from goes");
    }
}
