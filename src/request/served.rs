//! The served set: a checked program with `env()` resolved, credentials and immediate answers
//! prepared, and a route table from URL path to workflow. Built once per load; swapped whole.

use crate::lang::diagnostic::{Diagnostic, Kind};
use crate::lang::ir::{self, Expr, Program, TestCase, Workflow};
use crate::request::eval::{self, Answer};
use crate::request::plan::Plan;
use http::HeaderValue;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One workflow ready to answer requests.
#[derive(Debug)]
pub struct Served {
    pub wf: Workflow,
    /// What it reads of a request.
    pub plan: Plan,
    /// `user:password` as expected from the caller.
    pub credentials: Option<(Vec<u8>, Vec<u8>)>,
    /// `Basic realm="<workflow>"`.
    pub challenge: HeaderValue,
    /// Async only: the immediate answer, built once.
    pub immediate: Option<Answer>,
    /// The workflow's name, shared by every log record.
    pub name: Arc<str>,
    /// The values its `env()` calls resolved to (those of [`SECRET_MIN`] bytes or more): never
    /// written to a log line or a failure reason, whatever the workflow does with them.
    pub secrets: Vec<Box<str>>,
}

/// Shorter `env()` values (`"eu"`, `"1"`) are too common in ordinary text to redact.
pub const SECRET_MIN: usize = 4;

/// What a redacted `env()` value reads as.
pub const REDACTED: &str = "[redacted]";

impl Served {
    /// Replaces every `env()` value of this workflow in `text` with [`REDACTED`].
    pub fn redact(&self, text: &mut String) {
        for secret in &self.secrets {
            if text.contains(&**secret) {
                *text = text.replace(&**secret, REDACTED);
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Router {
    routes: HashMap<String, Arc<Served>>,
    /// Workflows that could not be prepared (an unset `env()`), by path, with the reason.
    broken: HashMap<String, BuildError>,
    pub tests: Vec<TestCase>,
}

impl Router {
    pub fn get(&self, path: &str) -> Option<&Arc<Served>> {
        self.routes.get(path)
    }

    /// Why the workflow at `path` could not be loaded, if it could not.
    pub fn broken(&self, path: &str) -> Option<&BuildError> {
        self.broken.get(path)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn workflows(&self) -> impl Iterator<Item = &Arc<Served>> {
        self.routes.values()
    }
}

/// Why a checked workflow cannot be served.
#[derive(Debug)]
pub enum BuildError {
    /// An `env()` variable is not set: the variable, the workflow, its file and line.
    MissingEnv { name: String, workflow: String, location: String },
    /// A constant that fails with the values `env()` gave it.
    Invalid(Box<Diagnostic>),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::MissingEnv { name, workflow, location } => write!(
                f,
                "environment variable `{name}` is not set; workflow `{workflow}` in {location} needs it"
            ),
            BuildError::Invalid(d) => {
                write!(f, "{}: {}", d.primary.file.location(d.primary.span.start), d.message)
            }
        }
    }
}

/// Resolves `env()` and prepares every workflow; the errors name the variable and the file.
pub fn build(program: Program, env: &dyn Fn(&str) -> Option<String>) -> Result<Router, Vec<BuildError>> {
    let router = build_partial(program, env);
    if router.broken.is_empty() {
        return Ok(router);
    }
    let mut errors: Vec<BuildError> = router.broken.into_values().collect();
    errors.sort_by_key(|e| e.to_string());
    Err(errors)
}

/// What `serve` would refuse about a checked program, other than unset `env()` variables: its
/// constants computed the way [`build`] computes them (those that read `env()` are left to
/// `serve`, whose values `check` does not know). `wf check` reports these with the checker's.
pub fn verify(program: &Program) -> Vec<Diagnostic> {
    program.workflows.iter().filter_map(|wf| constants(wf, true).err()).map(|d| *d).collect()
}

/// Like [`build`], but keeps going: a workflow that cannot be prepared is recorded as broken
/// (`wf test` fails the tests that call it, naming the variable).
pub fn build_partial(program: Program, env: &dyn Fn(&str) -> Option<String>) -> Router {
    let mut broken = HashMap::new();
    let mut routes = HashMap::new();
    for mut wf in program.workflows {
        let mut missing = Vec::new();
        let mut secrets = Vec::new();
        wf.walk_exprs_mut(&mut |e| resolve(e, env, &mut missing, &mut secrets));
        let path = wf.path.clone();
        if let Some(name) = missing.first() {
            let why = BuildError::MissingEnv {
                name: name.clone(),
                workflow: wf.name.clone(),
                location: wf.file.location(wf.span.start),
            };
            broken.insert(path, why);
            continue;
        }
        match prepare(wf, secrets) {
            Ok(s) => {
                routes.insert(path, Arc::new(s));
            }
            Err(d) => {
                broken.insert(path, BuildError::Invalid(d));
            }
        }
    }
    let mut tests = program.tests;
    for t in &mut tests {
        // A test that needs an unset variable fails when it runs: its env() stays unresolved.
        t.walk_exprs_mut(&mut |e| resolve(e, env, &mut Vec::new(), &mut Vec::new()));
    }
    Router { routes, broken, tests }
}

fn resolve(
    e: &mut Expr,
    env: &dyn Fn(&str) -> Option<String>,
    missing: &mut Vec<String>,
    secrets: &mut Vec<Box<str>>,
) {
    if let Expr::Env(name) = e {
        match env(name) {
            Some(v) => {
                if v.len() >= SECRET_MIN && !secrets.iter().any(|s| **s == *v) {
                    secrets.push(v.as_str().into());
                }
                *e = Expr::Const(Value::String(v));
            }
            None => {
                if !missing.contains(name) {
                    missing.push(name.clone());
                }
            }
        }
    }
}

fn prepare(wf: Workflow, secrets: Vec<Box<str>>) -> Result<Served, Box<Diagnostic>> {
    let Constants { credentials, immediate } = constants(&wf, false)?;
    let realm = wf.name.replace(['"', '\\'], "");
    let challenge = HeaderValue::from_str(&format!("Basic realm=\"{realm}\""))
        .unwrap_or(HeaderValue::from_static("Basic realm=\"wf\""));
    let name = Arc::from(wf.name.as_str());
    let plan = Plan::of(&wf);
    Ok(Served { wf, plan, credentials, challenge, immediate, name, secrets })
}

/// A workflow's values computed once, at load.
struct Constants {
    credentials: Option<(Vec<u8>, Vec<u8>)>,
    immediate: Option<Answer>,
}

/// Computes the credentials and the immediate answer. With `skip_env`, those that read `env()`
/// are left out (and come back `None`).
fn constants(wf: &Workflow, skip_env: bool) -> Result<Constants, Box<Diagnostic>> {
    let fails = |span, what: &str, e: String| {
        Box::new(
            Diagnostic::new(Kind::ConstantFails, &wf.file, span, format!("{what} cannot be computed: {e}"))
                .label(format!("fails when `{}` is loaded", wf.name)),
        )
    };
    let skip = |e: &Expr| skip_env && e.mentions_env();
    let credentials = match &wf.auth {
        Some(ir::Auth { user, password, .. }) if skip(user) || skip(password) => None,
        Some(ir::Auth { user, password, span }) => {
            let u = constant_string(user).map_err(|e| fails(*span, "the auth user", e))?;
            let p = constant_string(password).map_err(|e| fails(*span, "the auth password", e))?;
            Some((u.into_bytes(), p.into_bytes()))
        }
        None => None,
    };
    let immediate = match &wf.immediate {
        Some(r) if skip_env && r.mentions_env() => None,
        Some(r) => Some(eval::answer(r, &[]).map_err(|e| fails(r.span, "the immediate answer", e))?),
        None => None,
    };
    Ok(Constants { credentials, immediate })
}

fn constant_string(e: &Expr) -> Result<String, String> {
    match eval::eval(e, &[]).map(|v| v.into_owned())? {
        Value::String(s) => Ok(s),
        other => Ok(crate::request::value::render_string(&other)),
    }
}

#[cfg(test)]
mod tests {
    /// The served table is shared by every request thread and swapped whole on reload.
    #[test]
    fn the_served_table_is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<super::Router>();
    }
}
