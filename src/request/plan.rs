//! What a workflow reads of a request, worked out once per load: the body paths (a trie the body
//! parser fills slots from) and the query string's root keys (only those parameters are parsed).

use crate::lang::ir::{Getter, Seg, Workflow};
use crate::request::body::Need;

/// How one extraction is read, in the order of `Workflow::extracts`.
#[derive(Debug)]
pub enum Read {
    /// A header, by name (the extraction's own `Getter::Header`).
    Header,
    /// A query path: the index of its root key in [`Plan::query_roots`], then the rest.
    Query {
        root: usize,
        rest: Vec<Seg>,
        /// No other extraction reads this root: its value can be moved, not copied.
        sole: bool,
    },
    /// The whole query string, parsed.
    QueryWhole,
    /// A body path: the body parser has already put the value in the slot.
    Body,
    /// `request "..."`.
    Request,
}

/// The request plan of one workflow.
#[derive(Debug, Default)]
pub struct Plan {
    /// The workflow reads the body (it has `body` extractions).
    pub needs_body: bool,
    /// Some `body` extraction has a path (so a body read as one string cannot serve it: `415`).
    pub body_paths: bool,
    /// Every body read (slot, path): how bodies other than JSON fill their slots.
    pub body_reads: Vec<(crate::lang::ir::Slot, Vec<Seg>)>,
    /// Some extraction reads the whole query string.
    pub query_whole: bool,
    /// Some extraction reads `request "raw_body"`.
    pub raw_body: bool,
    /// The caller's address is needed (`allow ip`, `request "ip"`, a Twilio URL behind a proxy).
    pub needs_ip: bool,
    /// The workflow loops (`for`, comprehensions): its executions may use the CPU for long, so
    /// they run on the blocking pool, never on the threads that answer other requests.
    pub heavy: bool,
    /// The workflow has effects (`http`, `run`): its executions get the server's steps.
    pub effects: bool,
    /// The workflow runs programs (`run`): served only with `wf serve --allow-run`.
    pub runs: bool,
    /// The body paths it reads: only these are built when the body is parsed.
    pub body_need: Need,
    /// The workflow reads the query string.
    pub needs_query: bool,
    /// The root keys of the query paths it reads: only those parameters are parsed.
    pub query_roots: Vec<String>,
    /// One entry per extraction.
    pub reads: Vec<Read>,
}

impl Plan {
    pub fn of(wf: &Workflow) -> Plan {
        let mut plan = Plan::default();
        for x in &wf.extracts {
            let read = match &x.getter {
                Getter::Header(_) => Read::Header,
                Getter::Body(segs) => {
                    plan.needs_body = true;
                    plan.body_paths |= !segs.is_empty();
                    plan.body_need.add(segs, x.slot);
                    plan.body_reads.push((x.slot, segs.clone()));
                    Read::Body
                }
                Getter::Request(field) => {
                    plan.raw_body |= *field == crate::lang::ir::RequestField::RawBody;
                    plan.needs_ip |= *field == crate::lang::ir::RequestField::Ip;
                    Read::Request
                }
                Getter::Query(segs) => {
                    plan.needs_query = true;
                    match segs.split_first() {
                        Some((Seg::Key(name) | Seg::Index(_, name), rest)) => {
                            let root = match plan.query_roots.iter().position(|r| r == name) {
                                Some(i) => i,
                                None => {
                                    plan.query_roots.push(name.clone());
                                    plan.query_roots.len() - 1
                                }
                            };
                            Read::Query { root, rest: rest.to_vec(), sole: false }
                        }
                        None => {
                            plan.query_whole = true;
                            Read::QueryWhole
                        }
                    }
                }
            };
            plan.reads.push(read);
        }
        plan.heavy = loops(&wf.body);
        crate::lang::ir::walk_stmts(&wf.body, &mut |s| {
            plan.effects |= matches!(s, crate::lang::ir::Stmt::Effect(..) | crate::lang::ir::Stmt::Sleep(..));
            plan.runs |= matches!(s, crate::lang::ir::Stmt::Effect(_, crate::lang::ir::Effect::Run(_)));
        });
        plan.needs_ip |= !wf.allow.is_empty() || matches!(&wf.auth, Some(a) if a.kind.name() == "twilio");
        let readers = |r: usize, reads: &[Read]| {
            reads.iter().filter(|x| matches!(x, Read::Query { root, .. } if *root == r)).count()
        };
        let counts: Vec<usize> = (0..plan.query_roots.len()).map(|r| readers(r, &plan.reads)).collect();
        for read in &mut plan.reads {
            if let Read::Query { root, rest, sole } = read {
                *sole = rest.is_empty() && counts.get(*root) == Some(&1);
            }
        }
        plan
    }
}

/// Whether a block holds a `for` or a comprehension.
fn loops(block: &crate::lang::ir::Block) -> bool {
    use crate::lang::ir::{Body, Expr, Part, Stmt};
    fn expr(e: &Expr) -> bool {
        match e {
            Expr::Comprehension { .. } => true,
            Expr::Const(_) | Expr::Slot(_) | Expr::Take(_) | Expr::Env(_) | Expr::Secret(_) => false,
            Expr::Template(parts) => parts.iter().any(|p| matches!(p, Part::Expr(x) if expr(x))),
            Expr::Array(items) | Expr::Call(_, items) => items.iter().any(expr),
            Expr::Object(entries) => entries.iter().any(|(_, x)| expr(x)),
            Expr::Field(x, _) | Expr::Not(x) | Expr::Neg(x) | Expr::Matches(x, _) => expr(x),
            Expr::Index(a, b) | Expr::Binary(_, a, b) => expr(a) || expr(b),
        }
    }
    block.iter().any(|s| match &s.stmt {
        Stmt::For { .. } => true,
        Stmt::Let(_, e) | Stmt::Log(e) | Stmt::Fail(e) | Stmt::Sleep(e) => expr(e),
        Stmt::If(branches, otherwise) => {
            branches.iter().any(|(c, b)| expr(c) || loops(b)) || loops(otherwise)
        }
        Stmt::Respond(r) => {
            r.headers.iter().any(|(_, e)| expr(e))
                || matches!(&r.body, Body::Text(e) | Body::Json(e) if expr(e))
        }
        Stmt::Effect(_, effect) => effect.exprs().into_iter().any(expr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_roots_are_shared_and_sole_readers_move() {
        let loaded = crate::lang::loader::load_str(
            "p.wf",
            r#"workflow p { trigger webhook { }
                 extract { a = query "x[0]"  b = query "x[1]"  c = query "y"  d = body "d.e"  h = header "H" } }"#,
        );
        let plan = Plan::of(&loaded.program.workflows[0]);
        assert_eq!(plan.query_roots, ["x", "y"]);
        assert!(plan.needs_body && plan.needs_query);
        assert!(matches!(plan.reads[0], Read::Query { root: 0, sole: false, .. }));
        assert!(matches!(plan.reads[2], Read::Query { root: 1, sole: true, .. }));
        assert!(matches!(plan.reads[3], Read::Body));
        assert!(matches!(plan.reads[4], Read::Header));
    }
}
