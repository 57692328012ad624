//! The qs-style query parser. Besides not panicking, the two fast paths must agree with the
//! full rules: `roots` and `parse_roots` give, for each wanted key, what `parse` gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let full = wf::request::qs::parse(query);
    let Value::Object(map) = &full else {
        panic!("parse gave a non-object: {full}");
    };
    // Wanted roots (distinct, as the checker makes them): every other key found, and one more
    // that is usually absent.
    let mut wanted: Vec<String> = map.keys().step_by(2).cloned().collect();
    if !wanted.iter().any(|k| k == "\u{0}absent") {
        wanted.push("\u{0}absent".to_string());
    }
    let fast = wf::request::qs::roots(query, &wanted);
    assert_eq!(fast.len(), wanted.len());
    for (key, got) in wanted.iter().zip(&fast) {
        let expected = map.get(key).cloned().unwrap_or(Value::Null);
        assert_eq!(got, &expected, "roots() disagrees with parse() for `{key}` in {query:?}");
    }
    let Value::Object(some) = wf::request::qs::parse_roots(query, Some(&wanted)) else {
        panic!("parse_roots gave a non-object");
    };
    for (key, value) in &some {
        assert!(wanted.contains(key), "parse_roots kept an unwanted key `{key}`");
        assert_eq!(map.get(key), Some(value), "parse_roots disagrees with parse() for `{key}`");
    }
});
