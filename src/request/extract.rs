//! Extraction: reads each declared value from headers, query or body by its pre-split path into
//! its slot, applying `as`, `required` and `default`.

use crate::lang::ir::{Extraction, Getter, RequestField, Seg, Type, Workflow};
use crate::request::plan::{Plan, Read};
use crate::request::value;
use serde_json::Value;

/// What a request offers to extraction.
pub(crate) struct Inputs<'a> {
    pub headers: &'a http::HeaderMap,
    /// The value of each root key in `Plan::query_roots` (see [`crate::request::qs::roots`]).
    pub query: &'a mut [Value],
    /// The whole query string, parsed, when some extraction reads it.
    pub query_whole: Option<&'a Value>,
    pub method: &'a http::Method,
    pub uri: &'a http::Uri,
    /// The caller's address, when known.
    pub ip: Option<std::net::IpAddr>,
    /// The body as text, when some extraction reads `request "raw_body"`.
    pub raw_body: Option<&'a str>,
}

/// A value that is missing or does not convert: answered with `400`.
#[derive(Debug, PartialEq)]
pub(crate) struct ExtractError {
    pub field: String,
    pub source: &'static str,
    pub path: String,
    pub reason: String,
}

impl ExtractError {
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({
            "error": "invalid request",
            "field": self.field,
            "source": self.source,
            "path": self.path,
            "reason": self.reason,
        })
    }
}

/// Fills the extracted slots of `frame`, in declaration order. Body values are already in their
/// slots ([`crate::request::body::parse_into`] put them there); this reads headers and the query, then
/// applies `required`, `default` and `as` to every slot.
pub(crate) fn extract_all(
    wf: &Workflow,
    plan: &Plan,
    inputs: &mut Inputs,
    frame: &mut [Value],
) -> Result<(), ExtractError> {
    for (x, read) in wf.extracts.iter().zip(&plan.reads) {
        let Some(slot) = frame.get_mut(x.slot as usize) else { continue };
        let found = match (read, &x.getter) {
            (Read::Header, Getter::Header(Some(name))) => header(inputs.headers, name),
            (Read::Header, Getter::Header(None)) => Some(all_headers(inputs.headers)),
            (Read::QueryWhole, _) => {
                Some(inputs.query_whole.cloned().unwrap_or_else(|| Value::Object(Default::default())))
            }
            (Read::Request, Getter::Request(field)) => request_field(inputs, *field),
            (Read::Request, _) => None,
            (Read::Query { root, rest, sole }, _) => match inputs.query.get_mut(*root) {
                Some(v) if *sole => Some(std::mem::take(v)),
                Some(v) => lookup(v, rest).cloned(),
                None => None,
            },
            (Read::Body, _) => Some(std::mem::take(slot)),
            (Read::Header, _) => None,
        };
        *slot = finish(x, found)?;
    }
    Ok(())
}

/// Applies `required`, `default` and `as` to what was found.
fn finish(x: &Extraction, found: Option<Value>) -> Result<Value, ExtractError> {
    let fail = |reason: String| ExtractError {
        field: x.name.clone(),
        source: x.source.as_str(),
        path: x.path_text.clone(),
        reason,
    };
    match found {
        None | Some(Value::Null) => {
            if x.required {
                return Err(fail("missing".into()));
            }
            match &x.default {
                Some(d) => crate::request::eval::eval(d, &[]).map_err(fail),
                None => Ok(Value::Null),
            }
        }
        Some(v) => match x.ty {
            None => Ok(v),
            Some(ty) => convert(v, ty).map_err(fail),
        },
    }
}

/// `request "..."`.
fn request_field(inputs: &Inputs, field: RequestField) -> Option<Value> {
    Some(Value::String(match field {
        RequestField::Method => inputs.method.as_str().to_string(),
        RequestField::Path => inputs.uri.path().to_string(),
        RequestField::Url => inputs
            .uri
            .path_and_query()
            .map_or_else(|| inputs.uri.path().to_string(), |p| p.as_str().to_string()),
        RequestField::Ip => inputs.ip?.to_string(),
        RequestField::RawBody => inputs.raw_body.unwrap_or("").to_string(),
    }))
}

/// Every header as an object: lower-case names, repeated values joined with `, `.
pub(crate) fn all_headers(headers: &http::HeaderMap) -> Value {
    let mut out = serde_json::Map::new();
    for name in headers.keys() {
        if let Some(v) = header(headers, name) {
            out.insert(name.as_str().to_string(), v);
        }
    }
    Value::Object(out)
}

/// Every value of a header, joined with `, `; `None` when absent.
fn header(headers: &http::HeaderMap, name: &http::HeaderName) -> Option<Value> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut s = String::from_utf8_lossy(first.as_bytes()).into_owned();
    for v in values {
        s.push_str(", ");
        s.push_str(&String::from_utf8_lossy(v.as_bytes()));
    }
    Some(Value::String(s))
}

/// Follows a pre-split path; `None` when any step is missing.
pub fn lookup<'a>(root: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    let mut cur = root;
    for seg in segs {
        cur = match (cur, seg) {
            (Value::Object(m), Seg::Key(k)) => m.get(k)?,
            (Value::Object(m), Seg::Index(_, k)) => m.get(k)?,
            (Value::Array(a), Seg::Index(i, _)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Applies `as TYPE`.
pub(crate) fn convert(v: Value, ty: Type) -> Result<Value, String> {
    let bad = || format!("expected {}, got {}", ty.as_str(), value::shown(&v, 40));
    match ty {
        Type::String => match v {
            Value::String(_) => Ok(v),
            Value::Number(_) | Value::Bool(_) => Ok(Value::String(v.to_string())),
            _ => Err(bad()),
        },
        Type::Number if v.is_number() => Ok(v),
        Type::Number => value::to_number(&v).ok_or_else(bad),
        Type::Integer => match value::to_number(&v) {
            Some(Value::Number(n)) => {
                if let Some(i) = n.as_i64() {
                    Ok(Value::from(i))
                } else if let Some(u) = n.as_u64() {
                    Ok(Value::from(u))
                } else {
                    match n.as_f64() {
                        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::from(f as i64)),
                        _ => Err(bad()),
                    }
                }
            }
            _ => Err(bad()),
        },
        Type::Boolean => match &v {
            Value::Bool(_) => Ok(v),
            Value::String(s) if s == "true" => Ok(Value::Bool(true)),
            Value::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        Type::Object if v.is_object() => Ok(v),
        Type::Array if v.is_array() => Ok(v),
        Type::Object | Type::Array => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conversions_follow_the_spec() {
        assert_eq!(convert(json!("12.5"), Type::Number), Ok(json!(12.5)));
        assert_eq!(convert(json!("abc"), Type::Number), Err("expected number, got \"abc\"".into()));
        assert_eq!(convert(json!(3.0), Type::Integer), Ok(json!(3)));
        assert!(convert(json!(3.5), Type::Integer).is_err());
        assert_eq!(convert(json!("true"), Type::Boolean), Ok(json!(true)));
        assert!(convert(json!("yes"), Type::Boolean).is_err());
        assert_eq!(convert(json!(42), Type::String), Ok(json!("42")));
        assert!(convert(json!([1]), Type::String).is_err());
        assert!(convert(json!({}), Type::Array).is_err());
    }

    #[test]
    fn lookup_walks_objects_and_arrays() {
        let v = json!({"a": [{"b": 1}], "o": {"0": "zero"}});
        let segs = crate::lang::path::parse("a[0].b").unwrap();
        assert_eq!(lookup(&v, &segs), Some(&json!(1)));
        let segs = crate::lang::path::parse("o[0]").unwrap();
        assert_eq!(lookup(&v, &segs), Some(&json!("zero")));
        assert_eq!(lookup(&v, &crate::lang::path::parse("a[3]").unwrap()), None);
    }
}
