//! Writes text as a `.wf` string literal, escaped so that it parses back to the same text.

/// Appends the escaped form of `text` (without the quotes) to `out`.
pub(crate) fn escape_into(text: &str, out: &mut String) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
}

/// `text` as a whole string literal, quotes included.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    escape_into(text, &mut out);
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoted_text_parses_back() {
        for text in ["plain", "a \"q\" \\ b", "line\nbreak\ttab\r", "${not}", "$ alone", "\u{7}bell", "é"] {
            let src = format!("workflow w {{ trigger webhook {{ }} log {} }}", quote(text));
            let file = crate::lang::diagnostic::SourceFile::new("q.wf", src);
            let ast = crate::lang::parser::parse(&file).expect("parses");
            let crate::lang::ast::Item::Workflow(w) = &ast.items[0] else { panic!("workflow") };
            let crate::lang::ast::WfItem::Stmt(s) = &w.items[1] else { panic!("statement") };
            let crate::lang::ast::Stmt::Log(e, _) = &**s else { panic!("log") };
            let crate::lang::ast::ExprKind::Str(s) = &e.kind else { panic!("string") };
            assert_eq!(s.literal().as_deref(), Some(text));
        }
    }
}
