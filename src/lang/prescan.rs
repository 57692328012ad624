//! A lexical pre-pass over a source file: collects comments (for `wf fmt`) and rejects bracket
//! nesting deeper than the parser's recursion may safely go.

use crate::lang::ast::{Comment, Span};

/// Deepest nesting of `(`, `[`, `{` and `${` that a file may use.
pub(crate) const MAX_DEPTH: usize = 32;

pub(crate) struct Scan {
    pub comments: Vec<Comment>,
    /// Where nesting first went past [`MAX_DEPTH`].
    pub too_deep: Option<Span>,
    /// The innermost `{` still open at the end of the file (when nesting stayed within bounds).
    pub unclosed: Option<Span>,
}

enum Frame {
    /// An open `(`, `[` or `{`, and where.
    Bracket(u8, usize),
    Interp,
}

pub(crate) fn scan(src: &str) -> Scan {
    let bytes = src.as_bytes();
    let mut comments = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut in_string = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' | b'\n' => in_string = false,
                b'$' if bytes.get(i + 1) == Some(&b'{') => {
                    stack.push(Frame::Interp);
                    in_string = false;
                    i += 1;
                    if stack.len() > MAX_DEPTH {
                        return Scan { comments, too_deep: Some(Span::new(i - 1, i + 1)), unclosed: None };
                    }
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'#' => {
                let end = src.get(i..).and_then(|t| t.find('\n')).map_or(src.len(), |n| i + n);
                let text = src.get(i + 1..end).unwrap_or("").trim_end_matches('\r').to_string();
                comments.push(Comment { text, span: Span::new(i, end) });
                i = end;
                continue;
            }
            b'"' => in_string = true,
            b'(' | b'[' | b'{' => {
                stack.push(Frame::Bracket(b, i));
                if stack.len() > MAX_DEPTH {
                    return Scan { comments, too_deep: Some(Span::new(i, i + 1)), unclosed: None };
                }
            }
            b')' | b']' => {
                if let Some(Frame::Bracket(..)) = stack.last() {
                    stack.pop();
                }
            }
            b'}' => match stack.pop() {
                Some(Frame::Interp) => in_string = true,
                Some(Frame::Bracket(..)) | None => {}
            },
            _ => {}
        }
        i += 1;
    }
    let unclosed = stack.iter().rev().find_map(|f| match f {
        Frame::Bracket(b'{', at) => Some(Span::new(*at, *at + 1)),
        _ => None,
    });
    Scan { comments, too_deep: None, unclosed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_outside_strings_only() {
        let s = scan("a # one\n\"# not ${x # y\n} #\" # two");
        let texts: Vec<_> = s.comments.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec![" one", " y", " two"]);
    }

    #[test]
    fn the_innermost_brace_left_open_is_found() {
        assert_eq!(scan("workflow w {\n  if x { log \"}\" }\n").unclosed, Some(Span::new(11, 12)));
        assert_eq!(scan("a { b { } } # {").unclosed, None, "a comment's brace does not count");
        assert_eq!(scan("a { b { c").unclosed, Some(Span::new(6, 7)));
    }

    #[test]
    fn deep_nesting_is_found() {
        let src = "(".repeat(200_000);
        let s = scan(&src);
        assert_eq!(s.too_deep, Some(Span::new(MAX_DEPTH, MAX_DEPTH + 1)));
        let ok = format!("{}x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(scan(&ok).too_deep.is_none());
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let src = format!("\"{}\"", "(".repeat(100));
        assert!(scan(&src).too_deep.is_none());
    }
}
