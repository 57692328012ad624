//! Effects performed for real, as `wf serve` does: `http` calls through one shared connection
//! pool, `run` of programs in their own process group. The interpreter reaches them through the
//! step API ([`crate::request::step`]); this layer sits beside `request/` and below `serve/`.

pub mod http;
pub mod run;

use crate::request::handle::ExecId;
use crate::request::served::Served;
use crate::request::step::{self, Pending, Step, Steps};
use std::path::PathBuf;
use std::sync::Arc;

/// What every execution's effects share: the HTTP client (its connection pool) and whether
/// programs may run.
pub struct Effects {
    client: reqwest::Client,
    allow_run: bool,
}

impl Effects {
    pub fn new(allow_run: bool) -> Result<Arc<Effects>, String> {
        Ok(Arc::new(Effects { client: http::client()?, allow_run }))
    }

    /// The steps of execution `id` of `served`.
    pub fn steps(self: &Arc<Self>, id: ExecId, served: &Served) -> Box<dyn Steps> {
        let dir = std::path::Path::new(&served.wf.file.name)
            .parent()
            .map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() })
            .unwrap_or_else(|| PathBuf::from("."));
        Box::new(Live { effects: self.clone(), id, workflow: served.name.to_string(), dir })
    }
}

/// The steps of one execution, performed for real; an effect is awaited on the server's runtime.
struct Live {
    effects: Arc<Effects>,
    id: ExecId,
    workflow: String,
    /// The directory of the workflow's file: relative programs and `dir`s are resolved from it.
    dir: PathBuf,
}

impl Steps for Live {
    fn perform(&mut self, n: u32, s: Step) -> Pending<'_> {
        match s {
            Step::Now | Step::Uuid => Box::pin(std::future::ready(step::local(&s))),
            Step::Http(req) => Box::pin(async move {
                let key = format!("{}-{n}", self.id);
                http::call(&self.effects.client, req, &key).await
            }),
            Step::Run(req) => Box::pin(async move {
                if !self.effects.allow_run {
                    return Err(format!("`run {}` needs `wf serve --allow-run`", req.program));
                }
                let ctx =
                    run::Context { execution: self.id.to_string(), workflow: &self.workflow, dir: &self.dir };
                run::run(req, &ctx).await
            }),
        }
    }
}
