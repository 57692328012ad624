//! `wf fmt` round trip: for any text that parses, the formatted text parses to the same program
//! (the same syntax tree, positions aside) and formatting it again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wf::lang::diagnostic::SourceFile;

/// The syntax tree's debug form without positions, so two layouts of one program compare equal.
fn shape(file: &wf::lang::ast::File) -> String {
    static SPAN: OnceLock<regex::Regex> = OnceLock::new();
    let span = SPAN.get_or_init(|| {
        regex::Regex::new(r"Span \{ start: \d+, end: \d+ \}").unwrap_or_else(|e| panic!("{e}"))
    });
    let mut file = file.clone();
    // Comments are kept by position, and their text is checked separately below.
    file.comments.clear();
    span.replace_all(&format!("{file:?}"), "Span").into_owned()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(first) = wf::lang::parser::parse(&SourceFile::new("fuzz.wf", text)) else {
        return;
    };
    let once = wf::tools::fmt::format(&first, text);
    let second = match wf::lang::parser::parse(&SourceFile::new("fmt.wf", once.as_str())) {
        Ok(ast) => ast,
        Err(e) => panic!("formatted text does not parse: {e:?}\n--- input\n{text}\n--- formatted\n{once}"),
    };
    assert_eq!(shape(&first), shape(&second), "formatting changed the program\n--- formatted\n{once}");
    let comments = |f: &wf::lang::ast::File| -> Vec<String> {
        f.comments.iter().map(|c| c.text.trim_end().to_string()).collect()
    };
    assert_eq!(comments(&first), comments(&second), "formatting lost or changed a comment");
    let twice = wf::tools::fmt::format(&second, &once);
    assert_eq!(once, twice, "formatting twice changed the text");
});
