//! The readers of bodies that are not JSON: form-urlencoded (as the query string is read) and
//! multipart with an arbitrary content type. Nothing may panic; a form always reads to an object
//! and its first 1000 pairs are listed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the content type; the rest is the body.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (head, body) = data.split_at(split);
    let body = body.get(1..).unwrap_or_default();
    if let Ok(v) = wf::request::form::urlencoded(body) {
        assert!(v.is_object(), "a form read to {v}");
        // A form of one JSON `payload` field gives that JSON, an object or an array, or nothing.
        if let Some(json) = wf::request::form::payload(&v) {
            assert!(json.is_object() || json.is_array(), "a payload read to {json}");
        }
    }
    assert!(wf::request::form::pairs(body).len() <= wf::request::form::MAX_PARTS);
    let content_type = String::from_utf8_lossy(head).into_owned();
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    if let Ok(v) = rt.block_on(wf::request::form::multipart(bytes::Bytes::copy_from_slice(body), &content_type)) {
        assert!(v.is_object(), "a multipart body read to {v}");
    }
});
