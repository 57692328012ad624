//! Log lines via `tracing`: one line per execution, one per `log` statement; human or JSON lines.
//! The human format is written by [`Human`], which formats fields directly (no `Debug`
//! round-trips), since a line is written for every request.

use crate::request::handle::Record;
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Installs the subscriber that writes log lines to stderr. Lines are written by a background
/// thread, so requests do not wait on the write; it writes whatever lines are waiting in one go
/// and flushes as soon as none are left. When the sink blocks (a log pipe nobody reads) and 4,096
/// lines wait, further lines are dropped and counted rather than stop the server; see
/// [`report_dropped`]. Keep the returned guard alive until exit, when it flushes what is left.
pub fn init(
    format: LogFormat,
) -> (tracing_appender::non_blocking::WorkerGuard, tracing_appender::non_blocking::ErrorCounter) {
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
    (guard, dropped)
}

/// Says, once the log sink has drained, how many lines were dropped while it was blocked.
pub async fn report_dropped(counter: tracing_appender::non_blocking::ErrorCounter) {
    let mut reported = 0;
    let mut last = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = counter.dropped_lines();
        // Still dropping: the sink is blocked; say nothing until it drains.
        if now == last && now > reported {
            tracing::warn!(target: "wf::server", dropped = now - reported, "log lines were dropped while the log output was blocked");
            reported = now;
        }
        last = now;
    }
}

/// Logs an execution's `log` lines, then its summary line.
pub fn record(r: &Record) {
    let mut id = [0u8; 16];
    let execution = r.id.hex(&mut id);
    let workflow: &str = &r.workflow;
    for line in &r.logs {
        tracing::info!(target: "wf::log", workflow, execution, "{line}");
    }
    let duration_ms = r.duration.as_secs_f64() * 1000.0;
    let reason = r.reason.as_deref();
    if r.outcome == "failed" {
        let at = r.at.as_deref();
        tracing::warn!(target: "wf::execution", workflow, execution, outcome = r.outcome, status = r.status, duration_ms, reason, at, "execution");
    } else {
        tracing::info!(target: "wf::execution", workflow, execution, outcome = r.outcome, status = r.status, duration_ms, reason, "execution");
    }
}

/// `2026-11-27T19:13:05.123456Z INFO wf::execution: execution workflow=w execution=… status=200`
pub struct Human;

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
            // A `log` line may carry request data: control characters (CR, LF, ESC, …) are
            // escaped so that it can neither forge another line nor drive a terminal.
            if fields.message.chars().any(char::is_control) {
                for c in fields.message.chars() {
                    match c {
                        '\n' => w.write_str("\\n")?,
                        '\r' => w.write_str("\\r")?,
                        '\t' => w.write_str("\\t")?,
                        c if c.is_control() => write!(w, "\\u{{{:x}}}", c as u32)?,
                        c => w.write_char(c)?,
                    }
                }
            } else {
                w.write_str(&fields.message)?;
            }
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
        if !value.is_finite() || value.abs() >= 1e15 {
            let _ = write!(self.out, "{value}");
            return;
        }
        let thousandths = (value.abs() * 1000.0).round() as u64;
        if value < 0.0 && thousandths > 0 {
            self.out.push('-');
        }
        self.out.push_str(itoa::Buffer::new().format(thousandths / 1000));
        self.out.push('.');
        let frac = thousandths % 1000;
        if frac < 100 {
            self.out.push('0');
        }
        if frac < 10 {
            self.out.push('0');
        }
        self.out.push_str(itoa::Buffer::new().format(frac));
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

    struct Cs;
    static CALLSITE: Cs = Cs;
    impl tracing::callsite::Callsite for Cs {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unimplemented!()
        }
    }
}
