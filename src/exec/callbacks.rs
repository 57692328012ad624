//! Callbacks: `let cb = callback` makes a single-use URL for its run, `wait cb` waits for the
//! call. A token is 128 bits derived from the store's callback key, the run and the step
//! (HMAC-SHA256), so that a resumed run makes the same URL again without the token being kept:
//! the store keeps only its SHA-256, with the run, the step, the expiry and, once called, the
//! call. `/wf/callback/<token>` is served on the main listener (`serve::callback`).

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Where callbacks are served: `<public URL>/wf/callback/<token>`.
pub(crate) const PATH: &str = "/wf/callback/";

/// Where a server's callbacks are called: `--public-url` (else `http://<listen address>`),
/// without a trailing `/`.
pub(crate) struct Callbacks {
    pub public_url: String,
    /// Told when a call was taken: the run it wakes is taken at once, not at the next look.
    pub called: tokio::sync::Notify,
}

/// The SHA-256 of a token's bytes: all a store keeps of it.
pub type TokenHash = [u8; 32];

/// The token of the callback step `n` of run `id` makes (32 hex digits), under the store's key.
pub(crate) fn token(key: &[u8; 32], id: &str, n: u32) -> String {
    let mut out = String::with_capacity(32);
    // HMAC takes a key of any length: making one cannot fail.
    if let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) {
        mac.update(format!("{id}:{n}").as_bytes());
        let bytes = mac.finalize().into_bytes();
        out = hex::encode(bytes.get(..16).unwrap_or_default());
    }
    out
}

impl Callbacks {
    /// A callback as the workflow sees it: `{ url, id }`.
    pub(crate) fn value(&self, token: &str) -> Value {
        json!({ "url": format!("{}{PATH}{token}", self.public_url), "id": shown_id(token) })
    }
}

/// The hash of a token as written in a URL; `None` for anything that is not 32 hex digits.
pub fn hash(token: &str) -> Option<TokenHash> {
    if token.len() != 32 {
        return None;
    }
    let bytes = hex::decode(token).ok()?;
    Some(Sha256::digest(&bytes).into())
}

/// A token's first 8 hex digits: `cb.id`, for logs (never enough to call it).
pub(crate) fn shown_id(token: &str) -> String {
    token.chars().take(8).collect()
}

/// A callback as the store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Callback {
    pub execution: String,
    pub n: u32,
    pub expires_ms: i64,
    pub state: CallbackState,
    /// The call, once called.
    pub reply: Option<Value>,
}

/// Where a callback is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallbackState {
    /// Not called yet.
    Waiting,
    /// Called: the call is kept.
    Called,
    /// Its timeout passed first.
    Expired,
    /// Its run was cancelled.
    Cancelled,
}

impl CallbackState {
    pub(crate) fn parse(s: &str) -> Option<CallbackState> {
        Some(match s {
            "waiting" => CallbackState::Waiting,
            "called" => CallbackState::Called,
            "expired" => CallbackState::Expired,
            "cancelled" => CallbackState::Cancelled,
            _ => return None,
        })
    }
}

/// What a call to a callback found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Called {
    /// The call is kept and its run is due: `200`.
    Taken,
    /// Called before, expired or cancelled: `410`.
    Gone,
    /// No such callback: `404`.
    Unknown,
}

/// The call as `wait` gives it: `{ method, headers, query, json, text, form }` (lower-case
/// header names; `json` / `form` are `null` unless the body is JSON / form-urlencoded).
pub fn reply(method: &http::Method, uri: &http::Uri, headers: &http::HeaderMap, body: &[u8]) -> Value {
    let mut names = Map::new();
    for (name, value) in headers {
        let shown = if crate::request::received::masked(name.as_str()) {
            "[masked]".to_string()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        names.insert(name.as_str().to_string(), Value::String(shown));
    }
    let query = uri.query().map_or_else(|| Value::Object(Map::new()), crate::request::qs::parse);
    let text = String::from_utf8_lossy(body).into_owned();
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let json = if content_type.contains("json") {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let form = if content_type.starts_with("application/x-www-form-urlencoded") {
        crate::request::form::urlencoded(body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    json!({ "method": method.as_str(), "headers": names, "query": query, "json": json, "text": text, "form": form })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_the_same_for_the_same_run_and_step_and_only_its_hash_names_it() {
        let t = token(&[7; 32], "00000000000000a1", 3);
        assert_eq!(t.len(), 32);
        assert_eq!(t, token(&[7; 32], "00000000000000a1", 3));
        assert_ne!(t, token(&[7; 32], "00000000000000a1", 4));
        assert_ne!(t, token(&[8; 32], "00000000000000a1", 3));
        let v = Callbacks { public_url: "https://hooks.example".into(), called: tokio::sync::Notify::new() }
            .value(&t);
        assert_eq!(v["url"], format!("https://hooks.example/wf/callback/{t}"));
        assert_eq!(v["id"].as_str().map(str::len), Some(8));
        assert!(hash(&t).is_some());
        for bad in ["", "zz", &"a".repeat(31), &"g".repeat(32), &"a".repeat(10_000)] {
            assert!(hash(bad).is_none(), "{bad}");
        }
    }
}
