//! The request an execution answered, as the store keeps it (`--keep-body`): method, target,
//! headers with credentials and signatures masked, and the body as text up to `--keep-body`
//! bytes; a larger body is kept as its size and SHA-256. Async runs keep theirs when they are
//! accepted; a sync execution's is taken with its record and written as text by the store's
//! writer, off the request path. Bodies waiting for the writer have a budget of their own: past
//! it, a body is kept as its size only.

use crate::request::body_memory::{BodyMemory, OwnedReserved};
use crate::request::served::Served;
use bytes::Bytes;
use sha2::Digest as _;
use std::sync::Arc;

/// Default of `--keep-body`: 64 KiB.
pub(crate) const KEEP_BODY: usize = 64 << 10;

/// Bytes all sync requests waiting for the store's writer may hold together.
pub(crate) const WAITING_BODIES: usize = 64 << 20;

/// Headers a kept request never shows: credentials and signatures. (Header names are short: a
/// plain search of each word costs less than setting up a substring searcher for it.)
fn masked(name: &str) -> bool {
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

/// A request's headers as a kept run shows them: credentials and signatures masked.
struct Shown<'a>(&'a http::HeaderMap);

impl serde::Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(name, value)| {
            let shown = if masked(name.as_str()) {
                std::borrow::Cow::Borrowed("[masked]")
            } else {
                String::from_utf8_lossy(value.as_bytes())
            };
            (name.as_str(), shown)
        }))
    }
}

/// The request as the store keeps it.
#[derive(serde::Serialize)]
struct Kept<'a> {
    method: &'a str,
    #[serde(serialize_with = "as_text")]
    target: &'a http::Uri,
    headers: Shown<'a>,
    /// The body as text (secrets redacted), when it is kept whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    /// A body not kept whole: its size, and its SHA-256 when it was over `--keep-body`.
    #[serde(skip_serializing_if = "Option::is_none")]
    body_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_sha256: Option<String>,
}

fn as_text<S: serde::Serializer>(uri: &&http::Uri, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(uri)
}

/// How much of a body is kept.
pub(crate) enum Body {
    /// Whole (at most `--keep-body` bytes), with its share of the waiting bodies' budget, held
    /// until it is written.
    Whole { bytes: Bytes, _held: Option<OwnedReserved> },
    /// Over `--keep-body`: its size and SHA-256.
    Digest { size: usize, sha256: [u8; 32] },
    /// Not kept: too many bodies were waiting for the writer; its size.
    Size(usize),
}

impl Body {
    /// The body of a request as kept under `keep` bytes (`waiting`: the budget of bodies
    /// waiting for the writer; `None` when the body is written at once).
    pub(crate) fn of(body: &Bytes, keep: usize, waiting: Option<&Arc<BodyMemory>>) -> Body {
        if body.len() > keep {
            return Body::Digest { size: body.len(), sha256: sha2::Sha256::digest(body).into() };
        }
        match waiting {
            None => Body::Whole { bytes: body.clone(), _held: None },
            Some(memory) => match memory.reserve_owned(body.len()) {
                Some(reserved) => Body::Whole { bytes: body.clone(), _held: Some(reserved) },
                None => Body::Size(body.len()),
            },
        }
    }
}

/// A sync execution's request, waiting to be written with its record.
pub(crate) struct Received {
    pub(crate) method: http::Method,
    pub(crate) uri: http::Uri,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Body,
    /// Its workflow, whose secrets are redacted from the body when it is written.
    pub(crate) served: Arc<Served>,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl Received {
    /// The request as JSON text.
    pub(crate) fn to_json(&self) -> String {
        json(&self.method, &self.uri, &self.headers, &self.body, &self.served)
    }
}

/// A request as the store keeps it, as JSON text: `{method, target, headers, body}` or, for a
/// body not kept whole, `body_size` (and `body_sha256`) instead of `body`.
pub(crate) fn json(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    body: &Body,
    served: &Served,
) -> String {
    let text = match body {
        Body::Whole { bytes, .. } => {
            let mut text = String::from_utf8_lossy(bytes).into_owned();
            served.redact(&mut text);
            Some(text)
        }
        _ => None,
    };
    let (body_size, body_sha256) = match body {
        Body::Whole { .. } => (None, None),
        Body::Digest { size, sha256 } => (Some(*size), Some(hex::encode(sha256))),
        Body::Size(size) => (Some(*size), None),
    };
    let kept = Kept {
        method: method.as_str(),
        target: uri,
        headers: Shown(headers),
        body: text.as_deref(),
        body_size,
        body_sha256,
    };
    // Serializing strings into text cannot fail.
    serde_json::to_string(&kept).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert!(masked(name), "{name}");
        }
        for name in ["content-type", "x-request-id", "user-agent", "x-github-delivery"] {
            assert!(!masked(name), "{name}");
        }
    }

    #[test]
    fn a_body_over_the_limit_is_kept_as_its_size_and_digest() {
        let big = Bytes::from(vec![b'a'; 10]);
        let Body::Digest { size, sha256 } = Body::of(&big, 4, None) else { panic!("kept whole") };
        assert_eq!(size, 10);
        assert_eq!(hex::encode(sha256), hex::encode(sha2::Sha256::digest(b"aaaaaaaaaa")));
        assert!(matches!(Body::of(&big, 10, None), Body::Whole { .. }));
    }

    #[test]
    fn bodies_waiting_for_the_writer_have_a_budget() {
        let memory = Arc::new(BodyMemory::new(15));
        let body = Bytes::from(vec![b'a'; 10]);
        let first = Body::of(&body, 64, Some(&memory));
        assert!(matches!(first, Body::Whole { _held: Some(_), .. }));
        assert!(matches!(Body::of(&body, 64, Some(&memory)), Body::Size(10)), "over the budget");
        drop(first);
        assert!(matches!(Body::of(&body, 64, Some(&memory)), Body::Whole { .. }), "given back once written");
    }
}
