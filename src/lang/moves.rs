//! Last uses move: a variable read for the last time by a `let` at the top of a workflow's body
//! gives its value to the new variable instead of a copy. `let b = [a]` after which `a` is never
//! read again costs nothing however large `a` is, so a chain of such `let`s is linear in time and
//! memory rather than quadratic.
//!
//! Conservative on purpose: only `let`s at the top level of the body (run once per execution),
//! only reads that are the whole value, an array element or an object member (the places the
//! interpreter builds from), and only a variable read exactly once in that statement and never in
//! a later one (a later `if`, `for`, `respond`, `log` or effect counts as a read).

use super::ir::{walk_block_mut, Block, Expr, Slot, Stmt};
use std::collections::HashMap;

/// Marks the last uses in a workflow's body (`Expr::Slot` becomes `Expr::Take`).
pub(crate) fn mark(body: &mut Block) {
    let reads: Vec<HashMap<Slot, usize>> = body
        .iter_mut()
        .map(|s| {
            let mut count: HashMap<Slot, usize> = HashMap::new();
            walk_block_mut(std::slice::from_mut(s), &mut |e| {
                if let Expr::Slot(x) | Expr::Take(x) = e {
                    *count.entry(*x).or_default() += 1;
                }
            });
            count
        })
        .collect();
    let mut last: HashMap<Slot, usize> = HashMap::new();
    for (i, count) in reads.iter().enumerate() {
        for slot in count.keys() {
            last.insert(*slot, i);
        }
    }
    for (i, s) in body.iter_mut().enumerate() {
        if let Stmt::Let(_, e) = &mut s.stmt {
            let movable =
                |x: Slot| last.get(&x) == Some(&i) && reads.get(i).and_then(|c| c.get(&x)) == Some(&1);
            take(e, &movable);
        }
    }
}

fn take(e: &mut Expr, movable: &dyn Fn(Slot) -> bool) {
    match e {
        Expr::Slot(s) if movable(*s) => *e = Expr::Take(*s),
        Expr::Array(items) => items.iter_mut().for_each(|x| take(x, movable)),
        Expr::Object(entries) => entries.iter_mut().for_each(|(_, x)| take(x, movable)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::lang::ir::{Expr, Stmt};

    /// The body of the only workflow of `src`, lowered (moves marked).
    fn lets(src: &str) -> Vec<String> {
        let loaded = crate::lang::loader::load_str("m.wf", src);
        assert!(!loaded.has_errors(), "{src}");
        let wf = loaded.program.workflows.first().expect("a workflow");
        wf.body
            .iter()
            .filter_map(|s| match &s.stmt {
                Stmt::Let(_, e) => Some(format!("{e:?}")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_last_read_moves_and_any_later_read_keeps_the_copy() {
        let src = r#"workflow m {
  trigger webhook { path "/m" }
  let a = [1, 2]
  let b = [a]
  let c = { x: b }
  let d = [c, c]
  respond 200 json { d: d, c: c }
}"#;
        let got = lets(src);
        assert!(got[1].contains("Take(0)"), "`a` is last read by b: {got:?}");
        assert!(got[2].contains("Take(1)"), "`b` is last read by c: {got:?}");
        assert!(!got[3].contains("Take"), "`c` is read twice and later: {got:?}");
        let _ = Expr::Take(0);
    }

    #[test]
    fn reads_in_later_statements_and_nested_lets_do_not_move() {
        let src = r#"workflow m {
  trigger webhook { path "/m" }
  let a = [1]
  let b = [a]
  if len(b) > 0 {
    let c = [a]
    log "${c}"
  }
  for x in b {
    log "${x}"
  }
}"#;
        let got = lets(src);
        assert!(!got[1].contains("Take"), "`a` is read later, in the `if`: {got:?}");
        assert!(got.iter().all(|l| !l.contains("Take")), "{got:?}");
    }
}
