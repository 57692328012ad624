//! Effects performed for real, as `wf serve` does: `http` calls through one shared connection
//! pool, `run` of programs in their own process group. The interpreter reaches them through the
//! step API ([`crate::request::step`]); this layer sits beside `request/` and below `serve/`.

pub(crate) mod http;
pub(crate) mod run;

use crate::request::handle::ExecId;
use crate::request::served::Served;
use crate::request::step::{self, Pending, Step, Steps};
use std::path::PathBuf;
use std::sync::Arc;

/// Where effects report what they did (the server's metrics).
pub(crate) trait Observer: Send + Sync {
    /// One effect of `workflow` ended: `kind` is `http` or `run`, `result` one of a small fixed
    /// set (see [`result_label`]), `took` its time, retries and their waits included.
    fn effect(
        &self,
        workflow: &Arc<str>,
        kind: &'static str,
        result: &'static str,
        took: std::time::Duration,
    );
}

/// An effect's result as a label: an `http` answer's status class (`2xx` …), a `run`'s `ok` or
/// `nonzero` exit, `error` when it gave no result, `parked` or `fenced` when it stopped its run.
pub(crate) fn result_label(kind: &str, result: &Result<serde_json::Value, step::StepError>) -> &'static str {
    match result {
        Ok(v) if kind == "http" => match v["status"].as_u64().unwrap_or(0) {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        },
        Ok(v) if v["code"].as_i64() == Some(0) => "ok",
        Ok(_) => "nonzero",
        Err(step::StepError::Failed(_)) => "error",
        Err(step::StepError::Stopped(step::Stop::Parked)) => "parked",
        Err(step::StepError::Stopped(step::Stop::Fenced)) => "fenced",
        Err(step::StepError::Stopped(step::Stop::Superseded)) => "superseded",
    }
}

/// What every execution's effects share: the HTTP client (its connection pool) and whether
/// programs may run.
pub(crate) struct Effects {
    /// Built at the first `http` (or at start when a workflow served has effects): a server of
    /// workflows that call nothing holds no TLS roots and no pool.
    client: std::sync::OnceLock<Result<reqwest::Client, String>>,
    allow_run: bool,
    /// A kept run's `http` retry that would wait this long or longer parks the run instead.
    park_after: std::time::Duration,
    /// Told of every effect (with `--admin`: the metrics).
    observer: Option<Arc<dyn Observer>>,
    /// Where this server's callbacks are called.
    callbacks: Arc<crate::exec::callbacks::Callbacks>,
}

impl Effects {
    /// With `now`, the HTTP client is built at once, so that a failure to build it stops the
    /// start rather than the first call.
    pub(crate) fn new(
        allow_run: bool,
        park_after: std::time::Duration,
        now: bool,
        observer: Option<Arc<dyn Observer>>,
        public_url: String,
    ) -> Result<Arc<Effects>, String> {
        let callbacks =
            Arc::new(crate::exec::callbacks::Callbacks { public_url, called: tokio::sync::Notify::new() });
        let effects =
            Effects { client: std::sync::OnceLock::new(), allow_run, park_after, observer, callbacks };
        if now {
            effects.client()?;
        }
        Ok(Arc::new(effects))
    }

    /// Where this server's callbacks are called.
    pub(crate) fn callbacks(&self) -> Arc<crate::exec::callbacks::Callbacks> {
        self.callbacks.clone()
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        self.client.get_or_init(http::client).as_ref().map_err(Clone::clone)
    }

    /// The steps of execution `id` of `served`.
    pub(crate) fn steps(self: &Arc<Self>, id: ExecId, served: &Served) -> Box<dyn Steps> {
        Box::new(self.live(id, served, None))
    }

    /// The steps of a kept run: its `http` retries that would wait `--park-after` or longer park
    /// it instead (leaving their due time in the slot given back); `resumed` is the step that
    /// was parked when the run was taken again, and the attempts it had made; `retries` how
    /// many times `wf runs retry` asked for it again (its calls' idempotency keys say so).
    pub(crate) fn kept_steps(
        self: &Arc<Self>,
        id: ExecId,
        served: &Served,
        resumed: Option<(u32, u32)>,
        retries: u32,
    ) -> (Box<dyn Steps>, step::ParkedSlot) {
        let slot = step::ParkedSlot::default();
        let park = Parking { after: self.park_after, resumed, slot: slot.clone() };
        let mut live = self.live(id, served, Some(park));
        live.retries = retries;
        (Box::new(live), slot)
    }

    fn live(self: &Arc<Self>, id: ExecId, served: &Served, park: Option<Parking>) -> Live {
        let dir = std::path::Path::new(&served.wf.file.name)
            .parent()
            .map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() })
            .unwrap_or_else(|| PathBuf::from("."));
        Live { effects: self.clone(), id, workflow: served.name.clone(), dir, park, made: 0, retries: 0 }
    }
}

/// How a kept run's long `http` waits park it.
struct Parking {
    /// Waits this long or longer park the run.
    pub after: std::time::Duration,
    /// The step that was parked when the run was resumed, and the attempts it had made.
    pub resumed: Option<(u32, u32)>,
    /// Where a step that parks leaves its due time.
    pub slot: step::ParkedSlot,
}

/// The steps of one execution, performed for real; an effect is awaited on the server's runtime.
struct Live {
    effects: Arc<Effects>,
    id: ExecId,
    workflow: Arc<str>,
    /// The directory of the workflow's file: relative programs and `dir`s are resolved from it.
    dir: PathBuf,
    park: Option<Parking>,
    /// Attempts made by the effects performed so far.
    made: u32,
    /// How many times `wf runs retry` asked for this run again.
    retries: u32,
}

impl Steps for Live {
    fn attempts(&self) -> u32 {
        self.made
    }

    fn fork(&self) -> Option<Box<dyn Steps>> {
        Some(Box::new(Live {
            effects: self.effects.clone(),
            id: self.id,
            workflow: self.workflow.clone(),
            dir: self.dir.clone(),
            park: self.park.as_ref().map(|p| Parking {
                after: p.after,
                resumed: p.resumed,
                slot: p.slot.clone(),
            }),
            made: 0,
            retries: self.retries,
        }))
    }

    fn join(&mut self, fork: &dyn Steps) {
        self.made = self.made.saturating_add(fork.attempts());
    }

    fn perform(&mut self, n: u32, s: Step) -> Pending<'_> {
        let kind = match &s {
            Step::Now | Step::Uuid => return Box::pin(std::future::ready(step::local(&s))),
            Step::Sleep(time) => return self.sleep(n, *time),
            // A kept run's journal makes and waits for callbacks (`exec::journal`).
            Step::Callback(_)
            | Step::Wait(_)
            | Step::Debounce { .. }
            | Step::Order(_)
            | Step::Rate { .. } => return Box::pin(std::future::ready(step::local(&s))),
            Step::Http(_) => "http",
            Step::Run(_) => "run",
        };
        let Some(observer) = self.effects.observer.clone() else { return self.effect(n, s) };
        Box::pin(async move {
            let started = std::time::Instant::now();
            let result = self.effect(n, s).await;
            observer.effect(&self.workflow, kind, result_label(kind, &result), started.elapsed());
            result
        })
    }
}

impl Live {
    /// A `sleep`: a second or longer parks a kept run until it is due (no worker held, kept
    /// across restarts); a shorter one, or one in a run that cannot park, is waited here. A run
    /// resumed from this sleep's park has slept.
    fn sleep(&mut self, n: u32, time: std::time::Duration) -> Pending<'_> {
        const PARK_FROM: std::time::Duration = std::time::Duration::from_secs(1);
        match &self.park {
            Some(p) if p.resumed.is_some_and(|(step, _)| step == n) => {
                Box::pin(std::future::ready(Ok(serde_json::Value::Null)))
            }
            Some(p) if time >= PARK_FROM => {
                let due_ms =
                    step::now_ms().saturating_add(i64::try_from(time.as_millis()).unwrap_or(i64::MAX));
                if let Ok(mut slot) = p.slot.lock() {
                    *slot = Some(step::Parked { n, due_ms, attempts: 0 });
                }
                Box::pin(std::future::ready(Err(step::StepError::Stopped(step::Stop::Parked))))
            }
            _ => Box::pin(async move {
                tokio::time::sleep(time).await;
                Ok(serde_json::Value::Null)
            }),
        }
    }

    fn effect(&mut self, n: u32, s: Step) -> Pending<'_> {
        match s {
            Step::Now | Step::Uuid => Box::pin(std::future::ready(step::local(&s))),
            Step::Sleep(time) => self.sleep(n, time),
            Step::Callback(_)
            | Step::Wait(_)
            | Step::Debounce { .. }
            | Step::Order(_)
            | Step::Rate { .. } => Box::pin(std::future::ready(step::local(&s))),
            Step::Http(req) => Box::pin(async move {
                let key = crate::store::retry::idempotency_key(&self.id.to_string(), n, self.retries);
                let waits = match &self.park {
                    Some(p) => http::Waits {
                        attempts_before: p.resumed.filter(|(step, _)| *step == n).map_or(0, |(_, a)| a),
                        park: Some((p.after, n, &p.slot)),
                    },
                    None => http::Waits::default(),
                };
                let client = self.effects.client()?;
                http::call(client, req, &key, waits, &mut self.made).await
            }),
            Step::Run(req) => Box::pin(async move {
                if !self.effects.allow_run {
                    return Err(format!("`run {}` needs `wf serve --allow-run`", req.program).into());
                }
                let ctx =
                    run::Context { execution: self.id.to_string(), workflow: &self.workflow, dir: &self.dir };
                self.made = self.made.saturating_add(1);
                run::run(req, &ctx).await.map_err(step::StepError::Failed)
            }),
        }
    }
}
