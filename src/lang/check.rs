//! The checker: the only resolver. Lowers the AST of every file to the IR, or reports every error.

use crate::lang::ast::{self, BinOp, ExprKind, Ident, Mode, Span, StrPart, UnOp};
use crate::lang::diagnostic::{Diagnostic, Kind, SourceFile};
use crate::lang::ir::{self, Builtin, Expr, Part, Slot, Type};
use crate::lang::path;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Checks and lowers every parsed file together (names and URL paths must be unique across them).
/// The program is usable only when no diagnostic is an error.
pub fn check(files: &[(Arc<SourceFile>, ast::File)]) -> (ir::Program, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut program = ir::Program::default();
    let mut names: HashMap<String, (Arc<SourceFile>, Span)> = HashMap::new();
    let mut paths: HashMap<String, (Arc<SourceFile>, Span, String)> = HashMap::new();
    for (file, parsed) in files {
        for item in &parsed.items {
            match item {
                ast::Item::Workflow(w) => {
                    let (wf, path_span) = Lower::new(file, &mut diags).workflow(w);
                    if let Some((f0, s0)) = names.get(&wf.name) {
                        diags.push(
                            Diagnostic::new(
                                Kind::DuplicateWorkflow,
                                file,
                                w.name.span,
                                format!("workflow `{}` is defined twice", wf.name),
                            )
                            .label("defined again here")
                            .also(f0, *s0, "first defined here")
                            .help("workflow names must be unique across all files; rename one"),
                        );
                    } else {
                        names.insert(wf.name.clone(), (file.clone(), w.name.span));
                    }
                    if let Some((f0, s0, other)) = paths.get(&wf.path) {
                        diags.push(
                            Diagnostic::new(
                                Kind::DuplicatePath,
                                file,
                                path_span,
                                format!("URL path `{}` is served twice", wf.path),
                            )
                            .label(format!("`{}` serves it again here", wf.name))
                            .also(f0, *s0, format!("`{other}` serves it here"))
                            .help("give one of the workflows another `path` or `key`"),
                        );
                    } else {
                        paths.insert(wf.path.clone(), (file.clone(), path_span, wf.name.clone()));
                    }
                    program.workflows.push(wf);
                }
                ast::Item::Test(t) => {
                    let tc = Lower::new(file, &mut diags).test(t);
                    program.tests.push(tc);
                }
            }
        }
    }
    diags.sort_by_key(|d| d.sort_key());
    (program, diags)
}

struct Var {
    name: String,
    span: Span,
    /// A header or query extraction without `as`: it only ever holds a string (or null).
    string_only: bool,
}

struct Lower<'a> {
    file: &'a Arc<SourceFile>,
    diags: &'a mut Vec<Diagnostic>,
    vars: Vec<Var>,
    scopes: Vec<Vec<Slot>>,
    /// Lowering a `default` or a test request: no variables may be used.
    const_only: Option<&'static str>,
    mode: Mode,
}

impl<'a> Lower<'a> {
    fn new(file: &'a Arc<SourceFile>, diags: &'a mut Vec<Diagnostic>) -> Self {
        Lower { file, diags, vars: Vec::new(), scopes: vec![Vec::new()], const_only: None, mode: Mode::Sync }
    }

    #[expect(clippy::indexing_slicing, reason = "indexes the element pushed on the line before")]
    fn err(&mut self, kind: Kind, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::new(kind, self.file, span, message));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn declare(&mut self, name: &Ident, string_only: bool) -> Slot {
        if let Some(prev) = self.vars.iter().find(|v| v.name == name.name) {
            let d = Diagnostic::new(
                Kind::DuplicateVariable,
                self.file,
                name.span,
                format!("`{}` is bound twice", name.name),
            )
            .label("bound again here")
            .also(self.file, prev.span, "first bound here")
            .help("a name is bound once per workflow; pick another name");
            self.push(d);
        }
        let slot = self.vars.len() as Slot;
        self.vars.push(Var { name: name.name.clone(), span: name.span, string_only });
        if let Some(scope) = self.scopes.last_mut() {
            scope.push(slot);
        }
        slot
    }

    fn lookup(&self, name: &str) -> Option<Slot> {
        self.scopes
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .copied()
            .find(|&s| self.vars.get(s as usize).is_some_and(|v| v.name == name))
    }

    fn resolve(&mut self, name: &Ident) -> Expr {
        if let Some(what) = self.const_only {
            let d = Diagnostic::new(
                Kind::VariableNotAllowed,
                self.file,
                name.span,
                format!("{what} cannot use variables"),
            )
            .label(format!("`{}` is not available here", name.name))
            .help("use a literal value or a function such as env(\"NAME\")");
            self.push(d);
            return Expr::Const(Value::Null);
        }
        if let Some(slot) = self.lookup(&name.name) {
            return Expr::Slot(slot);
        }
        if let Some(v) = self.vars.iter().find(|v| v.name == name.name) {
            let d = Diagnostic::new(
                Kind::OutOfScope,
                self.file,
                name.span,
                format!("`{}` is not in scope here", name.name),
            )
            .label("used outside the block that binds it")
            .also(self.file, v.span, "bound here")
            .help("a `let` is visible after it, in its own block and in the blocks nested in it");
            self.push(d);
            return Expr::Const(Value::Null);
        }
        let visible: Vec<String> = self
            .scopes
            .iter()
            .flatten()
            .filter_map(|&s| self.vars.get(s as usize))
            .map(|v| v.name.clone())
            .collect();
        let mut d = Diagnostic::new(
            Kind::UnknownVariable,
            self.file,
            name.span,
            format!("unknown variable `{}`", name.name),
        )
        .label("not bound by `extract` or `let`");
        d = match closest(&name.name, visible.iter().map(String::as_str)) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help("bind it in an `extract` block or with `let` before using it"),
        };
        self.push(d);
        Expr::Const(Value::Null)
    }

    // ---- workflows ------------------------------------------------------------------------

    /// Lowers one workflow; also returns the span that names its URL path (for duplicate reports).
    fn workflow(mut self, w: &ast::Workflow) -> (ir::Workflow, Span) {
        let triggers: Vec<&ast::Trigger> = w
            .items
            .iter()
            .filter_map(|i| if let ast::WfItem::Trigger(t) = i { Some(t) } else { None })
            .collect();
        match triggers.as_slice() {
            [] => {
                self.err(
                    Kind::MissingTrigger,
                    w.name.span,
                    format!("workflow `{}` has no trigger", w.name.name),
                )
                .set_label("this workflow cannot be called")
                .set_help("add `trigger webhook { }` as the first line of the workflow");
            }
            [first, rest @ ..] => {
                for t in rest {
                    let d = Diagnostic::new(
                        Kind::DuplicateTrigger,
                        self.file,
                        t.span,
                        "a workflow has exactly one trigger",
                    )
                    .label("second trigger")
                    .also(self.file, first.span, "first trigger")
                    .help("merge the settings into the first `trigger`");
                    self.push(d);
                }
                if !matches!(w.items.first(), Some(ast::WfItem::Trigger(_))) {
                    self.err(
                        Kind::TriggerNotFirst,
                        first.span,
                        "the trigger must come first in the workflow",
                    )
                    .set_label("move this to the top of the workflow")
                    .set_help("write `trigger webhook { ... }` before `extract` and the statements");
                }
            }
        }
        let trigger = triggers.first().copied();

        let mut path_setting: Option<(String, Span)> = None;
        let mut key_setting: Option<(String, Span)> = None;
        let mut auth = None;
        let mut immediate_ast = None;
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        if let Some(t) = trigger {
            for s in &t.settings {
                let kind = match s {
                    ast::Setting::Path(..) => "path",
                    ast::Setting::Key(..) => "key",
                    ast::Setting::Mode(..) => "mode",
                    ast::Setting::Auth { .. } => "auth",
                    ast::Setting::Respond(_) => "respond",
                };
                if let Some(prev) = seen.insert(kind, s.span()) {
                    let d = Diagnostic::new(
                        Kind::DuplicateSetting,
                        self.file,
                        s.span(),
                        format!("`{kind}` is set twice"),
                    )
                    .label("set again here")
                    .also(self.file, prev, "first set here")
                    .help("keep one of them");
                    self.push(d);
                }
                match s {
                    ast::Setting::Mode(m, _) => self.mode = *m,
                    ast::Setting::Path(p, span) => path_setting = self.url_path(p).map(|p| (p, *span)),
                    ast::Setting::Key(k, span) => key_setting = self.url_key(k).map(|k| (k, *span)),
                    _ => {}
                }
            }
            for s in &t.settings {
                match s {
                    ast::Setting::Auth { user, password, .. } => {
                        self.const_only = Some("auth settings");
                        let user = self.expr(user);
                        let password = self.expr(password);
                        self.const_only = None;
                        auth = Some(ir::Auth { user, password });
                    }
                    ast::Setting::Respond(r) => immediate_ast = Some(r),
                    _ => {}
                }
            }
        }
        let immediate = match immediate_ast {
            Some(r) if self.mode == Mode::Sync => {
                self.err(Kind::TriggerRespondInSync, r.span, "a trigger-level `respond` needs `mode async`")
                    .set_label("a sync workflow answers with the `respond` statement it reaches")
                    .set_help("add `mode async`, or move this `respond` into the workflow's statements");
                None
            }
            Some(r) => {
                self.const_only = Some("the immediate response of an async trigger");
                let out = self.respond(r);
                self.const_only = None;
                Some(out)
            }
            None => None,
        };

        // Extracted variables are visible in the whole workflow: declare them all first.
        let mut extracts = Vec::new();
        for item in &w.items {
            if let ast::WfItem::Extract(x) = item {
                for f in &x.fields {
                    extracts.push(self.field(f));
                }
            }
        }

        let mut body = Vec::new();
        let mut ended: Option<Span> = None;
        let mut warned = false;
        for item in &w.items {
            if let ast::WfItem::Stmt(s) = item {
                self.stmt_in_block(s, &mut body, &mut ended, &mut warned);
            }
        }

        let (path, path_span) = match (path_setting, key_setting) {
            (Some((p, span)), _) => (p, span),
            (None, Some((k, span))) => (format!("/api/webhook:trigger/{k}"), span),
            (None, None) => (format!("/api/webhook:trigger/{}", w.name.name), w.name.span),
        };
        let wf = ir::Workflow {
            name: w.name.name.clone(),
            file: self.file.clone(),
            span: w.name.span,
            path,
            mode: self.mode,
            auth,
            immediate,
            extracts,
            body,
            slots: self.vars.len(),
        };
        (wf, path_span)
    }

    fn literal(&mut self, s: &ast::Str, what: &str) -> Option<String> {
        let lit = s.literal();
        if lit.is_none() {
            self.err(Kind::NotLiteral, s.span, format!("{what} must be a plain string"))
                .set_label("`${...}` is not allowed here")
                .set_help("write the value literally; escape a dollar sign as `\\$`");
        }
        lit
    }

    fn url_path(&mut self, s: &ast::Str) -> Option<String> {
        let p = self.literal(s, "a path")?;
        if crate::lang::url::path_problem(&p).is_some() {
            self.err(Kind::InvalidPath, s.span, format!("`{p}` is not a valid URL path"))
                .set_label("not a URL path")
                .set_help("a path starts with `/` and has no spaces, `?` or `#`, e.g. \"/hooks/payment\"");
            return None;
        }
        Some(p)
    }

    fn url_key(&mut self, s: &ast::Str) -> Option<String> {
        let k = self.literal(s, "a key")?;
        if !crate::lang::url::is_key(&k) {
            self.err(Kind::InvalidKey, s.span, format!("`{k}` is not a valid key"))
                .set_label("not URL-safe")
                .set_help("a key uses letters, digits, `-`, `_`, `.` and `~`");
            return None;
        }
        Some(k)
    }

    fn field(&mut self, f: &ast::Field) -> ir::Extraction {
        let source = f.source;
        let ty = f.ty.as_ref().and_then(|t| {
            let ty = Type::from_name(&t.name);
            if ty.is_none() {
                let help = match closest(&t.name, Type::NAMES.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the types are {}", Type::NAMES.join(", ")),
                };
                self.err(Kind::UnknownType, t.span, format!("unknown type `{}`", t.name))
                    .set_label("not a type")
                    .set_help(help);
            }
            ty
        });
        let path_text = self.literal(&f.path, "an extraction path").unwrap_or_default();
        let getter = match source {
            ir::Source::Header => match http::HeaderName::from_bytes(path_text.as_bytes()) {
                Ok(h) => ir::Getter::Header(h),
                Err(_) => {
                    self.err(
                        Kind::InvalidHeaderName,
                        f.path.span,
                        format!("`{path_text}` is not a valid header name"),
                    )
                    .set_label("not a header name")
                    .set_help("header names are letters, digits and `-`, e.g. \"X-Request-Id\"");
                    ir::Getter::Body(Vec::new())
                }
            },
            _ => match path::parse(&path_text) {
                Ok(segs) if source == ir::Source::Query => ir::Getter::Query(segs),
                Ok(segs) => ir::Getter::Body(segs),
                Err(reason) => {
                    self.err(Kind::MalformedPath, f.path.span, format!("malformed path `{path_text}`"))
                        .set_label(reason)
                        .set_help("paths look like `data.status`, `items[0].id` or `[\"key with.dots\"]`");
                    ir::Getter::Body(Vec::new())
                }
            },
        };
        let default = f.default.as_ref().map(|d| {
            self.const_only = Some("a `default`");
            let e = self.expr(d);
            self.const_only = None;
            e
        });
        let default_is_string =
            matches!(&default, None | Some(Expr::Const(Value::String(_)) | Expr::Template(_)));
        let string_only = source != ir::Source::Body && ty.is_none() && default_is_string;
        let slot = self.declare(&f.name, string_only);
        ir::Extraction {
            slot,
            name: f.name.name.clone(),
            source,
            path_text,
            getter,
            ty,
            required: f.required.is_some(),
            default,
        }
    }

    // ---- statements -----------------------------------------------------------------------

    fn block(&mut self, b: &ast::Block) -> ir::Block {
        self.scopes.push(Vec::new());
        let mut out = Vec::new();
        let mut ended = None;
        let mut warned = false;
        for s in &b.stmts {
            self.stmt_in_block(s, &mut out, &mut ended, &mut warned);
        }
        self.scopes.pop();
        out
    }

    fn stmt_in_block(
        &mut self,
        s: &ast::Stmt,
        out: &mut ir::Block,
        ended: &mut Option<Span>,
        warned: &mut bool,
    ) {
        if let (Some(end), false) = (*ended, *warned) {
            *warned = true;
            let d = Diagnostic::new(Kind::Unreachable, self.file, s.span(), "unreachable statement")
                .label("this never runs")
                .also(self.file, end, "the execution ends here")
                .help("remove it, or move it before the statement that ends the execution");
            self.push(d);
        }
        if always_ends(s) && ended.is_none() {
            *ended = Some(s.span());
        }
        out.push(self.stmt(s));
    }

    fn stmt(&mut self, s: &ast::Stmt) -> ir::Stmt {
        match s {
            ast::Stmt::Let { name, value, .. } => {
                let v = self.expr(value);
                let slot = self.declare(name, false);
                ir::Stmt::Let(slot, v)
            }
            ast::Stmt::If(i) => {
                let branches = i.branches.iter().map(|(c, b)| (self.expr(c), self.block(b))).collect();
                let otherwise = i.otherwise.as_ref().map(|b| self.block(b)).unwrap_or_default();
                ir::Stmt::If(branches, otherwise)
            }
            ast::Stmt::Respond(r) => {
                if self.mode == Mode::Async {
                    self.err(Kind::RespondInAsync, r.span, "`respond` in an async workflow")
                        .set_label("the caller has already been answered")
                        .set_help("set the immediate answer with `respond` inside `trigger webhook { }`, or use `mode sync`");
                }
                ir::Stmt::Respond(self.respond(r))
            }
            ast::Stmt::Log(e, _) => ir::Stmt::Log(self.expr(e)),
            ast::Stmt::Fail(e, _) => ir::Stmt::Fail(self.expr(e)),
        }
    }

    fn respond(&mut self, r: &ast::Respond) -> ir::Respond {
        let status = match u16::try_from(r.status) {
            Ok(s) if (100..=599).contains(&s) => s,
            _ => {
                self.err(
                    Kind::InvalidStatus,
                    r.status_span,
                    format!("status {} is outside 100–599", r.status),
                )
                .set_label("not an HTTP status")
                .set_help("use a status between 100 and 599, e.g. 200, 400 or 422");
                500
            }
        };
        let mut headers = Vec::new();
        let mut body = ir::Body::Empty;
        let mut body_span: Option<Span> = None;
        let mut set_body = |me: &mut Self, b: ir::Body, span: Span| {
            if let Some(prev) = body_span {
                let d =
                    Diagnostic::new(Kind::DuplicateBody, me.file, span, "a response has at most one body")
                        .label("second body")
                        .also(me.file, prev, "first body")
                        .help("keep one `json` or `text` line");
                me.push(d);
            }
            body_span = Some(span);
            b
        };
        match &r.body {
            ast::RespondBody::Empty => {}
            ast::RespondBody::Text(e) => body = ir::Body::Text(self.expr(e)),
            ast::RespondBody::Json(e) => body = ir::Body::Json(self.expr(e)),
            ast::RespondBody::Block(lines, _) => {
                for line in lines {
                    match line {
                        ast::RespondLine::Header { name, value, .. } => {
                            let value = self.expr(value);
                            if let Some(n) = self.literal(name, "a header name") {
                                match http::HeaderName::from_bytes(n.as_bytes()) {
                                    Ok(h) => headers.push((h, value)),
                                    Err(_) => {
                                        self.err(
                                            Kind::InvalidHeaderName,
                                            name.span,
                                            format!("`{n}` is not a valid header name"),
                                        )
                                        .set_label("not a header name")
                                        .set_help(
                                            "header names are letters, digits and `-`, e.g. \"X-Request-Id\"",
                                        );
                                    }
                                }
                            }
                        }
                        ast::RespondLine::Text(e, span) => {
                            let e = self.expr(e);
                            body = set_body(self, ir::Body::Text(e), *span);
                        }
                        ast::RespondLine::Json(e, span) => {
                            let e = self.expr(e);
                            body = set_body(self, ir::Body::Json(e), *span);
                        }
                    }
                }
            }
        }
        let has_content_type = headers.iter().any(|(h, _)| h == http::header::CONTENT_TYPE);
        ir::Respond { status, headers, body, has_content_type }
    }

    // ---- expressions ----------------------------------------------------------------------

    fn expr(&mut self, e: &ast::Expr) -> Expr {
        match &e.kind {
            ExprKind::Null => Expr::Const(Value::Null),
            ExprKind::Bool(b) => Expr::Const(Value::Bool(*b)),
            ExprKind::Number(n) => Expr::Const(Value::Number(n.clone())),
            ExprKind::Str(s) => self.template(s),
            ExprKind::Paren(x) => self.expr(x),
            ExprKind::Array(items) => {
                let items: Vec<Expr> = items.iter().map(|x| self.expr(x)).collect();
                if items.iter().all(|x| matches!(x, Expr::Const(_))) {
                    let values =
                        items.into_iter().filter_map(|x| if let Expr::Const(v) = x { Some(v) } else { None });
                    return Expr::Const(Value::Array(values.collect()));
                }
                Expr::Array(items)
            }
            ExprKind::Object(entries) => {
                let mut out = Vec::new();
                for (k, v) in entries {
                    let key = match k {
                        ast::ObjKey::Name(i) => Some(i.name.clone()),
                        ast::ObjKey::Str(s) => self.literal(s, "an object key"),
                    };
                    let v = self.expr(v);
                    if let Some(key) = key {
                        out.push((key, v));
                    }
                }
                if out.iter().all(|(_, x)| matches!(x, Expr::Const(_))) {
                    let mut map = serde_json::Map::new();
                    for (k, v) in out {
                        if let Expr::Const(v) = v {
                            map.insert(k, v);
                        }
                    }
                    return Expr::Const(Value::Object(map));
                }
                Expr::Object(out)
            }
            ExprKind::Var(name) => self.resolve(name),
            ExprKind::Field(base, name) => Expr::Field(Box::new(self.expr(base)), name.name.clone()),
            ExprKind::Index(base, idx) => Expr::Index(Box::new(self.expr(base)), Box::new(self.expr(idx))),
            ExprKind::Unary(UnOp::Not, x) => Expr::Not(Box::new(self.expr(x))),
            ExprKind::Unary(UnOp::Neg, x) => match self.expr(x) {
                Expr::Const(Value::Number(n)) => match negate(&n) {
                    Some(v) => Expr::Const(v),
                    None => Expr::Neg(Box::new(Expr::Const(Value::Number(n)))),
                },
                other => Expr::Neg(Box::new(other)),
            },
            ExprKind::Binary(op, l, r) => {
                self.warn_string_number(*op, l, r);
                Expr::Binary(*op, Box::new(self.expr(l)), Box::new(self.expr(r)))
            }
            ExprKind::Call(name, args) => self.call(name, args, e.span),
        }
    }

    fn template(&mut self, s: &ast::Str) -> Expr {
        if let Some(lit) = s.literal() {
            return Expr::Const(Value::String(lit));
        }
        let parts = s
            .parts
            .iter()
            .map(|p| match p {
                StrPart::Lit(t) => Part::Lit(t.clone()),
                StrPart::Expr(e) => Part::Expr(self.expr(e)),
            })
            .collect();
        Expr::Template(parts)
    }

    fn call(&mut self, name: &Ident, args: &[ast::Expr], span: Span) -> Expr {
        let Some(&(_, arity)) = Builtin::ALL.iter().find(|(n, _)| *n == name.name) else {
            let mut d = Diagnostic::new(
                Kind::UnknownFunction,
                self.file,
                name.span,
                format!("unknown function `{}`", name.name),
            )
            .label("not a function of wf");
            d = match closest(&name.name, Builtin::ALL.iter().map(|(n, _)| *n)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!(
                    "the functions are {}",
                    Builtin::ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )),
            };
            self.push(d);
            return Expr::Const(Value::Null);
        };
        if args.len() != arity {
            let plural = if arity == 1 { "argument" } else { "arguments" };
            self.err(
                Kind::WrongArity,
                span,
                format!("`{}` takes {arity} {plural}, got {}", name.name, args.len()),
            )
            .set_label("wrong number of arguments")
            .set_help(format!("call it as {}", signature(&name.name)));
            return Expr::Const(Value::Null);
        }
        match (name.name.as_str(), args) {
            ("env", [arg]) => match &arg.kind {
                ExprKind::Str(s) if s.literal().is_some() => Expr::Env(s.literal().unwrap_or_default()),
                _ => {
                    self.err(Kind::NotLiteral, arg.span, "`env` takes a literal variable name")
                        .set_label("not a plain string")
                        .set_help("write env(\"NAME\")");
                    Expr::Const(Value::Null)
                }
            },
            ("matches", [subject, pattern_arg]) => {
                let subject = self.expr(subject);
                let pattern = match &pattern_arg.kind {
                    ExprKind::Str(s) => s.literal(),
                    _ => None,
                };
                let Some(pattern) = pattern else {
                    self.err(Kind::NotLiteral, pattern_arg.span, "`matches` takes a literal regex")
                        .set_label("not a plain string")
                        .set_help("write the pattern as a string literal, e.g. matches(s, \"^[a-z]+$\")");
                    return Expr::Const(Value::Null);
                };
                match regex::RegexBuilder::new(&pattern).size_limit(1 << 20).build() {
                    Ok(re) => Expr::Matches(Box::new(subject), re),
                    Err(e) => {
                        let reason = e.to_string();
                        let last = reason
                            .lines()
                            .rfind(|l| !l.trim().is_empty())
                            .unwrap_or("invalid")
                            .trim()
                            .to_string();
                        self.err(Kind::InvalidRegex, pattern_arg.span, "invalid regex")
                            .set_label(last)
                            .set_help(
                            "regexes use Rust `regex` syntax; escape a backslash as `\\\\` inside a string",
                        );
                        Expr::Const(Value::Null)
                    }
                }
            }
            (other, _) => {
                let args = args.iter().map(|a| self.expr(a)).collect();
                match Builtin::from_name(other) {
                    Some(b) => Expr::Call(b, args),
                    None => Expr::Const(Value::Null),
                }
            }
        }
    }

    fn warn_string_number(&mut self, op: BinOp, l: &ast::Expr, r: &ast::Expr) {
        if !matches!(op, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge) {
            return;
        }
        let (var, num) = if is_number_literal(r) {
            (l, r)
        } else if is_number_literal(l) {
            (r, l)
        } else {
            return;
        };
        let ExprKind::Var(name) = &var.kind else {
            return;
        };
        let Some(slot) = self.lookup(&name.name) else {
            return;
        };
        let Some(v) = self.vars.get(slot as usize).filter(|v| v.string_only) else {
            return;
        };
        let d = Diagnostic::new(
            Kind::StringNumberCompare,
            self.file,
            Span::new(l.span.start, r.span.end),
            format!(
                "`{}` only ever holds a string, so comparing it with a number is always false",
                name.name
            ),
        )
        .label(format!("string `{}` compared with a number", name.name))
        .also(self.file, v.span, "extracted without `as` here")
        .help(format!(
            "add `as number` to the extraction of `{}`, or compare with a string such as \"{}\"",
            name.name,
            crate::lang::path::display_number(num)
        ));
        self.push(d);
    }

    // ---- tests ----------------------------------------------------------------------------

    fn test(mut self, t: &ast::Test) -> ir::TestCase {
        let name = self.literal(&t.name, "a test name").unwrap_or_default();
        let method = match http::Method::from_bytes(t.request.method.name.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                self.err(Kind::InvalidMethod, t.request.method.span, "invalid HTTP method")
                    .set_label("not a method");
                http::Method::POST
            }
        };
        self.const_only = Some("a test request");
        let url = self.template(&t.request.url);
        if let Some(u) = t.request.url.literal() {
            if !u.starts_with('/') {
                self.err(Kind::InvalidPath, t.request.url.span, format!("`{u}` is not a request path"))
                    .set_label("not a path")
                    .set_help("write the path and query, e.g. \"/hooks/payment?order=42\"");
            }
        }
        let mut lines = Vec::new();
        for l in &t.request.lines {
            match l {
                ast::RequestLine::Auth { user, password, .. } => {
                    lines.push(ir::RequestLine::Auth(self.expr(user), self.expr(password)))
                }
                ast::RequestLine::Header { name, value, .. } => {
                    let value = self.expr(value);
                    if let Some(n) = self.literal(name, "a header name") {
                        match http::HeaderName::from_bytes(n.as_bytes()) {
                            Ok(h) => lines.push(ir::RequestLine::Header(h, value)),
                            Err(_) => {
                                self.err(
                                    Kind::InvalidHeaderName,
                                    name.span,
                                    format!("`{n}` is not a valid header name"),
                                )
                                .set_label("not a header name");
                            }
                        }
                    }
                }
                ast::RequestLine::Json(e, _) => lines.push(ir::RequestLine::Json(self.expr(e))),
                ast::RequestLine::Text(e, _) => lines.push(ir::RequestLine::Text(self.expr(e))),
                ast::RequestLine::ContentType(s, _) => {
                    if let Some(ct) = self.literal(s, "a content type") {
                        lines.push(ir::RequestLine::ContentType(ct));
                    }
                }
            }
        }
        self.const_only = None;
        for n in ir::TEST_NAMES {
            self.declare(&Ident { name: n.to_string(), span: t.span }, false);
        }
        let expects = t
            .expects
            .iter()
            .map(|e| ir::Expectation {
                expr: self.expr(e),
                span: e.span,
                source: self.file.text.get(e.span.start..e.span.end).unwrap_or("").to_string(),
            })
            .collect();
        ir::TestCase { name, file: self.file.clone(), span: t.span, method, url, lines, expects }
    }
}

/// Whether a statement always ends the execution: `respond`, `fail`, or an `if` with an `else`
/// whose every branch always ends.
fn always_ends(s: &ast::Stmt) -> bool {
    let block_ends = |b: &ast::Block| b.stmts.iter().any(always_ends);
    match s {
        ast::Stmt::Respond(_) | ast::Stmt::Fail(..) => true,
        ast::Stmt::If(i) => {
            i.otherwise.as_ref().is_some_and(block_ends) && i.branches.iter().all(|(_, b)| block_ends(b))
        }
        ast::Stmt::Let { .. } | ast::Stmt::Log(..) => false,
    }
}

fn negate(n: &serde_json::Number) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        return i.checked_neg().map(Value::from);
    }
    if n.is_u64() {
        return None;
    }
    n.as_f64().and_then(|f| serde_json::Number::from_f64(-f)).map(Value::Number)
}

fn is_number_literal(e: &ast::Expr) -> bool {
    match &e.kind {
        ExprKind::Number(_) => true,
        ExprKind::Unary(UnOp::Neg, x) | ExprKind::Paren(x) => is_number_literal(x),
        _ => false,
    }
}

fn signature(name: &str) -> &'static str {
    match name {
        "len" => "len(value)",
        "lower" => "lower(string)",
        "upper" => "upper(string)",
        "trim" => "trim(string)",
        "contains" => "contains(haystack, needle)",
        "starts_with" => "starts_with(string, prefix)",
        "ends_with" => "ends_with(string, suffix)",
        "matches" => "matches(string, \"regex\")",
        "number" => "number(value)",
        "string" => "string(value)",
        "exists" => "exists(value)",
        "now" => "now()",
        "uuid" => "uuid()",
        _ => "env(\"NAME\")",
    }
}

/// The closest name to `name` among `candidates`, if one is close enough to be a typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
