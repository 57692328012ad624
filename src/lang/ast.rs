//! The syntax tree of a `.wf` file: every node carries its byte span; comments are kept for `wf fmt`.

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

#[derive(Clone, Debug)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Comment {
    /// The text after `#`, without the line break.
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, Default)]
pub struct File {
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
}

#[derive(Clone, Debug)]
pub enum Item {
    Workflow(Workflow),
    Test(Test),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Workflow(w) => w.span,
            Item::Test(t) => t.span,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Workflow {
    pub name: Ident,
    pub items: Vec<WfItem>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum WfItem {
    Trigger(Trigger),
    Extract(Extract),
    Stmt(Box<Stmt>),
}

impl WfItem {
    pub fn span(&self) -> Span {
        match self {
            WfItem::Trigger(t) => t.span,
            WfItem::Extract(e) => e.span,
            WfItem::Stmt(s) => s.span(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Trigger {
    pub settings: Vec<Setting>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sync,
    Async,
}

#[derive(Clone, Debug)]
pub enum Setting {
    Path(Str, Span),
    Key(Str, Span),
    Mode(Mode, Span),
    /// `method "GET" "POST"`.
    Methods(Vec<Str>, Span),
    /// `allow ip "10.0.0.0/8" "::1"`.
    AllowIp(Vec<Str>, Span),
    /// `cors { origin "https://a.example" ... }`.
    Cors(Vec<Str>, Span),
    Auth(Auth),
    Respond(Respond),
    /// `concurrency 4`: executions of the workflow at once.
    Concurrency(Count, Span),
    /// `dedupe delivery_id window 24h`: a delivery seen within the window does not run again.
    Dedupe {
        key: Expr,
        window: Option<Duration>,
        span: Span,
    },
    /// `debounce KEY for 30s [max 5m]`: a run starts that long after it was accepted unless a
    /// newer request with the same key was accepted meanwhile.
    Debounce {
        key: Expr,
        wait: Duration,
        max: Option<Duration>,
        span: Span,
    },
    /// `order by KEY`: runs with the same key run one at a time, in the order they were accepted.
    Order(Expr, Span),
    /// `rate 10 per 1s [by KEY]`: at most that many runs start per window (per key with `by`).
    Rate {
        n: Count,
        per: Duration,
        key: Option<Expr>,
        span: Span,
    },
}

impl Setting {
    pub fn span(&self) -> Span {
        match self {
            Setting::Path(_, s)
            | Setting::Key(_, s)
            | Setting::Mode(_, s)
            | Setting::Methods(_, s)
            | Setting::AllowIp(_, s)
            | Setting::Cors(_, s)
            | Setting::Concurrency(_, s)
            | Setting::Order(_, s)
            | Setting::Dedupe { span: s, .. }
            | Setting::Rate { span: s, .. }
            | Setting::Debounce { span: s, .. } => *s,
            Setting::Auth(a) => a.span,
            Setting::Respond(r) => r.span,
        }
    }
}

/// `auth ...`: who may call.
#[derive(Clone, Debug)]
pub struct Auth {
    pub form: AuthForm,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum AuthForm {
    /// `auth basic { user EXPR password EXPR }`.
    Basic { user: Expr, password: Expr },
    /// `auth header "Name" EXPR`.
    Header { name: Str, secret: Expr },
    /// `auth github EXPR`, `auth stripe EXPR tolerance 5m`, `auth twilio EXPR url "..."`, …
    /// With `public_key` (`auth standard_webhooks { public_key EXPR }`), `secret` holds the public
    /// keys of asymmetric signatures.
    Token { scheme: Ident, secret: Expr, tolerance: Option<Duration>, url: Option<Str>, public_key: bool },
    /// `auth hmac { header "N" prefix "sha256=" algorithm sha256 encoding hex secret EXPR signed EXPR }`.
    Hmac(Vec<HmacLine>),
}

#[derive(Clone, Debug)]
pub enum HmacLine {
    Header(Str, Span),
    Prefix(Str, Span),
    Algorithm(Ident, Span),
    Encoding(Ident, Span),
    Secret(Expr, Span),
    Signed(Expr, Span),
}

impl HmacLine {
    pub fn span(&self) -> Span {
        match self {
            HmacLine::Header(_, s)
            | HmacLine::Prefix(_, s)
            | HmacLine::Algorithm(_, s)
            | HmacLine::Encoding(_, s)
            | HmacLine::Secret(_, s)
            | HmacLine::Signed(_, s) => *s,
        }
    }
}

/// `500ms`, `30s`, `5m`, `2h`, `7d`.
#[derive(Clone, Debug)]
pub struct Duration {
    /// As written.
    pub text: String,
    /// `None` when it does not fit.
    pub millis: Option<u64>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Extract {
    pub fields: Vec<Field>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Header,
    Query,
    Body,
    /// `request "method" | "path" | "url" | "ip" | "raw_body"`.
    Request,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Header => "header",
            Source::Query => "query",
            Source::Body => "body",
            Source::Request => "request",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: Ident,
    pub source: Source,
    /// `None` for a whole source (`body`, `query`, `header` without a path).
    pub path: Option<Str>,
    pub ty: Option<Ident>,
    pub required: Option<Span>,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Let {
        name: Ident,
        value: Expr,
        span: Span,
    },
    If(If),
    /// `for NAME in EXPR [parallel N] { }` / `for KEY, VALUE in EXPR [parallel N] { }`.
    For {
        key: Option<Ident>,
        value: Ident,
        iter: Expr,
        /// `parallel N`: up to N iterations at once.
        parallel: Option<Count>,
        body: Block,
        span: Span,
    },
    Respond(Respond),
    Log(Expr, Span),
    Fail(Expr, Span),
    /// `sleep 15m` / `sleep EXPR` (seconds).
    Sleep(SleepFor, Span),
    /// `http ...` / `run ...`, or `let NAME = http ...` when the result is kept.
    Effect {
        name: Option<Ident>,
        effect: Effect,
        span: Span,
    },
}

/// How long a `sleep` waits: a duration written as one, or an expression giving seconds.
#[derive(Clone, Debug)]
pub enum SleepFor {
    Fixed(Duration),
    Seconds(Expr),
}

/// A call to another service or a program, or a wait for a call.
#[derive(Clone, Debug)]
pub enum Effect {
    Http(HttpCall),
    Run(RunCall),
    /// `callback [timeout D]`: a single-use URL for this run.
    Callback {
        timeout: Option<Duration>,
        span: Span,
    },
    /// `wait EXPR`: the run waits until the callback EXPR made is called.
    Wait {
        of: Expr,
        span: Span,
    },
}

impl Effect {
    pub fn span(&self) -> Span {
        match self {
            Effect::Http(h) => h.span,
            Effect::Run(r) => r.span,
            Effect::Callback { span, .. } | Effect::Wait { span, .. } => *span,
        }
    }
}

/// `http METHOD URL { header "N" = EXPR  json EXPR | text EXPR | form EXPR  timeout D  retry N }`.
#[derive(Clone, Debug)]
pub struct HttpCall {
    pub method: Ident,
    pub url: Expr,
    pub lines: Vec<HttpLine>,
    /// Whether the call had a `{ ... }` block (kept for the formatter).
    pub has_block: bool,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum HttpLine {
    Header {
        name: Str,
        value: Expr,
        span: Span,
    },
    Json(Expr, Span),
    Text(Expr, Span),
    Form(Expr, Span),
    Timeout(Duration, Span),
    Retry(Count, Span),
    /// `sign standard_webhooks EXPR` / `sign github EXPR`: wf as a webhook sender.
    Sign {
        provider: Ident,
        secret: Expr,
        span: Span,
    },
}

/// A whole number as written (`retry 3`); `value` is `None` when it does not fit.
#[derive(Clone, Debug)]
pub struct Count {
    pub value: Option<u64>,
    pub span: Span,
}

/// `run "program" [ARGS] { env "N" = EXPR  stdin EXPR  dir "path"  timeout D }`.
#[derive(Clone, Debug)]
pub struct RunCall {
    pub program: Str,
    pub args: Option<Expr>,
    pub lines: Vec<RunLine>,
    pub has_block: bool,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum RunLine {
    Env { name: Str, value: Expr, span: Span },
    Stdin(Expr, Span),
    Dir(Str, Span),
    Timeout(Duration, Span),
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let { span, .. }
            | Stmt::Log(_, span)
            | Stmt::Fail(_, span)
            | Stmt::Sleep(_, span)
            | Stmt::Effect { span, .. } => *span,
            Stmt::If(i) => i.span,
            Stmt::For { span, .. } => *span,
            Stmt::Respond(r) => r.span,
        }
    }
}

#[derive(Clone, Debug)]
pub struct If {
    /// `if` and each `else if`: condition and block.
    pub branches: Vec<(Expr, Block)>,
    pub otherwise: Option<Block>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Respond {
    pub status: u64,
    pub status_span: Span,
    pub body: RespondBody,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum RespondBody {
    Empty,
    Text(Expr),
    Json(Expr),
    Block(Vec<RespondLine>, Span),
}

#[derive(Clone, Debug)]
pub enum RespondLine {
    Header { name: Str, value: Expr, span: Span },
    Text(Expr, Span),
    Json(Expr, Span),
}

impl RespondLine {
    pub fn span(&self) -> Span {
        match self {
            RespondLine::Header { span, .. } | RespondLine::Text(_, span) | RespondLine::Json(_, span) => {
                *span
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Test {
    pub name: Str,
    pub request: Request,
    pub expects: Vec<Expr>,
    /// `mock` lines, wherever they stand in the block.
    pub mocks: Vec<Mock>,
    pub span: Span,
}

/// A test's answer to an effect: `mock http METHOD "url" { respond ... | fail EXPR }` or
/// `mock run "program" { code N stdout EXPR stderr EXPR }`.
#[derive(Clone, Debug)]
pub enum Mock {
    Http {
        method: Ident,
        url: Str,
        answer: MockAnswer,
        span: Span,
    },
    Run {
        program: Str,
        code: Option<Expr>,
        stdout: Option<Expr>,
        stderr: Option<Expr>,
        span: Span,
    },
    /// `mock callback { json EXPR | form EXPR | text EXPR }`, or `mock callback timeout` (`None`).
    Callback {
        call: Option<(CallbackBody, Expr)>,
        span: Span,
    },
}

/// How a mocked call to a callback sends its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackBody {
    Json,
    Text,
    Form,
}

impl CallbackBody {
    pub fn word(self) -> &'static str {
        match self {
            CallbackBody::Json => "json",
            CallbackBody::Text => "text",
            CallbackBody::Form => "form",
        }
    }
}

impl Mock {
    pub fn span(&self) -> Span {
        match self {
            Mock::Http { span, .. } | Mock::Run { span, .. } | Mock::Callback { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug)]
pub enum MockAnswer {
    Respond(Respond),
    /// A connection error with this reason.
    Fail(Expr, Span),
}

#[derive(Clone, Debug)]
pub struct Request {
    pub method: Ident,
    pub url: Str,
    pub lines: Vec<RequestLine>,
    /// Whether the request had a `{ ... }` block (kept for the formatter).
    pub has_block: bool,
    pub span: Span,
}

/// How a test request's body file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileBody {
    /// `json file`: JSON, sent as `application/json`.
    Json,
    /// `text file`: UTF-8 text, sent as `text/plain`.
    Text,
    /// `bytes file`: any bytes, sent as they are (`application/octet-stream` unless a
    /// `content_type` line or header says otherwise).
    Bytes,
}

impl FileBody {
    pub fn word(self) -> &'static str {
        match self {
            FileBody::Json => "json",
            FileBody::Text => "text",
            FileBody::Bytes => "bytes",
        }
    }
}

#[derive(Clone, Debug)]
pub enum RequestLine {
    Auth {
        user: Expr,
        password: Expr,
        span: Span,
    },
    Header {
        name: Str,
        value: Expr,
        span: Span,
    },
    Json(Expr, Span),
    Text(Expr, Span),
    /// `json file "PATH"` / `text file "PATH"` / `bytes file "PATH"`: the body read from a
    /// file, the path relative to the `.wf` file's folder.
    File {
        kind: FileBody,
        path: Str,
        span: Span,
    },
    /// `form EXPR`: the object, sent form-urlencoded.
    Form(Expr, Span),
    /// `sign github EXPR`: the headers that provider would send for the final body.
    Sign {
        provider: Ident,
        secret: Expr,
        span: Span,
    },
    ContentType(Str, Span),
}

impl RequestLine {
    pub fn span(&self) -> Span {
        match self {
            RequestLine::Auth { span, .. }
            | RequestLine::Header { span, .. }
            | RequestLine::Json(_, span)
            | RequestLine::Text(_, span)
            | RequestLine::File { span, .. }
            | RequestLine::Form(_, span)
            | RequestLine::Sign { span, .. }
            | RequestLine::ContentType(_, span) => *span,
        }
    }
}

/// A string literal: literal text and `${}` parts, escapes already decoded.
#[derive(Clone, Debug)]
pub struct Str {
    pub parts: Vec<StrPart>,
    pub span: Span,
}

impl Str {
    /// The text of a string without interpolation, or `None` when it has `${}` parts.
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                StrPart::Lit(s) => out.push_str(s),
                StrPart::Expr(_) => return None,
            }
        }
        Some(out)
    }
}

#[derive(Clone, Debug)]
pub enum StrPart {
    Lit(String),
    Expr(Expr),
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(Str),
    Array(Vec<Expr>),
    Object(Vec<(ObjKey, Expr)>),
    Var(Ident),
    Field(Box<Expr>, Ident),
    Index(Box<Expr>, Box<Expr>),
    Call(Ident, Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Paren(Box<Expr>),
    /// `[ELEM for NAME in ITER]` / `[ELEM for NAME in ITER if COND]`.
    Comprehension {
        elem: Box<Expr>,
        name: Ident,
        iter: Box<Expr>,
        cond: Option<Box<Expr>>,
    },
}

#[derive(Clone, Debug)]
pub enum ObjKey {
    Name(Ident),
    Str(Str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Coalesce,
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinOp {
    /// `== != < <= > >= in`: the operators whose two sides a failed `expect` shows.
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::In)
    }

    /// Binding strength: higher binds tighter (loosest first).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Coalesce => 1,
            BinOp::Or => 2,
            BinOp::And => 3,
            BinOp::Eq | BinOp::Ne => 4,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 5,
            BinOp::In => 6,
            BinOp::Add | BinOp::Sub => 7,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 8,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Coalesce => "??",
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
        }
    }
}
