//! `wf infer`: an `extract` block for every leaf of a sample JSON body, query string and header
//! list — the "parse" button of NocoBase's editor, for the command line.

use crate::lang::ir::Seg;
use serde_json::Value;

pub(crate) struct Leaf {
    pub source: &'static str,
    pub path: Vec<Seg>,
    pub ty: Option<&'static str>,
}

/// How deep `wf infer` looks into objects: `--depth` (objects deeper are one `as object` leaf).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Depth(pub usize);

impl Default for Depth {
    fn default() -> Self {
        Depth(usize::MAX)
    }
}

/// Every leaf of a JSON value, below `at` (the path of `v` itself: `--path`). An array is one
/// leaf (`as array`: a workflow goes over it with `for`), so is an object `depth` levels down;
/// empty arrays and objects count as leaves.
pub(crate) fn leaves(
    source: &'static str,
    v: &Value,
    at: &[Seg],
    depth: Depth,
    from_query: bool,
    out: &mut Vec<Leaf>,
) {
    walk(source, v, &mut at.to_vec(), at.len(), depth, from_query, out);
}

fn walk(
    source: &'static str,
    v: &Value,
    path: &mut Vec<Seg>,
    root: usize,
    depth: Depth,
    from_query: bool,
    out: &mut Vec<Leaf>,
) {
    match v {
        Value::Object(m) if !m.is_empty() && path.len() - root < depth.0 => {
            for (k, x) in m {
                path.push(Seg::Key(k.clone()));
                walk(source, x, path, root, depth, from_query, out);
                path.pop();
            }
        }
        _ if path.is_empty() => {}
        _ => {
            let ty = match v {
                Value::Number(n) if n.is_i64() || n.is_u64() => Some("integer"),
                Value::Number(_) => Some("number"),
                Value::Bool(_) => Some("boolean"),
                Value::Array(_) => Some("array"),
                Value::Object(_) => Some("object"),
                Value::String(s) if from_query && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                    Some("integer")
                }
                Value::String(s)
                    if from_query && crate::request::value::parse_numeric_string(s).is_some() =>
                {
                    Some("number")
                }
                Value::String(s) if from_query && (s == "true" || s == "false") => Some("boolean"),
                _ => None,
            };
            out.push(Leaf { source, path: path.clone(), ty });
        }
    }
}

/// A key as a name: `createdAt` → `created_at`, `X-GitHub-Event` → `x_github_event` (a key with
/// separators is not split at its capitals), `+1` → `plus_one`, `-1` → `minus_one`.
fn snake(s: &str) -> String {
    match s {
        "+1" => return "plus_one".into(),
        "-1" => return "minus_one".into(),
        _ => {}
    }
    let camel = !s.contains(['-', '_', ' ', '.']);
    let mut out = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if camel && c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    out.trim_matches('_').to_string()
}

fn seg_name(s: &Seg) -> String {
    match s {
        Seg::Key(k) => snake(k),
        Seg::Index(i, _) => i.to_string(),
    }
}

fn valid(name: String, prefix: &str) -> String {
    let mut n = if prefix.is_empty() { name } else { format!("{}_{name}", snake(prefix)) };
    if n.is_empty() {
        n = "value".into();
    }
    if n.starts_with(|c: char| c.is_ascii_digit()) {
        n = format!("v_{n}");
    }
    if crate::lang::keywords::is_reserved(&n) {
        n.push('_');
    }
    n
}

/// Names for leaves: the last path segment, lengthened from the end until unique.
fn names(paths: &[Vec<String>], prefix: &str) -> Vec<String> {
    // Start from the last key: an index alone (`0`) says nothing.
    let mut take: Vec<usize> = paths
        .iter()
        .map(|p| {
            (1 + p.iter().rev().take_while(|s| s.bytes().all(|b| b.is_ascii_digit())).count()).min(p.len())
        })
        .collect();
    let name_of = |segs: &[String], k: usize| -> String {
        let start = segs.len().saturating_sub(k);
        let parts: Vec<&str> =
            segs.iter().skip(start).map(String::as_str).filter(|s| !s.is_empty()).collect();
        valid(parts.join("_"), prefix)
    };
    loop {
        let current: Vec<String> = paths.iter().zip(&take).map(|(p, &k)| name_of(p, k)).collect();
        // How many leaves have each name (a hash map: linear in the number of keys per round).
        let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for n in &current {
            *counts.entry(n.as_str()).or_insert(0) += 1;
        }
        let mut changed = false;
        for ((name, k), segs) in current.iter().zip(take.iter_mut()).zip(paths) {
            // A keyword (`default`, made `default_`) is lengthened like a clash: `branch_default`.
            let clash = counts.get(name.as_str()).is_some_and(|c| *c > 1) || name.ends_with('_');
            if clash && *k < segs.len() {
                *k += 1;
                changed = true;
            }
        }
        if !changed {
            let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
            return current
                .into_iter()
                .map(|n| {
                    let mut candidate = n.clone();
                    let mut k = 2;
                    while seen.contains(&candidate) {
                        candidate = format!("{n}_{k}");
                        k += 1;
                    }
                    seen.insert(candidate.clone());
                    candidate
                })
                .collect();
        }
    }
}

/// The `extract` block for headers, a query string and a JSON body.
pub(crate) fn extract_block(
    headers: &[String],
    query: Option<&str>,
    body: Option<&Value>,
    prefix: &str,
    at: &[Seg],
    depth: Depth,
) -> String {
    let mut leaves_found = Vec::new();
    let mut paths: Vec<Vec<String>> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for h in headers.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
        // `X-GitHub-Event` is `github_event`: the `x_` says nothing.
        let name = snake(h);
        paths.push(vec![name.strip_prefix("x_").filter(|n| !n.is_empty()).unwrap_or(&name).to_string()]);
        texts.push(h.to_string());
        leaves_found.push(None);
    }
    if let Some(q) = query {
        let qs = q.split_once('?').map_or(q, |(_, rest)| rest);
        let qs = qs.split('#').next().unwrap_or("");
        let mut found = Vec::new();
        leaves("query", &crate::request::qs::parse(qs), &[], depth, true, &mut found);
        for l in found {
            paths.push(l.path.iter().map(seg_name).collect());
            texts.push(crate::lang::path::display(&l.path));
            leaves_found.push(Some(l));
        }
    }
    if let Some(b) = body {
        let mut found = Vec::new();
        let sub = if at.is_empty() { Some(b) } else { crate::request::extract::lookup(b, at) };
        leaves("body", sub.unwrap_or(&Value::Null), at, depth, false, &mut found);
        for l in found {
            paths.push(l.path.iter().map(seg_name).collect());
            texts.push(crate::lang::path::display(&l.path));
            leaves_found.push(Some(l));
        }
    }
    let names = names(&paths, prefix);
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::from("extract {\n");
    for ((name, text), leaf) in names.iter().zip(&texts).zip(&leaves_found) {
        let (source, ty) = match leaf {
            None => ("header", None),
            Some(l) => (l.source, l.ty),
        };
        out.push_str(&format!("  {name:width$} = {source} {}", crate::lang::quote::quote(text)));
        if let Some(t) = ty {
            out.push_str(&format!(" as {t}"));
        }
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn infers_paths_types_and_unique_names() {
        let body = json!({"data": {"status": "paid", "amount": 1250, "items": [{"sku": "A"}]}, "customer": {"status": "vip", "if": true}});
        let out = extract_block(
            &["X-Request-Id".into()],
            Some("/h?order=42&tags[0]=a"),
            Some(&body),
            "",
            &[],
            Depth::default(),
        );
        assert_eq!(
            out,
            "extract {\n  request_id      = header \"X-Request-Id\"\n  order           = query \"order\" as integer\n  tags            = query \"tags\" as array\n  data_status     = body \"data.status\"\n  amount          = body \"data.amount\" as integer\n  items           = body \"data.items\" as array\n  customer_status = body \"customer.status\"\n  customer_if     = body \"customer.if\" as boolean\n}\n"
        );
    }

    #[test]
    fn names_read_like_the_keys_and_a_subtree_can_be_picked() {
        let body = json!({"issue": {"id": 7, "reactions": {"+1": 2, "-1": 0}, "createdAt": "t"}, "repository": {"default": "main", "meta": {"deep": {"x": 1}}}});
        let out = extract_block(&["X-GitHub-Event".into()], None, Some(&body), "", &[], Depth::default());
        for line in [
            "github_event",
            "plus_one",
            "minus_one",
            "created_at",
            "repository_default = body \"repository.default\"",
            "body \"issue.id\" as integer",
        ] {
            assert!(out.contains(line), "{line}:\n{out}");
        }
        let at = crate::lang::path::parse("repository").unwrap_or_default();
        let out = extract_block(&[], None, Some(&body), "", &at, Depth(1));
        assert!(out.contains("body \"repository.meta\" as object"), "{out}");
        assert!(!out.contains("issue"), "{out}");
    }
}
