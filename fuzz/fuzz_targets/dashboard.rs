//! What the dashboard reads of a request (query string, page key, execution id, form body,
//! login cookie, bearer header): any bytes are read without panicking, and never let a caller in
//! without the token.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts: Vec<&[u8]> = data.splitn(4, |b| *b == 0).collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or(&[]);
    let query = String::from_utf8_lossy(part(0));
    let taken = wf::dashboard::read_request(&query, part(1), part(2), part(3));
    assert!(taken <= 4);
    // The token itself is never written by chance; a caller that sends it is let in.
    let with_token = wf::dashboard::read_request("", b"", b"", b"Bearer fuzz-token");
    assert!(with_token >= 1);
});
