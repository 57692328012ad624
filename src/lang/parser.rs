//! Parses a `.wf` file with the pest grammar (`grammar/wf.pest`) into the span-carrying AST.

use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, Kind, SourceFile};
use crate::lang::prescan;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser as _;
use std::sync::Arc;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/wf.pest"]
struct WfParser;

/// Deepest expression tree the parser builds (operators, calls, access and brackets together).
pub const MAX_EXPR_DEPTH: usize = 128;

/// Parses one file; on failure returns every diagnostic found.
pub fn parse(file: &Arc<SourceFile>) -> Result<File, Vec<Diagnostic>> {
    let text = file.text.as_str();
    let scanned = prescan::scan(text);
    if let Some(span) = scanned.too_deep {
        return Err(vec![Diagnostic::new(Kind::NestingTooDeep, file, span, "nesting too deep")
            .label(format!("more than {} levels of brackets open here", prescan::MAX_DEPTH))
            .help("split the expression with `let` or flatten the nested blocks")]);
    }
    let pairs = match WfParser::parse(Rule::file, text) {
        Ok(p) => p,
        Err(e) => return Err(vec![syntax_error(file, &e)]),
    };
    let mut b = Builder { file, diags: Vec::new(), comments: &scanned.comments };
    let mut items = Vec::new();
    for pair in pairs.flat_map(|p| p.into_inner()) {
        match pair.as_rule() {
            Rule::workflow => items.push(Item::Workflow(b.workflow(pair))),
            Rule::test => items.push(Item::Test(b.test(pair))),
            _ => {}
        }
    }
    if b.diags.is_empty() {
        Ok(File { items, comments: scanned.comments })
    } else {
        Err(b.diags)
    }
}

/// The words the grammar accepts right after `prefix` (for completion): keywords as written, and
/// `name` where a name may stand. Empty when the text before goes wrong earlier.
pub fn expected_after(prefix: &str) -> Vec<&'static str> {
    if prescan::scan(prefix).too_deep.is_some() {
        return Vec::new();
    }
    let e = match WfParser::parse(Rule::file, prefix) {
        Ok(_) => return vec!["workflow", "test"],
        Err(e) => e,
    };
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    if pos < prefix.trim_end().len() {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            let Some(word) = describe(*r) else { continue };
            for w in word.split(" or ") {
                let w = match w.trim_matches('`') {
                    "a name" => "name",
                    "an expression" => "expression",
                    "an auth form" => "auth_form",
                    other => other,
                };
                if w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !out.contains(&w) {
                    out.push(w);
                }
            }
        }
    }
    out
}

/// Parses a lone expression (used by tests and tools).
pub fn parse_expr(file: &Arc<SourceFile>) -> Result<Expr, Vec<Diagnostic>> {
    let pairs = WfParser::parse(Rule::expr, &file.text).map_err(|e| vec![syntax_error(file, &e)])?;
    let mut b = Builder { file, diags: Vec::new(), comments: &[] };
    let mut out = None;
    for p in pairs {
        if p.as_span().end() != file.text.len() {
            let span = Span::new(p.as_span().end(), file.text.len());
            return Err(vec![Diagnostic::new(
                Kind::Syntax,
                file,
                span,
                "unexpected input after the expression",
            )]);
        }
        out = Some(b.expr(p));
    }
    match (out, b.diags.is_empty()) {
        (Some(e), true) => Ok(e),
        _ => Err(b.diags),
    }
}

struct Builder<'a> {
    file: &'a Arc<SourceFile>,
    diags: Vec<Diagnostic>,
    comments: &'a [Comment],
}

impl Builder<'_> {
    /// The span of a pair without trailing whitespace and comments (pest skips them before it
    /// tries an optional part that then does not match).
    fn span_of(&self, p: &Pair<Rule>) -> Span {
        let start = p.as_span().start();
        let mut end = p.as_span().end();
        let text = self.file.text.as_str();
        loop {
            let trimmed = text.get(start..end).map_or(0, |s| s.trim_end().len());
            end = start + trimmed;
            let inside = self.comments.partition_point(|c| c.span.start < end);
            match inside.checked_sub(1).and_then(|i| self.comments.get(i)) {
                Some(c) if c.span.start >= start && c.span.end >= end => end = c.span.start,
                _ => return Span::new(start, end),
            }
        }
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident { name: p.as_str().to_string(), span: self.span_of(&p) }
    }

    fn workflow(&mut self, p: Pair<Rule>) -> Workflow {
        let span = self.span_of(&p);
        let mut name = None;
        let mut items = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => name = Some(self.ident(c)),
                Rule::trigger => items.push(WfItem::Trigger(self.trigger(c))),
                Rule::extract => items.push(WfItem::Extract(self.extract(c))),
                _ => {
                    if let Some(s) = self.stmt(c) {
                        items.push(WfItem::Stmt(s));
                    }
                }
            }
        }
        let name = name.unwrap_or(Ident { name: String::new(), span });
        Workflow { name, items, span }
    }

    fn trigger(&mut self, p: Pair<Rule>) -> Trigger {
        let span = self.span_of(&p);
        let mut settings = Vec::new();
        for c in p.into_inner() {
            let cspan = self.span_of(&c);
            match c.as_rule() {
                Rule::t_path => {
                    if let Some(s) = c.into_inner().find(|x| x.as_rule() == Rule::string) {
                        settings.push(Setting::Path(self.string(s), cspan));
                    }
                }
                Rule::t_key => {
                    if let Some(s) = c.into_inner().find(|x| x.as_rule() == Rule::string) {
                        settings.push(Setting::Key(self.string(s), cspan));
                    }
                }
                Rule::t_mode => {
                    let mode = if c.as_str().contains("async") { Mode::Async } else { Mode::Sync };
                    settings.push(Setting::Mode(mode, cspan));
                }
                Rule::t_method | Rule::t_allow => {
                    let strings = c.clone().into_inner().filter(|x| x.as_rule() == Rule::string);
                    let strings: Vec<Str> = strings.map(|x| self.string(x)).collect();
                    settings.push(if c.as_rule() == Rule::t_method {
                        Setting::Methods(strings, cspan)
                    } else {
                        Setting::AllowIp(strings, cspan)
                    });
                }
                Rule::t_cors => {
                    let origins = c.into_inner().filter(|x| x.as_rule() == Rule::cors_origin);
                    let strings: Vec<Str> = origins
                        .flat_map(|o| o.into_inner().filter(|x| x.as_rule() == Rule::string))
                        .map(|x| self.string(x))
                        .collect();
                    settings.push(Setting::Cors(strings, cspan));
                }
                Rule::t_auth => {
                    if let Some(form) = c.into_inner().find(|x| x.as_rule() != Rule::k_auth) {
                        if let Some(form) = self.auth_form(form) {
                            settings.push(Setting::Auth(Auth { form, span: cspan }));
                        }
                    }
                }
                Rule::respond => settings.push(Setting::Respond(self.respond(c))),
                Rule::t_dedupe => {
                    let mut key = None;
                    let mut window = None;
                    for x in c.into_inner() {
                        match x.as_rule() {
                            Rule::expr => key = Some(self.expr(x)),
                            Rule::duration => window = Some(self.duration(x)),
                            _ => {}
                        }
                    }
                    if let Some(key) = key {
                        settings.push(Setting::Dedupe { key, window, span: cspan });
                    }
                }
                Rule::t_concurrency => {
                    if let Some(n) = self.child_count(c) {
                        settings.push(Setting::Concurrency(n, cspan));
                    }
                }
                _ => {}
            }
        }
        Trigger { settings, span }
    }

    fn auth_form(&mut self, p: Pair<Rule>) -> Option<AuthForm> {
        match p.as_rule() {
            Rule::auth_basic => {
                let mut exprs = Vec::new();
                for part in p.into_inner() {
                    if matches!(part.as_rule(), Rule::auth_user | Rule::auth_password) {
                        exprs.extend(self.child_expr(part));
                    }
                }
                let mut it = exprs.into_iter();
                Some(AuthForm::Basic { user: it.next()?, password: it.next()? })
            }
            Rule::auth_header => {
                let mut name = None;
                let mut secret = None;
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::string => name = Some(self.string(part)),
                        Rule::expr => secret = Some(self.expr(part)),
                        _ => {}
                    }
                }
                Some(AuthForm::Header { name: name?, secret: secret? })
            }
            Rule::auth_token => {
                let (mut scheme, mut secret, mut tolerance, mut url) = (None, None, None, None);
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::auth_scheme => scheme = Some(self.ident(part)),
                        Rule::expr => secret = Some(self.expr(part)),
                        Rule::auth_tolerance => {
                            tolerance = part
                                .into_inner()
                                .find(|x| x.as_rule() == Rule::duration)
                                .map(|d| self.duration(d))
                        }
                        Rule::auth_url => {
                            url = part
                                .into_inner()
                                .find(|x| x.as_rule() == Rule::string)
                                .map(|x| self.string(x))
                        }
                        _ => {}
                    }
                }
                Some(AuthForm::Token { scheme: scheme?, secret: secret?, tolerance, url })
            }
            Rule::auth_hmac => {
                let mut lines = Vec::new();
                for part in p.into_inner() {
                    let span = self.span_of(&part);
                    let rule = part.as_rule();
                    let inner: Vec<Pair<Rule>> = part.into_inner().collect();
                    let last = inner.into_iter().last();
                    let line = match (rule, last) {
                        (Rule::hmac_header, Some(x)) => HmacLine::Header(self.string(x), span),
                        (Rule::hmac_prefix, Some(x)) => HmacLine::Prefix(self.string(x), span),
                        (Rule::hmac_algorithm, Some(x)) => HmacLine::Algorithm(self.ident(x), span),
                        (Rule::hmac_encoding, Some(x)) => HmacLine::Encoding(self.ident(x), span),
                        (Rule::hmac_secret, Some(x)) => HmacLine::Secret(self.expr(x), span),
                        (Rule::hmac_signed, Some(x)) => HmacLine::Signed(self.expr(x), span),
                        _ => continue,
                    };
                    lines.push(line);
                }
                Some(AuthForm::Hmac(lines))
            }
            _ => None,
        }
    }

    fn duration(&mut self, p: Pair<Rule>) -> Duration {
        let span = self.span_of(&p);
        let text = p.as_str().to_string();
        let unit_at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(unit_at);
        let scale: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => 86_400_000,
        };
        let millis = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(scale));
        Duration { text, millis, span }
    }

    fn extract(&mut self, p: Pair<Rule>) -> Extract {
        let span = self.span_of(&p);
        let fields = p.into_inner().filter(|c| c.as_rule() == Rule::field).map(|c| self.field(c)).collect();
        Extract { fields, span }
    }

    fn field(&mut self, p: Pair<Rule>) -> Field {
        let span = self.span_of(&p);
        let mut name = Ident { name: String::new(), span };
        let mut source = Source::Body;
        let mut path = None;
        let mut ty = None;
        let mut required = None;
        let mut default = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => name = self.ident(c),
                Rule::source => {
                    source = match c.as_str() {
                        "header" => Source::Header,
                        "query" => Source::Query,
                        "request" => Source::Request,
                        _ => Source::Body,
                    }
                }
                Rule::string => path = Some(self.string(c)),
                Rule::as_type => {
                    ty = c.into_inner().find(|x| x.as_rule() == Rule::ident_any).map(|x| self.ident(x))
                }
                Rule::k_required => required = Some(self.span_of(&c)),
                Rule::default_value => {
                    default = c.into_inner().find(|x| x.as_rule() == Rule::expr).map(|x| self.expr(x));
                }
                _ => {}
            }
        }
        Field { name, source, path, ty, required, default, span }
    }

    fn block(&mut self, p: Pair<Rule>) -> Block {
        let span = self.span_of(&p);
        let stmts = p.into_inner().filter_map(|c| self.stmt(c)).collect();
        Block { stmts, span }
    }

    fn stmt(&mut self, p: Pair<Rule>) -> Option<Stmt> {
        let span = self.span_of(&p);
        Some(match p.as_rule() {
            Rule::let_stmt => {
                let mut name = None;
                let mut value = None;
                let mut effect = None;
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::ident => name = Some(self.ident(c)),
                        Rule::expr => value = Some(self.expr(c)),
                        Rule::http_call | Rule::run_call => effect = self.effect(c),
                        _ => {}
                    }
                }
                if let Some(effect) = effect {
                    return Some(Stmt::Effect { name: Some(name?), effect, span });
                }
                Stmt::Let { name: name?, value: value?, span }
            }
            Rule::if_stmt => {
                let mut branches = Vec::new();
                let mut otherwise = None;
                let mut cond = None;
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::expr => cond = Some(self.expr(c)),
                        Rule::block => {
                            let b = self.block(c);
                            if let Some(e) = cond.take() {
                                branches.push((e, b));
                            }
                        }
                        Rule::else_if => {
                            let mut e = None;
                            for x in c.into_inner() {
                                match x.as_rule() {
                                    Rule::expr => e = Some(self.expr(x)),
                                    Rule::block => {
                                        let b = self.block(x);
                                        if let Some(e) = e.take() {
                                            branches.push((e, b));
                                        }
                                    }
                                    _ => {}
                                }
                            }
                        }
                        Rule::else_block => {
                            otherwise =
                                c.into_inner().find(|x| x.as_rule() == Rule::block).map(|x| self.block(x));
                        }
                        _ => {}
                    }
                }
                Stmt::If(If { branches, otherwise, span })
            }
            Rule::for_stmt => {
                let mut names = Vec::new();
                let mut iter = None;
                let mut body = None;
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::ident => names.push(self.ident(c)),
                        Rule::expr => iter = Some(self.expr(c)),
                        Rule::block => body = Some(self.block(c)),
                        _ => {}
                    }
                }
                let value = names.pop()?;
                Stmt::For { key: names.pop(), value, iter: iter?, body: body?, span }
            }
            Rule::respond => Stmt::Respond(self.respond(p)),
            Rule::log_stmt => Stmt::Log(self.child_expr(p)?, span),
            Rule::fail_stmt => Stmt::Fail(self.child_expr(p)?, span),
            Rule::http_call | Rule::run_call => Stmt::Effect { name: None, effect: self.effect(p)?, span },
            _ => return None,
        })
    }

    fn effect(&mut self, p: Pair<Rule>) -> Option<Effect> {
        let span = self.span_of(&p);
        let rule = p.as_rule();
        let mut method = None;
        let mut first = None;
        let mut program = None;
        let mut args = None;
        let mut http_lines = Vec::new();
        let mut run_lines = Vec::new();
        let mut has_block = false;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::method => method = Some(self.ident(c)),
                Rule::string => program = Some(self.string(c)),
                Rule::expr if rule == Rule::http_call => first = Some(self.expr(c)),
                Rule::expr => args = Some(self.expr(c)),
                Rule::http_block => {
                    has_block = true;
                    for l in c.into_inner() {
                        let lspan = self.span_of(&l);
                        let line = match l.as_rule() {
                            Rule::respond_header => self
                                .header_line(l)
                                .map(|(name, value)| HttpLine::Header { name, value, span: lspan }),
                            Rule::respond_json => self.child_expr(l).map(|e| HttpLine::Json(e, lspan)),
                            Rule::respond_text => self.child_expr(l).map(|e| HttpLine::Text(e, lspan)),
                            Rule::req_form => self.child_expr(l).map(|e| HttpLine::Form(e, lspan)),
                            Rule::e_timeout => self.child_duration(l).map(|d| HttpLine::Timeout(d, lspan)),
                            Rule::e_retry => self.child_count(l).map(|n| HttpLine::Retry(n, lspan)),
                            _ => None,
                        };
                        http_lines.extend(line);
                    }
                }
                Rule::run_block => {
                    has_block = true;
                    for l in c.into_inner() {
                        let lspan = self.span_of(&l);
                        let line = match l.as_rule() {
                            Rule::run_env => self.header_line(l).map(|(name, value)| RunLine::Env {
                                name,
                                value,
                                span: lspan,
                            }),
                            Rule::run_stdin => self.child_expr(l).map(|e| RunLine::Stdin(e, lspan)),
                            Rule::run_dir => l
                                .into_inner()
                                .find(|x| x.as_rule() == Rule::string)
                                .map(|x| RunLine::Dir(self.string(x), lspan)),
                            Rule::e_timeout => self.child_duration(l).map(|d| RunLine::Timeout(d, lspan)),
                            _ => None,
                        };
                        run_lines.extend(line);
                    }
                }
                _ => {}
            }
        }
        Some(match rule {
            Rule::http_call => {
                Effect::Http(HttpCall { method: method?, url: first?, lines: http_lines, has_block, span })
            }
            _ => Effect::Run(RunCall { program: program?, args, lines: run_lines, has_block, span }),
        })
    }

    fn child_duration(&mut self, p: Pair<Rule>) -> Option<Duration> {
        p.into_inner().find(|x| x.as_rule() == Rule::duration).map(|x| self.duration(x))
    }

    fn child_count(&mut self, p: Pair<Rule>) -> Option<Count> {
        let c = p.into_inner().find(|x| x.as_rule() == Rule::count)?;
        Some(Count { value: c.as_str().parse().ok(), span: self.span_of(&c) })
    }

    fn mock(&mut self, p: Pair<Rule>) -> Option<Mock> {
        let span = self.span_of(&p);
        let inner = p.into_inner().find(|x| matches!(x.as_rule(), Rule::mock_http | Rule::mock_run))?;
        let rule = inner.as_rule();
        let mut method = None;
        let mut target = None;
        let mut answer = None;
        let (mut code, mut stdout, mut stderr) = (None, None, None);
        for c in inner.into_inner() {
            match c.as_rule() {
                Rule::method => method = Some(self.ident(c)),
                Rule::string => target = Some(self.string(c)),
                Rule::respond => answer = Some(MockAnswer::Respond(self.respond(c))),
                Rule::fail_stmt => {
                    let fspan = self.span_of(&c);
                    answer = self.child_expr(c).map(|e| MockAnswer::Fail(e, fspan));
                }
                Rule::mock_code => code = self.child_expr(c),
                Rule::mock_stdout => stdout = self.child_expr(c),
                Rule::mock_stderr => stderr = self.child_expr(c),
                _ => {}
            }
        }
        Some(match rule {
            Rule::mock_http => Mock::Http { method: method?, url: target?, answer: answer?, span },
            _ => Mock::Run { program: target?, code, stdout, stderr, span },
        })
    }

    /// `header "Name" = EXPR`, in a response or a test request.
    fn header_line(&mut self, p: Pair<Rule>) -> Option<(Str, Expr)> {
        let mut name = None;
        let mut value = None;
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::string => name = Some(self.string(x)),
                Rule::expr => value = Some(self.expr(x)),
                _ => {}
            }
        }
        Some((name?, value?))
    }

    fn child_expr(&mut self, p: Pair<Rule>) -> Option<Expr> {
        p.into_inner().find(|x| x.as_rule() == Rule::expr).map(|x| self.expr(x))
    }

    fn respond(&mut self, p: Pair<Rule>) -> Respond {
        let span = self.span_of(&p);
        let mut status = 0;
        let mut status_span = span;
        let mut body = RespondBody::Empty;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::status => {
                    status_span = self.span_of(&c);
                    status = c.as_str().parse::<u64>().unwrap_or(u64::MAX);
                }
                Rule::respond_text => {
                    if let Some(e) = self.child_expr(c) {
                        body = RespondBody::Text(e);
                    }
                }
                Rule::respond_json => {
                    if let Some(e) = self.child_expr(c) {
                        body = RespondBody::Json(e);
                    }
                }
                Rule::respond_block => {
                    let bspan = self.span_of(&c);
                    let mut lines = Vec::new();
                    for l in c.into_inner() {
                        let lspan = self.span_of(&l);
                        match l.as_rule() {
                            Rule::respond_header => {
                                if let Some((name, value)) = self.header_line(l) {
                                    lines.push(RespondLine::Header { name, value, span: lspan });
                                }
                            }
                            Rule::respond_text => {
                                if let Some(e) = self.child_expr(l) {
                                    lines.push(RespondLine::Text(e, lspan));
                                }
                            }
                            Rule::respond_json => {
                                if let Some(e) = self.child_expr(l) {
                                    lines.push(RespondLine::Json(e, lspan));
                                }
                            }
                            _ => {}
                        }
                    }
                    body = RespondBody::Block(lines, bspan);
                }
                _ => {}
            }
        }
        Respond { status, status_span, body, span }
    }

    fn test(&mut self, p: Pair<Rule>) -> Test {
        let span = self.span_of(&p);
        let mut name = Str { parts: Vec::new(), span };
        let mut request = None;
        let mut expects = Vec::new();
        let mut mocks = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::string => name = self.string(c),
                Rule::request => request = Some(self.request(c)),
                Rule::expect_stmt => {
                    if let Some(e) = self.child_expr(c) {
                        expects.push(e);
                    }
                }
                Rule::mock => mocks.extend(self.mock(c)),
                _ => {}
            }
        }
        let request = request.unwrap_or_else(|| Request {
            method: Ident { name: "POST".into(), span },
            url: Str { parts: Vec::new(), span },
            lines: Vec::new(),
            has_block: false,
            span,
        });
        Test { name, request, expects, mocks, span }
    }

    fn request(&mut self, p: Pair<Rule>) -> Request {
        let span = self.span_of(&p);
        let mut method = Ident { name: String::new(), span };
        let mut url = Str { parts: Vec::new(), span };
        let mut lines = Vec::new();
        let mut has_block = false;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::method => method = self.ident(c),
                Rule::string => url = self.string(c),
                Rule::request_block => {
                    has_block = true;
                    for l in c.into_inner() {
                        let lspan = self.span_of(&l);
                        match l.as_rule() {
                            Rule::req_auth => {
                                let exprs: Vec<Expr> = l
                                    .into_inner()
                                    .filter(|x| x.as_rule() == Rule::expr)
                                    .map(|x| self.expr(x))
                                    .collect();
                                let mut it = exprs.into_iter();
                                if let (Some(user), Some(password)) = (it.next(), it.next()) {
                                    lines.push(RequestLine::Auth { user, password, span: lspan });
                                }
                            }
                            Rule::req_header => {
                                if let Some((name, value)) = self.header_line(l) {
                                    lines.push(RequestLine::Header { name, value, span: lspan });
                                }
                            }
                            Rule::req_json => {
                                if let Some(e) = self.child_expr(l) {
                                    lines.push(RequestLine::Json(e, lspan));
                                }
                            }
                            Rule::req_text => {
                                if let Some(e) = self.child_expr(l) {
                                    lines.push(RequestLine::Text(e, lspan));
                                }
                            }
                            Rule::req_form => {
                                if let Some(e) = self.child_expr(l) {
                                    lines.push(RequestLine::Form(e, lspan));
                                }
                            }
                            Rule::req_sign => {
                                let mut provider = None;
                                let mut secret = None;
                                for x in l.into_inner() {
                                    match x.as_rule() {
                                        Rule::ident_any => provider = Some(self.ident(x)),
                                        Rule::expr => secret = Some(self.expr(x)),
                                        _ => {}
                                    }
                                }
                                if let (Some(provider), Some(secret)) = (provider, secret) {
                                    lines.push(RequestLine::Sign { provider, secret, span: lspan });
                                }
                            }
                            Rule::req_content_type => {
                                if let Some(s) = l.into_inner().find(|x| x.as_rule() == Rule::string) {
                                    lines.push(RequestLine::ContentType(self.string(s), lspan));
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Request { method, url, lines, has_block, span }
    }

    fn string(&mut self, p: Pair<Rule>) -> Str {
        let span = self.span_of(&p);
        let mut parts: Vec<StrPart> = Vec::new();
        let push_lit = |parts: &mut Vec<StrPart>, s: &str| {
            if let Some(StrPart::Lit(last)) = parts.last_mut() {
                last.push_str(s);
            } else {
                parts.push(StrPart::Lit(s.to_string()));
            }
        };
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::str_text => push_lit(&mut parts, c.as_str()),
                Rule::str_escape => {
                    let esc = c.as_str();
                    let decoded = match esc.as_bytes().get(1) {
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'u') => {
                            let hex = esc.get(3..esc.len().saturating_sub(1)).unwrap_or("");
                            match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                                Some(ch) => ch,
                                None => {
                                    self.diags.push(
                                        Diagnostic::new(
                                            Kind::InvalidEscape,
                                            self.file,
                                            self.span_of(&c),
                                            "invalid unicode escape",
                                        )
                                        .label("not a Unicode scalar value")
                                        .help("use a code point between 0 and 10FFFF, outside D800–DFFF"),
                                    );
                                    '\u{FFFD}'
                                }
                            }
                        }
                        Some(&other) => other as char,
                        None => '\\',
                    };
                    let mut buf = [0u8; 4];
                    push_lit(&mut parts, decoded.encode_utf8(&mut buf));
                }
                Rule::interp => {
                    if let Some(e) = self.child_expr(c) {
                        parts.push(StrPart::Expr(e));
                    }
                }
                _ => {}
            }
        }
        Str { parts, span }
    }

    fn expr(&mut self, p: Pair<Rule>) -> Expr {
        self.expr_d(p).0
    }

    fn too_deep(&mut self, span: Span) -> (Expr, usize) {
        self.diags.push(
            Diagnostic::new(Kind::NestingTooDeep, self.file, span, "nesting too deep")
                .label(format!("this expression is more than {MAX_EXPR_DEPTH} levels deep"))
                .help("split the expression with `let`"),
        );
        (Expr { kind: ExprKind::Null, span }, 1)
    }

    /// Builds an expression and returns its depth, applying precedence to the flat operator list.
    fn expr_d(&mut self, p: Pair<Rule>) -> (Expr, usize) {
        let mut operands: Vec<(Expr, usize)> = Vec::new();
        let mut ops: Vec<BinOp> = Vec::new();
        for c in p.into_inner() {
            let op = match c.as_rule() {
                Rule::operand => {
                    let o = self.operand(c);
                    operands.push(o);
                    continue;
                }
                Rule::op_coalesce => BinOp::Coalesce,
                Rule::op_or => BinOp::Or,
                Rule::op_and => BinOp::And,
                Rule::op_eq => BinOp::Eq,
                Rule::op_ne => BinOp::Ne,
                Rule::op_lt => BinOp::Lt,
                Rule::op_le => BinOp::Le,
                Rule::op_gt => BinOp::Gt,
                Rule::op_ge => BinOp::Ge,
                Rule::op_in => BinOp::In,
                Rule::op_add => BinOp::Add,
                Rule::op_sub => BinOp::Sub,
                Rule::op_mul => BinOp::Mul,
                Rule::op_div => BinOp::Div,
                _ => BinOp::Mod,
            };
            while let Some(&top) = ops.last() {
                if top.precedence() < op.precedence() {
                    break;
                }
                ops.pop();
                self.reduce(&mut operands, top);
            }
            ops.push(op);
        }
        while let Some(top) = ops.pop() {
            self.reduce(&mut operands, top);
        }
        operands.pop().unwrap_or((Expr { kind: ExprKind::Null, span: Span::default() }, 1))
    }

    fn reduce(&mut self, operands: &mut Vec<(Expr, usize)>, op: BinOp) {
        let (Some((rhs, rd)), Some((lhs, ld))) = (operands.pop(), operands.pop()) else {
            return;
        };
        let span = Span::new(lhs.span.start, rhs.span.end);
        let depth = 1 + ld.max(rd);
        if depth > MAX_EXPR_DEPTH {
            let out = self.too_deep(span);
            operands.push(out);
            return;
        }
        operands.push((Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span }, depth));
    }

    fn operand(&mut self, p: Pair<Rule>) -> (Expr, usize) {
        let mut prefixes = Vec::new();
        let mut current: Option<(Expr, usize)> = None;
        for c in p.into_inner() {
            let cspan = self.span_of(&c);
            match c.as_rule() {
                Rule::op_not => prefixes.push((UnOp::Not, cspan.start)),
                Rule::op_neg => prefixes.push((UnOp::Neg, cspan.start)),
                Rule::field_access => {
                    let Some((base, d)) = current.take() else {
                        continue;
                    };
                    let name = c.into_inner().next().map(|x| self.ident(x));
                    let name = name.unwrap_or(Ident { name: String::new(), span: cspan });
                    let span = Span::new(base.span.start, cspan.end);
                    current = Some(self.deeper(ExprKind::Field(Box::new(base), name), span, d + 1));
                }
                Rule::index_access => {
                    let Some((base, d)) = current.take() else {
                        continue;
                    };
                    let idx = c.into_inner().find(|x| x.as_rule() == Rule::expr).map(|x| self.expr_d(x));
                    let (idx, id) = idx.unwrap_or((Expr { kind: ExprKind::Null, span: cspan }, 1));
                    let span = Span::new(base.span.start, cspan.end);
                    current = Some(self.deeper(
                        ExprKind::Index(Box::new(base), Box::new(idx)),
                        span,
                        1 + d.max(id),
                    ));
                }
                _ => current = Some(self.primary(c)),
            }
        }
        let (mut e, mut d) = current.unwrap_or((Expr { kind: ExprKind::Null, span: Span::default() }, 1));
        for (op, start) in prefixes.into_iter().rev() {
            let span = Span::new(start, e.span.end);
            (e, d) = self.deeper(ExprKind::Unary(op, Box::new(e)), span, d + 1);
        }
        (e, d)
    }

    fn deeper(&mut self, kind: ExprKind, span: Span, depth: usize) -> (Expr, usize) {
        if depth > MAX_EXPR_DEPTH {
            return self.too_deep(span);
        }
        (Expr { kind, span }, depth)
    }

    fn primary(&mut self, p: Pair<Rule>) -> (Expr, usize) {
        let span = self.span_of(&p);
        let leaf = |kind| (Expr { kind, span }, 1);
        match p.as_rule() {
            Rule::k_true => leaf(ExprKind::Bool(true)),
            Rule::k_false => leaf(ExprKind::Bool(false)),
            Rule::k_null => leaf(ExprKind::Null),
            Rule::number => match number_literal(p.as_str()) {
                Some(n) => leaf(ExprKind::Number(n)),
                None => {
                    self.diags.push(
                        Diagnostic::new(Kind::InvalidNumber, self.file, span, "number out of range")
                            .label("this number cannot be represented")
                            .help("integers must fit in 64 bits; floats must be finite"),
                    );
                    leaf(ExprKind::Null)
                }
            },
            Rule::ident => leaf(ExprKind::Var(self.ident(p))),
            Rule::string => {
                let mut depth = 1;
                let s = self.string(p);
                for part in &s.parts {
                    if let StrPart::Expr(_) = part {
                        depth = 2;
                    }
                }
                (Expr { kind: ExprKind::Str(s), span }, depth)
            }
            Rule::paren => {
                let inner = p.into_inner().find(|x| x.as_rule() == Rule::expr).map(|x| self.expr_d(x));
                let (e, d) = inner.unwrap_or((Expr { kind: ExprKind::Null, span }, 1));
                self.deeper(ExprKind::Paren(Box::new(e)), span, d + 1)
            }
            Rule::array if p.clone().into_inner().any(|x| x.as_rule() == Rule::comprehension) => {
                let mut depth = 1;
                let mut parts = Vec::new();
                let mut name = None;
                if let Some(c) = p.into_inner().find(|x| x.as_rule() == Rule::comprehension) {
                    for x in c.into_inner() {
                        match x.as_rule() {
                            Rule::expr => {
                                let (e, d) = self.expr_d(x);
                                depth = depth.max(d + 1);
                                parts.push(e);
                            }
                            Rule::ident => name = Some(self.ident(x)),
                            _ => {}
                        }
                    }
                }
                let mut parts = parts.into_iter();
                match (parts.next(), name, parts.next()) {
                    (Some(elem), Some(name), Some(iter)) => {
                        let cond = parts.next().map(Box::new);
                        let kind = ExprKind::Comprehension {
                            elem: Box::new(elem),
                            name,
                            iter: Box::new(iter),
                            cond,
                        };
                        self.deeper(kind, span, depth)
                    }
                    _ => self.deeper(ExprKind::Array(Vec::new()), span, depth),
                }
            }
            Rule::array => {
                let mut depth = 1;
                let mut items = Vec::new();
                for x in p.into_inner().filter(|x| x.as_rule() == Rule::expr) {
                    let (e, d) = self.expr_d(x);
                    depth = depth.max(d + 1);
                    items.push(e);
                }
                self.deeper(ExprKind::Array(items), span, depth)
            }
            Rule::object => {
                let mut depth = 1;
                let mut entries = Vec::new();
                for entry in p.into_inner().filter(|x| x.as_rule() == Rule::obj_entry) {
                    let mut key = None;
                    let mut value = None;
                    for x in entry.into_inner() {
                        match x.as_rule() {
                            Rule::ident_any => key = Some(ObjKey::Name(self.ident(x))),
                            Rule::string => key = Some(ObjKey::Str(self.string(x))),
                            Rule::expr => {
                                let (e, d) = self.expr_d(x);
                                depth = depth.max(d + 1);
                                value = Some(e);
                            }
                            _ => {}
                        }
                    }
                    if let (Some(k), Some(v)) = (key, value) {
                        entries.push((k, v));
                    }
                }
                self.deeper(ExprKind::Object(entries), span, depth)
            }
            Rule::call if !p.clone().into_inner().any(|x| x.as_rule() == Rule::lparen) => {
                match p.into_inner().find(|x| x.as_rule() == Rule::ident) {
                    Some(i) => leaf(ExprKind::Var(self.ident(i))),
                    None => leaf(ExprKind::Null),
                }
            }
            Rule::call => {
                let mut depth = 1;
                let mut name = Ident { name: String::new(), span };
                let mut args = Vec::new();
                for x in p.into_inner() {
                    match x.as_rule() {
                        Rule::ident => name = self.ident(x),
                        Rule::expr => {
                            let (e, d) = self.expr_d(x);
                            depth = depth.max(d + 1);
                            args.push(e);
                        }
                        _ => {}
                    }
                }
                self.deeper(ExprKind::Call(name, args), span, depth)
            }
            _ => leaf(ExprKind::Null),
        }
    }
}

fn number_literal(s: &str) -> Option<serde_json::Number> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Some(i.into());
        }
        if let Ok(u) = s.parse::<u64>() {
            return Some(u.into());
        }
        return None;
    }
    s.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}

/// Turns pest's failure into a diagnostic that says, in words, what was expected.
fn syntax_error(file: &Arc<SourceFile>, e: &pest::error::Error<Rule>) -> Diagnostic {
    let text = file.text.as_str();
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut words: Vec<&'static str> = Vec::new();
    let mut in_string = false;
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            if matches!(r, Rule::str_text | Rule::str_escape | Rule::interp) {
                in_string = true;
            }
            if let Some(w) = describe(*r) {
                if !words.contains(&w) {
                    words.push(w);
                }
            }
        }
    }
    let expected = join_or(&words);
    let rest = text.get(pos..).unwrap_or("");
    let at_eof = rest.trim().is_empty();
    let found = found_token(rest);
    let end = (pos + found.len().max(1)).min(text.len().max(pos));
    let span = Span::new(pos, end);
    if in_string && (at_eof || rest.starts_with('\n') || rest.starts_with('\r')) {
        return Diagnostic::new(Kind::Syntax, file, span, "unterminated string")
            .label("the string is not closed before the end of the line")
            .help("close it with `\"`; write a line break inside a string as `\\n`");
    }
    if let Some(d) = common_slip(file, text, pos, found) {
        return d;
    }
    let (message, label) = if at_eof {
        (
            if expected.is_empty() {
                "unexpected end of file".to_string()
            } else {
                format!("unexpected end of file, expected {expected}")
            },
            "the file ends here".to_string(),
        )
    } else {
        let found_desc = if found.starts_with('"') { "a string".to_string() } else { format!("`{found}`") };
        (
            if expected.is_empty() {
                format!("unexpected {found_desc}")
            } else {
                format!("expected {expected}, found {found_desc}")
            },
            format!("unexpected {found_desc}"),
        )
    };
    let help = if crate::lang::keywords::is_reserved(found) && words.contains(&"a name") {
        format!("`{found}` is a keyword and cannot be used as a name; pick another name")
    } else if at_eof {
        "a `{` may be missing its `}`".to_string()
    } else if in_string {
        "escapes are `\\n`, `\\t`, `\\r`, `\\\"`, `\\\\`, `\\$` and `\\u{...}`".to_string()
    } else if let Some(meant) = closest_word(found, &words) {
        format!("did you mean `{meant}`?")
    } else {
        "see the language reference in README.md".to_string()
    };
    Diagnostic::new(Kind::Syntax, file, span, message).label(label).help(help)
}

/// The expected word a misspelt one most likely meant (`triger` → `trigger`, `bdy` → `body`):
/// within two edits, and fewer than the word has letters.
fn closest_word(found: &str, expected: &[&'static str]) -> Option<&'static str> {
    if found.is_empty() || !found.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    // A description may name several words: "`sync` or `async`".
    expected
        .iter()
        .flat_map(|w| w.split('`').skip(1).step_by(2))
        .map(|w| (strsim::damerau_levenshtein(found, w), w))
        .filter(|(d, w)| *d <= 2 && *d < found.len().min(w.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, w)| w)
}

/// A syntax error that is a known slip gets its own diagnostic: `total = total + 1` (names are
/// bound once) and `respond "200"` (a status is a number).
fn common_slip(file: &Arc<SourceFile>, text: &str, pos: usize, found: &str) -> Option<Diagnostic> {
    let rest = text.get(pos..)?;
    let is_name = found.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !crate::lang::keywords::is_reserved(found);
    if is_name {
        let after = rest.get(found.len()..)?.trim_start();
        if after.starts_with('=') && !after.starts_with("==") && bound_before(text.get(..pos)?, found) {
            let span = Span::new(pos, pos + found.len());
            let d = Diagnostic::new(
                Kind::Reassignment,
                file,
                span,
                format!("`{found}` cannot be assigned: a name is bound once, with `let`"),
            )
            .label("an assignment")
            .help(format!("bind the new value to a new name, e.g. `let {found}_2 = ...`"));
            return Some(d);
        }
    }
    let before = text.get(..pos)?.trim_end();
    let digits = found.strip_prefix('"').and_then(|f| f.strip_suffix('"'));
    if before.ends_with("respond")
        && digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    {
        let status = digits.unwrap_or_default();
        let span = Span::new(pos, pos + found.len());
        let d = Diagnostic::new(Kind::QuotedStatus, file, span, "a status is a number, not a string")
            .label("a quoted status")
            .help(format!("write `respond {status}` without quotes"));
        return Some(d);
    }
    None
}

/// Whether `name` is bound (by `let` or an extraction) somewhere in `before`.
fn bound_before(before: &str, name: &str) -> bool {
    let words = |s: &str| {
        s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    before.lines().any(|line| {
        let w = words(line);
        let t = line.trim_start();
        (w.first().is_some_and(|f| f == "let") && w.get(1).is_some_and(|n| n == name))
            || (w.first().is_some_and(|f| f == name)
                && t.get(name.len()..).is_some_and(|r| r.trim_start().starts_with('=')))
    })
}

fn found_token(rest: &str) -> &str {
    let mut chars = rest.char_indices();
    let Some((_, first)) = chars.next() else {
        return "";
    };
    if first.is_ascii_alphanumeric() || first == '_' {
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        return rest.get(..end).unwrap_or(rest);
    }
    if first == '"' {
        let after = rest.get(1..).unwrap_or("");
        let end = after.find(['"', '\n']).map_or(rest.len(), |i| i + 2).min(rest.len());
        return rest.get(..end).unwrap_or(rest);
    }
    rest.get(..first.len_utf8()).unwrap_or(rest)
}

fn join_or(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

fn describe(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of file",
        Rule::workflow | Rule::k_workflow => "`workflow`",
        Rule::test | Rule::k_test => "`test`",
        Rule::trigger | Rule::k_trigger => "`trigger`",
        Rule::k_webhook => "`webhook`",
        Rule::extract | Rule::k_extract => "`extract`",
        Rule::let_stmt | Rule::k_let => "`let`",
        Rule::if_stmt | Rule::k_if => "`if`",
        Rule::for_stmt | Rule::k_for => "`for`",
        Rule::k_in => "`in`",
        Rule::comprehension => "an expression",
        Rule::else_if | Rule::else_block | Rule::k_else => "`else`",
        Rule::respond | Rule::k_respond => "`respond`",
        Rule::log_stmt | Rule::k_log => "`log`",
        Rule::fail_stmt | Rule::k_fail => "`fail`",
        Rule::t_path | Rule::k_path => "`path`",
        Rule::t_key | Rule::k_key => "`key`",
        Rule::t_mode | Rule::k_mode => "`mode`",
        Rule::t_concurrency | Rule::k_concurrency => "`concurrency`",
        Rule::t_dedupe | Rule::k_dedupe => "`dedupe`",
        Rule::k_window => "`window`",
        Rule::mode_name => "`sync` or `async`",
        Rule::k_sync => "`sync`",
        Rule::k_async => "`async`",
        Rule::t_auth | Rule::k_auth | Rule::req_auth => "`auth`",
        Rule::k_basic => "`basic`",
        Rule::auth_user | Rule::k_user => "`user`",
        Rule::t_method | Rule::k_method => "`method`",
        Rule::t_allow | Rule::k_allow => "`allow`",
        Rule::k_ip => "`ip`",
        Rule::t_cors | Rule::k_cors => "`cors`",
        Rule::cors_origin | Rule::k_origin => "`origin`",
        Rule::auth_scheme => "an auth form",
        Rule::auth_header => "`header`",
        Rule::auth_hmac | Rule::k_hmac => "`hmac`",
        Rule::auth_tolerance | Rule::k_tolerance => "`tolerance`",
        Rule::auth_url | Rule::k_url => "`url`",
        Rule::hmac_header => "`header`",
        Rule::hmac_prefix | Rule::k_prefix => "`prefix`",
        Rule::hmac_algorithm | Rule::k_algorithm => "`algorithm`",
        Rule::hmac_encoding | Rule::k_encoding => "`encoding`",
        Rule::hmac_secret | Rule::k_secret => "`secret`",
        Rule::hmac_signed | Rule::k_signed => "`signed`",
        Rule::duration => "a duration (`5m`, `30s`)",
        Rule::req_form | Rule::k_form => "`form`",
        Rule::req_sign | Rule::k_sign => "`sign`",
        Rule::auth_password | Rule::k_password => "`password`",
        Rule::field => "a field (`name = header|query|body \"path\"`)",
        Rule::source => "`header`, `query`, `body` or `request`",
        Rule::k_header | Rule::respond_header | Rule::req_header => "`header`",
        Rule::k_query => "`query`",
        Rule::k_body => "`body`",
        Rule::as_type | Rule::k_as => "`as`",
        Rule::k_required => "`required`",
        Rule::default_value | Rule::k_default => "`default`",
        Rule::status => "a status code",
        Rule::respond_text | Rule::req_text | Rule::k_text => "`text`",
        Rule::respond_json | Rule::req_json | Rule::k_json => "`json`",
        Rule::req_content_type | Rule::k_content_type => "`content_type`",
        Rule::request | Rule::k_request => "`request`",
        Rule::method => "an HTTP method (`POST`, `GET`, ...)",
        Rule::expect_stmt | Rule::k_expect => "`expect`",
        Rule::http_call | Rule::mock_http | Rule::k_http => "`http`",
        Rule::run_call | Rule::mock_run | Rule::k_run => "`run`",
        Rule::e_timeout | Rule::k_timeout => "`timeout`",
        Rule::e_retry | Rule::k_retry => "`retry`",
        Rule::count => "a whole number",
        Rule::run_env | Rule::k_env => "`env`",
        Rule::run_stdin | Rule::k_stdin => "`stdin`",
        Rule::run_dir | Rule::k_dir => "`dir`",
        Rule::mock | Rule::k_mock => "`mock`",
        Rule::mock_code | Rule::k_code => "`code`",
        Rule::mock_stdout | Rule::k_stdout => "`stdout`",
        Rule::mock_stderr | Rule::k_stderr => "`stderr`",
        Rule::expr
        | Rule::operand
        | Rule::paren
        | Rule::array
        | Rule::object
        | Rule::call
        | Rule::number
        | Rule::k_true
        | Rule::k_false
        | Rule::k_null
        | Rule::op_not
        | Rule::op_neg => "an expression",
        Rule::op_coalesce
        | Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_lt
        | Rule::op_le
        | Rule::op_gt
        | Rule::op_ge
        | Rule::op_in
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_mod => "an operator",
        Rule::field_access => "`.`",
        Rule::index_access => "`[`",
        Rule::string => "a string",
        Rule::str_text | Rule::str_escape | Rule::interp => "`\"`",
        Rule::ident | Rule::ident_any => "a name",
        Rule::obj_entry => "a key",
        Rule::lbrace
        | Rule::block
        | Rule::respond_block
        | Rule::request_block
        | Rule::http_block
        | Rule::run_block => "`{`",
        Rule::rbrace => "`}`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::comma => "`,`",
        Rule::colon => "`:`",
        Rule::assign => "`=`",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_src(src: &str) -> Result<File, Vec<Diagnostic>> {
        parse(&SourceFile::new("t.wf", src))
    }

    fn expr_str(src: &str) -> String {
        fn show(e: &Expr) -> String {
            match &e.kind {
                ExprKind::Binary(op, l, r) => format!("({} {} {})", show(l), op.as_str(), show(r)),
                ExprKind::Unary(UnOp::Not, x) => format!("!{}", show(x)),
                ExprKind::Unary(UnOp::Neg, x) => format!("-{}", show(x)),
                ExprKind::Var(i) => i.name.clone(),
                ExprKind::Number(n) => n.to_string(),
                ExprKind::Field(b, n) => format!("{}.{}", show(b), n.name),
                ExprKind::Index(b, i) => format!("{}[{}]", show(b), show(i)),
                ExprKind::Paren(x) => format!("[{}]", show(x)),
                ExprKind::Call(n, args) => {
                    format!("{}({})", n.name, args.iter().map(show).collect::<Vec<_>>().join(","))
                }
                other => format!("{other:?}"),
            }
        }
        show(&parse_expr(&SourceFile::new("e", src)).expect("parses"))
    }

    #[test]
    fn precedence_follows_the_spec() {
        assert_eq!(
            expr_str("a ?? b || c && d == e < f in g + h * i"),
            "(a ?? (b || (c && (d == (e < (f in (g + (h * i))))))))"
        );
        assert_eq!(expr_str("a - b - c"), "((a - b) - c)");
        assert_eq!(expr_str("!a.b[0] && -x"), "(!a.b[0] && -x)");
        assert_eq!(expr_str("(a + b) * len(c, 2)"), "([(a + b)] * len(c,2))");
    }

    #[test]
    fn a_name_followed_by_a_comment_is_not_a_call() {
        let f = parse_src("workflow w { trigger webhook {} let a = 1 let b = a # see (a)\n log b }")
            .expect("parses");
        let Item::Workflow(w) = &f.items[0] else { panic!() };
        let WfItem::Stmt(Stmt::Let { value, .. }) = &w.items[2] else { panic!() };
        assert!(matches!(&value.kind, ExprKind::Var(i) if i.name == "a"), "{value:?}");
        assert_eq!(expr_str("f(a, 1)"), "f(a,1)");
        assert_eq!(expr_str("now()"), "now()");
    }

    #[test]
    fn strings_decode_escapes_and_split_interpolation() {
        let e = parse_expr(&SourceFile::new("e", r#""a\n\"${x}\$\u{e9}""#)).expect("parses");
        let ExprKind::Str(s) = e.kind else { panic!("not a string") };
        assert_eq!(s.parts.len(), 3);
        assert!(matches!(&s.parts[0], StrPart::Lit(t) if t == "a\n\""));
        assert!(matches!(&s.parts[2], StrPart::Lit(t) if t == "$é"));
    }

    #[test]
    fn a_whole_workflow_parses() {
        let f = parse_src(
            r#"# top
            workflow w {
              trigger webhook { path "/p" mode async auth basic { user "u" password env("P") } respond 202 text "ok" }
              extract { a = body "x.y" as number default 0  b = query "q[0]" required }
              let c = a * 2
              if c > 1 { respond 200 json { ok: true, "k": [1, 2] } } else if c == 0 { log "zero" } else { fail "no" }
              respond 201 { header "X-A" = "b" text "t" }
            }
            test "t" { request POST "/p?x=1" { auth basic "u" "p" header "A" = "b" json {a: 1} } expect status == 200 }"#,
        )
        .expect("parses");
        assert_eq!(f.items.len(), 2);
        assert_eq!(f.comments.len(), 1);
        let Item::Workflow(w) = &f.items[0] else { panic!() };
        assert_eq!(w.items.len(), 5);
    }

    #[test]
    fn a_misspelt_keyword_gets_a_did_you_mean() {
        for (src, meant) in [
            ("workflow w {\n  triger webhook {}\n}", "trigger"),
            ("workflow w {\n  trigger webhook { mode asynch }\n}", "async"),
            ("workflow w {\n  trigger webhook {}\n  extarct { a = body \"a\" }\n}", "extract"),
        ] {
            let errs = parse_src(src).unwrap_err();
            let help = errs[0].help.clone().unwrap_or_default();
            assert_eq!(help, format!("did you mean `{meant}`?"), "{src}");
        }
        let errs = parse_src("workflow w {\n  trigger webhook {}\n  bogus\n}").unwrap_err();
        assert!(
            !errs[0].help.clone().unwrap_or_default().contains("did you mean"),
            "nothing is close to `bogus`"
        );
        assert_eq!(super::closest_word("x", &["`if`"]), None, "a one-letter word means nothing");
    }

    #[test]
    fn syntax_errors_say_what_was_expected() {
        let errs = parse_src("workflow w {\n  trigger webhook {}\n  bogus\n}").unwrap_err();
        assert_eq!(
            errs[0].message,
            "expected `trigger`, `extract`, `let`, `for`, `if`, `respond`, `log`, `fail`, `http`, `run` or `}`, found `bogus`"
        );
        let errs = parse_src("workflow w {\n  trigger webhook {}\n").unwrap_err();
        assert!(errs[0].message.starts_with("unexpected end of file"), "{}", errs[0].message);
        let errs = parse_src("workflow w { let x = \"abc\n }").unwrap_err();
        assert_eq!(errs[0].message, "unterminated string");
        let errs = parse_src("workflow w { let if = 1 }").unwrap_err();
        assert!(errs[0].help.as_deref().unwrap_or("").contains("keyword"), "{:?}", errs[0]);
    }

    #[test]
    fn hostile_input_is_a_diagnostic_not_a_crash() {
        let deep = format!("workflow w {{ let x = {}1{} }}", "(".repeat(200_000), ")".repeat(200_000));
        assert_eq!(parse_src(&deep).unwrap_err()[0].code, "wf::nesting-too-deep");
        let long_chain = format!("workflow w {{ let x = 1{} }}", " + 1".repeat(100_000));
        assert_eq!(parse_src(&long_chain).unwrap_err()[0].code, "wf::nesting-too-deep");
        let nots = format!("workflow w {{ let x = {}true }}", "!".repeat(100_000));
        assert_eq!(parse_src(&nots).unwrap_err()[0].code, "wf::nesting-too-deep");
        let ok = format!("workflow w {{ let x = {}1{} }}", "(".repeat(20), ")".repeat(20));
        assert!(parse_src(&ok).is_ok());
        assert!(parse_src("workflow w { let x = \"").is_err());
        assert!(parse_src("\u{0}\u{1}\u{fffd}garbage").is_err());
    }
}
