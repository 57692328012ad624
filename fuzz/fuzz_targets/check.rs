//! Parse + check + lower of arbitrary bytes, then render every diagnostic both ways.
//! Nothing may panic, and a file that `wf check` passes (checker and constants) must build a router.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = wf::lang::loader::source_from_bytes("fuzz.wf".into(), data.to_vec());
    let loaded = wf::lang::loader::load_sources(vec![source]);
    let _ = wf::lang::diagnostic::render_human(&loaded.diagnostics, false);
    for d in &loaded.diagnostics {
        let _ = d.to_json();
    }
    if !loaded.has_errors() && wf::request::served::verify(&loaded.program).is_empty() {
        // What `wf check` passes must be served: every env() gets a value, so it must build.
        let router = wf::request::served::build(loaded.program, &|_| Some("fuzz".to_string()));
        assert!(router.is_ok(), "a program that checks clean did not build: {:?}", router.err());
    }
});
