//! The functions over strings, arrays, objects, encodings and digests: each takes its
//! arguments' values and gives a value or a runtime error that names what was wrong.

use crate::lang::builtins::Builtin;
use crate::request::value::{self, type_name};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::cmp::Ordering;

fn string<'v>(f: &str, v: &'v Value) -> Result<&'v str, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(format!("{f} needs a string, got {}", type_name(other))),
    }
}

fn array<'v>(f: &str, v: &'v Value) -> Result<&'v [Value], String> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(format!("{f} needs an array, got {}", type_name(other))),
    }
}

fn object<'v>(f: &str, v: &'v Value) -> Result<&'v Map<String, Value>, String> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(format!("{f} needs an object, got {}", type_name(other))),
    }
}

fn integer(f: &str, v: &Value) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| format!("{f} needs an integer position, got {v}"))
}

/// Runs one of the functions of this module over its arguments' values.
pub(crate) fn apply(b: Builtin, args: &[&Value]) -> Result<Value, String> {
    let arg = |i: usize| -> Result<&Value, String> {
        args.get(i).copied().ok_or_else(|| "missing argument".to_string())
    };
    Ok(match b {
        Builtin::Split => {
            let (s, sep) = (string("split", arg(0)?)?, string("split", arg(1)?)?);
            if sep.is_empty() {
                Value::Array(s.chars().map(|c| Value::String(c.to_string())).collect())
            } else {
                Value::Array(s.split(sep).map(|p| Value::String(p.to_string())).collect())
            }
        }
        Builtin::Join => {
            let (items, sep) = (array("join", arg(0)?)?, string("join", arg(1)?)?);
            let parts: Vec<String> = items.iter().map(value::render_string).collect();
            let len = parts.iter().map(String::len).sum::<usize>() + sep.len() * parts.len();
            if len > value::MAX_STRING {
                return Err(value::too_long());
            }
            Value::String(parts.join(sep))
        }
        Builtin::Replace => {
            let (s, from, to) =
                (string("replace", arg(0)?)?, string("replace", arg(1)?)?, string("replace", arg(2)?)?);
            if from.is_empty() {
                return Err("replace needs a text to replace, got \"\"".into());
            }
            let grows = to.len().saturating_sub(from.len()).saturating_mul(s.matches(from).count());
            if s.len().saturating_add(grows) > value::MAX_STRING {
                return Err(value::too_long());
            }
            Value::String(s.replace(from, to))
        }
        Builtin::Slice => {
            slice(arg(0)?, integer("slice", arg(1)?)?, args.get(2).map(|v| integer("slice", v)).transpose()?)?
        }
        Builtin::Keys => {
            Value::Array(object("keys", arg(0)?)?.keys().map(|k| Value::String(k.clone())).collect())
        }
        Builtin::Values => Value::Array(object("values", arg(0)?)?.values().cloned().collect()),
        Builtin::Sum => sum(array("sum", arg(0)?)?)?,
        Builtin::Min => extreme("min", array("min", arg(0)?)?, Ordering::Less)?,
        Builtin::Max => extreme("max", array("max", arg(0)?)?, Ordering::Greater)?,
        Builtin::Any => Value::Bool(array("any", arg(0)?)?.iter().any(value::truthy)),
        Builtin::All => Value::Bool(array("all", arg(0)?)?.iter().all(value::truthy)),
        Builtin::JsonEncode => Value::String(serde_json::to_string(arg(0)?).map_err(|e| e.to_string())?),
        Builtin::JsonDecode => serde_json::from_str(string("json_decode", arg(0)?)?)
            .map_err(|e| format!("json_decode: not JSON ({e})"))?,
        Builtin::Base64Encode => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(string("base64_encode", arg(0)?)?))
        }
        Builtin::Base64Decode => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(string("base64_decode", arg(0)?)?)
                .map_err(|e| format!("base64_decode: not base64 ({e})"))?;
            Value::String(
                String::from_utf8(bytes)
                    .map_err(|_| "base64_decode: the bytes are not UTF-8 text".to_string())?,
            )
        }
        Builtin::UrlEncode => {
            let s = string("url_encode", arg(0)?)?;
            let mut out = String::with_capacity(s.len());
            for b in s.bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            Value::String(out)
        }
        Builtin::Sha256 => {
            use sha2::Digest as _;
            Value::String(hex::encode(sha2::Sha256::digest(string("sha256", arg(0)?)?.as_bytes())))
        }
        Builtin::HmacSha256 => {
            let (key, s) = (string("hmac_sha256", arg(0)?)?, string("hmac_sha256", arg(1)?)?);
            let mac = crate::request::signature::mac(
                crate::lang::ir::Algorithm::Sha256,
                key.as_bytes(),
                &[s.as_bytes()],
            );
            Value::String(hex::encode(mac))
        }
        Builtin::UnixTime => Value::from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        ),
        Builtin::SecureEq => {
            use subtle::ConstantTimeEq as _;
            let (a, b) = (string("secure_eq", arg(0)?)?, string("secure_eq", arg(1)?)?);
            Value::Bool(a.as_bytes().ct_eq(b.as_bytes()).into())
        }
        other => return Err(format!("{other:?} is not a function of this module")),
    })
}

/// A position counted from the end when negative, clamped to `0..=len`.
fn position(p: i64, len: usize) -> usize {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let p = if p < 0 { len_i.saturating_add(p) } else { p };
    usize::try_from(p.clamp(0, len_i)).unwrap_or(0)
}

/// `slice(s_or_array, start[, end])`: characters of a string, elements of an array.
fn slice(v: &Value, start: i64, end: Option<i64>) -> Result<Value, String> {
    match v {
        Value::String(s) => {
            let n = s.chars().count();
            let (a, b) = (position(start, n), end.map_or(n, |e| position(e, n)));
            Ok(Value::String(s.chars().skip(a).take(b.saturating_sub(a)).collect()))
        }
        Value::Array(items) => {
            let n = items.len();
            let (a, b) = (position(start, n), end.map_or(n, |e| position(e, n)));
            Ok(Value::Array(items.iter().skip(a).take(b.saturating_sub(a)).cloned().collect()))
        }
        other => Err(format!("slice needs a string or an array, got {}", type_name(other))),
    }
}

/// `sum(array)`: integers add as integers (overflow is an error); any float makes a float.
fn sum(items: &[Value]) -> Result<Value, String> {
    let mut total = Value::from(0);
    for x in items {
        if !x.is_number() {
            return Err(format!("sum needs numbers, got {}", type_name(x)));
        }
        total = value::add(&total, x)?;
    }
    Ok(total)
}

/// `min` / `max`: numbers with numbers or strings with strings; `null` for an empty array.
fn extreme(f: &str, items: &[Value], keep: Ordering) -> Result<Value, String> {
    let mut best: Option<&Value> = None;
    for x in items {
        best = match best {
            None => Some(x),
            Some(b) => {
                let o = value::compare(x, b).map_err(|e| format!("{f}: {e}"))?;
                Some(if o == keep { x } else { b })
            }
        };
    }
    Ok(best.cloned().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(b: Builtin, args: &[Value]) -> Result<Value, String> {
        let refs: Vec<&Value> = args.iter().collect();
        apply(b, &refs)
    }

    #[test]
    fn the_functions_follow_the_spec() {
        assert_eq!(call(Builtin::Split, &[json!("a,b,,c"), json!(",")]), Ok(json!(["a", "b", "", "c"])));
        assert_eq!(call(Builtin::Join, &[json!(["a", 1, true]), json!("-")]), Ok(json!("a-1-true")));
        assert_eq!(call(Builtin::Replace, &[json!("a.b.c"), json!("."), json!("/")]), Ok(json!("a/b/c")));
        assert_eq!(call(Builtin::Slice, &[json!("héllo"), json!(1), json!(-1)]), Ok(json!("éll")));
        assert_eq!(call(Builtin::Slice, &[json!([1, 2, 3]), json!(-2)]), Ok(json!([2, 3])));
        assert_eq!(call(Builtin::Keys, &[json!({"b": 1, "a": 2})]), Ok(json!(["b", "a"])));
        assert_eq!(call(Builtin::Values, &[json!({"b": 1, "a": 2})]), Ok(json!([1, 2])));
        assert_eq!(call(Builtin::Sum, &[json!([1, 2, 3])]), Ok(json!(6)));
        assert_eq!(call(Builtin::Sum, &[json!([1, 2.5])]), Ok(json!(3.5)));
        assert!(call(Builtin::Sum, &[json!([i64::MAX, 1])]).is_err());
        assert_eq!(call(Builtin::Min, &[json!([])]), Ok(Value::Null));
        assert_eq!(call(Builtin::Max, &[json!([3, 9, 2])]), Ok(json!(9)));
        assert!(call(Builtin::Max, &[json!([3, "9"])]).is_err());
        assert_eq!(call(Builtin::Any, &[json!([])]), Ok(json!(false)));
        assert_eq!(call(Builtin::All, &[json!([])]), Ok(json!(true)));
        assert_eq!(
            call(Builtin::JsonEncode, &[json!({"b": [1, null], "a": "x"})]),
            Ok(json!("{\"b\":[1,null],\"a\":\"x\"}"))
        );
        assert_eq!(call(Builtin::JsonDecode, &[json!("{\"a\":[1]}")]), Ok(json!({"a": [1]})));
        assert!(call(Builtin::JsonDecode, &[json!("{")]).is_err());
        assert_eq!(call(Builtin::Base64Encode, &[json!("hi?")]), Ok(json!("aGk/")));
        assert_eq!(call(Builtin::Base64Decode, &[json!("aGk/")]), Ok(json!("hi?")));
        assert_eq!(call(Builtin::UrlEncode, &[json!("a b/é~")]), Ok(json!("a%20b%2F%C3%A9~")));
        assert_eq!(
            call(Builtin::Sha256, &[json!("abc")]),
            Ok(json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
        );
        // RFC 4231, test case 2.
        assert_eq!(
            call(Builtin::HmacSha256, &[json!("Jefe"), json!("what do ya want for nothing?")]),
            Ok(json!("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"))
        );
        assert_eq!(call(Builtin::SecureEq, &[json!("a"), json!("a")]), Ok(json!(true)));
        assert_eq!(call(Builtin::SecureEq, &[json!("a"), json!("ab")]), Ok(json!(false)));
        assert!(call(Builtin::UnixTime, &[]).is_ok_and(|v| v.as_u64().is_some_and(|t| t > 1_700_000_000)));
    }
}
