//! The served set: a checked program with `env()` resolved, credentials and immediate answers
//! prepared, and a route table from URL path to workflow. Built once per load; swapped whole.

use crate::lang::diagnostic::{Diagnostic, Kind};
use crate::lang::ir::{AuthKind, Expr, Program, Scheme, TestCase, Workflow};
use crate::request::eval::{self, Answer};
use crate::request::plan::Plan;
use crate::request::signature::{HmacHeader, Verifier};
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
    /// Who may call, checked before the body is read (Basic, bearer, a header).
    pub access: Access,
    /// A signature over the raw body, checked once it is read.
    pub signature: Option<Verifier>,
    /// `Basic realm="<workflow>"`.
    pub challenge: HeaderValue,
    /// The methods served, for `allow` (and CORS preflights).
    pub allow_methods: HeaderValue,
    /// Async only: the immediate answer, built once.
    pub immediate: Option<Answer>,
    /// The workflow's name, shared by every log record.
    pub name: Arc<str>,
    /// The values its `env()` calls resolved to (those of [`SECRET_MIN`] bytes or more): never
    /// written to a log line or a failure reason, whatever the workflow does with them.
    pub secrets: Vec<Box<str>>,
    /// The version it was loaded from. A store keeps an async run with the text of its
    /// version, so the run resumes under it after a restart.
    pub version: Arc<Version>,
    /// The names of the `env()` variables and secrets it reads (never their values).
    pub env_names: Vec<String>,
    /// `concurrency N`: one permit per execution under way.
    pub running: Option<Arc<tokio::sync::Semaphore>>,
}

/// The text of a workflow file as it was loaded (and as a run was accepted under it).
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    /// SHA-256 (hex) of `source`.
    pub hash: String,
    /// The file's path as `serve` was given it.
    pub file: String,
    pub source: Arc<str>,
}

/// Credentials checked before the body: each accepted value (several when rotating).
#[derive(Debug, Default)]
pub enum Access {
    #[default]
    Anyone,
    /// `user:password` pairs.
    Basic(Vec<(Vec<u8>, Vec<u8>)>),
    /// `Authorization: Bearer <token>`.
    Bearer(Vec<Vec<u8>>),
    /// The header equals one of the secrets.
    Header(http::HeaderName, Vec<Vec<u8>>),
}

/// Shorter `env()` values (`"eu"`, `"1"`) are too common in ordinary text to redact.
pub const SECRET_MIN: usize = 4;

/// What a redacted `env()` value reads as.
pub const REDACTED: &str = "[redacted]";

impl Served {
    /// Replaces every `env()` value of this workflow in `text` with [`REDACTED`].
    pub fn redact(&self, text: &mut String) {
        redact(&self.secrets, text);
    }

    /// `text` with every `env()` value of this workflow in it redacted (borrowed when it has
    /// none).
    pub(crate) fn redacted<'a>(&self, text: std::borrow::Cow<'a, str>) -> std::borrow::Cow<'a, str> {
        if !self.secrets.iter().any(|s| text.contains(&**s)) {
            return text;
        }
        let mut owned = text.into_owned();
        redact(&self.secrets, &mut owned);
        std::borrow::Cow::Owned(owned)
    }

    /// A value with every `env()` value and secret of this workflow in it redacted (as in its
    /// JSON text): what the store keeps of results and answers.
    pub(crate) fn redact_value(&self, v: serde_json::Value) -> serde_json::Value {
        if self.secrets.is_empty() {
            return v;
        }
        let mut text = v.to_string();
        if !self.secrets.iter().any(|s| text.contains(&**s)) {
            return v;
        }
        redact(&self.secrets, &mut text);
        serde_json::from_str(&text).unwrap_or(v)
    }
}

/// Replaces every one of `secrets` in `text` with what it is shown as ([`shown_secret`]),
/// longest first (so a secret that contains another is replaced whole).
fn redact(secrets: &[Box<str>], text: &mut String) {
    for secret in secrets {
        if text.contains(&**secret) {
            *text = text.replace(&**secret, &shown_secret(secret));
        }
    }
}

/// What a secret reads as wherever wf writes it: [`REDACTED`], or for a secret that is an
/// `http(s)` URL (an incoming-webhook URL), its scheme and host, which are not secret, and
/// `[secret]` for the rest: `https://hooks.example/[secret]`.
pub fn shown_secret(secret: &str) -> String {
    if let Some((scheme, rest)) = secret.split_once("://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
        // Credentials in the authority (`user:password@host`) are secret too.
        if web && !host.is_empty() && !host.contains('@') {
            return format!("{scheme}://{host}/[secret]");
        }
    }
    REDACTED.to_string()
}

#[derive(Debug, Default)]
pub struct Router {
    routes: HashMap<String, Arc<Served>>,
    /// Workflows that could not be prepared (an unset `env()`), by path, with the reason.
    broken: HashMap<String, BuildError>,
    pub tests: Vec<TestCase>,
    /// Every `env()` and `secret()` value of 4 bytes or more (and its JSON-escaped, upper- and
    /// lower-case forms): never written to a log line, a failure reason or `wf test`'s output.
    pub secrets: Vec<Box<str>>,
}

impl Router {
    /// Replaces every secret value in `text` with [`REDACTED`].
    pub fn redact(&self, text: &mut String) {
        redact(&self.secrets, text);
    }

    /// Whether some workflow needs the caller's address (so the server records the peer).
    pub fn needs_peer(&self) -> bool {
        self.routes.values().any(|s| s.plan.needs_ip)
    }

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

    /// The URL paths served, sorted.
    pub(crate) fn paths(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = self.routes.keys().map(String::as_str).collect();
        paths.sort_unstable();
        paths
    }

    pub fn workflows(&self) -> impl Iterator<Item = &Arc<Served>> {
        self.routes.values()
    }
}

/// Why a checked workflow cannot be served.
#[derive(Debug)]
pub enum BuildError {
    /// An `env()` variable is not set: the variable, the workflow, its file and line.
    MissingEnv { what: &'static str, name: String, workflow: String, location: String },
    /// A constant that fails with the values `env()` gave it.
    Invalid(Box<Diagnostic>),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::MissingEnv { what: "secret", name, workflow, location } => write!(
                f,
                "secret `{name}` is not set or empty (an environment variable, or a file in $CREDENTIALS_DIRECTORY or --secrets-dir); workflow `{workflow}` in {location} needs it"
            ),
            BuildError::MissingEnv { what, name, workflow, location } => {
                write!(f, "{what} `{name}` is not set; workflow `{workflow}` in {location} needs it")
            }
            BuildError::Invalid(d) => {
                write!(f, "{}: {}", d.primary.file.location(d.primary.span.start), d.message)
            }
        }
    }
}

/// Resolves `env()` and `secret()` and prepares every workflow; the errors name the variable and
/// the file. Secrets not in the environment are read from `$CREDENTIALS_DIRECTORY`.
pub fn build(program: Program, env: &dyn Fn(&str) -> Option<String>) -> Result<Router, Vec<BuildError>> {
    build_in(program, env, credentials_directory().as_deref())
}

/// Like [`build`], with secrets also read from the files of `secrets_dir`.
pub fn build_in(
    program: Program,
    env: &dyn Fn(&str) -> Option<String>,
    secrets_dir: Option<&std::path::Path>,
) -> Result<Router, Vec<BuildError>> {
    let router = build_partial_in(program, env, secrets_dir);
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
    build_partial_in(program, env, credentials_directory().as_deref())
}

/// systemd's `$CREDENTIALS_DIRECTORY`, where services find their secrets as files.
pub fn credentials_directory() -> Option<std::path::PathBuf> {
    std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()).map(std::path::PathBuf::from)
}

/// A secret: the environment variable `name`, else the file `name` in `dir` (one trailing newline
/// dropped, as Docker and Kubernetes write them).
pub(crate) fn read_secret(
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
    dir: Option<&std::path::Path>,
) -> Option<String> {
    if let Some(v) = env(name) {
        return Some(v);
    }
    // A file name only: no path separators, no `..`.
    let safe = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name != "."
        && name != "..";
    if !safe {
        return None;
    }
    let text = std::fs::read_to_string(dir?.join(name)).ok()?;
    Some(text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_string())
}

/// What `wf test` gives a `secret()` that is set nowhere: a fixed value of its own per name,
/// which `sign` lines use too, so that tests need no `--env`. A Standard Webhooks key (`whsec_`
/// and base64), so it serves every scheme.
pub fn test_secret(name: &str) -> String {
    use base64::Engine as _;
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(format!("wf-test-secret-{name}")))
}

/// Like [`build_partial`], with secrets also read from the files of `secrets_dir`.
pub fn build_partial_in(
    program: Program,
    env: &dyn Fn(&str) -> Option<String>,
    secrets_dir: Option<&std::path::Path>,
) -> Router {
    build_partial_with(program, env, &|name: &str| read_secret(name, env, secrets_dir))
}

/// For `wf test`: like [`build_partial_in`], a secret set nowhere given its [`test_secret`].
pub fn build_for_tests(
    program: Program,
    env: &dyn Fn(&str) -> Option<String>,
    secrets_dir: Option<&std::path::Path>,
) -> Router {
    let secret = |name: &str| read_secret(name, env, secrets_dir).or_else(|| Some(test_secret(name)));
    build_partial_with(program, env, &secret)
}

fn build_partial_with(
    program: Program,
    env: &dyn Fn(&str) -> Option<String>,
    secret: &dyn Fn(&str) -> Option<String>,
) -> Router {
    let mut broken = HashMap::new();
    let mut routes = HashMap::new();
    // Every workflow redacts every secret: a caller may send another workflow's secret, and it
    // must not reach a log line through a 400's reason or this workflow's `log`.
    let mut all_secrets = Vec::new();
    let mut resolved = Vec::new();
    for mut wf in program.workflows {
        let mut missing = Vec::new();
        let mut names = Vec::new();
        wf.walk_exprs_mut(&mut |e| {
            if let Expr::Env(n) | Expr::Secret(n) = e {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
            resolve(e, env, &secret, &mut missing, &mut all_secrets)
        });
        resolved.push((wf, missing, names));
    }
    let mut tests = program.tests;
    for t in &mut tests {
        // A test that needs an unset variable fails when it runs: its env() stays unresolved.
        t.walk_exprs_mut(&mut |e| resolve(e, env, &secret, &mut Vec::new(), &mut all_secrets));
    }
    all_secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut versions: HashMap<usize, Arc<Version>> = HashMap::new();
    for (wf, missing, env_names) in resolved {
        let secrets = all_secrets.clone();
        let path = wf.path.clone();
        if let Some((name, what)) = missing.first() {
            let why = BuildError::MissingEnv {
                what,
                name: name.clone(),
                workflow: wf.name.clone(),
                location: wf.file.location(wf.span.start),
            };
            broken.insert(path, why);
            continue;
        }
        // One hash per file, however many workflows it holds.
        let version = versions
            .entry(Arc::as_ptr(&wf.file) as usize)
            .or_insert_with(|| {
                use sha2::Digest as _;
                Arc::new(Version {
                    hash: hex::encode(sha2::Sha256::digest(wf.file.text.as_bytes())),
                    file: wf.file.name.clone(),
                    source: Arc::from(wf.file.text.as_str()),
                })
            })
            .clone();
        match prepare(wf, secrets, env_names, version) {
            Ok(s) => {
                routes.insert(path, Arc::new(s));
            }
            Err(d) => {
                broken.insert(path, BuildError::Invalid(d));
            }
        }
    }
    Router { routes, broken, tests, secrets: all_secrets }
}

/// Replaces `env()` and `secret()` by their values, noting what is missing (a secret that is
/// empty counts as missing) and every value to redact from logs, JSON-escaped form included.
fn resolve(
    e: &mut Expr,
    env: &dyn Fn(&str) -> Option<String>,
    secret: &dyn Fn(&str) -> Option<String>,
    missing: &mut Vec<(String, &'static str)>,
    secrets: &mut Vec<Box<str>>,
) {
    let (name, value, what) = match e {
        Expr::Env(name) => (name.clone(), env(name), "environment variable"),
        Expr::Secret(name) => (name.clone(), secret(name).filter(|v| !v.is_empty()), "secret"),
        _ => return,
    };
    match value {
        Some(v) => {
            let escaped = serde_json::to_string(&v).unwrap_or_default();
            let escaped = escaped.get(1..escaped.len().saturating_sub(1)).unwrap_or("").to_string();
            let (upper, lower) = (v.to_uppercase(), v.to_lowercase());
            for form in [v.as_str(), escaped.as_str(), upper.as_str(), lower.as_str()] {
                if form.len() >= SECRET_MIN && !secrets.iter().any(|s| **s == *form) {
                    secrets.push(form.into());
                }
            }
            *e = Expr::Const(Value::String(v));
        }
        None => {
            if !missing.iter().any(|(n, _)| *n == name) {
                missing.push((name, what));
            }
        }
    }
}

fn prepare(
    wf: Workflow,
    secrets: Vec<Box<str>>,
    env_names: Vec<String>,
    version: Arc<Version>,
) -> Result<Served, Box<Diagnostic>> {
    let Constants { access, signature, immediate } = constants(&wf, false)?;
    let realm = wf.name.replace(['"', '\\'], "");
    let challenge = HeaderValue::from_str(&format!("Basic realm=\"{realm}\""))
        .unwrap_or(HeaderValue::from_static("Basic realm=\"wf\""));
    let methods: Vec<&str> = wf.methods.iter().map(http::Method::as_str).collect();
    let allow_methods =
        HeaderValue::from_str(&methods.join(", ")).unwrap_or(HeaderValue::from_static("POST"));
    let name = Arc::from(wf.name.as_str());
    let plan = Plan::of(&wf);
    let running = wf.concurrency.map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize)));
    Ok(Served {
        wf,
        plan,
        access,
        signature,
        challenge,
        allow_methods,
        immediate,
        name,
        secrets,
        version,
        env_names,
        running,
    })
}

/// A workflow's values computed once, at load.
struct Constants {
    access: Access,
    signature: Option<Verifier>,
    immediate: Option<Answer>,
}

/// Computes the credentials, signature secrets and the immediate answer. With `skip_env`, those
/// that read `env()` are left out.
fn constants(wf: &Workflow, skip_env: bool) -> Result<Constants, Box<Diagnostic>> {
    let fails = |span, what: &str, e: String| {
        Box::new(
            Diagnostic::new(Kind::ConstantFails, &wf.file, span, format!("{what} cannot be computed: {e}"))
                .label(format!("fails when `{}` is loaded", wf.name)),
        )
    };
    let skip = |e: &Expr| skip_env && e.mentions_env();
    let mut access = Access::Anyone;
    let mut signature = None;
    if let Some(auth) = &wf.auth {
        let span = auth.span;
        match &auth.kind {
            AuthKind::Basic { user, password } if !skip(user) && !skip(password) => {
                let u = constant_string(user).map_err(|e| fails(span, "the auth user", e))?;
                let ps = secrets(password).map_err(|e| fails(span, "the auth password", e))?;
                access = Access::Basic(ps.into_iter().map(|p| (u.clone().into_bytes(), p)).collect());
            }
            AuthKind::Bearer(e) if !skip(e) => {
                access = Access::Bearer(secrets(e).map_err(|e| fails(span, "the bearer token", e))?);
            }
            AuthKind::Header { name, secret } if !skip(secret) => {
                access =
                    Access::Header(name.clone(), secrets(secret).map_err(|e| fails(span, "the secret", e))?);
            }
            AuthKind::Signature(sig) if !skip(&sig.secret) && sig.public_key => {
                let keys = secrets(&sig.secret).map_err(|e| fails(span, "the public key", e))?;
                let public_keys: Option<Vec<_>> = keys
                    .iter()
                    .map(|k| {
                        std::str::from_utf8(k).ok().and_then(crate::request::signature::standard_public_key)
                    })
                    .collect();
                let public_keys = public_keys.ok_or_else(|| {
                    fails(span, "the public key", "a Standard Webhooks public key is `whpk_` followed by the base64 of a 32-byte ed25519 key".into())
                })?;
                let tolerance_secs = sig.tolerance.as_secs();
                signature = Some(Verifier {
                    scheme: sig.scheme,
                    secrets: Vec::new(),
                    tolerance_secs,
                    hmac: None,
                    public_keys,
                });
            }
            AuthKind::Signature(sig) if !skip(&sig.secret) => {
                let mut keys = secrets(&sig.secret).map_err(|e| fails(span, "the secret", e))?;
                if sig.scheme == Scheme::StandardWebhooks {
                    let decoded: Option<Vec<Vec<u8>>> = keys
                        .iter()
                        .map(|k| {
                            std::str::from_utf8(k).ok().and_then(crate::request::signature::standard_key)
                        })
                        .collect();
                    keys = decoded.ok_or_else(|| {
                        fails(
                            span,
                            "the secret",
                            "a Standard Webhooks secret is `whsec_` followed by the base64 of a key that is not empty".into(),
                        )
                    })?;
                }
                let hmac = sig.hmac.as_ref().map(|h| HmacHeader {
                    header: h.header.clone(),
                    prefix: h.prefix.clone(),
                    algorithm: h.algorithm,
                    encoding: h.encoding,
                });
                let tolerance_secs = sig.tolerance.as_secs();
                signature = Some(Verifier {
                    scheme: sig.scheme,
                    secrets: keys,
                    tolerance_secs,
                    hmac,
                    public_keys: Vec::new(),
                });
            }
            _ => {}
        }
    }
    let immediate = match &wf.immediate {
        Some(r) if skip_env && r.mentions_env() => None,
        Some(r) => Some(eval::constant_answer(r).map_err(|e| fails(r.span, "the immediate answer", e))?),
        None => None,
    };
    Ok(Constants { access, signature, immediate })
}

/// A secret, or an array of them (rotation), as bytes; none may be empty.
fn secrets(e: &Expr) -> Result<Vec<Vec<u8>>, String> {
    let v = eval::eval(e, &[])?;
    let list = match v {
        Value::Array(items) => items,
        other => vec![other],
    };
    if list.is_empty() {
        return Err("an empty array of secrets".into());
    }
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        match item {
            Value::String(s) if !s.is_empty() => out.push(s.into_bytes()),
            Value::String(_) => return Err("a secret is empty".into()),
            other => {
                return Err(format!("a secret is a string, not {}", crate::request::value::type_name(&other)))
            }
        }
    }
    Ok(out)
}

fn constant_string(e: &Expr) -> Result<String, String> {
    match eval::eval(e, &[])? {
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

    #[test]
    fn a_secret_url_keeps_its_scheme_and_host() {
        let secrets: Vec<Box<str>> =
            vec!["https://hooks.example/services/T0/B0/XYZ".into(), "s3cr3t-token".into()];
        let mut text = "POST https://hooks.example/services/T0/B0/XYZ failed; token s3cr3t-token".to_string();
        super::redact(&secrets, &mut text);
        assert_eq!(text, "POST https://hooks.example/[secret] failed; token [redacted]");
        assert_eq!(super::shown_secret("https://u:p@host/x"), "[redacted]");
        assert_eq!(super::shown_secret("ftp://host/x"), "[redacted]");
    }
}
