//! A call to `/wf/callback/<token>`: the token (any text) is a hash or refused, and the call
//! (its query, its JSON or form body, any bytes) becomes `wait`'s value without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, body) = data.split_at(data.len().min(96));
    let text = String::from_utf8_lossy(head);
    let (token, query) = text.split_once('?').unwrap_or((&text, ""));
    let hashed = wf::exec::callbacks::hash(token);
    assert!(hashed.is_none() || token.len() == 32);
    let uri: http::Uri = match format!("/wf/callback/x?{}", query.replace(|c: char| !c.is_ascii_graphic(), "")).parse() {
        Ok(u) => u,
        Err(_) => return,
    };
    for content_type in ["application/json", "application/x-www-form-urlencoded", "text/plain"] {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
        let v = wf::exec::callbacks::reply(&http::Method::POST, &uri, &headers, body);
        assert!(v.is_object());
    }
});
