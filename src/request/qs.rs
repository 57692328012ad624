//! The query string, parsed the way Node's `qs` parses it (its defaults): `&`-separated pairs,
//! percent-decoding with `+` as space, bracket nesting up to depth 5, array indices up to 20,
//! repeated keys combined into arrays, at most 1000 parameters.
//!
//! No published crate follows qs's semantics (`serde_qs` rejects repeated keys and needs a target
//! type), so the rules live here, in one place, with qs's own examples as tests.

use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// qs `depth`: bracket groups beyond it stay one literal key.
pub const DEPTH: usize = 5;
/// qs `arrayLimit`: a larger index makes an object key instead.
pub const ARRAY_LIMIT: usize = 20;
/// qs `parameterLimit`: later parameters are ignored.
pub const PARAMETER_LIMIT: usize = 1000;

enum Q {
    Str(String),
    Arr(BTreeMap<usize, Q>),
    Obj(IndexMap<String, Q>),
}

/// Parses a raw query string (without `?`) into nested JSON whose leaves are strings.
pub fn parse(query: &str) -> Value {
    parse_roots(query, None)
}

/// Like [`parse`], keeping only the parameters whose top-level key is in `roots` (the others are
/// never built; the result is what [`parse`] gives for those keys).
pub fn parse_roots(query: &str, roots: Option<&[String]>) -> Value {
    let mut root: IndexMap<String, Q> = IndexMap::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()).take(PARAMETER_LIMIT) {
        if let Some(roots) = roots {
            let root = root_of(&key);
            if !roots.iter().any(|r| r == root) {
                continue;
            }
        }
        let Some((parent, children)) = split_key(&key) else {
            continue;
        };
        let mut leaf = Q::Str(value.into_owned());
        for child in children.iter().rev() {
            leaf = match child.as_str() {
                "" => Q::Arr(BTreeMap::from([(0, leaf)])),
                c => match array_index(c) {
                    Some(i) => Q::Arr(BTreeMap::from([(i, leaf)])),
                    None => Q::Obj(IndexMap::from([(c.to_string(), leaf)])),
                },
            };
        }
        match root.shift_remove(&parent) {
            Some(existing) => {
                let merged = merge(existing, leaf);
                root.insert(parent, merged);
            }
            None => {
                root.insert(parent, leaf);
            }
        }
    }
    Value::Object(root.into_iter().map(|(k, v)| (k, to_value(v))).collect())
}

/// The value of each of `roots` (in order; `null` when absent), as [`parse`] would give it.
/// `roots` are distinct (the checker lists each root once).
/// Parameters written without brackets (`order=42`, `a=1&a=2`) are taken directly, building
/// nothing else; a needed root that also appears with brackets goes through the full rules.
pub fn roots(query: &str, roots: &[String]) -> Vec<Value> {
    let mut out = crate::request::value::nulls(roots.len());
    for (key, value) in form_urlencoded::parse(query.as_bytes()).take(PARAMETER_LIMIT) {
        let wanted = root_of(&key);
        let Some((root, slot)) = roots.iter().zip(out.iter_mut()).find(|(r, _)| r.as_str() == wanted) else {
            continue;
        };
        if key.as_ref() != root {
            return full_roots(query, roots);
        }
        let value = Value::String(value.into_owned());
        match slot {
            Value::Null => *slot = value,
            Value::Array(items) => items.push(value),
            first => {
                let prev = std::mem::take(first);
                *first = Value::Array(vec![prev, value]);
            }
        }
    }
    out
}

fn full_roots(query: &str, roots: &[String]) -> Vec<Value> {
    let Value::Object(mut all) = parse_roots(query, Some(roots)) else {
        return crate::request::value::nulls(roots.len());
    };
    roots.iter().map(|r| all.remove(r).unwrap_or(Value::Null)).collect()
}

/// The top-level key a parameter name lands under (what `split_key` calls the parent).
fn root_of(key: &str) -> &str {
    match bracket_at(key, 0) {
        Some((0, end)) => key.get(1..end - 1).unwrap_or(""),
        Some((start, _)) => key.get(..start).unwrap_or(""),
        None => key,
    }
}

fn array_index(s: &str) -> Option<usize> {
    if !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse::<usize>().ok().filter(|i| *i <= ARRAY_LIMIT)
}

/// `a[b][c]` → (`a`, [`b`, `c`]); groups past [`DEPTH`] become one literal child.
fn split_key(key: &str) -> Option<(String, Vec<String>)> {
    if key.is_empty() {
        return None;
    }
    let first = match bracket_at(key, 0) {
        Some((start, _)) => start,
        None => return Some((key.to_string(), Vec::new())),
    };
    let mut children = Vec::new();
    let (parent, mut pos) = if first == 0 {
        // `[a]=b`: qs takes the first group as the parent.
        let (s, e) = bracket_at(key, 0)?;
        (key.get(s + 1..e - 1).unwrap_or("").to_string(), e)
    } else {
        (key.get(..first).unwrap_or("").to_string(), first)
    };
    while let Some((s, e)) = bracket_at(key, pos) {
        if children.len() == DEPTH {
            children.push(key.get(s..).unwrap_or("").to_string());
            break;
        }
        children.push(key.get(s + 1..e - 1).unwrap_or("").to_string());
        pos = e;
    }
    Some((parent, children))
}

/// The next `[...]` group (without nested `[`) at or after `from`: (start, end after `]`).
fn bracket_at(key: &str, from: usize) -> Option<(usize, usize)> {
    let b = key.as_bytes();
    let mut start = None;
    for (i, c) in b.iter().enumerate().skip(from) {
        match (c, start) {
            (b'[', _) => start = Some(i),
            (b']', Some(s)) => return Some((s, i + 1)),
            _ => {}
        }
    }
    None
}

/// qs's `utils.merge`.
fn merge(target: Q, source: Q) -> Q {
    match (target, source) {
        (Q::Arr(mut t), Q::Str(s)) => {
            push(&mut t, Q::Str(s));
            Q::Arr(t)
        }
        (Q::Obj(mut t), Q::Str(s)) => {
            t.entry(s).or_insert(Q::Str("true".into()));
            Q::Obj(t)
        }
        (t @ Q::Str(_), Q::Arr(s)) => {
            let mut out = BTreeMap::from([(0, t)]);
            for (_, v) in s {
                push(&mut out, v);
            }
            Q::Arr(out)
        }
        (t @ Q::Str(_), s) => Q::Arr(BTreeMap::from([(0, t), (1, s)])),
        (Q::Arr(mut t), Q::Arr(s)) => {
            for (i, item) in s {
                match t.remove(&i) {
                    Some(existing @ (Q::Arr(_) | Q::Obj(_))) if !matches!(item, Q::Str(_)) => {
                        t.insert(i, merge(existing, item));
                    }
                    Some(existing) => {
                        t.insert(i, existing);
                        push(&mut t, item);
                    }
                    None => {
                        t.insert(i, item);
                    }
                }
            }
            Q::Arr(t)
        }
        (Q::Arr(t), Q::Obj(s)) => merge(Q::Obj(to_obj(t)), Q::Obj(s)),
        (Q::Obj(t), Q::Arr(s)) => merge(Q::Obj(t), Q::Obj(to_obj(s))),
        (Q::Obj(mut t), Q::Obj(s)) => {
            for (k, v) in s {
                let merged = match t.shift_remove(&k) {
                    Some(existing) => merge(existing, v),
                    None => v,
                };
                t.insert(k, merged);
            }
            Q::Obj(t)
        }
    }
}

fn push(arr: &mut BTreeMap<usize, Q>, v: Q) {
    let next = arr.keys().next_back().map_or(0, |k| k + 1);
    arr.insert(next, v);
}

fn to_obj(arr: BTreeMap<usize, Q>) -> IndexMap<String, Q> {
    arr.into_iter().map(|(i, v)| (i.to_string(), v)).collect()
}

fn to_value(q: Q) -> Value {
    match q {
        Q::Str(s) => Value::String(s),
        Q::Arr(a) => Value::Array(a.into_values().map(to_value).collect()),
        Q::Obj(o) => Value::Object(o.into_iter().map(|(k, v)| (k, to_value(v))).collect::<Map<_, _>>()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde_json::json;

    #[test]
    fn spec_examples() {
        assert_eq!(parse("a=1&a=2"), json!({"a": ["1", "2"]}));
        assert_eq!(parse("a[b]=c"), json!({"a": {"b": "c"}}));
        assert_eq!(parse("a[0][x]=1"), json!({"a": [{"x": "1"}]}));
        assert_eq!(parse("q=hello+world%21"), json!({"q": "hello world!"}));
    }

    #[test]
    fn qs_behaviour() {
        assert_eq!(parse("a[]=b&a[]=c"), json!({"a": ["b", "c"]}));
        assert_eq!(parse("a[1]=c&a[0]=b"), json!({"a": ["b", "c"]}));
        assert_eq!(parse("a[1]=b"), json!({"a": ["b"]}));
        assert_eq!(parse("a[21]=b"), json!({"a": {"21": "b"}}));
        assert_eq!(parse("a[0]=b&a[x]=c"), json!({"a": {"0": "b", "x": "c"}}));
        assert_eq!(
            parse("items[0][sku]=A1&items[0][qty]=2&items[1][sku]=B2"),
            json!({"items": [{"sku": "A1", "qty": "2"}, {"sku": "B2"}]})
        );
        assert_eq!(
            parse("a[b][c][d][e][f][g][h]=i"),
            json!({"a": {"b": {"c": {"d": {"e": {"f": {"[g][h]": "i"}}}}}}})
        );
        assert_eq!(parse("a.b=c"), json!({"a.b": "c"}));
        assert_eq!(parse("a%5Bb%5D=c"), json!({"a": {"b": "c"}}));
        assert_eq!(parse("flag&x="), json!({"flag": "", "x": ""}));
        assert_eq!(parse("a=b&a[]=c"), json!({"a": ["b", "c"]}));
        assert_eq!(parse(""), json!({}));
    }

    #[test]
    fn filtering_by_root_keeps_qs_results_for_those_keys() {
        let q = "a=1&b[x]=2&a=3&[c]=4&items[0][sku]=A&other=5";
        let full = parse(q);
        let roots: Vec<String> = ["a", "c", "items"].iter().map(|s| s.to_string()).collect();
        let part = super::parse_roots(q, Some(&roots));
        for k in &roots {
            assert_eq!(part.get(k), full.get(k), "{k}");
        }
        assert_eq!(part.get("b"), None);
        assert_eq!(part.get("other"), None);
    }

    #[test]
    fn root_values_match_the_full_parse() {
        let roots: Vec<String> = ["a", "b", "items", "none"].iter().map(|s| s.to_string()).collect();
        for q in ["a=1&b=2", "a=1&a=2&a=3", "a=1&items[0][sku]=X&b=%20y+z", "b[x]=1&a=2", "a=1&a[]=2", "x=1"]
        {
            let full = parse(q);
            let got = super::roots(q, &roots);
            for (r, v) in roots.iter().zip(&got) {
                assert_eq!(Some(v), full.get(r).or(Some(&serde_json::Value::Null)), "{q}: {r}");
            }
        }
        // Found by the qs fuzz target (its harness had listed a root twice).
        let q = "x=%ZZ%emssku]=A&a=2C4%&&\0absent=1";
        let roots: Vec<String> = ["x", "a", "\0absent"].iter().map(|s| s.to_string()).collect();
        let full = parse(q);
        assert_eq!(
            super::roots(q, &roots),
            vec![full["x"].clone(), full["a"].clone(), full["\0absent"].clone()]
        );
        assert_eq!(full["\0absent"], "1");
    }

    #[test]
    fn parameter_count_is_bounded() {
        let q = (0..5000).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&");
        assert_eq!(parse(&q).as_object().map(|o| o.len()), Some(super::PARAMETER_LIMIT));
    }
}
