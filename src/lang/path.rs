//! Extraction paths (`data.items[0].sku`, `["key with.dots"]`, `items[0][sku]`): parsed once,
//! at check time, into segments.

use crate::lang::ir::Seg;

/// Splits a path into segments, or says what is wrong with it.
pub fn parse(path: &str) -> Result<Vec<Seg>, String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    let b = path.as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    let mut expect_key = true;
    while let Some(&c) = b.get(i) {
        match c {
            b'[' => {
                let (seg, next) = bracket(path, i)?;
                segs.push(seg);
                i = next;
                expect_key = false;
            }
            b'.' => {
                if expect_key {
                    return Err(format!("empty name before `.` at character {}", i + 1));
                }
                i += 1;
                match b.get(i) {
                    None => return Err("the path ends with `.`".into()),
                    Some(b'.' | b'[') => return Err(format!("empty name after `.` at character {}", i)),
                    Some(_) => {}
                }
                expect_key = true;
            }
            b']' => return Err(format!("unmatched `]` at character {}", i + 1)),
            _ => {
                if !expect_key {
                    return Err(format!("expected `.` or `[` at character {}", i + 1));
                }
                let tail = path.get(i..).unwrap_or("");
                let end = tail.find(['.', '[', ']']).map_or(path.len(), |n| i + n);
                segs.push(Seg::Key(path.get(i..end).unwrap_or("").to_string()));
                i = end;
                expect_key = false;
            }
        }
    }
    Ok(segs)
}

/// Parses `[0]`, `[name]`, `["key"]` or `['key']` starting at `start`; returns the segment and
/// the index after `]`.
fn bracket(path: &str, start: usize) -> Result<(Seg, usize), String> {
    let rest = path.get(start + 1..).unwrap_or("");
    if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let mut key = String::new();
        let mut chars = rest.get(1..).unwrap_or("").char_indices();
        while let Some((n, c)) = chars.next() {
            if c == '\\' {
                if let Some((_, e)) = chars.next() {
                    key.push(e);
                }
            } else if c == q {
                let after = start + 1 + 1 + n + 1;
                if path.as_bytes().get(after) != Some(&b']') {
                    return Err(format!("expected `]` after the quoted key at character {}", after + 1));
                }
                return Ok((Seg::Key(key), after + 1));
            } else {
                key.push(c);
            }
        }
        return Err(format!("unclosed quote in `[` at character {}", start + 1));
    }
    let Some(close) = rest.find(']') else {
        return Err(format!("unclosed `[` at character {}", start + 1));
    };
    let inner = rest.get(..close).unwrap_or("");
    if inner.is_empty() {
        return Err(format!("empty `[]` at character {}", start + 1));
    }
    if inner.contains('[') {
        return Err(format!("unclosed `[` at character {}", start + 1));
    }
    let seg = match inner.parse::<usize>() {
        Ok(n) if inner.bytes().all(|c| c.is_ascii_digit()) => Seg::Index(n, inner.to_string()),
        _ => Seg::Key(inner.to_string()),
    };
    Ok((seg, start + 1 + close + 1))
}

/// Writes segments back as a path (`a.b[0]["x.y"]`).
pub(crate) fn display(segs: &[Seg]) -> String {
    let mut out = String::new();
    for (i, s) in segs.iter().enumerate() {
        match s {
            Seg::Index(n, _) => out.push_str(&format!("[{n}]")),
            Seg::Key(k) => {
                let plain = !k.is_empty() && !k.contains(['.', '[', ']', '"', '\'', '\\']);
                if plain {
                    if i > 0 {
                        out.push('.');
                    }
                    out.push_str(k);
                } else {
                    out.push_str("[\"");
                    for c in k.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push_str("\"]");
                }
            }
        }
    }
    out
}

/// The literal text of a number expression (for hints that quote it as a string).
pub(crate) fn display_number(e: &crate::lang::ast::Expr) -> String {
    use crate::lang::ast::{ExprKind, UnOp};
    match &e.kind {
        ExprKind::Number(n) => n.to_string(),
        ExprKind::Unary(UnOp::Neg, x) => format!("-{}", display_number(x)),
        ExprKind::Paren(x) => display_number(x),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Seg {
        Seg::Key(s.into())
    }

    #[test]
    fn paths_split_into_segments() {
        assert_eq!(parse("a.b.c").unwrap(), vec![key("a"), key("b"), key("c")]);
        assert_eq!(parse("items[0].id").unwrap(), vec![key("items"), Seg::Index(0, "0".into()), key("id")]);
        assert_eq!(parse("[\"key with.dots\"]").unwrap(), vec![key("key with.dots")]);
        assert_eq!(
            parse("items[0][sku]").unwrap(),
            vec![key("items"), Seg::Index(0, "0".into()), key("sku")]
        );
        assert_eq!(parse("a['x]y'].z").unwrap(), vec![key("a"), key("x]y"), key("z")]);
    }

    #[test]
    fn malformed_paths_are_explained() {
        for bad in ["", ".a", "a.", "a..b", "a[", "a[]", "a]", "a[0]b", "a[\"x\"", "a[\"x\"b]"] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for p in ["a.b[0].c", "[\"x.y\"].z", "data.items[12].sku"] {
            assert_eq!(display(&parse(p).unwrap()), p);
        }
    }
}
