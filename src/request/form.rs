//! Bodies that are not JSON: form-urlencoded (parsed like the query string), multipart (text
//! fields as strings, files as `{filename, content_type, size}`, their contents counted and
//! dropped), and anything else as one string.

use serde_json::{Map, Value};

/// Most parts a multipart body may have (the query string's parameter limit).
pub const MAX_PARTS: usize = 1000;

/// Why a body could not be read: the `reason` of a `400`.
#[derive(Debug, PartialEq)]
pub struct Malformed(pub String);

/// How a body is read, by its content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Json,
    Form,
    Multipart,
    /// `text/*`, anything else, or no content type: one string.
    Text,
}

impl Kind {
    pub fn of(content_type: Option<&str>) -> Kind {
        let Some(ct) = content_type else { return Kind::Text };
        let media = ct.split(';').next().unwrap_or("").trim();
        let is = |name: &str| media.eq_ignore_ascii_case(name);
        let json_suffix =
            media.len() > 5 && media.get(media.len() - 5..).is_some_and(|t| t.eq_ignore_ascii_case("+json"));
        if is("application/json") || json_suffix {
            Kind::Json
        } else if is("application/x-www-form-urlencoded") {
            Kind::Form
        } else if is("multipart/form-data") {
            Kind::Multipart
        } else {
            Kind::Text
        }
    }

    /// Whether a body of this kind has paths (`body "a.b"` can address into it).
    pub fn has_paths(self) -> bool {
        self != Kind::Text
    }
}

/// The body as text; invalid UTF-8 is malformed.
pub fn text(bytes: &[u8]) -> Result<&str, Malformed> {
    std::str::from_utf8(bytes)
        .map_err(|e| Malformed(format!("the body is not UTF-8 text (byte {})", e.valid_up_to())))
}

/// A form-urlencoded body, parsed the way the query string is (`qs`).
pub fn urlencoded(bytes: &[u8]) -> Result<Value, Malformed> {
    Ok(crate::request::qs::parse(text(bytes)?))
}

/// The form parameters as sent (name, value), percent-decoded, in order (Twilio signs these).
/// Encodes a value form-urlencoded, qs-style: nested keys as `a[b]`, array elements as `a[0]`,
/// `null` as an empty value, other values rendered as text.
pub fn encode(v: &Value) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    encode_pairs("", v, &mut out);
    out.finish()
}

fn encode_pairs(prefix: &str, v: &Value, out: &mut form_urlencoded::Serializer<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}[{k}]") };
                encode_pairs(&key, x, out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                encode_pairs(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::Null => {
            out.append_pair(prefix, "");
        }
        other => {
            out.append_pair(prefix, &crate::request::value::render_string(other));
        }
    }
}

pub fn pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).take(MAX_PARTS).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A multipart/form-data body: each text field as a string, each file as
/// `{filename, content_type, size}`; a name given several times becomes an array.
pub async fn multipart(bytes: bytes::Bytes, content_type: &str) -> Result<Value, Malformed> {
    let boundary =
        multer::parse_boundary(content_type).map_err(|_| Malformed("no multipart boundary".into()))?;
    if boundary.len() > 70 {
        return Err(Malformed("the multipart boundary is longer than 70 characters".into()));
    }
    let stream = futures_util::stream::once(async move { Ok::<bytes::Bytes, std::io::Error>(bytes) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut out = Map::new();
    let mut count = 0;
    loop {
        let field = match parts.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(Malformed(format!("malformed multipart body: {e}"))),
        };
        count += 1;
        if count > MAX_PARTS {
            return Err(Malformed(format!("more than {MAX_PARTS} parts")));
        }
        let name = field.name().unwrap_or("").to_string();
        let value = match field.file_name().map(str::to_string) {
            Some(filename) => {
                let content_type = field.content_type().map(|m| m.to_string());
                let mut field = field;
                let mut size: u64 = 0;
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => size += chunk.len() as u64,
                        Ok(None) => break,
                        Err(e) => return Err(Malformed(format!("malformed multipart body: {e}"))),
                    }
                }
                serde_json::json!({ "filename": filename, "content_type": content_type, "size": size })
            }
            None => match field.text().await {
                Ok(t) => Value::String(t),
                Err(e) => return Err(Malformed(format!("malformed multipart body: {e}"))),
            },
        };
        match out.get_mut(&name) {
            Some(Value::Array(list)) => list.push(value),
            Some(first) => {
                let first = std::mem::take(first);
                out.insert(name, Value::Array(vec![first, value]));
            }
            None => {
                out.insert(name, value);
            }
        }
    }
    Ok(Value::Object(out))
}

/// The JSON a form delivery carries in its one field `payload` (GitHub's deliveries with
/// content type `application/x-www-form-urlencoded`, Slack's interactions), if `form` is one.
pub fn payload(form: &Value) -> Option<Value> {
    let Value::Object(fields) = form else { return None };
    if fields.len() != 1 {
        return None;
    }
    let text = fields.get("payload")?.as_str()?;
    match serde_json::from_str::<Value>(text) {
        Ok(json @ (Value::Object(_) | Value::Array(_))) => Some(json),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_of_one_json_payload_gives_that_json() {
        let form = urlencoded(b"payload=%7B%22action%22%3A%22opened%22%7D").expect("form");
        assert_eq!(payload(&form), Some(serde_json::json!({"action": "opened"})));
        assert_eq!(payload(&urlencoded(b"payload=plain").expect("form")), None);
        assert_eq!(payload(&urlencoded(b"payload=%7B%7D&other=1").expect("form")), None);
    }
    use serde_json::json;

    #[test]
    fn kinds_by_content_type() {
        assert_eq!(Kind::of(Some("application/json; charset=utf-8")), Kind::Json);
        assert_eq!(Kind::of(Some("application/vnd.github+json")), Kind::Json);
        assert_eq!(Kind::of(Some("application/x-www-form-urlencoded")), Kind::Form);
        assert_eq!(Kind::of(Some("multipart/form-data; boundary=x")), Kind::Multipart);
        assert_eq!(Kind::of(Some("text/plain")), Kind::Text);
        assert_eq!(Kind::of(None), Kind::Text);
    }

    #[test]
    fn forms_parse_like_the_query_string() {
        assert_eq!(
            urlencoded(b"text=hi+there&user%5Bid%5D=U1").unwrap(),
            json!({"text": "hi there", "user": {"id": "U1"}})
        );
        assert!(urlencoded(b"\xff=1").is_err());
    }

    #[test]
    fn multipart_keeps_text_and_describes_files() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n12345\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nagain\r\n--XyZ--\r\n";
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let v =
            rt.block_on(multipart(bytes::Bytes::from(body), "multipart/form-data; boundary=XyZ")).unwrap();
        assert_eq!(
            v,
            json!({"title": ["hello", "again"], "doc": {"filename": "a.txt", "content_type": "text/plain", "size": 5}})
        );
        assert!(rt.block_on(multipart(bytes::Bytes::from(body), "multipart/form-data")).is_err());
        assert!(rt
            .block_on(multipart(bytes::Bytes::from("garbage"), "multipart/form-data; boundary=XyZ"))
            .is_err());
    }
}
