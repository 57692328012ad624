//! Log lines via `tracing`: one line per execution, one per `log` statement; human or JSON lines.

use crate::http::Record;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Installs the subscriber that writes log lines to stderr. Lines are written by a background
/// thread (never dropped: a full buffer makes the caller wait), so requests do not wait on the
/// write; it writes whatever lines are waiting in one go and flushes as soon as none are left.
/// Keep the returned guard alive until exit, when it flushes what is left.
pub fn init(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(4096)
        .finish(std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let builder = tracing_subscriber::fmt().with_writer(writer).with_max_level(tracing::Level::INFO);
    let result = match format {
        LogFormat::Human => builder.with_ansi(crate::cli::color_stderr()).try_init(),
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
        }
    };
    // A subscriber may already be installed (tests); keep it.
    drop(result);
    guard
}

/// Logs an execution's `log` lines, then its summary line.
pub fn record(r: &Record) {
    for line in &r.logs {
        tracing::info!(target: "wf::log", workflow = %r.workflow, execution = %r.id, "{line}");
    }
    let duration_ms = (r.duration.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let reason = r.reason.as_deref();
    if r.outcome == "failed" {
        tracing::warn!(target: "wf::execution", workflow = %r.workflow, execution = %r.id, outcome = r.outcome, status = r.status, duration_ms, reason, "execution");
    } else {
        tracing::info!(target: "wf::execution", workflow = %r.workflow, execution = %r.id, outcome = r.outcome, status = r.status, duration_ms, reason, "execution");
    }
}
