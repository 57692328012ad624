//! Effects performed for real, as `wf serve` does: `http` calls through one shared connection
//! pool, `run` of programs in their own process group. The interpreter reaches them through the
//! step API ([`crate::request::step`]); this layer sits beside `request/` and below `serve/`.

pub mod http;
pub mod run;

use crate::request::handle::ExecId;
use crate::request::served::Served;
use crate::request::step::{self, Step, Steps};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// What every execution's effects share: the HTTP client (its connection pool), the runtime that
/// drives calls, and whether programs may run.
pub struct Effects {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    allow_run: bool,
}

impl Effects {
    /// Builds the shared client; call inside the runtime that will drive the calls.
    pub fn new(allow_run: bool) -> Result<Arc<Effects>, String> {
        let client = http::client()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        Ok(Arc::new(Effects { client, runtime, allow_run }))
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

/// The steps of one execution, performed for real. `perform` blocks its thread while the effect
/// runs: executions with effects run on the blocking pool (see `Plan::heavy`).
struct Live {
    effects: Arc<Effects>,
    id: ExecId,
    workflow: String,
    /// The directory of the workflow's file: relative programs and `dir`s are resolved from it.
    dir: PathBuf,
}

impl Steps for Live {
    fn perform(&mut self, n: u32, s: Step) -> Result<Value, String> {
        match s {
            Step::Now => Ok(step::now()),
            Step::Uuid => Ok(step::uuid()),
            Step::Http(req) => {
                let key = format!("{}-{n}", self.id);
                self.effects.runtime.block_on(http::call(&self.effects.client, req, &key))
            }
            Step::Run(req) => {
                if !self.effects.allow_run {
                    return Err(format!("`run {}` needs `wf serve --allow-run`", req.program));
                }
                let ctx =
                    run::Context { execution: self.id.to_string(), workflow: &self.workflow, dir: &self.dir };
                self.effects.runtime.block_on(run::run(req, &ctx))
            }
        }
    }
}
