//! Statements and answers: `let`, `if`, `respond`, `log`, `fail`; unreachable code.

use super::Lower;
use crate::lang::ast::{self, Mode, Span};
use crate::lang::diagnostic::{Diagnostic, Kind};
use crate::lang::ir;
use crate::lang::types::Types;

impl Lower<'_> {
    /// A header value whose written text holds a line break or another control character can
    /// never be sent: that is a `check` error, not a failure of every execution.
    pub(super) fn header_value(&mut self, value: &ir::Expr, span: Span) {
        let bad = |t: &str| t.bytes().any(|b| (b < 32 && b != b'\t') || b == 127);
        let fixed = match value {
            ir::Expr::Const(serde_json::Value::String(s)) => bad(s),
            ir::Expr::Template(parts) => parts.iter().any(|p| matches!(p, ir::Part::Lit(t) if bad(t))),
            _ => false,
        };
        if fixed {
            self.err(Kind::InvalidHeaderValue, span, "this header value can never be sent")
                .set_label("holds a line break or another control character");
        }
    }

    // ---- statements -----------------------------------------------------------------------

    pub(super) fn block(&mut self, b: &ast::Block) -> ir::Block {
        self.scopes.push(Vec::new());
        self.scope_ends.push(b.span.end);
        let mut out = Vec::new();
        let mut ended = None;
        let mut warned = false;
        for s in &b.stmts {
            self.stmt_in_block(s, &mut out, &mut ended, &mut warned);
        }
        self.end_scope();
        out
    }

    pub(super) fn stmt_in_block(
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
        out.push(ir::Statement { span: s.span(), stmt: self.stmt(s) });
    }

    pub(super) fn stmt(&mut self, s: &ast::Stmt) -> ir::Stmt {
        match s {
            ast::Stmt::Let { name, value, .. } => {
                let secret = self.secret_in(value);
                let request_data = self.request_data_in(value);
                let (v, types) = self.typed(value);
                let origin = (name.span, format!("bound here to {}", types.describe()));
                let slot = self.declare(name, false, types, origin);
                if let Some(var) = self.vars.get_mut(slot as usize) {
                    var.secret = secret;
                    var.request_data = request_data;
                }
                ir::Stmt::Let(slot, v)
            }
            ast::Stmt::If(i) => {
                let branches = i.branches.iter().map(|(c, b)| (self.expr(c), self.block(b))).collect();
                let otherwise = i.otherwise.as_ref().map(|b| self.block(b)).unwrap_or_default();
                ir::Stmt::If(branches, otherwise)
            }
            ast::Stmt::For { key, value, iter, parallel, body, .. } => {
                let (iter_ir, t) = self.typed(iter);
                self.iterable(iter, t, "`for`");
                let end = body.span.end;
                let key_types = match (t.meets(Types::ARRAY), t.meets(Types::OBJECT)) {
                    (true, false) => Types::NUMBER,
                    (false, true) => Types::STRING,
                    _ => Types::NUMBER.or(Types::STRING),
                };
                let key_slot = key.as_ref().map(|k| self.loop_name(k, key_types, end));
                let value_slot = self.loop_name(value, Types::ANY, end);
                let at_once = parallel.as_ref().and_then(|n| self.at_once(n));
                let outer = self.in_parallel;
                self.in_parallel = outer || parallel.is_some();
                let body_ir = self.block(body);
                self.in_parallel = outer;
                self.end_scope();
                if key_slot.is_some() {
                    self.end_scope();
                }
                ir::Stmt::For {
                    key: key_slot,
                    value: value_slot,
                    iter: iter_ir,
                    parallel: at_once,
                    body: body_ir,
                }
            }
            ast::Stmt::Respond(r) => {
                if self.in_parallel {
                    self.err(Kind::RespondInParallel, r.span, "`respond` inside a `parallel` loop")
                        .set_label("iterations run at once: which one answers would be chance")
                        .set_help("collect what the iterations found, and `respond` after the loop");
                } else if self.mode == Mode::Async {
                    self.err(Kind::RespondInAsync, r.span, "`respond` in an async workflow")
                        .set_label("the caller has already been answered")
                        .set_help("set the immediate answer with `respond` inside `trigger webhook { }`, or use `mode sync`");
                }
                ir::Stmt::Respond(self.respond(r))
            }
            ast::Stmt::Log(e, _) => ir::Stmt::Log(self.shown(e, "`log`")),
            ast::Stmt::Fail(e, _) => ir::Stmt::Fail(self.shown(e, "`fail` (and the log)")),
            ast::Stmt::Sleep(time, span) => {
                if self.mode != Mode::Async {
                    self.err(Kind::WaitInSync, *span, "`sleep` in a sync workflow")
                        .set_label("the caller would wait on an open connection")
                        .set_help("make the workflow `mode async`: its caller is answered at once and the run waits without holding anything");
                }
                ir::Stmt::Sleep(match time {
                    ast::SleepFor::Fixed(d) => match d.millis.filter(|ms| *ms <= super::MAX_WAIT_MS) {
                        Some(ms) => ir::Expr::Const(serde_json::Value::from(ms as f64 / 1000.0)),
                        None => {
                            self.err(
                                Kind::WaitTooLong,
                                d.span,
                                format!("`sleep {}` is longer than 365 days", d.text),
                            )
                            .set_label("too long")
                            .set_help("wait at most `365d`");
                            ir::Expr::Const(serde_json::Value::from(0))
                        }
                    },
                    ast::SleepFor::Seconds(e) => self.expr(e),
                })
            }
            ast::Stmt::Effect { name, effect, .. } => {
                let call = self.effect(effect);
                let slot = name.as_ref().map(|n| self.effect_result(n, &call));
                ir::Stmt::Effect(slot, call)
            }
        }
    }

    pub(super) fn respond(&mut self, r: &ast::Respond) -> ir::Respond {
        let status = match u16::try_from(r.status) {
            Ok(s) if (200..=599).contains(&s) => s,
            Ok(s) if (100..=199).contains(&s) => {
                self.err(Kind::InvalidStatus, r.status_span, format!("status {s} cannot end an exchange"))
                    .set_label("an informational status")
                    .set_help("a 1xx status is never a final answer; use a status between 200 and 599");
                500
            }
            _ => {
                self.err(
                    Kind::InvalidStatus,
                    r.status_span,
                    format!("status {} is outside 200–599", r.status),
                )
                .set_label("not an HTTP status")
                .set_help("use a status between 200 and 599, e.g. 200, 400 or 422");
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
            ast::RespondBody::Text(e) => body = ir::Body::Text(self.shown(e, "the answer")),
            ast::RespondBody::Json(e) => body = ir::Body::Json(self.shown(e, "the answer")),
            ast::RespondBody::Block(lines, _) => {
                for line in lines {
                    match line {
                        ast::RespondLine::Header { name, value: value_ast, .. } => {
                            let value = self.shown(value_ast, "the answer");
                            self.header_value(&value, value_ast.span);
                            match self.header_name(name) {
                                Some(h) if forbidden(&h) => {
                                    self.err(
                                        Kind::ForbiddenHeader,
                                        name.span,
                                        format!("a workflow may not set `{h}`"),
                                    )
                                    .set_label("set by the server");
                                }
                                Some(h) => headers.push((h, value)),
                                None => {}
                            }
                        }
                        ast::RespondLine::Text(e, span) => {
                            let e = self.shown(e, "the answer");
                            body = set_body(self, ir::Body::Text(e), *span);
                        }
                        ast::RespondLine::Json(e, span) => {
                            let e = self.shown(e, "the answer");
                            body = set_body(self, ir::Body::Json(e), *span);
                        }
                    }
                }
            }
        }
        let has_content_type = headers.iter().any(|(h, _)| h == http::header::CONTENT_TYPE);
        ir::Respond { status, headers, body, has_content_type, span: r.span }
    }
}

/// Headers an answer's framing and wf own: a workflow setting them could split the answer
/// (`content-length`, `transfer-encoding`) or forge wf's (`x-wf-*`).
pub(super) fn forbidden(h: &http::HeaderName) -> bool {
    matches!(
        h.as_str(),
        "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "upgrade" | "te" | "trailer"
    ) || h.as_str().starts_with("x-wf-")
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
        ast::Stmt::Let { .. }
        | ast::Stmt::Log(..)
        | ast::Stmt::For { .. }
        | ast::Stmt::Effect { .. }
        | ast::Stmt::Sleep(..) => false,
    }
}

impl Lower<'_> {
    /// `parallel N`: how many iterations at once, from 1 to [`MAX_PARALLEL`].
    fn at_once(&mut self, n: &ast::Count) -> Option<u32> {
        let at_once = n.value.and_then(|v| u32::try_from(v).ok()).filter(|v| (1..=MAX_PARALLEL).contains(v));
        if at_once.is_none() {
            self.err(Kind::InvalidConcurrency, n.span, format!("`parallel` is between 1 and {MAX_PARALLEL}"))
                .set_label("not a number of iterations at once")
                .set_help("write how many iterations may run at once, e.g. `parallel 8`");
        }
        at_once
    }
}

/// Most iterations of a `parallel` loop at once.
pub(crate) const MAX_PARALLEL: u32 = 64;
