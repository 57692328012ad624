//! The words that cannot be names. The grammar's `reserved` rule lists the same words; a test
//! holds the two together.

/// Keywords reserved everywhere: never a variable, workflow or function name.
pub const RESERVED: [&str; 20] = [
    "workflow", "trigger", "extract", "let", "if", "else", "for", "respond", "log", "fail", "test",
    "request", "expect", "true", "false", "null", "in", "as", "required", "default",
];

/// Whether `word` is a keyword that cannot be a name.
pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED.contains(&word)
}

/// Whether `name` can name a variable or a workflow: `[A-Za-z_][A-Za-z0-9_]*`, not a keyword.
pub(crate) fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !is_reserved(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_reserves_exactly_these_words() {
        let grammar = include_str!("../../grammar/wf.pest");
        let rule = grammar.split("reserved   = @{").nth(1).and_then(|r| r.split('}').next()).unwrap();
        let mut words: Vec<&str> = rule.split('"').skip(1).step_by(2).collect();
        let mut ours = RESERVED.to_vec();
        words.sort_unstable();
        ours.sort_unstable();
        assert_eq!(words, ours);
    }

    #[test]
    fn names() {
        assert!(is_name("order_2") && is_name("_x"));
        assert!(!is_name("2x") && !is_name("if") && !is_name("a-b") && !is_name(""));
    }
}
