//! The language server's frame reader (`wf lsp`'s stdin): never panics, never allocates for a
//! declared size it has not read, gives back exactly the bytes of a frame within the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = std::io::Cursor::new(data);
    loop {
        match wf::tools::lsp::transport::frame(&mut input) {
            Ok(Some(body)) => assert!(body.len() <= wf::tools::lsp::transport::MAX_FRAME),
            Ok(None) | Err(_) => break,
        }
    }
});
