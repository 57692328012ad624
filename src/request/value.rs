//! Operations on JSON values: truthiness, deep equality, ordering, arithmetic and rendering.

use serde_json::{Number, Value};
use std::cmp::Ordering;

pub(crate) type OpResult = Result<Value, String>;

/// `n` nulls: a frame's or a query's slots before they are filled. Written in place, where
/// `vec![Value::Null; n]` clones its element into each slot (a match per slot, about ten times
/// the instructions).
pub(crate) fn nulls(n: usize) -> Vec<Value> {
    let mut v = Vec::with_capacity(n);
    v.resize_with(n, || Value::Null);
    v
}

pub(crate) fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Deep JSON equality without coercion; numbers compare by value (`1 == 1.0`).
pub(crate) fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| deep_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| deep_eq(v, w)))
        }
        _ => a == b,
    }
}

fn num_cmp(x: &Number, y: &Number) -> Option<Ordering> {
    match (x.as_i64(), y.as_i64()) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => match (x.as_u64(), y.as_u64()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
    }
}

/// `< <= > >=`: numbers with numbers, strings with strings, anything else is an error.
pub(crate) fn compare(a: &Value, b: &Value) -> Result<Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            num_cmp(x, y).ok_or_else(|| "cannot compare these numbers".to_string())
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err(format!("cannot compare {} with {}", type_name(a), type_name(b))),
    }
}

/// `a in b`: element of an array, key of an object, substring of a string.
pub(crate) fn contains(hay: &Value, needle: &Value) -> Result<bool, String> {
    match (hay, needle) {
        // `x in null` is false (an absent list holds nothing).
        (Value::Null, _) => Ok(false),
        (Value::Array(items), n) => Ok(items.iter().any(|x| deep_eq(x, n))),
        (Value::Object(map), Value::String(k)) => Ok(map.contains_key(k)),
        (Value::String(s), Value::String(n)) => Ok(s.contains(n.as_str())),
        _ => Err(format!("cannot look for {} in {}", type_name(needle), type_name(hay))),
    }
}

enum Num {
    Int(i64),
    Float(f64),
}

fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(Num::Int(i)),
            None => n.as_f64().map(Num::Float),
        },
        _ => None,
    }
}

/// Both operands of an arithmetic operator as numbers; the error names them in the order written.
fn nums(op: &str, a: &Value, b: &Value) -> Result<(Num, Num), String> {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => Err(format!("cannot apply `{op}` to {} and {}", type_name(a), type_name(b))),
    }
}

fn float(f: f64) -> OpResult {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| "the result is not a finite number".to_string())
}

fn overflow() -> String {
    "integer overflow".to_string()
}

/// Longest string an execution may build (by `+`, templates, `join`, `replace`, encodings): a run
/// that doubles a string in a loop fails with a clear reason instead of exhausting memory.
pub(crate) const MAX_STRING: usize = 64 << 20;

/// About how many bytes a value holds (what `--max-memory` counts).
pub(crate) fn size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 16,
        Value::String(s) => 24 + s.len(),
        Value::Array(a) => a.iter().fold(24, |n, x| n.saturating_add(size(x))),
        Value::Object(m) => {
            m.iter().fold(48, |n, (k, x)| n.saturating_add(32 + k.len()).saturating_add(size(x)))
        }
    }
}

/// The deepest nesting of arrays and objects a value built by an execution may have (a request's
/// JSON nests at most 128 levels). Deeper values would make copying, comparing, writing and
/// dropping them recurse without bound.
pub(crate) const MAX_DEPTH: usize = 256;

/// The error for a value nested past [`MAX_DEPTH`].
pub(crate) fn too_deep() -> String {
    format!("a value nested more than {MAX_DEPTH} levels deep")
}

/// The error for a string past [`MAX_STRING`].
pub(crate) fn too_long() -> String {
    format!("a string longer than {} MiB", MAX_STRING >> 20)
}

/// `+`: adds numbers or joins strings.
pub(crate) fn add(a: &Value, b: &Value) -> OpResult {
    if let (Value::String(x), Value::String(y)) = (a, b) {
        if x.len().saturating_add(y.len()) > MAX_STRING {
            return Err(too_long());
        }
        let mut s = String::with_capacity(x.len() + y.len());
        s.push_str(x);
        s.push_str(y);
        return Ok(Value::String(s));
    }
    match nums("+", a, b)? {
        (Num::Int(x), Num::Int(y)) => x.checked_add(y).map(Value::from).ok_or_else(overflow),
        (x, y) => float(as_f(x) + as_f(y)),
    }
}

fn as_f(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

pub(crate) fn arith(op: crate::lang::ast::BinOp, a: &Value, b: &Value) -> OpResult {
    use crate::lang::ast::BinOp::*;
    let sym = op.as_str();
    let (x, y) = nums(sym, a, b)?;
    match (op, x, y) {
        (Add, x, y) => add_nums(x, y),
        (Sub, Num::Int(x), Num::Int(y)) => x.checked_sub(y).map(Value::from).ok_or_else(overflow),
        (Mul, Num::Int(x), Num::Int(y)) => x.checked_mul(y).map(Value::from).ok_or_else(overflow),
        (Div, Num::Int(_), Num::Int(0)) | (Mod, Num::Int(_), Num::Int(0)) => Err("division by zero".into()),
        (Div, Num::Int(x), Num::Int(y)) => match x.checked_rem(y) {
            Some(0) => x.checked_div(y).map(Value::from).ok_or_else(overflow),
            Some(_) => float(x as f64 / y as f64),
            None => Err(overflow()),
        },
        (Mod, Num::Int(x), Num::Int(y)) => x.checked_rem(y).map(Value::from).ok_or_else(overflow),
        (Sub, x, y) => float(as_f(x) - as_f(y)),
        (Mul, x, y) => float(as_f(x) * as_f(y)),
        (Div, x, y) => {
            let d = as_f(y);
            if d == 0.0 {
                return Err("division by zero".into());
            }
            float(as_f(x) / d)
        }
        (Mod, x, y) => {
            let d = as_f(y);
            if d == 0.0 {
                return Err("division by zero".into());
            }
            float(as_f(x) % d)
        }
        _ => Err(format!("`{sym}` is not arithmetic")),
    }
}

fn add_nums(x: Num, y: Num) -> OpResult {
    match (x, y) {
        (Num::Int(x), Num::Int(y)) => x.checked_add(y).map(Value::from).ok_or_else(overflow),
        (x, y) => float(as_f(x) + as_f(y)),
    }
}

pub(crate) fn neg(v: &Value) -> OpResult {
    let Some(n) = num(v) else {
        return Err(format!("cannot apply `-` to {}", type_name(v)));
    };
    match n {
        Num::Int(i) => i.checked_neg().map(Value::from).ok_or_else(overflow),
        Num::Float(f) => float(-f),
    }
}

/// `string(x)`: strings as themselves, everything else as JSON.
pub(crate) fn render(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        other => out.push_str(&other.to_string()),
    }
}

pub(crate) fn render_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `xml_escape(s)`: the five characters XML gives meaning to, as entities.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A value as JSON for a message, cut to at most `max` characters (ending in `...` when cut).
pub(crate) fn shown(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= max {
        return s;
    }
    let cut: String = s.chars().take(max.saturating_sub(3)).collect();
    format!("{cut}...")
}

/// `number(x)`: numbers as themselves, numeric strings parsed.
pub(crate) fn to_number(v: &Value) -> Option<Value> {
    match v {
        Value::Number(_) => Some(v.clone()),
        Value::String(s) => parse_numeric_string(s),
        _ => None,
    }
}

/// Parses a numeric string (surrounding spaces allowed) into an integer or a finite float.
pub(crate) fn parse_numeric_string(s: &str) -> Option<Value> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(Value::from(i));
    }
    let f = t.parse::<f64>().ok()?;
    if !f.is_finite() || t.eq_ignore_ascii_case("nan") || t.to_ascii_lowercase().contains("inf") {
        return None;
    }
    Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::ast::BinOp;
    use serde_json::json;

    #[test]
    fn nulls_are_n_nulls() {
        let v = nulls(3);
        assert_eq!(v, vec![Value::Null; 3]);
        assert_eq!(v.capacity(), 3);
        assert!(nulls(0).is_empty());
    }

    #[test]
    fn integers_stay_integers() {
        assert_eq!(add(&json!(2), &json!(3)).unwrap(), json!(5));
        assert_eq!(arith(BinOp::Div, &json!(6), &json!(3)).unwrap(), json!(2));
        assert_eq!(arith(BinOp::Div, &json!(7), &json!(2)).unwrap(), json!(3.5));
        assert_eq!(arith(BinOp::Mul, &json!(2), &json!(1.5)).unwrap(), json!(3.0));
        assert_eq!(arith(BinOp::Mod, &json!(7), &json!(4)).unwrap(), json!(3));
        assert!(arith(BinOp::Mul, &json!(i64::MAX), &json!(2)).is_err());
        assert!(arith(BinOp::Div, &json!(1), &json!(0)).is_err());
        assert_eq!(json!(3.0).to_string(), "3.0");
    }

    #[test]
    fn errors_name_the_operands_in_the_order_written() {
        let n = json!(1);
        let s = json!("a");
        assert_eq!(add(&n, &s).unwrap_err(), "cannot apply `+` to number and string");
        assert_eq!(add(&s, &n).unwrap_err(), "cannot apply `+` to string and number");
        assert_eq!(arith(BinOp::Sub, &n, &s).unwrap_err(), "cannot apply `-` to number and string");
        assert_eq!(compare(&n, &s).unwrap_err(), "cannot compare number with string");
        assert_eq!(neg(&s).unwrap_err(), "cannot apply `-` to string");
    }

    #[test]
    fn xml_escape_leaves_no_markup() {
        assert_eq!(
            xml_escape("</Message><Redirect>x</Redirect> & 'q' \"d\""),
            "&lt;/Message&gt;&lt;Redirect&gt;x&lt;/Redirect&gt; &amp; &apos;q&apos; &quot;d&quot;"
        );
    }

    #[test]
    fn comparisons_do_not_coerce() {
        assert!(deep_eq(&json!(1), &json!(1.0)));
        assert!(!deep_eq(&json!("1"), &json!(1)));
        assert!(deep_eq(&json!({"a": [1, {"b": null}]}), &json!({"a": [1, {"b": null}]})));
        assert!(compare(&json!("a"), &json!(1)).is_err());
        assert_eq!(compare(&json!(2), &json!(10.5)).unwrap(), Ordering::Less);
        assert!(contains(&json!("hello"), &json!("ell")).unwrap());
        assert!(contains(&json!({"k": 1}), &json!("k")).unwrap());
        assert!(contains(&json!([1, 2]), &json!(2.0)).unwrap());
    }

    #[test]
    fn numeric_strings_parse() {
        assert_eq!(parse_numeric_string(" 42 "), Some(json!(42)));
        assert_eq!(parse_numeric_string("12.5"), Some(json!(12.5)));
        assert_eq!(parse_numeric_string("abc"), None);
        assert_eq!(parse_numeric_string("NaN"), None);
        assert_eq!(parse_numeric_string("inf"), None);
    }
}
