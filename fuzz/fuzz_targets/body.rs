//! The selective JSON body parser against a full parse: for any body and any set of paths,
//! `parse_into` accepts exactly the bodies `serde_json` accepts, and fills each slot with what a
//! full parse and a path lookup give.
//!
//! Input: the first line holds extraction paths separated by `,`; the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wf::request::body::{parse_into, Need};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (head, body) = data.split_at(split);
    let body = body.get(1..).unwrap_or_default();
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let paths: Vec<_> = head.split(',').filter_map(|p| wf::lang::path::parse(p).ok()).take(16).collect();
    let mut need = Need::default();
    for (slot, segs) in paths.iter().enumerate() {
        need.add(segs, slot as u32);
    }
    let mut frame = vec![Value::Null; paths.len()];
    let ours = parse_into(body, &need, &mut frame);
    let full = serde_json::from_slice::<Value>(body);
    assert_eq!(ours.is_ok(), full.is_ok(), "ours: {ours:?}, full: {full:?}");
    if let Ok(full) = full {
        for (segs, got) in paths.iter().zip(&frame) {
            let expected = wf::request::extract::lookup(&full, segs).unwrap_or(&Value::Null);
            assert_eq!(got, expected, "path {segs:?}");
        }
    }
});
