//! The checker: the only resolver. Lowers the AST of every file to the IR, or reports every error.

mod auth;
mod effect;
mod expr;
mod extract;
/// The longest a run waits (`sleep`, a callback's timeout): 365 days.
pub(crate) const MAX_WAIT_MS: u64 = 365 * 86_400_000;

mod stmt;
mod test;
mod trigger;

use crate::lang::ast::{self, Ident, Mode, Span};
use crate::lang::diagnostic::{Diagnostic, Kind, SourceFile};
use crate::lang::ir::{self, Expr, Slot};
use crate::lang::types::Types;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Checks and lowers every parsed file together (names and URL paths must be unique across them).
/// The program is usable only when no diagnostic is an error.
pub(crate) fn check(files: &[(Arc<SourceFile>, ast::File)]) -> (ir::Program, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut program = ir::Program::default();
    let mut bindings = Vec::new();
    let mut names: HashMap<String, (Arc<SourceFile>, Span)> = HashMap::new();
    let mut paths: HashMap<String, (Arc<SourceFile>, Span, String)> = HashMap::new();
    for (file, parsed) in files {
        for item in &parsed.items {
            match item {
                ast::Item::Workflow(w) => {
                    let (wf, path_span) = Lower::new(file, &mut diags, &mut bindings, w.span.end).workflow(w);
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
                    let tc = Lower::new(file, &mut diags, &mut bindings, t.span.end).test(t);
                    program.tests.push(tc);
                }
            }
        }
    }
    diags.sort_by_key(|d| d.sort_key());
    program.bindings = bindings;
    (program, diags)
}

struct Var {
    name: String,
    span: Span,
    /// A header or query extraction without `as`: it only ever holds a string (or null).
    string_only: bool,
    /// A `header` extraction (readable by `auth hmac`'s `signed`).
    header: bool,
    /// A `for` or comprehension name: visible in its block only, reusable by sibling loops.
    loop_var: bool,
    /// The secret its value is computed from, if any.
    secret: Option<String>,
    /// What it can hold.
    types: Types,
    /// Its value may come from the request or another service (everything but a `let` of
    /// constants): an `http` URL whose host is built from it is a forgery risk.
    request_data: bool,
    /// The fields of an effect's result (`r.status`), when it holds one.
    fields: Option<&'static [(&'static str, Types)]>,
    /// Where its type comes from, and how to say so ("declared `as number` here").
    origin: (Span, String),
}

struct Lower<'a> {
    file: &'a Arc<SourceFile>,
    diags: &'a mut Vec<Diagnostic>,
    vars: Vec<Var>,
    scopes: Vec<Vec<Slot>>,
    /// Where each scope of `scopes` ends (a byte offset), for the bindings tools see.
    scope_ends: Vec<usize>,
    /// Every slot bound to each name, in order: name lookups cost a hash, not a scan, so checking
    /// is linear in the number of bindings.
    by_name: HashMap<String, Vec<Slot>>,
    /// Whether each slot is in a scope still open.
    in_scope: Vec<bool>,
    bindings: &'a mut Vec<ir::Binding>,
    /// Lowering a `default` or a test request: no variables may be used.
    const_only: Option<&'static str>,
    mode: Mode,
    /// The callbacks made (`let cb = callback`): each slot, where, and whether a `wait` waits
    /// for it.
    callbacks: Vec<(Slot, Span, bool)>,
    /// Lowering the body of a `for ... parallel N`.
    in_parallel: bool,
}

impl<'a> Lower<'a> {
    pub(super) fn new(
        file: &'a Arc<SourceFile>,
        diags: &'a mut Vec<Diagnostic>,
        bindings: &'a mut Vec<ir::Binding>,
        end: usize,
    ) -> Self {
        Lower {
            file,
            diags,
            vars: Vec::new(),
            scopes: vec![Vec::new()],
            scope_ends: vec![end],
            by_name: HashMap::new(),
            in_scope: Vec::new(),
            bindings,
            const_only: None,
            mode: Mode::Sync,
            callbacks: Vec::new(),
            in_parallel: false,
        }
    }

    #[expect(clippy::indexing_slicing, reason = "indexes the element pushed on the line before")]
    pub(super) fn err(&mut self, kind: Kind, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::new(kind, self.file, span, message));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    pub(super) fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Binds `name` to a new slot holding `types`; `origin` says where those types come from.
    pub(super) fn declare(
        &mut self,
        name: &Ident,
        string_only: bool,
        types: Types,
        origin: (Span, String),
    ) -> Slot {
        let visible = self.lookup(&name.name).and_then(|s| self.vars.get(s as usize)).map(|v| v.span);
        let bound = self
            .by_name
            .get(&name.name)
            .into_iter()
            .flatten()
            .filter_map(|s| self.vars.get(*s as usize))
            .find(|v| !v.loop_var)
            .map(|v| v.span);
        if let Some(prev_span) = bound.or(visible) {
            let d = Diagnostic::new(
                Kind::DuplicateVariable,
                self.file,
                name.span,
                format!("`{}` is bound twice", name.name),
            )
            .label("bound again here")
            .also(self.file, prev_span, "first bound here")
            .help("a name is bound once per workflow; pick another name");
            self.push(d);
        }
        let slot = self.vars.len() as Slot;
        let end = self.scope_ends.last().copied().unwrap_or(name.span.end);
        self.bindings.push(ir::Binding {
            file: self.file.clone(),
            name: name.name.clone(),
            span: name.span,
            scope: Span::new(name.span.start, end.max(name.span.end)),
            types: types.describe(),
            origin: origin.1.clone(),
        });
        self.vars.push(Var {
            name: name.name.clone(),
            span: name.span,
            string_only,
            header: false,
            loop_var: false,
            secret: None,
            types,
            request_data: true,
            fields: None,
            origin,
        });
        if let Some(scope) = self.scopes.last_mut() {
            scope.push(slot);
        }
        self.by_name.entry(name.name.clone()).or_default().push(slot);
        self.in_scope.push(true);
        slot
    }

    /// The innermost binding of `name` visible here.
    pub(super) fn lookup(&self, name: &str) -> Option<Slot> {
        let slots = self.by_name.get(name)?;
        slots.iter().rev().copied().find(|s| self.in_scope.get(*s as usize).copied().unwrap_or(false))
    }

    /// Binds a loop name (`for`, comprehension) in a new scope ending at `end`: it may not shadow
    /// a visible name, but sibling loops may reuse it. Pop the scope with [`Lower::end_scope`].
    pub(super) fn loop_name(&mut self, name: &Ident, types: Types, end: usize) -> Slot {
        self.scopes.push(Vec::new());
        self.scope_ends.push(end);
        let slot = self.declare(
            name,
            false,
            types,
            (name.span, format!("bound by the loop to {}", types.describe())),
        );
        if let Some(v) = self.vars.get_mut(slot as usize) {
            v.loop_var = true;
        }
        slot
    }

    pub(super) fn end_scope(&mut self) {
        for slot in self.scopes.pop().unwrap_or_default() {
            if let Some(open) = self.in_scope.get_mut(slot as usize) {
                *open = false;
            }
        }
        self.scope_ends.pop();
    }

    /// The slot a name refers to, and what it holds; reports names that cannot be used here.
    pub(super) fn resolve(&mut self, name: &Ident) -> (Expr, Types) {
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
            return (Expr::Const(Value::Null), Types::ANY);
        }
        if let Some(slot) = self.lookup(&name.name) {
            let types = self.vars.get(slot as usize).map_or(Types::ANY, |v| v.types);
            return (Expr::Slot(slot), types);
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
            return (Expr::Const(Value::Null), Types::ANY);
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
        (Expr::Const(Value::Null), Types::ANY)
    }
}

/// The closest name to `name` among `candidates`, if one is close enough to be a typo.
pub(crate) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
