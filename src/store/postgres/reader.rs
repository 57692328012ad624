//! Reading and retrying what the shared store keeps: `list`, `show`, `prune` and `retry`, for
//! the store itself and for the reader `wf runs` opens beside running instances.

use super::*;
use crate::store::{Cancel, StepState};

pub(super) fn view(r: &Row) -> Result<RunView, String> {
    let logs: Option<String> = r.get(11);
    let request: Option<String> = r.get(12);
    let status: Option<i32> = r.get(5);
    let attempts: i32 = r.get(10);
    Ok(RunView {
        id: hex(r.get(0)),
        workflow: r.get(1),
        mode: r.try_get(2).map_err(sql)?,
        state: r.try_get(3).map_err(sql)?,
        outcome: r.try_get(4).map_err(sql)?,
        status: status.and_then(|s| u16::try_from(s).ok()),
        started_ms: r.get(6),
        duration_ms: r.get(7),
        reason: r.get(8),
        at: r.get(9),
        attempts: i64::from(attempts),
        logs: logs.and_then(|l| serde_json::from_str(&l).ok()).unwrap_or_default(),
        request: request.and_then(|q| serde_json::from_str(&q).ok()),
        steps: Vec::new(),
    })
}

pub(super) async fn list(client: &tokio_postgres::Client, f: &Filter) -> Result<Vec<RunView>, String> {
    let limit = i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX);
    let (after_ms, after_id) = f.after_keys();
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM wf_executions
                 WHERE ($1::TEXT IS NULL OR workflow = $1) AND ($2::TEXT IS NULL OR outcome = $2 OR state = $2)
                   AND started_ms >= $3 AND (started_ms, id) < ($5, $6)
                 ORDER BY started_ms DESC, id DESC LIMIT $4"
            ),
            &[&f.workflow, &f.status.map(|s| s.stored()), &f.since_ms.unwrap_or(0), &limit, &after_ms, &after_id],
        )
        .await
        .map_err(sql)?;
    rows.iter().map(view).collect()
}

pub(super) async fn show(client: &tokio_postgres::Client, id: &str) -> Result<Option<RunView>, String> {
    let found = client
        .query_opt(&format!("SELECT {COLUMNS} FROM wf_executions WHERE id = $1"), &[&key(id)])
        .await
        .map_err(sql)?;
    let Some(row) = found else { return Ok(None) };
    let mut run = [view(&row)?];
    journals(client, &mut run).await?;
    let [run] = run;
    Ok(Some(run))
}

/// A page of executions whole: `list`'s, with their journals read in one query.
pub(super) async fn whole(client: &tokio_postgres::Client, f: &Filter) -> Result<Vec<RunView>, String> {
    let mut page = list(client, f).await?;
    journals(client, &mut page).await?;
    Ok(page)
}

/// Fills in the journals of `runs`.
async fn journals(client: &tokio_postgres::Client, runs: &mut [RunView]) -> Result<(), String> {
    let ids: Vec<i64> = runs.iter().map(|r| key(&r.id)).collect();
    let steps = client
        .query(
            "SELECT execution, n, kind, state, request, result, reason, ended_ms - started_ms FROM wf_steps
             WHERE execution = ANY($1) ORDER BY execution, n",
            &[&ids],
        )
        .await
        .map_err(sql)?;
    let at: std::collections::HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let json = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok());
    for s in &steps {
        let Some(run) = at.get(&s.get::<_, i64>(0)).and_then(|&i| runs.get_mut(i)) else { continue };
        run.steps.push(StepView {
            n: u32::try_from(s.get::<_, i32>(1)).unwrap_or(0),
            kind: s.get(2),
            state: s.try_get(3).map_err(sql)?,
            request: json(s.get(4)),
            result: json(s.get(5)),
            reason: s.get(6),
            took_ms: s.get(7),
        });
    }
    Ok(())
}

pub(super) async fn prune(
    client: &tokio_postgres::Client,
    before_ms: i64,
    batch: usize,
) -> Result<usize, String> {
    let limit = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
    let gone = client
        .query_one(
            "WITH old AS (
                 SELECT id FROM wf_executions WHERE state = 'ended' AND started_ms < $1
                 ORDER BY started_ms LIMIT $2 FOR UPDATE SKIP LOCKED),
             steps AS (DELETE FROM wf_steps WHERE execution IN (SELECT id FROM old)),
             gone AS (DELETE FROM wf_executions WHERE id IN (SELECT id FROM old) RETURNING 1)
             SELECT count(*) FROM gone",
            &[&before_ms, &limit],
        )
        .await
        .map_err(sql)?;
    client
        .execute("DELETE FROM wf_dedupe WHERE expires_ms < $1", &[&crate::store::now_ms()])
        .await
        .map_err(sql)?;
    let now_ms = crate::store::now_ms();
    client
        .batch_execute(&format!(
            "DELETE FROM wf_debounce WHERE ended AND latest_ms < {before_ms};
             DELETE FROM wf_orders o WHERE accepted_ms < {before_ms} AND NOT EXISTS
                 (SELECT 1 FROM wf_executions e WHERE e.id = o.execution AND e.state <> 'ended');
             DELETE FROM wf_callbacks WHERE state <> 'waiting' AND expires_ms < {before_ms};
             DELETE FROM wf_rates WHERE last_ms + window_ms < {now_ms};"
        ))
        .await
        .map_err(sql)?;
    // Instances gone for a day are forgotten (their runs were taken long ago).
    client
        .execute("DELETE FROM wf_instances WHERE lease_until < now() - interval '1 day'", &[])
        .await
        .map_err(sql)?;
    let n: i64 = gone.get(0);
    Ok(usize::try_from(n).unwrap_or(0))
}

/// `wf runs` against a PostgreSQL store: listing, showing, pruning and retrying beside running
/// instances, without registering as one.
pub(crate) struct Reader {
    client: tokio::sync::Mutex<tokio_postgres::Client>,
}

impl Reader {
    pub(crate) async fn connect(url: &str) -> Result<Reader, String> {
        let client = Target::parse(url)?
            .connect()
            .await
            .map_err(|e| format!("cannot reach the store {}: {}", shown(url), sql(e)))?;
        let schema = client
            .query_opt("SELECT max(version) FROM wf_schema", &[])
            .await
            .map_err(|_| format!("no wf store in {} (wf serve --store creates it)", shown(url)))?;
        let version: Option<i32> = schema.and_then(|r| r.get(0));
        if version != Some(SCHEMA_VERSION) {
            return Err(format!(
                "the store {} has schema {}; this wf reads {SCHEMA_VERSION}",
                shown(url),
                version.map_or("none".to_string(), |v| v.to_string())
            ));
        }
        Ok(Reader { client: tokio::sync::Mutex::new(client) })
    }
}

impl History for Reader {
    fn list(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        let filter = filter.clone();
        Box::pin(async move { list(&*self.client.lock().await, &filter).await })
    }

    fn show(&self, id: &str) -> Reading<'_, Option<RunView>> {
        let id = id.to_string();
        Box::pin(async move { show(&*self.client.lock().await, &id).await })
    }

    fn whole(&self, filter: &Filter) -> Reading<'_, Vec<RunView>> {
        let filter = filter.clone();
        Box::pin(async move { whole(&*self.client.lock().await, &filter).await })
    }

    fn prune(&self, before_ms: i64, batch: usize) -> Reading<'_, usize> {
        Box::pin(async move { prune(&*self.client.lock().await, before_ms, batch).await })
    }

    fn retry(&self, id: &str, from_start: bool) -> Reading<'_, Retried> {
        let id = id.to_string();
        Box::pin(async move { retry(&mut *self.client.lock().await, &id, from_start).await })
    }

    fn cancel(&self, id: &str) -> Reading<'_, Cancel> {
        let id = id.to_string();
        Box::pin(async move { cancel(&mut *self.client.lock().await, &id).await })
    }

    fn keyed(&self, key: &str) -> Reading<'_, Vec<String>> {
        let key = key.to_string();
        Box::pin(async move { keyed(&*self.client.lock().await, &key).await })
    }
}

/// The executions whose `dedupe` key is `key`, newest first (at most 50).
pub(super) async fn keyed(client: &tokio_postgres::Client, key: &str) -> Result<Vec<String>, String> {
    let rows = client
        .query("SELECT execution FROM wf_dedupe WHERE key = $1 ORDER BY expires_ms DESC LIMIT 50", &[&key])
        .await
        .map_err(sql)?;
    Ok(rows.iter().map(|r| super::super::hex(r.get::<_, i64>(0))).collect())
}

/// Ends waiting run `id` as cancelled, its callbacks with it (an instance taking it at the
/// same moment either comes first, and it is not waiting any more, or finds it ended).
pub(super) async fn cancel(client: &mut tokio_postgres::Client, id: &str) -> Result<Cancel, String> {
    let tx = client.transaction().await.map_err(sql)?;
    let now = super::super::now_ms();
    let ended = tx
        .execute(
            "UPDATE wf_executions SET state = 'ended', outcome = 'cancelled', reason = 'cancelled', ended_ms = $2,
                 duration_ms = $2 - started_ms, due_ms = NULL, owner = NULL
             WHERE id = $1 AND state IN ('parked', 'retry')",
            &[&key(id), &now],
        )
        .await
        .map_err(sql)?;
    let found = if ended == 1 {
        tx.execute(
            "UPDATE wf_callbacks SET state = 'cancelled' WHERE execution = $1 AND state = 'waiting'",
            &[&key(id)],
        )
        .await
        .map_err(sql)?;
        Cancel::Cancelled
    } else {
        let row =
            tx.query_opt("SELECT state FROM wf_executions WHERE id = $1", &[&key(id)]).await.map_err(sql)?;
        match row {
            Some(r) => Cancel::NotWaiting(r.try_get(0).map_err(sql)?),
            None => Cancel::Unknown,
        }
    };
    tx.commit().await.map_err(sql)?;
    Ok(found)
}

/// Marks failed run `id` to run again, keeping the steps that succeeded (see
/// `store::retry`); the first instance to hear of it takes it. The run's row is locked
/// while it is marked, so a retry racing another (or a takeover) marks it once.
pub(super) async fn retry(
    client: &mut tokio_postgres::Client,
    id: &str,
    from_start: bool,
) -> Result<Retried, String> {
    let tx = client.transaction().await.map_err(sql)?;
    let row = tx
        .query_opt(
            "SELECT mode, state, outcome, frame IS NOT NULL, request FROM wf_executions WHERE id = $1 FOR UPDATE",
            &[&key(id)],
        )
        .await
        .map_err(sql)?;
    let Some(row) = row else { return Ok(Retried::Unknown) };
    let (mode, state, outcome): (Mode, State, Option<Outcome>) =
        (row.try_get(0).map_err(sql)?, row.try_get(1).map_err(sql)?, row.try_get(2).map_err(sql)?);
    let kept = match mode {
        // A sync execution runs again from its request, under the workflow served now.
        Mode::Sync => {
            let request: Option<String> = row.get(4);
            retry::kept_whole(request.and_then(|q| serde_json::from_str(&q).ok()).as_ref())
        }
        Mode::Async => row.get(3),
    };
    if let Some(why) = retry::refusal(id, mode, state, outcome, kept) {
        return Ok(Retried::Refused(why));
    }
    let rows = tx
        .query("SELECT n, kind, state, result FROM wf_steps WHERE execution = $1", &[&key(id)])
        .await
        .map_err(sql)?;
    let steps: Vec<retry::Journaled<'_>> = rows
        .iter()
        .map(|s| retry::Journaled {
            n: u32::try_from(s.get::<_, i32>(0)).unwrap_or(0),
            kind: s.get(1),
            finished: s.try_get::<_, StepState>(2).is_ok_and(|st| st == StepState::Finished),
            result: s.get::<_, Option<String>>(3).and_then(|t| serde_json::from_str(&t).ok()),
        })
        .collect();
    if let Some(from) = retry::redo_from(&steps, from_start) {
        let from = i32::try_from(from).unwrap_or(i32::MAX);
        tx.execute("DELETE FROM wf_steps WHERE execution = $1 AND n >= $2", &[&key(id), &from])
            .await
            .map_err(sql)?;
    }
    tx.execute(
        "UPDATE wf_executions SET state = 'retry', owner = NULL, retries = retries + 1 WHERE id = $1",
        &[&key(id)],
    )
    .await
    .map_err(sql)?;
    tx.batch_execute(&format!("NOTIFY {CHANNEL}")).await.map_err(sql)?;
    tx.commit().await.map_err(sql)?;
    Ok(Retried::Marked)
}
