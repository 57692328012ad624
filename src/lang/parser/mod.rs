//! Parses a `.wf` file with the pest grammar (`grammar/wf.pest`) into the span-carrying AST.

use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, Kind, SourceFile};
use crate::lang::prescan;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser as _;
use std::sync::Arc;

mod errors;
mod expr;
mod extract;
mod stmt;
mod test;
mod trigger;

use errors::*;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/wf.pest"]
struct WfParser;

/// Deepest expression tree the parser builds (operators, calls, access and brackets together).
pub const MAX_EXPR_DEPTH: usize = 128;

/// Most statements a file's syntax errors may blank before `check` stops looking for more.
const RECOVERIES: usize = 20;

/// Parses one file as `check` does, so that one syntax error hides nothing else: after an error,
/// the line it is on is blanked (its text replaced by spaces, so every position stays) and the
/// file parsed again, until it parses or an error's line cannot be taken out on its own (it opens
/// or closes a block). Gives the syntax errors, the syntax tree of what is left when it parses
/// (for the checker to find the other errors in it), and the names the blanked lines bound (a
/// use of one is not an error of its own).
pub fn parse_recovering(file: &Arc<SourceFile>) -> (Option<File>, Vec<Diagnostic>, Vec<String>) {
    let mut diags = match parse(file) {
        Ok(ast) => return (Some(ast), Vec::new(), Vec::new()),
        Err(ds) => ds,
    };
    let mut text = file.text.clone();
    let mut bound = Vec::new();
    for _ in 0..RECOVERIES {
        let Some(at) = diags.last().map(|d| d.primary.span.start) else { break };
        let Some(line) = blankable_line(&text, at) else { break };
        bound.extend(text.get(line.clone()).map(binds).unwrap_or_default());
        let blanked: String =
            text.get(line.clone()).unwrap_or("").chars().map(|c| if c == '\n' { c } else { ' ' }).collect();
        text.replace_range(line, &blanked);
        let again = SourceFile::new(file.name.clone(), text.clone());
        match parse(&again) {
            Ok(ast) => return (Some(ast), diags, bound),
            Err(more) => {
                let new: Vec<Diagnostic> = more
                    .into_iter()
                    .filter(|d| d.primary.span.start > at)
                    .map(|mut d| {
                        // Shown against the file as written, not the blanked one.
                        d.primary.file = file.clone();
                        d.secondary.iter_mut().for_each(|l| l.file = file.clone());
                        d
                    })
                    .collect();
                if new.is_empty() {
                    break;
                }
                diags.extend(new);
            }
        }
    }
    (None, diags, bound)
}

/// The names a line binds: `let NAME = ...`, `NAME = ...` in an `extract` block (several on one
/// line: `extract { a = body "a"  b = query "b" }`).
fn binds(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if bytes.get(i).is_some_and(|b| *b == b'"') {
            // Skip a string.
            i += 1;
            while i < bytes.len() && bytes.get(i) != Some(&b'"') {
                i += if bytes.get(i) == Some(&b'\\') { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if bytes.get(i).copied().is_some_and(word) && (i == 0 || !bytes.get(i - 1).copied().is_some_and(word))
        {
            let start = i;
            while bytes.get(i).copied().is_some_and(word) {
                i += 1;
            }
            let mut j = i;
            while bytes.get(j) == Some(&b' ') {
                j += 1;
            }
            if bytes.get(j) == Some(&b'=') && bytes.get(j + 1) != Some(&b'=') {
                if let Some(name) = line.get(start..i) {
                    names.push(name.to_string());
                }
            }
            continue;
        }
        i += 1;
    }
    names
}

/// The byte range of the line holding `at`, when it can be taken out on its own: not empty, not
/// the end of the file, its brackets balanced (outside strings and comments).
fn blankable_line(text: &str, at: usize) -> Option<std::ops::Range<usize>> {
    if at >= text.len() {
        return None;
    }
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let end = text.get(at..)?.find('\n').map_or(text.len(), |i| at + i);
    let line = text.get(start..end)?;
    if line.trim().is_empty() {
        return None;
    }
    let scanned = prescan::scan(line);
    let code: String = {
        // The line without its comment and strings, for counting brackets.
        let mut out = String::new();
        let mut in_string = false;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' if in_string => {
                    chars.next();
                }
                '"' => in_string = !in_string,
                '#' if !in_string => break,
                c if !in_string => out.push(c),
                _ => {}
            }
        }
        out
    };
    let balanced = ['(', '[', '{']
        .iter()
        .zip([')', ']', '}'])
        .all(|(o, c)| code.matches(*o).count() == code.matches(c).count());
    (balanced && scanned.too_deep.is_none()).then_some(start..end)
}

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
                        items.push(WfItem::Stmt(Box::new(s)));
                    }
                }
            }
        }
        let name = name.unwrap_or(Ident { name: String::new(), span });
        Workflow { name, items, span }
    }

    fn block(&mut self, p: Pair<Rule>) -> Block {
        let span = self.span_of(&p);
        let stmts = p.into_inner().filter_map(|c| self.stmt(c)).collect();
        Block { stmts, span }
    }
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
        let WfItem::Stmt(s) = &w.items[2] else { panic!() };
        let Stmt::Let { value, .. } = &**s else { panic!() };
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
    fn one_syntax_error_hides_no_other_error() {
        let src =
            "workflow w {\n  trigger webhook {}\n  triger x\n  let a = 1\n  respond \"200\"\n  log a\n}";
        let (ast, errors, bound) = parse_recovering(&SourceFile::new("t.wf", src));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(ast.is_some(), "the rest parses");
        assert!(bound.is_empty());
        // A line that opens a block is not taken out on its own.
        let (ast, errors, _) = parse_recovering(&SourceFile::new("t.wf", "workflow w {\n  if x == {\n}\n"));
        assert!(ast.is_none() && errors.len() == 1, "{errors:?}");
        assert_eq!(binds("  extract { a = body \"x=y\"  b = query \"q\" }"), ["a", "b"]);
        assert_eq!(binds("  let total = a == b"), ["total"]);
        assert!(binds("  if a == b { log \"x\" }").is_empty());
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
