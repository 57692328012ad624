//! The request an execution answered, as the store keeps it (`--keep-body`): method, target,
//! headers with credentials and signatures masked, and the body as text up to `--keep-body`
//! bytes; a larger body is kept as its size and SHA-256. Async runs keep theirs when they are
//! accepted; a sync execution's is taken with its record and written as text by the store's
//! writer, off the request path. Bodies waiting for the writer have a budget of their own: past
//! it, a body is kept as its size only.

use crate::request::body_memory::{BodyMemory, OwnedReserved};
use crate::request::served::Served;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::borrow::Cow;
use std::sync::Arc;

/// Default of `--keep-body`: 64 KiB.
pub(crate) const KEEP_BODY: usize = 64 << 10;

/// Bytes all sync requests waiting for the store's writer may hold together.
pub(crate) const WAITING_BODIES: usize = 64 << 20;

/// What a masked header's value reads as in a kept request.
const MASKED: &str = "[masked]";

/// Headers a kept request never shows: credentials and signatures. (Header names are short: a
/// plain search of each word costs less than setting up a substring searcher for it.)
pub(crate) fn masked(name: &str) -> bool {
    fn has(name: &[u8], word: &[u8]) -> bool {
        name.len() >= word.len() && name.windows(word.len()).any(|w| w == word)
    }
    let n = name.as_bytes();
    matches!(name, "authorization" | "proxy-authorization" | "cookie")
        || has(n, b"signature")
        || has(n, b"hmac")
        || has(n, b"token")
        || has(n, b"secret")
}

/// The request as the store keeps it.
#[derive(serde::Serialize)]
struct Kept<'a> {
    method: &'a str,
    target: &'a str,
    headers: Headers<'a>,
    /// The body as text, when it is kept whole (the whole request is written with the
    /// workflow's secrets redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    /// A body kept whole that is not UTF-8: its bytes in base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    /// A body not kept whole: its size, and its SHA-256 when it was over `--keep-body`.
    #[serde(skip_serializing_if = "Option::is_none")]
    body_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_sha256: Option<String>,
    /// A sync execution's answer: `{status, headers, body}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<serde_json::Value>,
}

/// A request's headers as the store shows them: credentials and signatures masked. Written
/// straight from where they are, without a copy.
#[derive(Clone, Copy)]
enum Headers<'a> {
    Map(&'a http::HeaderMap),
    /// `(name \0 value \0)*` of a packed request.
    Packed(&'a [u8]),
    /// Masked already, as the embedded store keeps them.
    Pairs(&'a [(Cow<'a, str>, Cow<'a, str>)]),
}

impl serde::Serialize for Headers<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shown = |name: &'_ str, value: &'_ [u8]| -> String {
            if masked(name) {
                MASKED.to_string()
            } else {
                String::from_utf8_lossy(value).into_owned()
            }
        };
        match self {
            Headers::Map(map) => {
                s.collect_map(map.iter().map(|(n, v)| (n.as_str(), shown(n.as_str(), v.as_bytes()))))
            }
            Headers::Packed(bytes) => {
                let mut parts = fields(bytes);
                let pairs = std::iter::from_fn(|| {
                    let name = parts.next().filter(|n| !n.is_empty())?;
                    let value = parts.next().unwrap_or_default();
                    let name = std::str::from_utf8(name).unwrap_or("");
                    Some((name, shown(name, value)))
                });
                s.collect_map(pairs)
            }
            Headers::Pairs(pairs) => s.collect_map(pairs.iter().map(|(n, v)| (&**n, &**v))),
        }
    }
}

/// How much of a body is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// Whole (at most `--keep-body` bytes).
    Whole,
    /// Over `--keep-body`: its size and SHA-256.
    Digest { size: usize, sha256: [u8; 32] },
    /// Not kept: too many bodies were waiting for the writer; its size.
    Size(usize),
}

impl Body {
    /// How a body of a request is kept under `keep` bytes.
    pub(crate) fn of(body: &[u8], keep: usize) -> Body {
        if body.len() > keep {
            Body::Digest { size: body.len(), sha256: sha2::Sha256::digest(body).into() }
        } else {
            Body::Whole
        }
    }
}

/// A sync execution's request, waiting to be written with its record: its method, target,
/// headers and (kept whole) body copied into one buffer, so that nothing of the connection's
/// read buffer is held while it waits (the connection reuses that buffer for its next request).
pub(crate) struct Received {
    /// `method \0 target \0 (name \0 value \0)* \0 body`: no method, target or header holds a
    /// NUL byte (the HTTP parser refuses them), so the body is what follows the empty name.
    packed: Vec<u8>,
    body: Body,
    /// Its workflow, whose secrets are redacted from the body when it is written.
    served: Arc<Served>,
    /// Its share of the budget of bodies waiting for the writer, given back once written.
    _held: Option<OwnedReserved>,
    /// What a sync execution answered (`wf runs replay` and `export` compare with it).
    answer: Option<Answered>,
}

/// A sync execution's answer as kept: its status, headers and body (a body over `--keep-body`
/// as its size).
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub(crate) body: bytes::Bytes,
}

impl Answered {
    fn to_json(&self, keep: usize) -> serde_json::Value {
        let headers: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned().into()))
            .collect();
        if self.body.len() > keep {
            serde_json::json!({"status": self.status, "headers": headers, "body_size": self.body.len()})
        } else {
            let body = String::from_utf8_lossy(&self.body);
            serde_json::json!({"status": self.status, "headers": headers, "body": body})
        }
    }
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received").field("bytes", &self.packed.len()).finish_non_exhaustive()
    }
}

impl Received {
    /// Takes a request's parts (the body kept under `keep` bytes, within the `waiting` budget).
    pub(crate) fn take(
        head: (&http::Method, &http::Uri, &http::HeaderMap),
        body: &[u8],
        keep: usize,
        waiting: &Arc<BodyMemory>,
        served: &Arc<Served>,
    ) -> Received {
        let (method, uri, headers) = head;
        let mut kept = Body::of(body, keep);
        let mut held = None;
        if kept == Body::Whole {
            held = waiting.reserve_owned(body.len());
            if held.is_none() {
                kept = Body::Size(body.len());
            }
        }
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let heads: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 2).sum();
        let whole = if kept == Body::Whole { body.len() } else { 0 };
        let mut packed = Vec::with_capacity(method.as_str().len() + target.len() + heads + whole + 3);
        packed.extend_from_slice(method.as_str().as_bytes());
        packed.push(0);
        packed.extend_from_slice(target.as_bytes());
        packed.push(0);
        for (name, value) in headers {
            packed.extend_from_slice(name.as_str().as_bytes());
            packed.push(0);
            packed.extend_from_slice(value.as_bytes());
            packed.push(0);
        }
        packed.push(0);
        if kept == Body::Whole {
            packed.extend_from_slice(body);
        }
        Received { packed, body: kept, served: served.clone(), _held: held, answer: None }
    }

    /// Keeps the answer given too.
    pub(crate) fn with_answer(mut self, answer: Answered) -> Received {
        self.answer = Some(answer);
        self
    }

    /// The packed parts: method, target, headers (`(name \0 value \0)*`), and the body when it
    /// is kept whole.
    fn parts(&self) -> (&str, &str, &[u8], Option<&[u8]>) {
        let mut parts = fields(&self.packed);
        let method = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or("");
        let target = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or("");
        let start = method.len() + target.len() + 2;
        // The headers end at the empty name: a NUL where a name would start.
        let mut at = start;
        while let Some(name) = parts.next().filter(|n| !n.is_empty()) {
            at += name.len() + 1;
            at += parts.next().map_or(0, |value| value.len() + 1);
        }
        let at = at.min(self.packed.len());
        let headers = self.packed.get(start..at).unwrap_or_default();
        let body =
            if self.body == Body::Whole { Some(self.packed.get(at + 1..).unwrap_or_default()) } else { None };
        (method, target, headers, body)
    }

    /// The request as JSON text (see [`json`]).
    pub(crate) fn to_json(&self) -> String {
        let (method, target, headers, body) = self.parts();
        let answer = self.answer.as_ref().map(|a| a.to_json(KEEP_BODY));
        render(method, target, Headers::Packed(headers), body, self.body, answer, Some(&self.served))
    }

    /// Appends the request as the embedded store keeps it ([`STORED`], then postcard's form of
    /// [`Stored`]): its headers masked and the workflow's secrets redacted as in [`to_json`], but
    /// nothing escaped or converted, so that the store's writer spends little on each. [`stored_json`]
    /// reads it back as the same JSON text.
    pub(crate) fn to_stored(&self, out: &mut Vec<u8>) {
        let (method, target, packed, body) = self.parts();
        let served = &*self.served;
        let mut parts = fields(packed);
        let mut headers = Vec::new();
        while let Some(name) = parts.next().filter(|n| !n.is_empty()) {
            let value = parts.next().unwrap_or_default();
            let name = std::str::from_utf8(name).unwrap_or("");
            let value = if masked(name) {
                Cow::Borrowed(MASKED)
            } else {
                served.redacted(String::from_utf8_lossy(value))
            };
            headers.push((Cow::Borrowed(name), value));
        }
        let body = match (self.body, body) {
            (Body::Whole, Some(bytes)) => match std::str::from_utf8(bytes) {
                Ok(text) => StoredBody::Text(served.redacted(Cow::Borrowed(text))),
                Err(_) => StoredBody::Bytes(bytes),
            },
            (Body::Digest { size, sha256 }, _) => StoredBody::Digest(size as u64, sha256),
            (Body::Size(size), _) => StoredBody::Size(size as u64),
            (Body::Whole, None) => StoredBody::Size(0),
        };
        let answer = self.answer.as_ref().map(|a| StoredAnswer {
            status: a.status,
            headers: a
                .headers
                .iter()
                .map(|(n, v)| {
                    (Cow::Borrowed(n.as_str()), served.redacted(String::from_utf8_lossy(v.as_bytes())))
                })
                .collect(),
            body: if a.body.len() > KEEP_BODY {
                StoredBody::Size(a.body.len() as u64)
            } else {
                StoredBody::Text(served.redacted(String::from_utf8_lossy(&a.body)))
            },
        });
        let stored = Stored {
            method: Cow::Borrowed(method),
            target: served.redacted(Cow::Borrowed(target)),
            headers,
            body,
            answer,
        };
        out.push(STORED);
        // Strings, bytes and numbers always encode (into a vector, which cannot fail).
        let _ = postcard::to_io(&stored, out);
    }
}

/// The fields of packed bytes, each ended by a NUL (as `bytes.split(|b| *b == 0)` gives them,
/// found by a vectorised search rather than a byte at a time).
fn fields(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut ends = memchr::memchr_iter(0, bytes).chain(std::iter::once(bytes.len()));
    let mut at = 0;
    std::iter::from_fn(move || {
        let end = ends.next()?;
        let field = bytes.get(at..end)?;
        at = end + 1;
        Some(field)
    })
}

/// The first byte of a request kept by [`Received::to_stored`] (the JSON text the store kept
/// before starts with `{`).
const STORED: u8 = 1;

/// A kept request in the embedded store's form.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    target: Cow<'a, str>,
    #[serde(borrow)]
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    #[serde(borrow)]
    body: StoredBody<'a>,
    #[serde(borrow)]
    answer: Option<StoredAnswer<'a>>,
}

/// A kept body: its text, its bytes (not UTF-8), its size and SHA-256 (over `--keep-body`), or
/// its size alone.
#[derive(Serialize, Deserialize)]
enum StoredBody<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Bytes(&'a [u8]),
    Digest(u64, [u8; 32]),
    Size(u64),
}

/// A sync execution's answer, kept.
#[derive(Serialize, Deserialize)]
struct StoredAnswer<'a> {
    status: u16,
    #[serde(borrow)]
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    #[serde(borrow)]
    body: StoredBody<'a>,
}

/// A request the embedded store kept (by [`Received::to_stored`], or as JSON text by earlier
/// versions) as the JSON text [`Received::to_json`] gives; `None` when it cannot be read.
pub(crate) fn stored_json(bytes: &[u8]) -> Option<String> {
    match bytes.split_first() {
        Some((&STORED, rest)) => {
            let stored: Stored<'_> = postcard::from_bytes(rest).ok()?;
            let (body, kept) = match &stored.body {
                StoredBody::Text(text) => (Some(text.as_bytes()), Body::Whole),
                StoredBody::Bytes(bytes) => (Some(*bytes), Body::Whole),
                StoredBody::Digest(size, sha256) => {
                    (None, Body::Digest { size: *size as usize, sha256: *sha256 })
                }
                StoredBody::Size(size) => (None, Body::Size(*size as usize)),
            };
            let answer = stored.answer.as_ref().map(|a| {
                let headers: serde_json::Map<String, serde_json::Value> =
                    a.headers.iter().map(|(n, v)| (n.to_string(), v.to_string().into())).collect();
                match &a.body {
                    StoredBody::Text(text) => {
                        serde_json::json!({"status": a.status, "headers": headers, "body": text})
                    }
                    StoredBody::Bytes(bytes) => {
                        serde_json::json!({"status": a.status, "headers": headers, "body": String::from_utf8_lossy(bytes)})
                    }
                    StoredBody::Digest(size, _) | StoredBody::Size(size) => {
                        serde_json::json!({"status": a.status, "headers": headers, "body_size": size})
                    }
                }
            });
            let headers = Headers::Pairs(&stored.headers);
            Some(render(&stored.method, &stored.target, headers, body, kept, answer, None))
        }
        _ => std::str::from_utf8(bytes).ok().map(str::to_string),
    }
}

/// The body of a request as the store keeps it, when it was kept whole: its text, or the bytes
/// of `body_base64`.
pub(crate) fn kept_body(kept: &serde_json::Value) -> Option<Vec<u8>> {
    use base64::Engine as _;
    match (kept.get("body").and_then(serde_json::Value::as_str), kept.get("body_base64")) {
        (Some(text), _) => Some(text.as_bytes().to_vec()),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b.as_str()?).ok(),
        (None, None) => Some(Vec::new()),
    }
}

/// A request as the store keeps it, as JSON text: `{method, target, headers, body}` or, for a
/// body not kept whole, `body_size` (and `body_sha256`) instead of `body`.
pub(crate) fn json(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    body: &[u8],
    kept: Body,
    served: &Served,
) -> String {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    render(
        method.as_str(),
        target,
        Headers::Map(headers),
        Some(body).filter(|_| kept == Body::Whole),
        kept,
        None,
        Some(served),
    )
}

fn render(
    method: &str,
    target: &str,
    headers: Headers<'_>,
    body: Option<&[u8]>,
    kept: Body,
    answer: Option<serde_json::Value>,
    served: Option<&Served>,
) -> String {
    let (text, body_base64) = match body.map(std::str::from_utf8) {
        Some(Ok(text)) => (Some(text), None),
        Some(Err(_)) => {
            use base64::Engine as _;
            (None, body.map(|b| base64::engine::general_purpose::STANDARD.encode(b)))
        }
        None => (None, None),
    };
    let (body_size, body_sha256) = match kept {
        Body::Whole => (None, None),
        Body::Digest { size, sha256 } => (Some(size), Some(hex::encode(sha256))),
        Body::Size(size) => (Some(size), None),
    };
    let kept = Kept { method, target, headers, body: text, body_base64, body_size, body_sha256, answer };
    // Serializing strings into text cannot fail.
    let mut text = serde_json::to_string(&kept).unwrap_or_else(|_| "{}".into());
    // The workflow's secrets and `env()` values, wherever they are: the target, any header, the
    // body (in JSON text as in the raw one). (A request the store kept had them redacted then.)
    if let Some(served) = served {
        served.redact(&mut text);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_what_splitting_at_each_nul_gives() {
        for bytes in [&b""[..], b"\0", b"a", b"a\0", b"POST\0/w\0x-a\0\0\0body\0with\0nul", b"\0\0\0"] {
            let split: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
            assert_eq!(fields(bytes).collect::<Vec<_>>(), split, "{bytes:?}");
        }
    }

    #[test]
    fn credentials_and_signatures_are_masked() {
        for name in [
            "authorization",
            "cookie",
            "stripe-signature",
            "x-hub-signature-256",
            "x-shopify-hmac-sha256",
            "x-slack-token",
            "x-secret",
            "proxy-authorization",
            "token",
            "signature-input",
            "x-webhook-secret-token",
        ] {
            assert!(masked(name), "{name}");
        }
        // Words cut short at the name's end are not the words.
        for name in [
            "content-type",
            "x-request-id",
            "user-agent",
            "x-github-delivery",
            "x-signatur",
            "x-hma",
            "toke",
            "s",
            "",
        ] {
            assert!(!masked(name), "{name}");
        }
    }

    fn served() -> Arc<Served> {
        let loaded = crate::lang::loader::load_str("w.wf", "workflow w { trigger webhook { path \"/w\" } }");
        let router = crate::request::served::build(loaded.program, &|_| None).expect("builds");
        let served = router.workflows().next().cloned().expect("served");
        served
    }

    fn head() -> (http::Method, http::Uri, http::HeaderMap) {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", http::HeaderValue::from_static("application/json"));
        headers.insert("authorization", http::HeaderValue::from_static("Bearer t0k3n"));
        (http::Method::POST, http::Uri::from_static("/w?x=1"), headers)
    }

    #[test]
    fn a_request_is_kept_masked_and_a_large_body_as_its_size_and_digest() {
        let (method, uri, headers) = head();
        let waiting = Arc::new(BodyMemory::new(1 << 20));
        let kept = Received::take((&method, &uri, &headers), b"{\"a\":1}", 64, &waiting, &served());
        let shown: serde_json::Value = serde_json::from_str(&kept.to_json()).expect("json");
        assert_eq!(
            shown,
            serde_json::json!({"method": "POST", "target": "/w?x=1", "headers": {"content-type": "application/json", "authorization": "[masked]"}, "body": "{\"a\":1}"})
        );
        // An empty header value, and no headers at all, do not end the headers early.
        let mut empty = headers.clone();
        empty.insert("x-empty", http::HeaderValue::from_static(""));
        let kept = Received::take((&method, &uri, &empty), b"b", 64, &waiting, &served());
        let shown: serde_json::Value = serde_json::from_str(&kept.to_json()).expect("json");
        assert_eq!((shown["headers"]["x-empty"].as_str(), shown["body"].as_str()), (Some(""), Some("b")));
        let none = http::HeaderMap::new();
        let kept = Received::take((&method, &uri, &none), b"c", 64, &waiting, &served());
        let shown: serde_json::Value = serde_json::from_str(&kept.to_json()).expect("json");
        assert_eq!((shown["headers"].clone(), shown["body"].as_str()), (serde_json::json!({}), Some("c")));
        let big = vec![b'a'; 10];
        let kept = Received::take((&method, &uri, &headers), &big, 4, &waiting, &served());
        let shown: serde_json::Value = serde_json::from_str(&kept.to_json()).expect("json");
        assert_eq!(shown["body_size"], 10);
        assert_eq!(shown["body_sha256"], hex::encode(sha2::Sha256::digest(b"aaaaaaaaaa")));
        assert!(shown.get("body").is_none());
    }

    #[test]
    fn a_request_kept_by_the_embedded_store_reads_back_as_its_json_text() {
        let (method, uri, mut headers) = head();
        headers.insert("x-hub-signature-256", http::HeaderValue::from_static("sha256=abc"));
        headers.insert(
            "x-odd",
            http::HeaderValue::from_bytes(b"caf\xe9").expect("a header value may hold any byte but NUL"),
        );
        let waiting = Arc::new(BodyMemory::new(1 << 20));
        let answer = || Answered {
            status: 201,
            headers: vec![(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"))],
            body: bytes::Bytes::from_static(b"{\"ok\":true}"),
        };
        for body in [&b"{\"a\":\"quote \\\" and \\u00e9\"}"[..], b"\xff\xfe not text", b"", &[b'z'; 100]] {
            let kept = Received::take((&method, &uri, &headers), body, 64, &waiting, &served())
                .with_answer(answer());
            let mut stored = Vec::new();
            kept.to_stored(&mut stored);
            assert_eq!(stored_json(&stored), Some(kept.to_json()), "{body:?}");
        }
        // The JSON text earlier versions kept reads as it is; damaged bytes read as nothing.
        assert_eq!(stored_json(b"{\"method\":\"GET\"}").as_deref(), Some("{\"method\":\"GET\"}"));
        assert_eq!(stored_json(&[STORED, 0xff]), None);
    }

    #[test]
    fn bodies_waiting_for_the_writer_have_a_budget() {
        let (method, uri, headers) = head();
        let memory = Arc::new(BodyMemory::new(15));
        let body = vec![b'a'; 10];
        let first = Received::take((&method, &uri, &headers), &body, 64, &memory, &served());
        assert_eq!(first.body, Body::Whole);
        let second = Received::take((&method, &uri, &headers), &body, 64, &memory, &served());
        assert_eq!(second.body, Body::Size(10), "over the budget");
        drop(first);
        let third = Received::take((&method, &uri, &headers), &body, 64, &memory, &served());
        assert_eq!(third.body, Body::Whole, "given back once written");
    }
}
