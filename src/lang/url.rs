//! What a URL path and a trigger key may hold, for `check`, `wf new` and the served table alike.

/// Why `path` is not a URL path a workflow can serve, if it is not one.
pub(crate) fn path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("a path starts with `/`");
    }
    if path.contains(['?', '#']) {
        return Some("a path has no `?` or `#`");
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("a path has no spaces or control characters");
    }
    None
}

/// Whether `key` may stand in `/api/webhook:trigger/<key>`: letters, digits, `-_.~`.
pub(crate) fn is_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_keys() {
        assert_eq!(path_problem("/hooks/a"), None);
        assert!(path_problem("hooks").is_some());
        assert!(path_problem("/a?b").is_some());
        assert!(path_problem("/a b").is_some());
        assert!(is_key("a-b_c.d~1") && !is_key("a/b") && !is_key(""));
    }
}
