//! `wf serve --admin ADDR`: Prometheus metrics (OpenMetrics text, `prometheus-client`), `/healthz`
//! and `/readyz` on a second listener. Labels are bounded: workflow names come from the files
//! (`-` for a path no workflow serves), statuses and outcomes from small fixed sets.

use crate::request::handle::Record;
use crate::request::outcome::Outcome;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A workflow's name as a label value (shared with the served workflow; cloning is a count).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Name(Arc<str>);

impl prometheus_client::encoding::EncodeLabelValue for Name {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        encoder.write_str(&self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    workflow: Name,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkflowLabel {
    workflow: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExecutionLabels {
    workflow: Name,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EffectLabels {
    workflow: Name,
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request durations: 100 µs to ~3 s.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// What the metrics read from the server at each scrape.
#[derive(Clone, Debug, Default)]
pub(crate) struct Readings {
    pub(crate) queue_depth: usize,
    pub(crate) open_connections: usize,
    pub(crate) dropped_writes: u64,
    /// Why the store cannot keep what it is given now.
    pub(crate) store_trouble: Option<String>,
    /// The runs parked now, by what they wait for.
    pub(crate) waiting: Vec<(&'static str, u64)>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaitingLabel {
    /// `for` is a keyword: the label is `waits_for`.
    waits_for: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallbackLabel {
    result: &'static str,
}

/// Every metric wf serves, and the readiness flag.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Histograms<WorkflowLabel>,
    executions: Family<ExecutionLabels, Counter>,
    effects: Family<EffectLabels, Counter>,
    effect_durations: Histograms<EffectLabels>,
    queue_depth: Gauge,
    dropped_writes: Gauge,
    reloads: Family<ReloadLabels, Counter>,
    open_connections: Gauge,
    workflows: Gauge,
    waiting: Family<WaitingLabel, Gauge>,
    callbacks: Family<CallbackLabel, Counter>,
    /// Cleared when shutdown begins: `/readyz` then answers 503.
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wf");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests answered, by workflow and status", requests.clone());
        let durations: Histograms<WorkflowLabel> = Family::new_with_constructor(duration_histogram);
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by workflow",
            durations.clone(),
        );
        let executions = Family::<ExecutionLabels, Counter>::default();
        registry.register(
            "executions",
            "Executions that ran, by workflow and outcome (responded, completed, failed)",
            executions.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "async_queue_depth",
            "Async executions accepted and waiting to run",
            queue_depth.clone(),
        );
        let dropped_writes = Gauge::default();
        registry.register(
            "store_dropped_writes",
            "Writes the store could not keep so far (history records past a full queue, a failed batch)",
            dropped_writes.clone(),
        );
        let effects = Family::<EffectLabels, Counter>::default();
        registry.register(
            "effects",
            "Effects (http, run) by workflow, kind and result (an http answer's status class, a run's ok or nonzero exit, error, parked)",
            effects.clone(),
        );
        let effect_durations: Histograms<EffectLabels> = Family::new_with_constructor(duration_histogram);
        registry.register(
            "effect_duration_seconds",
            "Time an effect took (its retries and their waits included), by workflow, kind and result",
            effect_durations.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "reloads",
            "Reloads of the workflow files, by result (ok, refused)",
            reloads.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Connections open on the main listener",
            open_connections.clone(),
        );
        let workflows = Gauge::default();
        registry.register("workflows", "Workflows being served", workflows.clone());
        let waiting = Family::<WaitingLabel, Gauge>::default();
        registry.register(
            "waiting_runs",
            "Runs parked in the store, by what they wait for (sleep, callback, retry)",
            waiting.clone(),
        );
        let callbacks = Family::<CallbackLabel, Counter>::default();
        registry.register(
            "callback_calls",
            "Calls to callbacks, by result (taken, gone, unknown, error)",
            callbacks.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            executions,
            effects,
            effect_durations,
            queue_depth,
            dropped_writes,
            reloads,
            open_connections,
            workflows,
            waiting,
            callbacks,
            ready: AtomicBool::new(true),
        }
    }

    /// Counts an answered request, and its execution when one ran.
    pub(crate) fn request(
        &self,
        workflow: &Arc<str>,
        status: u16,
        duration: Duration,
        record: Option<&Record>,
    ) {
        self.requests.get_or_create(&RequestLabels { workflow: Name(workflow.clone()), status }).inc();
        self.durations
            .get_or_create(&WorkflowLabel { workflow: Name(workflow.clone()) })
            .observe(duration.as_secs_f64());
        if let Some(r) = record {
            self.execution(r);
        }
    }

    /// Counts an execution that ran (not a rejection).
    pub(crate) fn execution(&self, r: &Record) {
        if matches!(r.outcome, Outcome::Responded | Outcome::Completed | Outcome::Failed) {
            self.executions
                .get_or_create(&ExecutionLabels {
                    workflow: Name(r.workflow.clone()),
                    outcome: r.outcome.as_str(),
                })
                .inc();
        }
    }

    /// Counts an effect and observes its duration.
    fn effect_ended(&self, workflow: &Arc<str>, kind: &'static str, result: &'static str, took: Duration) {
        let labels = EffectLabels { workflow: Name(workflow.clone()), kind, result };
        self.effects.get_or_create(&labels).inc();
        self.effect_durations.get_or_create(&labels).observe(took.as_secs_f64());
    }

    pub(crate) fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ReloadLabels { result: if ok { "ok" } else { "refused" } }).inc();
    }

    pub(crate) fn set_workflows(&self, n: usize) {
        self.workflows.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts a call to a callback by the status it got.
    pub(crate) fn callback_call(&self, status: u16) {
        let result = match status {
            200 => "taken",
            410 => "gone",
            404 => "unknown",
            _ => "error",
        };
        self.callbacks.get_or_create(&CallbackLabel { result }).inc();
    }

    pub(crate) fn not_ready(&self) {
        self.ready.store(false, Ordering::Relaxed);
    }

    /// The text of `/metrics`, with the gauges read now.
    pub(crate) fn render(&self, now: Readings) -> String {
        self.queue_depth.set(i64::try_from(now.queue_depth).unwrap_or(i64::MAX));
        self.open_connections.set(i64::try_from(now.open_connections).unwrap_or(i64::MAX));
        self.dropped_writes.set(i64::try_from(now.dropped_writes).unwrap_or(i64::MAX));
        for what in ["sleep", "callback", "retry"] {
            let n = now.waiting.iter().find(|(w, _)| *w == what).map_or(0, |(_, n)| *n);
            self.waiting
                .get_or_create(&WaitingLabel { waits_for: what })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut out = String::with_capacity(4096);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The answer of an admin path: status, content type, body.
    pub(crate) fn answer(&self, path: &str, now: Readings) -> (u16, &'static str, String) {
        match path {
            "/metrics" => {
                (200, "application/openmetrics-text; version=1.0.0; charset=utf-8", self.render(now))
            }
            "/healthz" => (200, "application/json", "{\"status\":\"ok\"}".to_string()),
            // A store that cannot keep runs: not ready, saying why (async callers get 503).
            "/readyz" if now.store_trouble.is_some() => (
                503,
                "application/json",
                serde_json::json!({"status": "not ready", "reason": now.store_trouble}).to_string(),
            ),
            "/readyz" if self.ready.load(Ordering::Relaxed) && self.workflows.get() > 0 => (
                200,
                "application/json",
                format!("{{\"status\":\"ready\",\"workflows\":{}}}", self.workflows.get()),
            ),
            "/readyz" => (503, "application/json", "{\"status\":\"not ready\"}".to_string()),
            _ => (404, "application/json", "{\"error\":\"not found\"}".to_string()),
        }
    }
}

impl crate::effect::Observer for Metrics {
    fn effect(&self, workflow: &Arc<str>, kind: &'static str, result: &'static str, took: Duration) {
        self.effect_ended(workflow, kind, result, took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_in_openmetrics_text() {
        let m = Metrics::new();
        let w: Arc<str> = Arc::from("pay");
        m.request(&w, 200, Duration::from_millis(2), None);
        m.request(&w, 200, Duration::from_millis(3), None);
        m.reload(false);
        m.set_workflows(1);
        let text = m.render(Readings {
            queue_depth: 3,
            open_connections: 2,
            dropped_writes: 0,
            store_trouble: None,
            waiting: vec![("sleep", 4)],
        });
        assert!(text.contains("wf_requests_total{workflow=\"pay\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("wf_waiting_runs{waits_for=\"sleep\"} 4"), "{text}");
        assert!(text.contains("wf_waiting_runs{waits_for=\"callback\"} 0"), "{text}");
        assert!(text.contains("wf_request_duration_seconds_count{workflow=\"pay\"} 2"), "{text}");
        assert!(text.contains("wf_reloads_total{result=\"refused\"} 1"), "{text}");
        assert!(text.contains("wf_async_queue_depth 3"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(m.answer("/readyz", Readings::default()).0, 200);
        m.not_ready();
        assert_eq!(m.answer("/readyz", Readings::default()).0, 503);
    }
}
