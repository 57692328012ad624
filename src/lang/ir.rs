//! The compiled form of workflows and tests: variables are slot indices, paths are pre-split,
//! builtins are an enum, regexes are compiled and templates are pre-split. `serve` and `test`
//! run this, never the AST.

use crate::lang::ast::{BinOp, Mode, Span};
use crate::lang::diagnostic::SourceFile;
use http::HeaderName;
use serde_json::Value;
use std::sync::Arc;

/// A variable's index in the execution's frame.
pub type Slot = u32;

/// Every workflow and test of the checked files.
#[derive(Debug, Default)]
pub struct Program {
    pub workflows: Vec<Workflow>,
    pub tests: Vec<TestCase>,
    /// Every name bound, for tools (the language server's hover, definition and completion).
    pub bindings: Vec<Binding>,
}

/// A name bound by `extract`, `let`, `auth hmac`'s `signed` or a test: where, what it can hold,
/// and where it is visible.
#[derive(Debug, Clone)]
pub struct Binding {
    pub file: Arc<SourceFile>,
    pub name: String,
    /// The name where it is bound.
    pub span: Span,
    /// From the binding to the end of the block (or workflow, or test) it is visible in.
    pub scope: Span,
    /// What it can hold, in words ("a number", "a string or null").
    pub types: String,
    /// Where its type comes from ("declared `as number` here").
    pub origin: String,
}

/// `workflow NAME { trigger webhook { ... } extract { ... } statements }`.
#[derive(Debug)]
pub struct Workflow {
    pub name: String,
    pub file: Arc<SourceFile>,
    pub span: Span,
    /// The URL path served, e.g. `/hooks/payment` or `/api/webhook:trigger/<key>`.
    pub path: String,
    pub mode: Mode,
    /// `method "GET" "POST"`: the methods served (default `POST`).
    pub methods: Vec<http::Method>,
    /// `allow ip "10.0.0.0/8"`: the networks callers may come from (empty: any).
    pub allow: Vec<ipnet::IpNet>,
    /// `cors { origin ... }`: the origins allowed (`"*"` for any); `None` without `cors`.
    pub cors: Option<Vec<String>>,
    pub auth: Option<Auth>,
    /// Async only: the immediate answer (`None`: `200 text/plain ok`).
    pub immediate: Option<Respond>,
    /// `concurrency N`: executions at once (sync beyond it: `429`; async: they wait).
    pub concurrency: Option<u32>,
    /// `dedupe EXPR [window D]`: a delivery whose key was seen within the window does not run.
    pub dedupe: Option<Dedupe>,
    /// `debounce EXPR for D [max D]`.
    pub debounce: Option<Debounce>,
    /// `order by EXPR`: evaluated after extraction; `null` means no key (the run is not ordered).
    pub order: Option<Expr>,
    /// `rate N per D [by EXPR]`.
    pub rate: Option<Rate>,
    pub extracts: Vec<Extraction>,
    pub body: Block,
    /// Size of the per-execution frame.
    pub slots: usize,
}

/// `auth ...`: who may call. Secrets are constants; each may be an array of them (rotation).
#[derive(Debug)]
pub struct Auth {
    /// The whole `auth` setting, for diagnostics.
    pub span: Span,
    pub kind: AuthKind,
}

#[derive(Debug)]
pub enum AuthKind {
    /// `auth basic { user EXPR password EXPR }`.
    Basic { user: Expr, password: Expr },
    /// `auth bearer EXPR`: `Authorization: Bearer <token>`.
    Bearer(Expr),
    /// `auth header "X-Gitlab-Token" EXPR`: the header equals the secret.
    Header { name: HeaderName, secret: Expr },
    /// `auth github EXPR`, `auth stripe EXPR`, …, `auth hmac { ... }`: a signature over the raw body.
    Signature(Signature),
}

impl AuthKind {
    /// The form's name as written after `auth`.
    pub fn name(&self) -> &'static str {
        match self {
            AuthKind::Basic { .. } => "basic",
            AuthKind::Bearer(_) => "bearer",
            AuthKind::Header { .. } => "header",
            AuthKind::Signature(s) => s.scheme.name(),
        }
    }
}

/// A signature check.
#[derive(Debug)]
pub struct Signature {
    pub scheme: Scheme,
    pub secret: Expr,
    /// How far a signed timestamp may be from now (stripe, slack, standard_webhooks).
    pub tolerance: std::time::Duration,
    /// `auth twilio EXPR url "https://public/url"`: the URL the sender signed.
    pub url: Option<String>,
    /// `auth hmac { ... }` only.
    pub hmac: Option<Hmac>,
    /// `auth standard_webhooks { public_key EXPR }`: `secret` holds `whpk_` public keys, and
    /// signatures are `v1a` (ed25519).
    pub public_key: bool,
}

/// The signature schemes of `auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `X-Hub-Signature-256: sha256=<hex>`.
    Github,
    /// `Stripe-Signature: t=<unix>,v1=<hex>`.
    Stripe,
    /// `X-Slack-Signature: v0=<hex>` with `X-Slack-Request-Timestamp`.
    Slack,
    /// `X-Shopify-Hmac-Sha256: <base64>`.
    Shopify,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` (or `svix-`).
    StandardWebhooks,
    /// `X-Twilio-Signature: <base64 HMAC-SHA1>` over the URL and the sorted form parameters.
    Twilio,
    /// `auth hmac { ... }`.
    Hmac,
}

impl Scheme {
    /// The forms of `auth` that take one secret, by name (`hmac` has a block).
    pub const NAMES: [(&'static str, Scheme); 6] = [
        ("github", Scheme::Github),
        ("stripe", Scheme::Stripe),
        ("slack", Scheme::Slack),
        ("shopify", Scheme::Shopify),
        ("standard_webhooks", Scheme::StandardWebhooks),
        ("twilio", Scheme::Twilio),
    ];

    pub fn from_name(name: &str) -> Option<Scheme> {
        Scheme::NAMES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    pub fn name(self) -> &'static str {
        Scheme::NAMES.iter().find(|(_, s)| *s == self).map_or("hmac", |(n, _)| n)
    }

    /// Whether the scheme signs a timestamp (and so takes `tolerance`).
    pub fn has_timestamp(self) -> bool {
        matches!(self, Scheme::Stripe | Scheme::Slack | Scheme::StandardWebhooks)
    }
}

/// `auth hmac { header "N" prefix "sha256=" algorithm sha256 encoding hex secret EXPR signed EXPR }`.
#[derive(Debug)]
pub struct Hmac {
    pub header: HeaderName,
    pub prefix: String,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    /// What is signed (default: the raw body); may read `raw_body` and header extractions.
    pub signed: Option<Expr>,
    /// The slot `raw_body` has while `signed` is evaluated.
    pub raw_body_slot: Slot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

pub use crate::lang::ast::Source;

/// One `extract` line: `name = SOURCE "path" [as TYPE] [required | default EXPR]`.
#[derive(Debug)]
pub struct Extraction {
    pub slot: Slot,
    pub name: String,
    pub source: Source,
    /// The path as written, for error answers.
    pub path_text: String,
    pub getter: Getter,
    pub ty: Option<Type>,
    pub required: bool,
    pub default: Option<Expr>,
}

/// Where an extraction reads its value.
#[derive(Debug)]
pub enum Getter {
    /// `header "X-Request-Id"`; `None` for `header` alone: an object of every header.
    Header(Option<HeaderName>),
    /// `query "items[0].sku"`: the pre-split path, its first step the parameter's name; empty for
    /// `query` alone (the whole parsed query string).
    Query(Vec<Seg>),
    /// `body "data.amount"`: the pre-split path; empty for `body` alone (the whole body).
    Body(Vec<Seg>),
    /// `request "method"`, …
    Request(RequestField),
}

/// What `request "..."` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestField {
    /// `"method"`: `POST`, `GET`, …
    Method,
    /// `"path"`: the path, without the query string.
    Path,
    /// `"url"`: the path with its query string.
    Url,
    /// `"ip"`: the caller's address (see `allow ip` and `--trusted-proxy`).
    Ip,
    /// `"raw_body"`: the body as text.
    RawBody,
}

impl RequestField {
    pub const NAMES: [(&'static str, RequestField); 5] = [
        ("method", RequestField::Method),
        ("path", RequestField::Path),
        ("url", RequestField::Url),
        ("ip", RequestField::Ip),
        ("raw_body", RequestField::RawBody),
    ];
}

/// One step of a pre-split path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// `.name`, `[name]` or `["key with.dots"]`.
    Key(String),
    /// `[0]`: an index; on an object it reads the key of the same digits (`qs` objects keyed "0").
    Index(usize, String),
}

pub use crate::lang::types::Type;
use crate::lang::types::Types;

/// `debounce EXPR for D [max D]`.
#[derive(Debug)]
pub struct Debounce {
    /// Evaluated after extraction; `null` means no key (the run is not debounced).
    pub key: Expr,
    /// A run starts this long after it was accepted, unless a newer one with its key came.
    pub wait: std::time::Duration,
    /// At the latest this long after the first of a series was accepted.
    pub max: Option<std::time::Duration>,
}

/// `rate N per D [by EXPR]`: at most `n` runs start in any window of `per` (per key with `by`).
#[derive(Debug)]
pub struct Rate {
    pub n: u32,
    pub per: std::time::Duration,
    /// `per` in milliseconds, as the stores count a window.
    pub window_ms: i64,
    /// Evaluated after extraction; without it, or when it is `null`, the workflow has one window.
    pub key: Option<Expr>,
}

/// `dedupe EXPR [window D]`.
#[derive(Debug)]
pub struct Dedupe {
    /// Evaluated after extraction; `null` means no key (the request runs).
    pub key: Expr,
    pub window: std::time::Duration,
}

/// A statement and where it is written (runtime failures name the place).
#[derive(Debug)]
pub struct Statement {
    pub span: Span,
    pub stmt: Stmt,
}

pub type Block = Vec<Statement>;

/// A statement of a workflow's body.
#[derive(Debug)]
pub enum Stmt {
    /// `let name = EXPR`: the slot of `name`, and its value.
    Let(Slot, Expr),
    /// `if C { } else if C { } else { }`: each condition with its block, then the `else` block
    /// (empty when there is none).
    If(Vec<(Expr, Block)>, Block),
    /// `for VALUE in ITER { }` / `for KEY, VALUE in ITER { }`: the slots of the names, the
    /// iterable, the block.
    /// `parallel N` runs up to N iterations at once.
    For { key: Option<Slot>, value: Slot, iter: Expr, parallel: Option<u32>, body: Block },
    /// `respond STATUS ...`: ends the execution with this answer.
    Respond(Respond),
    /// `log EXPR`.
    Log(Expr),
    /// `fail EXPR`: ends the execution as failed, with this reason.
    Fail(Expr),
    /// `sleep D`: the run waits this many seconds (a journaled step: see `request::step`).
    Sleep(Expr),
    /// `http ...` / `run ...`: the slot its result goes to (`let r = ...`), and the call.
    Effect(Option<Slot>, Effect),
}

/// A call to another service or a program, or a wait for a call: a step of the execution (see
/// `request::step`).
#[derive(Debug)]
pub enum Effect {
    Http(Box<HttpCall>),
    Run(Box<RunCall>),
    /// `callback [timeout D]`: a single-use URL for the run, called within the timeout.
    Callback {
        timeout: std::time::Duration,
    },
    /// `wait EXPR`: waits for the call to the callback EXPR holds.
    Wait(Expr),
}

/// A callback's timeout unless it says: 7 days.
pub const CALLBACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// `http METHOD URL { ... }`.
#[derive(Debug)]
pub struct HttpCall {
    pub method: http::Method,
    pub url: Expr,
    pub headers: Vec<(HeaderName, Expr)>,
    pub body: Payload,
    /// A `header` line sets `content-type`, so the body form does not.
    pub has_content_type: bool,
    /// Per attempt.
    pub timeout: std::time::Duration,
    /// Attempts after the first.
    pub retry: u32,
    /// `sign SCHEME SECRET`: the headers that scheme's receivers verify, added to every attempt.
    pub sign: Option<(Scheme, Expr)>,
}

/// The body an `http` call sends.
#[derive(Debug)]
pub enum Payload {
    Empty,
    Json(Expr),
    Text(Expr),
    /// An object, sent form-urlencoded.
    Form(Expr),
}

/// `run "program" ARGS { ... }`.
#[derive(Debug)]
pub struct RunCall {
    pub program: Expr,
    /// An array: each element one argument.
    pub args: Option<Expr>,
    pub env: Vec<(String, Expr)>,
    pub stdin: Option<Expr>,
    pub dir: Option<String>,
    pub timeout: std::time::Duration,
}

/// Default per-attempt timeout of `http`.
pub const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Default timeout of `run`.
pub const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Most `retry` an `http` call may ask for.
pub const MAX_RETRY: u32 = 10;

/// The fields of an `http` result, with what each holds.
pub const HTTP_RESULT: [(&str, Types); 4] =
    [("status", Types::NUMBER), ("headers", Types::OBJECT), ("json", Types::ANY), ("text", Types::STRING)];
/// The fields of a `run` result.
pub const RUN_RESULT: [(&str, Types); 3] =
    [("code", Types::NUMBER), ("stdout", Types::STRING), ("stderr", Types::STRING)];
/// The fields of a callback.
pub const CALLBACK_RESULT: [(&str, Types); 2] = [("url", Types::STRING), ("id", Types::STRING)];
/// The fields of the call to a callback.
pub const WAIT_RESULT: [(&str, Types); 6] = [
    ("method", Types::STRING),
    ("headers", Types::OBJECT),
    ("query", Types::OBJECT),
    ("json", Types::ANY),
    ("text", Types::STRING),
    ("form", Types::ANY),
];

impl Effect {
    /// Visits every expression of the call, mutably.
    pub fn walk_exprs_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        match self {
            Effect::Http(h) => {
                h.url.walk_mut(f);
                h.headers.iter_mut().for_each(|(_, e)| e.walk_mut(f));
                match &mut h.body {
                    Payload::Empty => {}
                    Payload::Json(e) | Payload::Text(e) | Payload::Form(e) => e.walk_mut(f),
                }
                if let Some((_, e)) = &mut h.sign {
                    e.walk_mut(f);
                }
            }
            Effect::Run(r) => {
                r.program.walk_mut(f);
                r.args.iter_mut().for_each(|e| e.walk_mut(f));
                r.env.iter_mut().for_each(|(_, e)| e.walk_mut(f));
                r.stdin.iter_mut().for_each(|e| e.walk_mut(f));
            }
            Effect::Callback { .. } => {}
            Effect::Wait(e) => e.walk_mut(f),
        }
    }

    /// Every expression of the call.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        match self {
            Effect::Http(h) => {
                out.push(&h.url);
                out.extend(h.headers.iter().map(|(_, e)| e));
                if let Payload::Json(e) | Payload::Text(e) | Payload::Form(e) = &h.body {
                    out.push(e);
                }
                out.extend(h.sign.as_ref().map(|(_, e)| e));
            }
            Effect::Run(r) => {
                out.push(&r.program);
                out.extend(r.args.iter());
                out.extend(r.env.iter().map(|(_, e)| e));
                out.extend(r.stdin.iter());
            }
            Effect::Callback { .. } => {}
            Effect::Wait(e) => out.push(e),
        }
        out
    }
}

/// `respond STATUS [text EXPR | json EXPR | { header "N" = EXPR ... json EXPR }]`.
#[derive(Debug)]
pub struct Respond {
    /// The whole `respond`, for diagnostics.
    pub span: Span,
    pub status: u16,
    pub headers: Vec<(HeaderName, Expr)>,
    pub body: Body,
    /// A `header` line sets `content-type`, so the body form does not.
    pub has_content_type: bool,
}

/// The body of an answer.
#[derive(Debug)]
pub enum Body {
    /// `respond 204`: no body.
    Empty,
    /// `text EXPR`: the value rendered as text.
    Text(Expr),
    /// `json EXPR`: the value as JSON.
    Json(Expr),
}

/// An expression.
#[derive(Debug)]
pub enum Expr {
    /// A literal (`"text"`, `12.5`, `true`, `null`), or an array or object literal whose
    /// elements are all literals (`[1, 2]`, `{ ok: true }`), folded once by the checker.
    Const(Value),
    /// A variable (`order`): its slot in the execution's frame.
    Slot(Slot),
    /// A variable read for the last time, where its value may be moved rather than copied
    /// (see `lang::moves`); read like [`Expr::Slot`] anywhere else.
    Take(Slot),
    /// `"paid ${order}: ${cents} cents"`: literal parts and interpolated expressions.
    Template(Vec<Part>),
    /// `[a, b]` with at least one element that is not a literal.
    Array(Vec<Expr>),
    /// `{ key: a, "any key": b }` with at least one value that is not a literal.
    Object(Vec<(String, Expr)>),
    /// `x.name`: a member; `null` when absent or when `x` is not an object.
    Field(Box<Expr>, String),
    /// `x[i]` / `x["k"]`: an element or member; `null` when absent.
    Index(Box<Expr>, Box<Expr>),
    /// `!x`.
    Not(Box<Expr>),
    /// `-x`.
    Neg(Box<Expr>),
    /// `a OP b`: `?? || && == != < <= > >= in + - * / %`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `len(x)`, `upper(s)`, …: a builtin and its arguments.
    Call(Builtin, Vec<Expr>),
    /// `matches(s, "regex")`: the subject and the regex, compiled once by the checker.
    Matches(Box<Expr>, regex::Regex),
    /// `[ELEM for NAME in ITER if COND]`: the slot of NAME, the iterable, the element, the filter.
    Comprehension { slot: Slot, iter: Box<Expr>, elem: Box<Expr>, cond: Option<Box<Expr>> },
    /// `env("NAME")`: replaced by its value when the program is loaded.
    Env(String),
    /// `secret("NAME")`: replaced when the program is loaded by the environment variable NAME, or
    /// else the file NAME in `$CREDENTIALS_DIRECTORY` or `--secrets-dir`.
    Secret(String),
}

/// A part of a string with interpolations.
#[derive(Debug)]
pub enum Part {
    /// The literal text between interpolations (escapes decoded).
    Lit(String),
    /// `${EXPR}`: rendered as text (strings as themselves, other values as JSON).
    Expr(Expr),
}

pub use crate::lang::builtins::Builtin;

/// A `test` block, compiled.
#[derive(Debug)]
pub struct TestCase {
    pub name: String,
    pub file: Arc<SourceFile>,
    pub span: Span,
    pub method: http::Method,
    pub url: Expr,
    pub lines: Vec<RequestLine>,
    pub expects: Vec<Expectation>,
    /// `mock` lines, in order: the first that matches an effect answers it.
    pub mocks: Vec<MockCase>,
}

/// A test's answer to an effect.
#[derive(Debug)]
pub enum MockCase {
    /// `mock http METHOD "url" { respond ... }`; a url ending in `*` matches by prefix.
    Http { method: http::Method, url: String, answer: Result<Respond, Expr> },
    /// `mock run "program" { code N stdout EXPR stderr EXPR }`.
    Run { program: String, code: Expr, stdout: Expr, stderr: Expr },
    /// `mock callback { json EXPR | text EXPR | form EXPR }`: the next `wait`'s call;
    /// `mock callback timeout` (`None`): its `null`.
    Callback(Option<(crate::lang::ast::CallbackBody, Expr)>),
}

/// A line of a test's `request` block.
#[derive(Debug)]
pub enum RequestLine {
    /// `auth basic "user" "password"`.
    Auth(Expr, Expr),
    /// `header "Name" = EXPR`.
    Header(HeaderName, Expr),
    /// `json EXPR`: the body, with `content-type: application/json`.
    Json(Expr),
    /// `text EXPR`: the body, with `content-type: text/plain; charset=utf-8`.
    Text(Expr),
    /// `bytes file "PATH"`: the file's bytes, read when the test was checked.
    Bytes(Vec<u8>),
    /// `content_type "..."`: overrides the body's content type.
    ContentType(String),
    /// `form EXPR`: the body, form-urlencoded.
    Form(Expr),
    /// `sign PROVIDER EXPR`: the provider's signature headers for the final body.
    Sign(Scheme, Expr),
}

/// `expect EXPR`.
#[derive(Debug)]
pub struct Expectation {
    pub expr: Expr,
    /// A comparison (`a == b`, `a < b`, …): the operator, and each side as written, so that a
    /// failure can show what each side was.
    pub comparison: Option<(BinOp, String, String)>,
    pub span: Span,
    /// The expression as written, for failure reports.
    pub source: String,
}

/// Slots bound while an `expect` is evaluated.
pub const TEST_NAMES: [(&str, Types); 5] = [
    ("status", Types::NUMBER),
    ("headers", Types::OBJECT),
    ("text", Types::STRING),
    ("json", Types::ANY),
    ("calls", Types::ARRAY),
];

impl Expr {
    /// Whether this expression reads `env()` anywhere.
    pub fn mentions_env(&self) -> bool {
        match self {
            Expr::Env(_) | Expr::Secret(_) => true,
            Expr::Const(_) | Expr::Slot(_) | Expr::Take(_) => false,
            Expr::Template(parts) => parts.iter().any(|p| matches!(p, Part::Expr(e) if e.mentions_env())),
            Expr::Array(items) | Expr::Call(_, items) => items.iter().any(Expr::mentions_env),
            Expr::Object(entries) => entries.iter().any(|(_, e)| e.mentions_env()),
            Expr::Field(e, _) | Expr::Not(e) | Expr::Neg(e) | Expr::Matches(e, _) => e.mentions_env(),
            Expr::Index(a, b) | Expr::Binary(_, a, b) => a.mentions_env() || b.mentions_env(),
            Expr::Comprehension { iter, elem, cond, .. } => {
                iter.mentions_env() || elem.mentions_env() || cond.as_ref().is_some_and(|c| c.mentions_env())
            }
        }
    }

    /// Visits this expression and every sub-expression, mutably (used to resolve `env()`).
    pub fn walk_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        f(self);
        match self {
            Expr::Const(_) | Expr::Slot(_) | Expr::Take(_) | Expr::Env(_) | Expr::Secret(_) => {}
            Expr::Template(parts) => {
                for p in parts {
                    if let Part::Expr(e) = p {
                        e.walk_mut(f);
                    }
                }
            }
            Expr::Array(items) | Expr::Call(_, items) => items.iter_mut().for_each(|e| e.walk_mut(f)),
            Expr::Object(entries) => entries.iter_mut().for_each(|(_, e)| e.walk_mut(f)),
            Expr::Field(e, _) | Expr::Not(e) | Expr::Neg(e) | Expr::Matches(e, _) => e.walk_mut(f),
            Expr::Index(a, b) | Expr::Binary(_, a, b) => {
                a.walk_mut(f);
                b.walk_mut(f);
            }
            Expr::Comprehension { iter, elem, cond, .. } => {
                iter.walk_mut(f);
                elem.walk_mut(f);
                if let Some(c) = cond {
                    c.walk_mut(f);
                }
            }
        }
    }
}

/// Visits every statement of a block and of the blocks nested in it.
pub fn walk_stmts(block: &Block, f: &mut dyn FnMut(&Stmt)) {
    for s in block {
        f(&s.stmt);
        match &s.stmt {
            Stmt::If(branches, otherwise) => {
                branches.iter().for_each(|(_, b)| walk_stmts(b, f));
                walk_stmts(otherwise, f);
            }
            Stmt::For { body, .. } => walk_stmts(body, f),
            _ => {}
        }
    }
}

/// Visits every expression of a block, mutably.
pub fn walk_block_mut(block: &mut [Statement], f: &mut dyn FnMut(&mut Expr)) {
    for s in block {
        match &mut s.stmt {
            Stmt::Let(_, e) | Stmt::Log(e) | Stmt::Fail(e) | Stmt::Sleep(e) => e.walk_mut(f),
            Stmt::If(branches, otherwise) => {
                for (c, b) in branches {
                    c.walk_mut(f);
                    walk_block_mut(b, f);
                }
                walk_block_mut(otherwise, f);
            }
            Stmt::Respond(r) => r.walk_exprs_mut(f),
            Stmt::For { iter, body, .. } => {
                iter.walk_mut(f);
                walk_block_mut(body, f);
            }
            Stmt::Effect(_, effect) => effect.walk_exprs_mut(f),
        }
    }
}

impl Respond {
    /// Whether a header or the body reads `env()`.
    pub fn mentions_env(&self) -> bool {
        let body = match &self.body {
            Body::Empty => false,
            Body::Text(e) | Body::Json(e) => e.mentions_env(),
        };
        body || self.headers.iter().any(|(_, e)| e.mentions_env())
    }

    pub fn walk_exprs_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        for (_, e) in &mut self.headers {
            e.walk_mut(f);
        }
        match &mut self.body {
            Body::Empty => {}
            Body::Text(e) | Body::Json(e) => e.walk_mut(f),
        }
    }
}

impl Workflow {
    /// Visits every expression of the workflow (auth, answers, defaults, statements).
    pub fn walk_exprs_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        if let Some(a) = &mut self.auth {
            match &mut a.kind {
                AuthKind::Basic { user, password } => {
                    user.walk_mut(f);
                    password.walk_mut(f);
                }
                AuthKind::Bearer(e) | AuthKind::Header { secret: e, .. } => e.walk_mut(f),
                AuthKind::Signature(s) => {
                    s.secret.walk_mut(f);
                    if let Some(signed) = s.hmac.as_mut().and_then(|h| h.signed.as_mut()) {
                        signed.walk_mut(f);
                    }
                }
            }
        }
        if let Some(r) = &mut self.immediate {
            r.walk_exprs_mut(f);
        }
        if let Some(d) = &mut self.dedupe {
            d.key.walk_mut(f);
        }
        for x in &mut self.extracts {
            if let Some(d) = &mut x.default {
                d.walk_mut(f);
            }
        }
        walk_block_mut(&mut self.body, f);
    }
}

impl TestCase {
    pub fn walk_exprs_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        self.url.walk_mut(f);
        for l in &mut self.lines {
            match l {
                RequestLine::Auth(a, b) => {
                    a.walk_mut(f);
                    b.walk_mut(f);
                }
                RequestLine::Header(_, e)
                | RequestLine::Json(e)
                | RequestLine::Text(e)
                | RequestLine::Form(e)
                | RequestLine::Sign(_, e) => e.walk_mut(f),
                RequestLine::ContentType(_) | RequestLine::Bytes(_) => {}
            }
        }
        for x in &mut self.expects {
            x.expr.walk_mut(f);
        }
    }
}

#[cfg(test)]
mod tests {
    /// The compiled program is shared by every request thread and swapped whole on reload.
    #[test]
    fn the_compiled_form_is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<super::Program>();
    }
}
