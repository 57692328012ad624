//! Effects: `http` and `run` calls, what they may be given, and the names bound to their results.

use super::Lower;
use crate::lang::ast::{self, ExprKind, Ident, Span, StrPart};
use crate::lang::diagnostic::{Diagnostic, Kind};
use crate::lang::ir::{self, Slot};
use crate::lang::types::Types;

/// Longest `timeout` an effect may have.
const MAX_TIMEOUT_MS: u64 = 3_600_000;

impl Lower<'_> {
    pub(super) fn effect(&mut self, e: &ast::Effect) -> ir::Effect {
        match e {
            ast::Effect::Http(h) => ir::Effect::Http(Box::new(self.http_call(h))),
            ast::Effect::Run(r) => ir::Effect::Run(Box::new(self.run_call(r))),
            ast::Effect::Callback { timeout, span } => {
                self.waits_in_async("`callback`", *span);
                let timeout = match timeout {
                    None => ir::CALLBACK_TIMEOUT,
                    Some(d) => match d.millis.filter(|ms| (1_000..=super::MAX_WAIT_MS).contains(ms)) {
                        Some(ms) => std::time::Duration::from_millis(ms),
                        None => {
                            self.err(
                                Kind::WaitTooLong,
                                d.span,
                                format!("a callback's `timeout {}` is not between 1s and 365d", d.text),
                            )
                            .set_label("not a timeout wf keeps")
                            .set_help("wait at most `365d`");
                            ir::CALLBACK_TIMEOUT
                        }
                    },
                };
                ir::Effect::Callback { timeout }
            }
            ast::Effect::Wait { of, span } => {
                self.waits_in_async("`wait`", *span);
                let made = match &of.kind {
                    ast::ExprKind::Var(name) => self.lookup(&name.name).and_then(|slot| {
                        self.callbacks.iter_mut().find(|(s, _, _)| *s == slot).map(|c| c.2 = true)
                    }),
                    _ => None,
                };
                if made.is_none() {
                    self.err(Kind::WaitNotCallback, of.span, "`wait` waits for a callback")
                        .set_label("not a value `callback` made")
                        .set_help("make one with `let cb = callback`, hand out `cb.url`, then `let reply = wait cb`");
                }
                ir::Effect::Wait(self.expr(of))
            }
        }
    }

    /// A statement that waits is for async workflows.
    fn waits_in_async(&mut self, what: &str, span: Span) {
        if self.mode != ast::Mode::Async {
            self.err(Kind::WaitInSync, span, format!("{what} in a sync workflow"))
                .set_label("the caller would wait on an open connection")
                .set_help("make the workflow `mode async`: its caller is answered at once and the run waits without holding anything");
        }
    }

    /// Binds `let NAME = http ...` / `run ...`: an object whose fields the checker knows.
    pub(super) fn effect_result(&mut self, name: &Ident, call: &ir::Effect) -> Slot {
        let (fields, what, types): (&'static [(&'static str, Types)], _, _) = match call {
            ir::Effect::Http(_) => {
                (&ir::HTTP_RESULT, "an `http` result { status, headers, json, text }", Types::OBJECT)
            }
            ir::Effect::Run(_) => (&ir::RUN_RESULT, "a `run` result { code, stdout, stderr }", Types::OBJECT),
            ir::Effect::Callback { .. } => (&ir::CALLBACK_RESULT, "a callback { url, id }", Types::OBJECT),
            ir::Effect::Wait(_) => (
                &ir::WAIT_RESULT,
                "the call to a callback { method, headers, query, json, text, form }, or null after its timeout",
                Types::OBJECT.or(Types::NULL),
            ),
        };
        let slot = self.declare(name, false, types, (name.span, format!("bound here to {what}")));
        if matches!(call, ir::Effect::Callback { .. }) {
            self.callbacks.push((slot, name.span, false));
        }
        if let Some(v) = self.vars.get_mut(slot as usize) {
            v.fields = Some(fields);
        }
        slot
    }

    fn http_call(&mut self, h: &ast::HttpCall) -> ir::HttpCall {
        let method = http::Method::from_bytes(h.method.name.as_bytes()).unwrap_or(http::Method::GET);
        self.http_url(&h.url);
        // A secret may be the URL or part of it (incoming-webhook URLs are secrets): wherever
        // wf writes the URL, the secret's part is shown as `[secret]`.
        let url = self.expr(&h.url);
        let mut call = ir::HttpCall {
            method,
            url,
            headers: Vec::new(),
            body: ir::Payload::Empty,
            has_content_type: false,
            timeout: ir::HTTP_TIMEOUT,
            retry: 0,
            sign: None,
        };
        let mut body_at: Option<Span> = None;
        for line in &h.lines {
            let body = match line {
                ast::HttpLine::Header { name, value, .. } => {
                    let v = self.expr(value);
                    self.header_value(&v, value.span);
                    match self.header_name(name) {
                        Some(h) if super::stmt::forbidden(&h) || h == http::header::HOST => {
                            self.err(Kind::ForbiddenHeader, name.span, format!("a call may not set `{h}`"))
                                .set_label("set by the client")
                                .set_help("wf sets framing headers and `host` from the URL itself");
                        }
                        Some(h) => call.headers.push((h, v)),
                        None => {}
                    }
                    None
                }
                ast::HttpLine::Json(e, span) => Some((ir::Payload::Json(self.expr(e)), *span)),
                ast::HttpLine::Text(e, span) => Some((ir::Payload::Text(self.expr(e)), *span)),
                ast::HttpLine::Form(e, span) => {
                    let (x, t) = self.typed(e);
                    if !t.meets(Types::OBJECT) {
                        self.err(
                            Kind::TypeMismatch,
                            e.span,
                            format!("`form` sends an object, not {}", t.describe_value()),
                        )
                        .set_label("not an object")
                        .set_help("write form { text: \"hello\", channel: \"C1\" }");
                    }
                    Some((ir::Payload::Form(x), *span))
                }
                ast::HttpLine::Timeout(d, _) => {
                    call.timeout = self.effect_timeout(d);
                    None
                }
                ast::HttpLine::Sign { provider, secret, .. } => {
                    let scheme = match provider.name.as_str() {
                        "standard_webhooks" => Some(ir::Scheme::StandardWebhooks),
                        "github" => Some(ir::Scheme::Github),
                        _ => None,
                    };
                    match scheme {
                        Some(s) => call.sign = Some((s, self.expr(secret))),
                        None => {
                            self.err(
                                Kind::InvalidEffect,
                                provider.span,
                                format!("wf signs calls as `standard_webhooks` or `github`, not `{}`", provider.name),
                            )
                            .set_label("not a sender's scheme")
                            .set_help("write sign standard_webhooks secret(\"WEBHOOK_SECRET\") or sign github secret(\"...\")");
                        }
                    }
                    None
                }
                ast::HttpLine::Retry(n, _) => {
                    match n.value.and_then(|v| u32::try_from(v).ok()).filter(|v| *v <= ir::MAX_RETRY) {
                        Some(v) => call.retry = v,
                        None => {
                            self.err(
                                Kind::InvalidEffect,
                                n.span,
                                format!("`retry` is at most {}", ir::MAX_RETRY),
                            )
                            .set_label("too many attempts")
                            .set_help(
                                "waits double from 1 s: retry 10 already waits about 17 minutes in all",
                            );
                        }
                    }
                    None
                }
            };
            if let Some((payload, span)) = body {
                if let Some(prev) = body_at {
                    let d =
                        Diagnostic::new(Kind::DuplicateBody, self.file, span, "a call has at most one body")
                            .label("second body")
                            .also(self.file, prev, "first body")
                            .help("keep one `json`, `text` or `form` line");
                    self.push(d);
                }
                body_at = Some(span);
                call.body = payload;
            }
        }
        call.has_content_type = call.headers.iter().any(|(h, _)| h == http::header::CONTENT_TYPE);
        call
    }

    /// A URL's fixed text must start with `http://` or `https://`; a scheme or host built from
    /// request data is a warning (server-side request forgery).
    fn http_url(&mut self, url: &ast::Expr) {
        let (prefix, whole) = match &url.kind {
            ExprKind::Str(s) => {
                let mut prefix = String::new();
                let mut whole = true;
                for p in &s.parts {
                    match p {
                        StrPart::Lit(t) => prefix.push_str(t),
                        StrPart::Expr(_) => {
                            whole = false;
                            break;
                        }
                    }
                }
                (prefix, whole)
            }
            _ => (String::new(), false),
        };
        let lower = prefix.to_ascii_lowercase();
        let scheme_ok = lower.starts_with("http://") || lower.starts_with("https://");
        let written = !prefix.is_empty() && (whole || prefix.contains("://"));
        if written && !scheme_ok {
            self.err(Kind::InvalidEffect, url.span, "an `http` URL starts with http:// or https://")
                .set_label("not an http(s) URL")
                .set_help("write the whole URL, e.g. \"https://api.example/orders\"");
            return;
        }
        if whole && url_unusable(&prefix) {
            self.err(Kind::InvalidEffect, url.span, format!("`{prefix}` is not a valid URL"))
                .set_label("not a URL")
                .set_help("write the whole URL, e.g. \"https://api.example/orders\"");
            return;
        }
        let host_fixed = whole
            || prefix.split_once("://").is_some_and(|(_, rest)| {
                rest.contains(['/', '?', '#']) && !rest.starts_with(['/', '?', '#'])
            });
        if !host_fixed && self.request_data_in(url) {
            self.err(Kind::RequestUrl, url.span, "the scheme or host of this URL comes from request data")
                .set_label("a caller could make wf call any server, including internal ones")
                .set_help(Kind::RequestUrl.help());
        }
    }

    fn run_call(&mut self, r: &ast::RunCall) -> ir::RunCall {
        if let Some(name) = self.secret_in_str(&r.program) {
            self.err(
                Kind::SecretLeak,
                r.program.span,
                format!("the secret `{name}` would reach a program's arguments"),
            )
            .set_label(format!("computed from secret(\"{name}\")"))
            .set_help("pass a secret to a program with an `env` line");
        }
        match r.program.literal() {
            Some(p) if p.is_empty() || p.contains('\0') => {
                self.err(Kind::InvalidEffect, r.program.span, "`run` needs a program")
                    .set_label("no program")
                    .set_help("name the program, e.g. run \"scripts/deploy.sh\"");
            }
            Some(_) => {}
            None => {
                if self.str_has_request_data(&r.program) {
                    self.err(Kind::ProgramNotConstant, r.program.span, "the program comes from request data")
                        .set_label("a caller could choose what runs")
                        .set_help(Kind::ProgramNotConstant.help());
                } else {
                    self.err(Kind::ProgramNotConstant, r.program.span, "the program is not a constant")
                        .set_label("built at run time")
                        .set_help(Kind::ProgramNotConstant.help());
                }
            }
        }
        let program = self.template(&r.program);
        let args = r.args.as_ref().map(|a| {
            let x = self.shown(a, "a program's arguments");
            let (_, t) = self.typed(a);
            if !t.meets(Types::ARRAY) {
                self.err(
                    Kind::TypeMismatch,
                    a.span,
                    format!("`run` takes an array of arguments, not {}", t.describe_value()),
                )
                .set_label("not an array")
                .set_help("write each argument as an element, e.g. run \"deploy.sh\" [branch, sha]");
            }
            x
        });
        let mut call =
            ir::RunCall { program, args, env: Vec::new(), stdin: None, dir: None, timeout: ir::RUN_TIMEOUT };
        for line in &r.lines {
            match line {
                ast::RunLine::Env { name, value, .. } => {
                    let v = self.expr(value);
                    if let Some(n) = self.literal(name, "a variable name") {
                        if n.is_empty() || n.contains(['=', '\0']) {
                            self.err(
                                Kind::InvalidEffect,
                                name.span,
                                format!("`{n}` cannot name an environment variable"),
                            )
                            .set_label("not a variable name")
                            .set_help("names are letters, digits and `_`, e.g. \"DEPLOY_REF\"");
                        } else {
                            call.env.push((n, v));
                        }
                    }
                }
                ast::RunLine::Stdin(e, _) => call.stdin = Some(self.expr(e)),
                ast::RunLine::Dir(d, _) => call.dir = self.literal(d, "a directory"),
                ast::RunLine::Timeout(d, _) => call.timeout = self.effect_timeout(d),
            }
        }
        call
    }

    fn effect_timeout(&mut self, d: &ast::Duration) -> std::time::Duration {
        match d.millis.filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms)) {
            Some(ms) => std::time::Duration::from_millis(ms),
            None => {
                self.err(Kind::InvalidEffect, d.span, format!("a timeout of {} cannot be used", d.text))
                    .set_label("between 1ms and 1h")
                    .set_help("write a timeout such as `timeout 30s`");
                std::time::Duration::from_secs(1)
            }
        }
    }

    fn secret_in_str(&self, s: &ast::Str) -> Option<String> {
        s.parts.iter().find_map(|p| match p {
            StrPart::Expr(x) => self.secret_in(x),
            StrPart::Lit(_) => None,
        })
    }

    fn str_has_request_data(&self, s: &ast::Str) -> bool {
        s.parts.iter().any(|p| matches!(p, StrPart::Expr(x) if self.request_data_in(x)))
    }
}

/// Whether a whole written URL is one no request can be sent to (no host, spaces).
fn url_unusable(u: &str) -> bool {
    let Some((_, rest)) = u.split_once("://") else { return true };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    host.is_empty() || u.contains(|c: char| c.is_whitespace() || c.is_control())
}

impl Lower<'_> {
    /// A test's `mock` line (constants only, like the test's request).
    pub(super) fn mock(&mut self, m: &ast::Mock) -> Option<ir::MockCase> {
        match m {
            ast::Mock::Http { method, url, answer, .. } => {
                let method = http::Method::from_bytes(method.name.as_bytes()).unwrap_or(http::Method::GET);
                let url_text = self.literal(url, "a mocked URL")?;
                let lower = url_text.to_ascii_lowercase();
                if !lower.starts_with("http://") && !lower.starts_with("https://") {
                    self.err(Kind::InvalidMock, url.span, format!("`{url_text}` is not an http(s) URL"))
                        .set_label("not a URL")
                        .set_help("write the whole URL, or its start followed by `*`, e.g. \"https://api.example/*\"");
                    return None;
                }
                let answer = match answer {
                    ast::MockAnswer::Respond(r) => Ok(self.respond(r)),
                    ast::MockAnswer::Fail(e, _) => Err(self.expr(e)),
                };
                Some(ir::MockCase::Http { method, url: url_text, answer })
            }
            ast::Mock::Run { program, code, stdout, stderr, .. } => {
                let program = self.literal(program, "a mocked program")?;
                let part = |me: &mut Self, e: &Option<ast::Expr>, want: Types, what: &str, default| match e {
                    Some(e) => {
                        let (x, t) = me.typed(e);
                        if !t.meets(want) {
                            me.err(
                                Kind::InvalidMock,
                                e.span,
                                format!("`{what}` is {}, not {}", want.describe_value(), t.describe_value()),
                            )
                            .set_label("the wrong type");
                        }
                        x
                    }
                    None => ir::Expr::Const(default),
                };
                let code = part(self, code, Types::NUMBER, "code", serde_json::Value::from(0));
                let stdout = part(self, stdout, Types::STRING, "stdout", serde_json::Value::from(""));
                let stderr = part(self, stderr, Types::STRING, "stderr", serde_json::Value::from(""));
                Some(ir::MockCase::Run { program, code, stdout, stderr })
            }
            ast::Mock::Callback { call, .. } => {
                Some(ir::MockCase::Callback(call.as_ref().map(|(kind, e)| (*kind, self.expr(e)))))
            }
        }
    }
}
