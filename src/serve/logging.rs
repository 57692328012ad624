//! Log lines: one line per execution, one per `log` statement; human or JSON lines.
//!
//! The lines of executions (written for every request) take a path of their own: formatted
//! straight into a buffer ([`Lines`]) that a thread writes out every few milliseconds, with the
//! timestamp's text kept per second. The server's other lines go through `tracing`; the human
//! format is written by [`Human`], which formats fields directly (no `Debug` round-trips).

use crate::request::handle::Record;
use crate::request::outcome::Outcome;
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Human,
    Json,
}

/// Installs the subscriber that writes log lines to stderr. Lines are written by a background
/// thread, so requests do not wait on the write; it writes whatever lines are waiting in one go
/// and flushes as soon as none are left. When the sink blocks (a log pipe nobody reads) and 4,096
/// lines wait, further lines are dropped and counted rather than stop the server; see
/// [`report_dropped`]. Keep the returned guard alive until exit, when it flushes what is left.
pub(crate) fn init(format: LogFormat) -> (LogGuard, tracing_appender::non_blocking::ErrorCounter) {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(4096)
        .finish(std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let dropped = writer.error_counter();
    let builder = tracing_subscriber::fmt().with_writer(writer).with_max_level(tracing::Level::INFO);
    let result = match format {
        LogFormat::Human => builder.event_format(Human).try_init(),
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
        }
    };
    // A subscriber may already be installed (tests); keep it.
    drop(result);
    let lines = LINES.get_or_init(|| Lines::new(format));
    let _ = std::thread::Builder::new().name("wf-log".into()).spawn(move || loop {
        std::thread::sleep(WRITE_EVERY);
        lines.write_out();
    });
    (LogGuard(guard), dropped)
}

/// Keeps the log writers until exit, then writes out what is left.
pub(crate) struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(lines) = LINES.get() {
            // The writer may be in the middle of a write: wait for it, but not for ever (an
            // output that blocks must not keep the process from exiting).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
            while std::time::Instant::now() < deadline {
                if lines.try_write_out() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

/// How often the lines of executions are written out.
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_millis(20);
/// Bytes of lines waiting at most; beyond (the output blocks), lines are dropped and counted.
const WAITING: usize = 4 << 20;

static LINES: std::sync::OnceLock<Lines> = std::sync::OnceLock::new();

/// The lines of executions waiting to be written, in the chosen format. Each thread formats
/// into its own buffer (its shard), so threads answering requests never share a lock or a cache
/// line for it; the writer takes each shard's lines in turn (lines of two threads may so come
/// out of timestamp order by up to [`WRITE_EVERY`]).
struct Lines {
    format: LogFormat,
    /// Tells this `Lines` from another (tests make several): a thread's shard is for one.
    id: usize,
    shards: std::sync::Mutex<Vec<std::sync::Arc<Shard>>>,
    /// Held while writing out, so that two writers keep the lines in order: a spare buffer per
    /// shard, swapped with the shard's when its lines are taken.
    writing: std::sync::Mutex<Vec<String>>,
    dropped: std::sync::atomic::AtomicU64,
}

/// One thread's lines.
struct Shard {
    waiting: std::sync::Mutex<Waiting>,
}

struct Waiting {
    /// The lines, formatted straight into it.
    buf: String,
    clock: Clock,
    /// The second the timestamp text is for, and that text (`2026-12-03T19:51:23`).
    second: u64,
    stamp: String,
}

/// Wall-clock time from the monotonic instants records carry: the wall clock is read once a
/// second per thread, not once per line.
#[derive(Default)]
struct Clock {
    /// A wall-clock reading (since the epoch) and the instant it was taken at.
    anchor: Option<(std::time::Duration, std::time::Instant)>,
}

impl Clock {
    /// The wall-clock time (since the epoch) of `at`.
    fn wall(&mut self, at: std::time::Instant) -> std::time::Duration {
        if let Some((wall, mono)) = self.anchor {
            let later = at.checked_duration_since(mono);
            if let Some(d) = later.filter(|d| *d < std::time::Duration::from_secs(1)) {
                return wall + d;
            }
        }
        let mono = std::time::Instant::now();
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.anchor = Some((wall, mono));
        // `at` is a moment ago (the end of an execution): counted back from the fresh reading.
        wall.saturating_sub(mono.saturating_duration_since(at))
    }
}

thread_local! {
    /// This thread's shard, and the [`Lines`] it belongs to.
    static SHARD: std::cell::RefCell<Option<(usize, std::sync::Arc<Shard>)>> =
        const { std::cell::RefCell::new(None) };
}

impl Lines {
    fn new(format: LogFormat) -> Lines {
        static IDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        Lines {
            format,
            id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            shards: std::sync::Mutex::new(Vec::new()),
            writing: std::sync::Mutex::new(Vec::new()),
            dropped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Runs `f` on this thread's shard (made and registered at its first line).
    fn with_shard(&self, f: impl FnOnce(&Shard)) {
        let _ = SHARD.try_with(|slot| {
            let mut slot = slot.borrow_mut();
            match &*slot {
                Some((owner, shard)) if *owner == self.id => f(shard),
                _ => {
                    let shard = std::sync::Arc::new(Shard {
                        waiting: std::sync::Mutex::new(Waiting {
                            buf: String::with_capacity(64 * 1024),
                            clock: Clock::default(),
                            second: u64::MAX,
                            stamp: String::new(),
                        }),
                    });
                    if let Ok(mut shards) = self.shards.lock() {
                        shards.push(shard.clone());
                        f(&shard);
                        *slot = Some((self.id, shard));
                    }
                }
            }
        });
    }

    /// Writes out the lines waiting (one write per shard), keeping their order.
    fn write_out(&self) {
        if let Ok(mut out) = self.writing.lock() {
            self.write_with(&mut out, &mut std::io::stderr());
        }
    }

    /// The same unless another write is under way; false then.
    fn try_write_out(&self) -> bool {
        match self.writing.try_lock() {
            Ok(mut out) => {
                self.write_with(&mut out, &mut std::io::stderr());
                true
            }
            Err(_) => false,
        }
    }

    fn write_with(&self, spares: &mut Vec<String>, sink: &mut dyn std::io::Write) {
        // The shards of threads that have ended are written out this once, then let go (held
        // by the list, this copy and, while its thread lives, the thread).
        let shards: Vec<std::sync::Arc<Shard>> = match self.shards.lock() {
            Ok(mut list) => {
                let all = list.clone();
                list.retain(|s| std::sync::Arc::strong_count(s) > 2);
                all
            }
            Err(_) => return,
        };
        spares.resize_with(shards.len(), String::new);
        let mut wrote = false;
        for (shard, out) in shards.iter().zip(spares.iter_mut()) {
            if let Ok(mut w) = shard.waiting.lock() {
                if w.buf.is_empty() {
                    continue;
                }
                std::mem::swap(&mut w.buf, out);
            }
            let _ = sink.write_all(out.as_bytes());
            out.clear();
            wrote = true;
        }
        if wrote {
            let _ = sink.flush();
        }
    }

    /// The lines waiting in every shard (tests).
    #[cfg(test)]
    fn waiting(&self) -> String {
        let shards = self.shards.lock().expect("lock");
        shards.iter().map(|s| s.waiting.lock().expect("lock").buf.clone()).collect()
    }

    fn record(&self, r: &Record) {
        self.with_shard(|shard| self.record_into(shard, r));
    }

    fn record_into(&self, shard: &Shard, r: &Record) {
        let Ok(mut w) = shard.waiting.lock() else { return };
        if w.buf.len() > WAITING {
            let lines = r.logs.len() as u64 + 1;
            self.dropped.fetch_add(lines, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        let w = &mut *w;
        let now = w.clock.wall(r.ended);
        if now.as_secs() != w.second {
            w.second = now.as_secs();
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(w.second);
            w.stamp = humantime::format_rfc3339_seconds(at).to_string();
            w.stamp.pop();
        }
        let mut id = [0u8; 16];
        let execution = r.id.hex(&mut id);
        let micros = now.subsec_micros();
        for message in &r.logs {
            self.line(&mut w.buf, &w.stamp, micros, "INFO", "wf::log", message, r, execution, false);
        }
        let failed = r.outcome == Outcome::Failed;
        let level = if failed { "WARN" } else { "INFO" };
        self.line(&mut w.buf, &w.stamp, micros, level, "wf::execution", "execution", r, execution, true);
    }

    /// One line: a `log` line (`summary` false) or an execution's summary.
    #[allow(clippy::too_many_arguments)]
    fn line(
        &self,
        out: &mut String,
        stamp: &str,
        micros: u32,
        level: &str,
        target: &str,
        message: &str,
        r: &Record,
        execution: &str,
        summary: bool,
    ) {
        let workflow: &str = &r.workflow;
        let at = r.at.as_deref().filter(|_| r.outcome == Outcome::Failed);
        match self.format {
            LogFormat::Human => {
                out.push_str(stamp);
                push_fraction(out, micros);
                if summary {
                    // The summary's level, target and message in one piece.
                    out.push_str(if level == "WARN" {
                        "Z WARN wf::execution: execution workflow="
                    } else {
                        "Z INFO wf::execution: execution workflow="
                    });
                } else {
                    out.push_str("Z ");
                    out.push_str(level);
                    out.push(' ');
                    out.push_str(target);
                    out.push_str(": ");
                    escaped(out, message);
                    out.push_str(" workflow=");
                }
                push_value(out, workflow);
                out.push_str(" execution=");
                out.push_str(execution);
                if summary {
                    out.push_str(" outcome=");
                    out.push_str(r.outcome.as_str());
                    out.push_str(" status=");
                    out.push_str(itoa::Buffer::new().format(r.status));
                    out.push_str(" duration_ms=");
                    millis(out, r.duration);
                    if let Some(reason) = &r.reason {
                        out.push_str(" reason=");
                        push_value(out, reason);
                    }
                    if let Some(at) = at {
                        out.push_str(" at=");
                        push_value(out, at);
                    }
                }
            }
            LogFormat::Json => {
                let text = |s: &str| serde_json::to_string(s).unwrap_or_default();
                let _ = write!(
                    out,
                    "{{\"timestamp\":\"{stamp}.{micros:06}Z\",\"level\":\"{level}\",\"message\":{},\"workflow\":{},\"execution\":\"{execution}\"",
                    text(message),
                    text(workflow)
                );
                if summary {
                    let _ = write!(out, ",\"outcome\":\"{}\",\"status\":{}", r.outcome.as_str(), r.status);
                    let duration_ms = r.duration.as_secs_f64() * 1000.0;
                    let _ = write!(out, ",\"duration_ms\":{}", serde_json::Value::from(duration_ms));
                    if let Some(reason) = &r.reason {
                        let _ = write!(out, ",\"reason\":{}", text(reason));
                    }
                    if let Some(at) = at {
                        let _ = write!(out, ",\"at\":{}", text(at));
                    }
                }
                let _ = write!(out, ",\"target\":\"{target}\"}}");
            }
        }
        out.push('\n');
    }
}

/// A message with its control characters (CR, LF, ESC, …) escaped: a `log` line may carry
/// request data, which must neither forge another line nor drive a terminal.
fn escaped(out: &mut String, message: &str) {
    if !message.chars().any(char::is_control) {
        out.push_str(message);
        return;
    }
    for c in message.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// `.` and the six digits of `micros` (below 1,000,000).
fn push_fraction(out: &mut String, micros: u32) {
    out.push('.');
    push_digits(out, u64::from(micros), 6);
}

/// A duration in milliseconds with three decimals (rounded to the microsecond).
fn millis(out: &mut String, d: std::time::Duration) {
    let micros = d.as_nanos().saturating_add(500) / 1000;
    push_thousandths(out, u64::try_from(micros).unwrap_or(u64::MAX));
}

/// A number with three decimals, by integer arithmetic (durations in milliseconds).
fn thousandths(out: &mut String, value: f64) {
    if !value.is_finite() || value.abs() >= 1e15 {
        let _ = write!(out, "{value}");
        return;
    }
    let thousandths = (value.abs() * 1000.0).round() as u64;
    if value < 0.0 && thousandths > 0 {
        out.push('-');
    }
    push_thousandths(out, thousandths);
}

/// `n` thousandths as `units.ddd`.
fn push_thousandths(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n / 1000));
    out.push('.');
    push_digits(out, n % 1000, 3);
}

/// The last `width` (at most 20) decimal digits of `n`, zeros before them.
fn push_digits(out: &mut String, mut n: u64, width: usize) {
    let mut all = [b'0'; 20];
    let digits = all.get_mut(..width).unwrap_or_default();
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

/// Says, once the log sink has drained, how many lines were dropped while it was blocked.
pub(crate) async fn report_dropped(counter: tracing_appender::non_blocking::ErrorCounter) {
    let mut reported = 0;
    let mut last = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = counter.dropped_lines()
            + LINES.get().map_or(0, |l| l.dropped.load(std::sync::atomic::Ordering::Relaxed) as usize);
        // Still dropping: the sink is blocked; say nothing until it drains.
        if now == last && now > reported {
            tracing::warn!(target: "wf::server", dropped = now - reported, "log lines were dropped while the log output was blocked");
            reported = now;
        }
        last = now;
    }
}

/// With the JSON log format, logs one line as one JSON object whose field `name` is `value` as
/// JSON (a reload's diagnostics, an array), which `tracing` would write as a string; false (and
/// nothing logged) with the human format.
pub(crate) fn json_object(
    level: &'static str,
    target: &'static str,
    message: &str,
    name: &'static str,
    value: serde_json::Value,
) -> bool {
    let Some(lines) = LINES.get().filter(|l| l.format == LogFormat::Json) else { return false };
    let stamp = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let line = serde_json::json!({
        "timestamp": stamp,
        "level": level,
        "message": message,
        "target": target,
        name: value,
    })
    .to_string();
    lines.with_shard(|shard| {
        if let Ok(mut w) = shard.waiting.lock() {
            w.buf.push_str(&line);
            w.buf.push('\n');
        }
    });
    true
}

/// Logs an execution's `log` lines, then its summary line.
pub(crate) fn record(r: &Record) {
    if let Some(lines) = LINES.get() {
        return lines.record(r);
    }
    let mut id = [0u8; 16];
    let execution = r.id.hex(&mut id);
    let workflow: &str = &r.workflow;
    for line in &r.logs {
        tracing::info!(target: "wf::log", workflow, execution, "{line}");
    }
    let duration_ms = r.duration.as_secs_f64() * 1000.0;
    let reason = r.reason.as_deref();
    if r.outcome == Outcome::Failed {
        let at = r.at.as_deref();
        tracing::warn!(target: "wf::execution", workflow, execution, outcome = r.outcome.as_str(), status = r.status, duration_ms, reason, at, "execution");
    } else {
        tracing::info!(target: "wf::execution", workflow, execution, outcome = r.outcome.as_str(), status = r.status, duration_ms, reason, "execution");
    }
}

/// `2026-11-27T19:13:05.123456Z INFO wf::execution: execution workflow=w execution=… status=200`
pub(crate) struct Human;

impl<S, N> FormatEvent<S, N> for Human
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        write!(w, "{}", humantime::format_rfc3339_micros(std::time::SystemTime::now()))?;
        w.write_str(match *meta.level() {
            tracing::Level::ERROR => " ERROR ",
            tracing::Level::WARN => " WARN ",
            tracing::Level::INFO => " INFO ",
            tracing::Level::DEBUG => " DEBUG ",
            tracing::Level::TRACE => " TRACE ",
        })?;
        w.write_str(meta.target())?;
        w.write_str(":")?;
        let mut fields = Fields { out: String::with_capacity(128), message: String::new() };
        event.record(&mut fields);
        if !fields.message.is_empty() {
            w.write_char(' ')?;
            let mut message = String::with_capacity(fields.message.len());
            escaped(&mut message, &fields.message);
            w.write_str(&message)?;
        }
        w.write_str(&fields.out)?;
        w.write_char('\n')
    }
}

/// Writes `name=value` pairs, logfmt style: strings quoted only when they need it.
struct Fields {
    out: String,
    message: String,
}

impl Fields {
    fn key(&mut self, field: &Field) {
        self.out.push(' ');
        self.out.push_str(field.name());
        self.out.push('=');
    }
}

fn push_value(out: &mut String, s: &str) {
    let plain =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=' && b != b'\\');
    if plain {
        out.push_str(s);
    } else {
        let _ = write!(out, "{s:?}");
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
            return;
        }
        self.key(field);
        push_value(&mut self.out, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }

    /// Three decimals, by integer arithmetic (durations in milliseconds).
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        thousandths(&mut self.out, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
        self.key(field);
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        push_value(&mut self.out, &s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::field::Value as _;

    #[test]
    fn fields_are_written_logfmt_style() {
        let mut f = Fields { out: String::new(), message: String::new() };
        let fields = tracing::field::FieldSet::new(
            &["message", "w", "n", "ms", "why"],
            tracing::callsite::Identifier(&CALLSITE),
        );
        let mut it = fields.iter();
        let (m, w, n, ms, why) = (
            it.next().unwrap(),
            it.next().unwrap(),
            it.next().unwrap(),
            it.next().unwrap(),
            it.next().unwrap(),
        );
        f.record_debug(&m, &format_args!("paid {}", 42));
        "plain".record(&w, &mut f);
        200u64.record(&n, &mut f);
        f.record_f64(&ms, 0.0314);
        "has space \"q\"".record(&why, &mut f);
        assert_eq!(f.message, "paid 42");
        assert_eq!(f.out, r#" w=plain n=200 ms=0.031 why="has space \"q\"""#);
        let mut g = Fields { out: String::new(), message: String::new() };
        g.record_f64(&ms, 12.0);
        assert_eq!(g.out, " ms=12.000");
    }

    fn record(outcome: &'static str, reason: Option<&str>, logs: &[&str]) -> Record {
        let outcome = Outcome::parse(outcome).unwrap_or(Outcome::Failed);
        Record {
            workflow: std::sync::Arc::from("pay"),
            id: crate::request::handle::ExecId(0xab),
            mode: crate::request::outcome::Mode::Sync,
            outcome,
            status: if outcome == Outcome::Failed { 500 } else { 200 },
            duration: std::time::Duration::from_micros(1234),
            ended: std::time::Instant::now(),
            reason: reason.map(String::from),
            at: Some("w.wf:3:5".into()),
            logs: logs.iter().map(|l| l.to_string()).collect(),
            attempts: 0,
            request: None,
        }
    }

    fn written(format: LogFormat, r: &Record) -> String {
        let lines = Lines::new(format);
        lines.record(r);
        lines.waiting()
    }

    #[test]
    fn durations_and_fractions_are_written_with_their_digits() {
        let text = |f: &dyn Fn(&mut String)| {
            let mut out = String::new();
            f(&mut out);
            out
        };
        let ms = |nanos: u64| text(&|o| millis(o, std::time::Duration::from_nanos(nanos)));
        assert_eq!(ms(0), "0.000");
        assert_eq!(ms(1_234_000), "1.234");
        assert_eq!(ms(46_400), "0.046");
        assert_eq!(ms(999_999_500), "1000.000", "rounded to the microsecond");
        assert_eq!(ms(12_345_678_900), "12345.679");
        assert_eq!(text(&|o| push_fraction(o, 5)), ".000005");
        assert_eq!(text(&|o| push_fraction(o, 123_456)), ".123456");
    }

    #[test]
    fn the_wall_clock_of_an_instant_is_read_once_a_second() {
        let mut clock = Clock::default();
        let start = std::time::Instant::now();
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
        let first = clock.wall(start);
        assert!(first.abs_diff(wall) < std::time::Duration::from_millis(50), "{first:?} {wall:?}");
        let anchor = clock.anchor;
        // Within the second: counted from the anchor, no new reading.
        let later = clock.wall(start + std::time::Duration::from_millis(500));
        assert_eq!(clock.anchor, anchor);
        assert_eq!(later, first + std::time::Duration::from_millis(500));
        // An instant before the anchor, or a second past it, reads the clock again.
        let before = clock.wall(start.checked_sub(std::time::Duration::from_millis(10)).expect("uptime"));
        assert!(
            before < first && first - before < std::time::Duration::from_millis(60),
            "{before:?} {first:?}"
        );
    }

    #[test]
    fn every_thread_s_lines_are_written_and_an_ended_thread_s_shard_let_go() {
        let lines = std::sync::Arc::new(Lines::new(LogFormat::Human));
        lines.record(&record("responded", None, &["here"]));
        let other = lines.clone();
        std::thread::spawn(move || other.record(&record("responded", None, &["there"])))
            .join()
            .expect("thread");
        assert_eq!(lines.shards.lock().expect("lock").len(), 2);
        let mut out = Vec::new();
        lines.write_with(&mut Vec::new(), &mut out);
        let out = String::from_utf8(out).expect("text");
        assert_eq!(out.lines().count(), 4, "{out}");
        assert!(out.contains("wf::log: here ") && out.contains("wf::log: there "), "{out}");
        assert_eq!(lines.shards.lock().expect("lock").len(), 1, "the ended thread's shard is let go");
        let mut again = Vec::new();
        lines.write_with(&mut Vec::new(), &mut again);
        assert!(again.is_empty(), "nothing written twice");
    }

    #[test]
    fn execution_lines_are_written_as_the_formats_say() {
        let human = written(LogFormat::Human, &record("failed", Some("no \"x\""), &["paid\r\nFAKE line"]));
        let lines: Vec<&str> = human.lines().collect();
        assert_eq!(lines.len(), 2, "{human}");
        assert!(
            lines[0].ends_with(" INFO wf::log: paid\\r\\nFAKE line workflow=pay execution=00000000000000ab"),
            "{human}"
        );
        assert!(
            lines[1].ends_with(
                r#" WARN wf::execution: execution workflow=pay execution=00000000000000ab outcome=failed status=500 duration_ms=1.234 reason="no \"x\"" at=w.wf:3:5"#
            ),
            "{human}"
        );
        assert!(lines[0].len() > 27 && lines[0].as_bytes()[26] == b'Z', "{human}");
        let json = written(LogFormat::Json, &record("responded", None, &["hi"]));
        let parsed: Vec<serde_json::Value> =
            json.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(parsed[0]["message"], "hi");
        assert_eq!(parsed[0]["target"], "wf::log");
        assert_eq!(parsed[1]["message"], "execution");
        assert_eq!(parsed[1]["status"], 200);
        assert_eq!(parsed[1]["duration_ms"], 1.234);
        assert_eq!(parsed[1]["level"], "INFO");
        assert!(parsed[1].get("at").is_none() && parsed[1].get("reason").is_none());
    }

    struct Cs;
    static CALLSITE: Cs = Cs;
    impl tracing::callsite::Callsite for Cs {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unimplemented!()
        }
    }
}
