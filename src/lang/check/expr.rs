//! Expressions: names resolved to slots, calls to builtins, regexes compiled, constants folded,
//! and the types each expression can hold inferred, so that a use that can only fail is an error.

use super::{closest, Lower};
use crate::lang::ast::{self, BinOp, ExprKind, Ident, Span, StrPart, UnOp};
use crate::lang::builtins::{self, Form, FUNCTIONS};
use crate::lang::diagnostic::{Diagnostic, Kind};
use crate::lang::ir::{Expr, Part};
use crate::lang::types::Types;
use serde_json::Value;

const N: Types = Types::NUMBER;
const S: Types = Types::STRING;

impl Lower<'_> {
    pub(super) fn expr(&mut self, e: &ast::Expr) -> Expr {
        self.typed(e).0
    }

    /// Lowers an expression and infers the JSON types it can hold.
    pub(super) fn typed(&mut self, e: &ast::Expr) -> (Expr, Types) {
        match &e.kind {
            ExprKind::Null => (Expr::Const(Value::Null), Types::NULL),
            ExprKind::Bool(b) => (Expr::Const(Value::Bool(*b)), Types::BOOL),
            ExprKind::Number(n) => (Expr::Const(Value::Number(n.clone())), N),
            ExprKind::Str(s) => (self.template(s), S),
            ExprKind::Paren(x) => self.typed(x),
            ExprKind::Array(items) => {
                let items: Vec<Expr> = items.iter().map(|x| self.expr(x)).collect();
                if items.iter().all(|x| matches!(x, Expr::Const(_))) {
                    let values =
                        items.into_iter().filter_map(|x| if let Expr::Const(v) = x { Some(v) } else { None });
                    return (Expr::Const(Value::Array(values.collect())), Types::ARRAY);
                }
                (Expr::Array(items), Types::ARRAY)
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
                    return (Expr::Const(Value::Object(map)), Types::OBJECT);
                }
                (Expr::Object(out), Types::OBJECT)
            }
            ExprKind::Var(name) => self.resolve(name),
            ExprKind::Field(base, name) => {
                let types = self.field_type(base, name);
                (Expr::Field(Box::new(self.expr(base)), name.name.clone()), types)
            }
            ExprKind::Index(base, idx) => {
                (Expr::Index(Box::new(self.expr(base)), Box::new(self.expr(idx))), Types::ANY)
            }
            ExprKind::Unary(UnOp::Not, x) => (Expr::Not(Box::new(self.expr(x))), Types::BOOL),
            ExprKind::Unary(UnOp::Neg, x) => {
                let (inner, t) = self.typed(x);
                if !t.meets(N) {
                    let message = format!("`-` negates a number, not {}", t.describe_value());
                    self.mismatch(e.span, message, &[(x, t)]);
                }
                let lowered = match inner {
                    Expr::Const(Value::Number(n)) => match negate(&n) {
                        Some(v) => Expr::Const(v),
                        None => Expr::Neg(Box::new(Expr::Const(Value::Number(n)))),
                    },
                    other => Expr::Neg(Box::new(other)),
                };
                (lowered, N)
            }
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, e.span),
            ExprKind::Comprehension { elem, name, iter, cond } => {
                let (iter_ir, t) = self.typed(iter);
                self.iterable(iter, t, "a comprehension");
                let slot = self.loop_name(name, Types::ANY, e.span.end);
                let elem_ir = self.expr(elem);
                let cond_ir = cond.as_ref().map(|c| Box::new(self.expr(c)));
                self.end_scope();
                let comprehension = Expr::Comprehension {
                    slot,
                    iter: Box::new(iter_ir),
                    elem: Box::new(elem_ir),
                    cond: cond_ir,
                };
                (comprehension, Types::ARRAY)
            }
            ExprKind::Call(name, args) => self.call(name, args, e.span),
        }
    }

    pub(super) fn template(&mut self, s: &ast::Str) -> Expr {
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

    fn binary(&mut self, op: BinOp, l: &ast::Expr, r: &ast::Expr, span: Span) -> (Expr, Types) {
        self.warn_string_number(op, l, r);
        let (le, lt) = self.typed(l);
        let (re, rt) = self.typed(r);
        let pair = || format!("{} and {}", lt.describe_value(), rt.describe_value());
        let sym = op.as_str();
        let (types, problem) = match op {
            BinOp::Coalesce => (if lt == Types::NULL { rt } else { lt.without(Types::NULL).or(rt) }, None),
            BinOp::Or | BinOp::And => (lt.or(rt), None),
            BinOp::Eq | BinOp::Ne => (Types::BOOL, None),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ok = (lt.meets(N) && rt.meets(N)) || (lt.meets(S) && rt.meets(S));
                (
                    Types::BOOL,
                    (!ok).then(|| format!("`{sym}` compares two numbers or two strings, not {}", pair())),
                )
            }
            BinOp::In => {
                let ok =
                    rt.meets(Types::ARRAY.or(Types::NULL)) || (rt.meets(S.or(Types::OBJECT)) && lt.meets(S));
                let why = || {
                    format!(
                        "`in` looks for a value in an array, a key in an object or a text in a string, not {} in {}",
                        lt.describe_value(),
                        rt.describe_value()
                    )
                };
                (Types::BOOL, (!ok).then(why))
            }
            BinOp::Add => {
                let strings = lt.meets(S) && rt.meets(S);
                let numbers = lt.meets(N) && rt.meets(N);
                let types = Types::NONE.or(if strings { S } else { Types::NONE }).or(if numbers {
                    N
                } else {
                    Types::NONE
                });
                (
                    types,
                    types
                        .is_none()
                        .then(|| format!("`+` adds two numbers or joins two strings, not {}", pair())),
                )
            }
            BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                let at_fault = if lt.meets(N) { rt } else { lt };
                let ok = lt.meets(N) && rt.meets(N);
                (N, (!ok).then(|| format!("`{sym}` needs two numbers, not {}", at_fault.describe_value())))
            }
        };
        let types = match problem {
            Some(message) => {
                // Arithmetic: only the operands that are no number are at fault.
                let arithmetic = matches!(op, BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod);
                let operands: Vec<(&ast::Expr, Types)> =
                    [(l, lt), (r, rt)].into_iter().filter(|(_, t)| !arithmetic || !t.meets(N)).collect();
                self.mismatch(self.operator_span(l, r, span), message, &operands);
                Types::ANY
            }
            None => types,
        };
        (Expr::Binary(op, Box::new(le), Box::new(re)), types)
    }

    /// The operator between two operands (the text between them, without white space).
    fn operator_span(&self, l: &ast::Expr, r: &ast::Expr, whole: Span) -> Span {
        let between = self.file.text.get(l.span.end..r.span.start).unwrap_or("");
        let start = l.span.end + (between.len() - between.trim_start().len());
        let end = r.span.start - (between.len() - between.trim_end().len());
        if start < end {
            Span::new(start, end)
        } else {
            whole
        }
    }

    /// The secret `e` is computed from, if any: a `secret("NAME")` in it, or a name bound to a
    /// value computed from one. `sha256`, `hmac_sha256` and `secure_eq` give values that are not
    /// secret.
    pub(super) fn secret_in(&self, e: &ast::Expr) -> Option<String> {
        match &e.kind {
            ExprKind::Call(name, args) => match name.name.as_str() {
                "sha256" | "hmac_sha256" | "secure_eq" => None,
                "secret" => args.first().and_then(|a| match &a.kind {
                    ExprKind::Str(s) => s.literal(),
                    _ => None,
                }),
                _ => args.iter().find_map(|a| self.secret_in(a)),
            },
            ExprKind::Var(name) => {
                self.lookup(&name.name).and_then(|s| self.vars.get(s as usize)).and_then(|v| v.secret.clone())
            }
            ExprKind::Str(s) => s.parts.iter().find_map(|p| match p {
                StrPart::Expr(x) => self.secret_in(x),
                StrPart::Lit(_) => None,
            }),
            ExprKind::Array(items) => items.iter().find_map(|x| self.secret_in(x)),
            ExprKind::Object(entries) => entries.iter().find_map(|(_, x)| self.secret_in(x)),
            ExprKind::Field(x, _) | ExprKind::Unary(_, x) | ExprKind::Paren(x) => self.secret_in(x),
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
                self.secret_in(a).or_else(|| self.secret_in(b))
            }
            ExprKind::Comprehension { elem, iter, cond, .. } => self
                .secret_in(elem)
                .or_else(|| self.secret_in(iter))
                .or_else(|| cond.as_ref().and_then(|c| self.secret_in(c))),
            ExprKind::Null | ExprKind::Bool(_) | ExprKind::Number(_) => None,
        }
    }

    /// Whether `e` may hold data from the request or another service: it uses a name that is not
    /// bound to constants.
    pub(super) fn request_data_in(&self, e: &ast::Expr) -> bool {
        match &e.kind {
            ExprKind::Var(name) => self
                .lookup(&name.name)
                .and_then(|s| self.vars.get(s as usize))
                .is_some_and(|v| v.request_data),
            ExprKind::Call(_, args) | ExprKind::Array(args) => args.iter().any(|a| self.request_data_in(a)),
            ExprKind::Str(s) => {
                s.parts.iter().any(|p| matches!(p, StrPart::Expr(x) if self.request_data_in(x)))
            }
            ExprKind::Object(entries) => entries.iter().any(|(_, x)| self.request_data_in(x)),
            ExprKind::Field(x, _) | ExprKind::Unary(_, x) | ExprKind::Paren(x) => self.request_data_in(x),
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
                self.request_data_in(a) || self.request_data_in(b)
            }
            ExprKind::Comprehension { elem, iter, cond, .. } => {
                self.request_data_in(elem)
                    || self.request_data_in(iter)
                    || cond.as_ref().is_some_and(|c| self.request_data_in(c))
            }
            ExprKind::Null | ExprKind::Bool(_) | ExprKind::Number(_) => false,
        }
    }

    /// What `base.name` holds: the field's type when `base` is an effect's result (an unknown
    /// field there is an error), anything otherwise.
    fn field_type(&mut self, base: &ast::Expr, name: &ast::Ident) -> Types {
        let ExprKind::Var(var) = &base.kind else { return Types::ANY };
        let Some(v) = self.lookup(&var.name).and_then(|s| self.vars.get(s as usize)) else {
            return Types::ANY;
        };
        let Some(fields) = v.fields else { return Types::ANY };
        if let Some((_, t)) = fields.iter().find(|(f, _)| *f == name.name) {
            return *t;
        }
        let what = if fields.len() == crate::lang::ir::HTTP_RESULT.len() { "an `http`" } else { "a `run`" };
        let names: Vec<String> = fields.iter().map(|(f, _)| format!("`{f}`")).collect();
        let (var_name, var_span) = (var.name.clone(), v.span);
        let guess = super::closest(&name.name, fields.iter().map(|(f, _)| *f)).map(str::to_string);
        let d = Diagnostic::new(
            Kind::UnknownField,
            self.file,
            name.span,
            format!("{what} result has no field `{}`", name.name),
        )
        .label("not a field of the result")
        .also(self.file, var_span, format!("`{var_name}` is bound to {what} result here"))
        .help(match guess {
            Some(g) => format!("did you mean `{g}`?"),
            None => format!("its fields are {}", names.join(", ")),
        });
        self.push(d);
        Types::ANY
    }

    /// Lowers an expression that is written where people can read it (`log`, `fail`, an answer):
    /// a value computed from a secret may not flow there.
    pub(super) fn shown(&mut self, e: &ast::Expr, place: &str) -> Expr {
        if let Some(name) = self.secret_in(e) {
            self.err(Kind::SecretLeak, e.span, format!("the secret `{name}` would reach {place}"))
                .set_label(format!("computed from secret(\"{name}\")"));
        }
        self.expr(e)
    }

    /// What a loop goes over can only be an array, an object or null.
    pub(super) fn iterable(&mut self, iter: &ast::Expr, t: Types, what: &str) {
        if !t.meets(Types::ARRAY.or(Types::OBJECT).or(Types::NULL)) {
            let message = format!("{what} goes over an array or an object, not {}", t.describe_value());
            let d = Diagnostic::new(Kind::TypeMismatch, self.file, iter.span, message);
            let d = self.describe_operand(d, iter, t);
            let d = promote_first_label(d);
            self.push(d);
        }
    }

    /// Reports an operation that always fails: the whole expression, and what each operand is
    /// (with where a variable got its type).
    fn mismatch(&mut self, span: Span, message: String, operands: &[(&ast::Expr, Types)]) {
        let mut d = Diagnostic::new(Kind::TypeMismatch, self.file, span, message).label("this always fails");
        for (e, t) in operands {
            d = self.describe_operand(d, e, *t);
        }
        self.push(d);
    }

    /// Adds labels saying what `e` holds, and where a variable got that type.
    fn describe_operand(&self, mut d: Diagnostic, e: &ast::Expr, t: Types) -> Diagnostic {
        let inner = strip_parens(e);
        if let ExprKind::Var(name) = &inner.kind {
            if let Some(v) = self.lookup(&name.name).and_then(|s| self.vars.get(s as usize)) {
                d = d.also(self.file, inner.span, format!("`{}` is {} here", name.name, t.describe_value()));
                let (span, text) = &v.origin;
                return d.also(self.file, *span, text.clone());
            }
        }
        let shown = self.file.text.get(inner.span.start..inner.span.end).unwrap_or("");
        let text = if shown.chars().count() <= 30 && !shown.contains('\n') {
            format!("`{shown}` is {}", t.describe_value())
        } else {
            format!("this is {}", t.describe_value())
        };
        d.also(self.file, inner.span, text)
    }

    fn call(&mut self, name: &Ident, args: &[ast::Expr], span: Span) -> (Expr, Types) {
        let Some(f) = builtins::find(&name.name) else {
            let mut d = Diagnostic::new(
                Kind::UnknownFunction,
                self.file,
                name.span,
                format!("unknown function `{}`", name.name),
            )
            .label("not a function of wf");
            d = match closest(&name.name, FUNCTIONS.iter().map(|f| f.name)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!(
                    "the functions are {}",
                    FUNCTIONS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                )),
            };
            self.push(d);
            return (Expr::Const(Value::Null), Types::ANY);
        };
        let arity = f.params.len();
        let fewest = arity - f.optional.min(arity);
        if args.len() > arity || args.len() < fewest {
            let plural = if arity == 1 { "argument" } else { "arguments" };
            let arity = if fewest < arity { format!("{fewest} or {arity}") } else { arity.to_string() };
            self.err(
                Kind::WrongArity,
                span,
                format!("`{}` takes {arity} {plural}, got {}", f.name, args.len()),
            )
            .set_label("wrong number of arguments")
            .set_help(format!("call it as {}", f.signature));
            return (Expr::Const(Value::Null), f.returns);
        }
        match (f.form, args) {
            (Form::Secret, [arg]) => match &arg.kind {
                ExprKind::Str(s) if s.literal().is_some() => {
                    (Expr::Secret(s.literal().unwrap_or_default()), S)
                }
                _ => {
                    self.err(Kind::NotLiteral, arg.span, "`secret` takes a literal name")
                        .set_label("not a plain string")
                        .set_help("write secret(\"NAME\")");
                    (Expr::Const(Value::Null), S)
                }
            },
            (Form::Env, [arg]) => match &arg.kind {
                ExprKind::Str(s) if s.literal().is_some() => (Expr::Env(s.literal().unwrap_or_default()), S),
                _ => {
                    self.err(Kind::NotLiteral, arg.span, "`env` takes a literal variable name")
                        .set_label("not a plain string")
                        .set_help("write env(\"NAME\")");
                    (Expr::Const(Value::Null), S)
                }
            },
            (Form::Matches, [subject, pattern_arg]) => {
                let (subject_ir, subject_types) = self.typed(subject);
                self.check_argument(f, 0, subject, subject_types);
                let pattern = match &pattern_arg.kind {
                    ExprKind::Str(s) => s.literal(),
                    _ => None,
                };
                let Some(pattern) = pattern else {
                    self.err(Kind::NotLiteral, pattern_arg.span, "`matches` takes a literal regex")
                        .set_label("not a plain string")
                        .set_help("write the pattern as a string literal, e.g. matches(s, \"^[a-z]+$\")");
                    return (Expr::Const(Value::Null), Types::BOOL);
                };
                match regex::RegexBuilder::new(&pattern).size_limit(1 << 20).build() {
                    Ok(re) => (Expr::Matches(Box::new(subject_ir), re), Types::BOOL),
                    Err(e) => {
                        let reason = e.to_string();
                        let last = reason
                            .lines()
                            .rfind(|l| !l.trim().is_empty())
                            .unwrap_or("invalid")
                            .trim()
                            .to_string();
                        self.err(Kind::InvalidRegex, pattern_arg.span, "invalid regex").set_label(last);
                        (Expr::Const(Value::Null), Types::BOOL)
                    }
                }
            }
            (Form::Call(b), _) => {
                let mut lowered = Vec::with_capacity(args.len());
                for (i, a) in args.iter().enumerate() {
                    let (x, t) = self.typed(a);
                    self.check_argument(f, i, a, t);
                    lowered.push(x);
                }
                (Expr::Call(b, lowered), f.returns)
            }
            _ => (Expr::Const(Value::Null), f.returns),
        }
    }

    /// Argument `i` of a call to `f` can hold only types `f` refuses: the call always fails.
    fn check_argument(&mut self, f: &builtins::Function, i: usize, arg: &ast::Expr, t: Types) {
        let Some(&wanted) = f.params.get(i) else { return };
        if t.meets(wanted) {
            return;
        }
        let message = format!("`{}` needs {}, not {}", f.name, wanted.describe_value(), t.describe_value());
        let d = Diagnostic::new(Kind::TypeMismatch, self.file, arg.span, message).help(format!(
            "`{}`: {}; convert the value first, e.g. with string(x) or number(x)",
            f.signature, f.doc
        ));
        let d = self.describe_operand(d, arg, t);
        // The argument itself is the primary span: its first secondary label becomes the primary one.
        let d = promote_first_label(d);
        self.push(d);
    }

    fn warn_string_number(&mut self, op: BinOp, l: &ast::Expr, r: &ast::Expr) {
        if !matches!(op, BinOp::Eq | BinOp::Ne) {
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
}

/// Makes the first secondary label the primary one (its span and text).
fn promote_first_label(mut d: Diagnostic) -> Diagnostic {
    if !d.secondary.is_empty() {
        let first = d.secondary.remove(0);
        d.primary = first;
    }
    d
}

fn strip_parens(e: &ast::Expr) -> &ast::Expr {
    match &e.kind {
        ExprKind::Paren(x) => strip_parens(x),
        _ => e,
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
