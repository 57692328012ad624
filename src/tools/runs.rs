//! `wf runs`: the executions a store keeps, read beside a running `wf serve` (a SQLite file, or a
//! PostgreSQL database that instances share).

use crate::store::postgres::{self, Reader};
use crate::store::retry::Retried;
use crate::store::sqlite;
use crate::store::{Filter, History, Outcome, RunView, State};
use crate::tools::commands::Format;
use crate::tools::replay::Verdict;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The store `wf runs` reads, through the same [`History`] every store keeps, and the runtime
/// its answers are awaited on.
struct Db {
    rt: tokio::runtime::Runtime,
    history: Box<dyn History>,
}

impl Db {
    fn list(&self, filter: &Filter) -> Result<Vec<RunView>, String> {
        self.rt.block_on(self.history.list(filter))
    }

    fn show(&self, id: &str) -> Result<Option<RunView>, String> {
        self.rt.block_on(self.history.show(id))
    }

    fn prune(&self, before_ms: i64, batch: usize) -> Result<usize, String> {
        self.rt.block_on(self.history.prune(before_ms, batch))
    }

    fn retry(&self, id: &str, from_start: bool) -> Result<Retried, String> {
        self.rt.block_on(self.history.retry(id, from_start))
    }

    /// Execution `id`, or the exit code after saying why there is none (1: not in the store, 2:
    /// the store could not be read).
    fn found(&self, id: &str, store: &str) -> Result<RunView, ExitCode> {
        match self.show(id) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => {
                eprintln!("error: no execution {id} in {}", named(store));
                Err(ExitCode::from(1))
            }
            Err(e) => {
                eprintln!("error: {e}");
                Err(ExitCode::from(2))
            }
        }
    }
}

/// Execution `id` of the store named, or the exit code after saying why there is none.
fn one(store: &str, id: &str) -> Result<RunView, ExitCode> {
    open(store)?.found(id, store)
}

fn is_postgres(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// The store as messages name it (a URL without its password).
fn named(store: &str) -> String {
    if is_postgres(store) {
        postgres::shown(store)
    } else {
        store.to_string()
    }
}

fn open(store: &str) -> Result<Db, ExitCode> {
    if store == "memory" {
        eprintln!("error: `--store memory` keeps nothing to list; give the store `wf serve` uses");
        return Err(ExitCode::from(2));
    }
    let opened = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))
        .and_then(|rt| {
            let history: Box<dyn History> = if is_postgres(store) {
                Box::new(rt.block_on(Reader::connect(store))?)
            } else {
                Box::new(sqlite::open_read_only(Path::new(store))?)
            };
            Ok(Db { rt, history })
        });
    opened.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The state an execution is in, as one word: its outcome once ended.
fn status(r: &RunView) -> &'static str {
    match (r.state, r.outcome) {
        (State::Ended, Some(outcome)) => outcome.as_str(),
        (state, _) => state.as_str(),
    }
}

pub(crate) fn list(store: &str, filter: &Filter, format: Format) -> ExitCode {
    let db = match open(store) {
        Ok(db) => db,
        Err(code) => return code,
    };
    let runs = match db.list(filter) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&runs).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let mut out = header();
    for r in &runs {
        out.push_str(&row(r));
    }
    print!("{out}");
    ExitCode::SUCCESS
}

/// The list's header line.
fn header() -> String {
    format!(
        "{:<16}  {:<20}  {:<5}  {:<9}  {:>6}  {:>8}  {:<20}  {:>9}\n",
        "ID", "WORKFLOW", "MODE", "STATUS", "ANSWER", "ATTEMPTS", "STARTED", "DURATION"
    )
}

/// One execution as a line of the list.
fn row(r: &RunView) -> String {
    let answer = r.status.map_or("-".to_string(), |s| s.to_string());
    let duration = r.duration_ms.map_or("-".to_string(), |d| format!("{d} ms"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16}  {:<20}  {:<5}  {:<9}  {:>6}  {:>8}  {:<20}  {:>9}",
        r.id,
        r.workflow,
        r.mode,
        status(r),
        answer,
        r.attempts,
        time(r.started_ms),
        duration
    );
    out
}

/// `wf runs --follow`: the executions that end from now on (the filter's workflow and status
/// applied), each printed once as it ends (JSON: one object a line), until interrupted.
pub(crate) fn follow(store: &str, filter: &Filter, format: Format) -> ExitCode {
    use std::io::Write as _;
    let db = match open(store) {
        Ok(db) => db,
        Err(code) => return code,
    };
    if format == Format::Human {
        print!("{}", header());
    }
    // Executions already seen, with when they started: forgotten once older than what is looked at.
    let mut seen: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut from = crate::store::now_ms();
    // What had ended before it started is not printed (what started after always is).
    let started = from;
    let mut first = true;
    loop {
        // Started up to a minute before the last look: an execution that ran long ends late.
        let look = Filter { since_ms: Some(from.saturating_sub(60_000)), limit: 10_000, ..filter.clone() };
        let runs = match db.list(&look) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let mut out = String::new();
        for r in runs.iter().rev().filter(|r| r.state == crate::store::State::Ended) {
            if seen.insert(r.id.clone(), r.started_ms).is_some() || (first && r.started_ms < started) {
                continue;
            }
            match format {
                Format::Json => {
                    out.push_str(&serde_json::to_string(r).unwrap_or_default());
                    out.push('\n');
                }
                Format::Human => out.push_str(&row(r)),
            }
        }
        first = false;
        if !out.is_empty() {
            let mut stdout = std::io::stdout();
            if stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()).is_err() {
                return ExitCode::SUCCESS;
            }
        }
        from = crate::store::now_ms();
        seen.retain(|_, started| *started >= from.saturating_sub(120_000));
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `wf runs retry --status failed [--workflow W] [--since D]`: every failed execution the filter
/// selects marked to run again; says how many, and why the others could not be.
pub(crate) fn retry_all(store: &str, filter: Filter, from_start: bool) -> ExitCode {
    let failed = crate::store::Status::Outcome(crate::store::Outcome::Failed);
    if filter.status != Some(failed) {
        eprintln!("error: `wf runs retry` without an id needs `--status failed` (and maybe `--workflow`, `--since`)");
        return ExitCode::from(2);
    }
    let db = match open(store) {
        Ok(db) => db,
        Err(code) => return code,
    };
    let runs = match db.list(&Filter { limit: usize::MAX, ..filter }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut marked, mut refused) = (0usize, 0usize);
    // On a terminal, a progress line (rewritten at most ten times a second).
    let mut progress = Progress::on_terminal(runs.len());
    for (done, r) in runs.iter().enumerate() {
        progress.show(done);
        match db.retry(&r.id, from_start) {
            Ok(Retried::Marked) => marked += 1,
            Ok(Retried::Unknown) => {}
            Ok(Retried::Refused(why)) => {
                refused += 1;
                eprintln!("not retried: {why}");
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    progress.clear();
    println!(
        "{marked} failed execution(s) will run again ({}); {refused} could not be: `wf serve` on {} takes them within seconds (or at its next start)",
        if from_start { "every step done again" } else { "the steps that succeeded kept" },
        named(store)
    );
    if refused > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub(crate) fn show(store: &str, id: &str, format: Format) -> ExitCode {
    let run = match one(store, id) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let waits = waits_for(&run);
    if format == Format::Json {
        let mut shown = serde_json::to_value(&run).unwrap_or_default();
        if let (Some(w), Some(map)) = (&waits, shown.as_object_mut()) {
            map.insert("waits_for".into(), serde_json::Value::from(w.as_str()));
        }
        println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let mut out = String::new();
    let _ = writeln!(out, "execution {} of {} ({})", run.id, run.workflow, run.mode);
    let _ = writeln!(out, "  status    {}", status(&run));
    if let Some(w) = &waits {
        let _ = writeln!(out, "  waits for {w}");
    }
    if let Some(s) = run.status {
        let _ = writeln!(out, "  answer    {s}");
    }
    let _ = writeln!(out, "  started   {}", time(run.started_ms));
    if let Some(d) = run.duration_ms {
        let _ = writeln!(out, "  duration  {d} ms");
    }
    let _ = writeln!(out, "  attempts  {}", run.attempts);
    if let Some(reason) = &run.reason {
        // A failure says where; a rejection or a duplicate says why.
        let label = if run.outcome == Some(Outcome::Failed) { "failed" } else { "reason" };
        let _ = writeln!(
            out,
            "  {label:<9} {reason}{}",
            run.at.as_ref().map(|a| format!(" (at {a})")).unwrap_or_default()
        );
    }
    if let Some(req) = &run.request {
        let _ = writeln!(out, "request");
        let _ = writeln!(
            out,
            "  {} {}",
            req["method"].as_str().unwrap_or("?"),
            req["target"].as_str().unwrap_or("?")
        );
        if let Some(headers) = req["headers"].as_object() {
            for (k, v) in headers {
                let _ = writeln!(out, "  {k}: {}", v.as_str().unwrap_or(""));
            }
        }
        if let Some(body) = req["body"].as_str().filter(|b| !b.is_empty()) {
            let _ = writeln!(out, "  {body}");
        } else if let Some(bytes) =
            crate::request::received::kept_body(req).filter(|_| req.get("body_base64").is_some())
        {
            let _ =
                writeln!(out, "  ({} bytes, not text: `--format json` shows them in base64)", bytes.len());
        }
    }
    if !run.steps.is_empty() {
        let _ = writeln!(out, "steps");
        for s in &run.steps {
            let what = s.request.as_ref().map(|r| r.to_string()).unwrap_or_default();
            let result = match (&s.result, &s.reason) {
                (_, Some(reason)) => format!("failed: {reason}"),
                (Some(v), None) => crate::request::value::shown(v, 200),
                (None, None) => String::new(),
            };
            let _ = writeln!(out, "  {:>3}  {:<5} {:<9} {what} {result}", s.n, s.kind, s.state.as_str());
        }
    }
    if !run.logs.is_empty() {
        let _ = writeln!(out, "log");
        for l in &run.logs {
            let _ = writeln!(out, "  {l}");
        }
    }
    print!("{out}");
    ExitCode::SUCCESS
}

pub(crate) fn prune(store: &str, older_than: std::time::Duration) -> ExitCode {
    let db = match open(store) {
        Ok(db) => db,
        Err(code) => return code,
    };
    let cut =
        crate::store::now_ms().saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
    let mut total = 0;
    loop {
        match db.prune(cut, 1000) {
            Ok(n) => {
                total += n;
                // Fewer than asked for: nothing is left (a call may delete more, never fewer
                // while some are left).
                if n < 1000 {
                    break;
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    println!("pruned {total} executions");
    ExitCode::SUCCESS
}

/// What a parked run waits for, from the step that parked it.
pub(crate) fn waits_for(run: &RunView) -> Option<String> {
    if run.state != State::Waiting {
        return None;
    }
    let s = run.steps.iter().find(|s| s.state == crate::store::StepState::Waiting)?;
    Some(match s.kind.as_str() {
        "sleep" => "sleep".to_string(),
        "wait" => {
            let id = s.request.as_ref().and_then(|r| r["callback"].as_str()).unwrap_or_default();
            format!("callback {id}")
        }
        "debounce" => "debounce (a newer request with its key supersedes it)".to_string(),
        "order" => "order (its turn: a run accepted before it with its key has not ended)".to_string(),
        "rate" => "rate (a start its window allows)".to_string(),
        _ => format!("retry (step {}'s next attempt)", s.n),
    })
}

/// `wf runs cancel ID`: ends a waiting run as `cancelled`.
pub(crate) fn cancel(store: &str, id: &str) -> ExitCode {
    let db = match open(store) {
        Ok(db) => db,
        Err(code) => return code,
    };
    match db.rt.block_on(db.history.cancel(id)) {
        Ok(crate::store::Cancel::Cancelled) => {
            println!("{id} cancelled: it will not run on, and its callbacks answer 410");
            ExitCode::SUCCESS
        }
        Ok(crate::store::Cancel::NotWaiting(state)) => {
            eprintln!(
                "error: {id} is {}, not waiting: only a waiting run (sleeping, waiting for a callback or a retry) is cancelled",
                state.as_str()
            );
            ExitCode::from(1)
        }
        Ok(crate::store::Cancel::Unknown) => {
            eprintln!("error: no execution {id} in {}", named(store));
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn retry(store: &str, id: &str, from_start: bool) -> ExitCode {
    let db = match open(store) {
        Ok(db) => db,
        Err(code) => return code,
    };
    match db.retry(id, from_start) {
        Ok(Retried::Marked) => {
            let kept = if from_start { "every step done again" } else { "the steps that succeeded kept" };
            println!(
                "{id} will run again ({kept}): `wf serve` on {} takes it within seconds (or at its next start)",
                named(store)
            );
            ExitCode::SUCCESS
        }
        Ok(Retried::Unknown) => {
            eprintln!("error: no execution {id} in {}", named(store));
            ExitCode::from(1)
        }
        Ok(Retried::Refused(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `wf runs export ID`: the test block on standard output; a large body written to
/// `payloads/ID.txt` here, which the block reads (keep it beside the test).
pub(crate) fn export(store: &str, id: &str, files: &[std::path::PathBuf]) -> ExitCode {
    let run = match one(store, id) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Its workflow, for its `auth`; without it the test carries no credentials.
    let loaded = crate::lang::loader::load(files).ok();
    let wf = loaded.as_ref().and_then(|l| l.program.workflows.iter().find(|w| w.name == run.workflow));
    if wf.is_none() {
        eprintln!(
            "warning: workflow `{}` is not in {}: the test carries no credentials",
            run.workflow,
            files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    match crate::tools::export::test_block(&run, wf) {
        Ok((block, file)) => {
            if let Some((path, body)) = file {
                let written = std::fs::create_dir_all("payloads").and_then(|()| std::fs::write(&path, body));
                if let Err(e) = written {
                    eprintln!("error: cannot write {path}: {e}");
                    return ExitCode::from(2);
                }
                eprintln!("wrote {path} (the test reads it: keep it beside the test)");
            }
            print!("{block}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("error: {why}");
            ExitCode::from(1)
        }
    }
}

/// A progress line on standard error when it is a terminal: `retrying 1,200 of 5,000`.
struct Progress {
    total: usize,
    shown: Option<std::time::Instant>,
    on: bool,
}

impl Progress {
    fn on_terminal(total: usize) -> Progress {
        use std::io::IsTerminal as _;
        Progress { total, shown: None, on: std::io::stderr().is_terminal() }
    }

    fn show(&mut self, done: usize) {
        if !self.on || self.shown.is_some_and(|at| at.elapsed() < std::time::Duration::from_millis(100)) {
            return;
        }
        self.shown = Some(std::time::Instant::now());
        eprint!("\rretrying {done} of {}\x1b[K", self.total);
    }

    fn clear(&self) {
        if self.on && self.shown.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

/// `wf runs replay`: see [`crate::tools::replay`]. Exit 1 when any execution changed. The
/// executions are read a page at a time and each is printed as it is replayed, so memory stays
/// bounded however many are replayed.
pub(crate) fn replay(
    store: &str,
    ids: &[String],
    filter: Filter,
    files: &[std::path::PathBuf],
    format: Format,
) -> ExitCode {
    /// Executions read at once, at most; fewer when their requests are large.
    const PAGE: usize = 256;
    /// About how many bytes of kept requests a page holds.
    const PAGE_BYTES: usize = 16 << 20;
    let db = match open(store) {
        Ok(db) => db,
        Err(code) => return code,
    };
    let loaded = match crate::tools::commands::load_checked(files) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let env = |name: &str| std::env::var(name).ok();
    let router = crate::request::served::build_for_tests(loaded.program, &env, None);
    let mut out = Verdicts::new(format);
    for id in ids {
        match db.found(id, store) {
            Ok(run) => out.add(db.rt.block_on(crate::tools::replay::replay(&router, &run))),
            Err(code) => return code,
        }
    }
    // The executions the filter selects, newest first, a page at a time.
    let mut left = if ids.is_empty() { filter.limit } else { 0 };
    let mut page = Filter { limit: left.min(16), ..filter };
    while left > 0 {
        let runs = match db.rt.block_on(db.history.whole(&page)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        for run in &runs {
            out.add(db.rt.block_on(crate::tools::replay::replay(&router, run)));
        }
        left = left.saturating_sub(runs.len());
        // The next page holds about PAGE_BYTES of requests, as large as this page's were.
        let bytes: usize = runs.iter().map(|r| r.request.as_ref().map_or(0, kept_size)).sum();
        let size = (PAGE_BYTES / (bytes / runs.len().max(1)).max(1)).clamp(1, PAGE);
        match runs.last() {
            Some(last) => page = Filter { limit: left.min(size), ..page.next_page(last) },
            None => break,
        }
    }
    out.end()
}

/// About how many bytes a kept request holds: its body's and a little more.
fn kept_size(request: &serde_json::Value) -> usize {
    request.get("body").and_then(serde_json::Value::as_str).map_or(0, str::len) + 1024
}

/// Replays' verdicts, printed as each is found (JSON: one array, written as it grows), counted
/// for the summary.
struct Verdicts {
    format: Format,
    out: std::io::BufWriter<std::io::Stdout>,
    same: usize,
    changed: usize,
    skipped: usize,
}

impl Verdicts {
    fn new(format: Format) -> Verdicts {
        Verdicts { format, out: std::io::BufWriter::new(std::io::stdout()), same: 0, changed: 0, skipped: 0 }
    }

    fn add(&mut self, r: crate::tools::replay::Replay) {
        use std::io::Write as _;
        let first = self.same + self.changed + self.skipped == 0;
        match r.verdict {
            Verdict::Same => self.same += 1,
            Verdict::Changed => self.changed += 1,
            Verdict::Skipped => self.skipped += 1,
        }
        let mut text = String::new();
        if self.format == Format::Json {
            text.push_str(if first { "[\n" } else { ",\n" });
            text.push_str(&serde_json::to_string_pretty(&r).unwrap_or_default());
        } else {
            let why = r.why.as_ref().map(|w| format!(": {w}")).unwrap_or_default();
            let _ = writeln!(text, "{}  {:<20}  {}{why}", r.id, r.workflow, r.verdict.as_str());
            if let Some((was, now)) = &r.difference.answer {
                let _ = writeln!(text, "    answer  {was} → {now}");
            }
            for e in &r.difference.added {
                let _ = writeln!(text, "    + {e}");
            }
            for e in &r.difference.removed {
                let _ = writeln!(text, "    - {e}");
            }
            for e in &r.difference.sent {
                let _ = writeln!(text, "    ~ {e}");
            }
            for a in &r.difference.answered {
                let _ = writeln!(text, "    answer {a}");
            }
        }
        // A closed pipe ends nothing here: the summary and exit code still say what was found.
        let _ = self.out.write_all(text.as_bytes());
    }

    /// Prints the summary (JSON: closes the array); exit 1 when any execution changed.
    fn end(mut self) -> ExitCode {
        use std::io::Write as _;
        let (same, changed, skipped) = (self.same, self.changed, self.skipped);
        let text = if self.format == Format::Json {
            if same + changed + skipped == 0 {
                "[]\n".to_string()
            } else {
                "\n]\n".to_string()
            }
        } else {
            format!(
                "{} replayed: {same} same, {changed} changed{}\n",
                same + changed,
                if skipped > 0 { format!(", {skipped} skipped") } else { String::new() }
            )
        };
        let _ = self.out.write_all(text.as_bytes()).and_then(|()| self.out.flush());
        if changed > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}
