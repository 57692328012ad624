//! A history row of the embedded store read back however damaged (a disk error, a file edited
//! by hand): records of either form and requests in frames read without panicking, and a
//! length the bytes cannot hold is never allocated.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (records, even, all) = wf::read_history_row(data);
    // Each record and request takes a byte at least.
    assert!(records <= 2 * data.len() && even <= data.len() && all <= data.len());
});
