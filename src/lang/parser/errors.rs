//! Syntax errors in words: what was expected, the common slips, a "did you mean".

use super::*;

/// Turns pest's failure into a diagnostic that says, in words, what was expected.
pub(super) fn syntax_error(file: &Arc<SourceFile>, e: &pest::error::Error<Rule>) -> Diagnostic {
    let text = file.text.as_str();
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut words: Vec<&'static str> = Vec::new();
    let mut in_string = false;
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            if matches!(r, Rule::str_text | Rule::str_escape | Rule::interp) {
                in_string = true;
            }
            if let Some(w) = describe(*r) {
                if !words.contains(&w) {
                    words.push(w);
                }
            }
        }
    }
    let expected = join_or(&words);
    let rest = text.get(pos..).unwrap_or("");
    let at_eof = rest.trim().is_empty();
    let found = found_token(rest);
    let end = (pos + found.len().max(1)).min(text.len().max(pos));
    let span = Span::new(pos, end);
    if in_string && (at_eof || rest.starts_with('\n') || rest.starts_with('\r')) {
        return Diagnostic::new(Kind::Syntax, file, span, "unterminated string")
            .label("the string is not closed before the end of the line")
            .help("close it with `\"`; write a line break inside a string as `\\n`");
    }
    if let Some(d) = common_slip(file, text, pos, found) {
        return d;
    }
    let (message, label) = if at_eof {
        (
            if expected.is_empty() {
                "unexpected end of file".to_string()
            } else {
                format!("unexpected end of file, expected {expected}")
            },
            "the file ends here".to_string(),
        )
    } else {
        let found_desc = if found.starts_with('"') { "a string".to_string() } else { format!("`{found}`") };
        (
            if expected.is_empty() {
                format!("unexpected {found_desc}")
            } else {
                format!("expected {expected}, found {found_desc}")
            },
            format!("unexpected {found_desc}"),
        )
    };
    let help = if crate::lang::keywords::is_reserved(found) && words.contains(&"a name") {
        format!("`{found}` is a keyword and cannot be used as a name; pick another name")
    } else if at_eof {
        "a `{` may be missing its `}`".to_string()
    } else if in_string {
        "escapes are `\\n`, `\\t`, `\\r`, `\\\"`, `\\\\`, `\\$` and `\\u{...}`".to_string()
    } else if let Some(meant) = closest_word(found, &words) {
        format!("did you mean `{meant}`?")
    } else {
        "see the language reference in docs/src/language.md".to_string()
    };
    let d = Diagnostic::new(Kind::Syntax, file, span, message).label(label).help(help);
    // At the end of the file, the `{` left open is shown too.
    match prescan::scan(text).unclosed {
        Some(open) if at_eof => d.also(file, open, "this `{` is never closed"),
        _ => d,
    }
}

/// The expected word a misspelt one most likely meant (`triger` → `trigger`, `bdy` → `body`):
/// within two edits, and fewer than the word has letters.
pub(super) fn closest_word(found: &str, expected: &[&'static str]) -> Option<&'static str> {
    if found.is_empty() || !found.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    // A description may name several words: "`sync` or `async`".
    expected
        .iter()
        .flat_map(|w| w.split('`').skip(1).step_by(2))
        .map(|w| (strsim::damerau_levenshtein(found, w), w))
        .filter(|(d, w)| *d <= 2 && *d < found.len().min(w.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, w)| w)
}

/// A syntax error that is a known slip gets its own diagnostic: `total = total + 1` (names are
/// bound once) and `respond "200"` (a status is a number).
pub(super) fn common_slip(file: &Arc<SourceFile>, text: &str, pos: usize, found: &str) -> Option<Diagnostic> {
    let rest = text.get(pos..)?;
    let is_name = found.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !crate::lang::keywords::is_reserved(found);
    if is_name {
        let after = rest.get(found.len()..)?.trim_start();
        if after.starts_with('=') && !after.starts_with("==") && bound_before(text.get(..pos)?, found) {
            let span = Span::new(pos, pos + found.len());
            let d = Diagnostic::new(
                Kind::Reassignment,
                file,
                span,
                format!("`{found}` cannot be assigned: a name is bound once, with `let`"),
            )
            .label("an assignment")
            .help(format!("bind the new value to a new name, e.g. `let {found}_2 = ...`"));
            return Some(d);
        }
    }
    let before = text.get(..pos)?.trim_end();
    let digits = found.strip_prefix('"').and_then(|f| f.strip_suffix('"'));
    if before.ends_with("respond")
        && digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    {
        let status = digits.unwrap_or_default();
        let span = Span::new(pos, pos + found.len());
        let d = Diagnostic::new(Kind::QuotedStatus, file, span, "a status is a number, not a string")
            .label("a quoted status")
            .help(format!("write `respond {status}` without quotes"));
        return Some(d);
    }
    None
}

/// Whether `name` is bound (by `let` or an extraction) somewhere in `before`.
pub(super) fn bound_before(before: &str, name: &str) -> bool {
    let words = |s: &str| {
        s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    before.lines().any(|line| {
        let w = words(line);
        let t = line.trim_start();
        (w.first().is_some_and(|f| f == "let") && w.get(1).is_some_and(|n| n == name))
            || (w.first().is_some_and(|f| f == name)
                && t.get(name.len()..).is_some_and(|r| r.trim_start().starts_with('=')))
    })
}

pub(super) fn found_token(rest: &str) -> &str {
    let mut chars = rest.char_indices();
    let Some((_, first)) = chars.next() else {
        return "";
    };
    if first.is_ascii_alphanumeric() || first == '_' {
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        return rest.get(..end).unwrap_or(rest);
    }
    if first == '"' {
        let after = rest.get(1..).unwrap_or("");
        let end = after.find(['"', '\n']).map_or(rest.len(), |i| i + 2).min(rest.len());
        return rest.get(..end).unwrap_or(rest);
    }
    rest.get(..first.len_utf8()).unwrap_or(rest)
}

pub(super) fn join_or(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

pub(super) fn describe(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of file",
        Rule::workflow | Rule::k_workflow => "`workflow`",
        Rule::test | Rule::k_test => "`test`",
        Rule::trigger | Rule::k_trigger => "`trigger`",
        Rule::k_webhook => "`webhook`",
        Rule::extract | Rule::k_extract => "`extract`",
        Rule::let_stmt | Rule::k_let => "`let`",
        Rule::if_stmt | Rule::k_if => "`if`",
        Rule::for_stmt | Rule::k_for => "`for`",
        Rule::k_in => "`in`",
        Rule::comprehension => "an expression",
        Rule::else_if | Rule::else_block | Rule::k_else => "`else`",
        Rule::respond | Rule::k_respond => "`respond`",
        Rule::log_stmt | Rule::k_log => "`log`",
        Rule::fail_stmt | Rule::k_fail => "`fail`",
        Rule::t_path | Rule::k_path => "`path`",
        Rule::t_key | Rule::k_key => "`key`",
        Rule::t_mode | Rule::k_mode => "`mode`",
        Rule::t_concurrency | Rule::k_concurrency => "`concurrency`",
        Rule::t_dedupe | Rule::k_dedupe => "`dedupe`",
        Rule::t_debounce | Rule::k_debounce => "`debounce`",
        Rule::k_max => "`max`",
        Rule::t_order | Rule::k_order => "`order`",
        Rule::k_by => "`by`",
        Rule::t_rate | Rule::k_rate => "`rate`",
        Rule::k_per => "`per`",
        Rule::k_parallel => "`parallel`",
        Rule::k_window => "`window`",
        Rule::mode_name => "`sync` or `async`",
        Rule::k_sync => "`sync`",
        Rule::k_async => "`async`",
        Rule::t_auth | Rule::k_auth | Rule::req_auth => "`auth`",
        Rule::k_basic => "`basic`",
        Rule::auth_user | Rule::k_user => "`user`",
        Rule::t_method | Rule::k_method => "`method`",
        Rule::t_allow | Rule::k_allow => "`allow`",
        Rule::k_ip => "`ip`",
        Rule::t_cors | Rule::k_cors => "`cors`",
        Rule::cors_origin | Rule::k_origin => "`origin`",
        Rule::auth_scheme => "an auth form",
        Rule::auth_header => "`header`",
        Rule::auth_hmac | Rule::k_hmac => "`hmac`",
        Rule::auth_tolerance | Rule::k_tolerance => "`tolerance`",
        Rule::auth_url | Rule::k_url => "`url`",
        Rule::hmac_header => "`header`",
        Rule::hmac_prefix | Rule::k_prefix => "`prefix`",
        Rule::hmac_algorithm | Rule::k_algorithm => "`algorithm`",
        Rule::hmac_encoding | Rule::k_encoding => "`encoding`",
        Rule::hmac_secret | Rule::k_secret => "`secret`",
        Rule::hmac_signed | Rule::k_signed => "`signed`",
        Rule::duration => "a duration (`5m`, `30s`)",
        Rule::req_form | Rule::k_form => "`form`",
        Rule::req_sign | Rule::k_sign => "`sign`",
        Rule::auth_password | Rule::k_password => "`password`",
        Rule::field => "a field (`name = header|query|body \"path\"`)",
        Rule::source => "`header`, `query`, `body` or `request`",
        Rule::k_header | Rule::respond_header | Rule::req_header => "`header`",
        Rule::k_query => "`query`",
        Rule::k_body => "`body`",
        Rule::as_type | Rule::k_as => "`as`",
        Rule::k_required => "`required`",
        Rule::default_value | Rule::k_default => "`default`",
        Rule::status => "a status code",
        Rule::respond_text | Rule::req_text | Rule::k_text => "`text`",
        Rule::req_bytes | Rule::k_bytes => "`bytes`",
        Rule::respond_json | Rule::req_json | Rule::k_json => "`json`",
        Rule::req_content_type | Rule::k_content_type => "`content_type`",
        Rule::request | Rule::k_request => "`request`",
        Rule::method => "an HTTP method (`POST`, `GET`, ...)",
        Rule::expect_stmt | Rule::k_expect => "`expect`",
        Rule::http_call | Rule::mock_http | Rule::k_http => "`http`",
        Rule::run_call | Rule::mock_run | Rule::k_run => "`run`",
        Rule::e_timeout | Rule::k_timeout => "`timeout`",
        Rule::e_retry | Rule::k_retry => "`retry`",
        Rule::count => "a whole number",
        Rule::run_env | Rule::k_env => "`env`",
        Rule::run_stdin | Rule::k_stdin => "`stdin`",
        Rule::run_dir | Rule::k_dir => "`dir`",
        Rule::mock | Rule::k_mock => "`mock`",
        Rule::mock_code | Rule::k_code => "`code`",
        Rule::mock_stdout | Rule::k_stdout => "`stdout`",
        Rule::mock_stderr | Rule::k_stderr => "`stderr`",
        Rule::expr
        | Rule::operand
        | Rule::paren
        | Rule::array
        | Rule::object
        | Rule::call
        | Rule::number
        | Rule::k_true
        | Rule::k_false
        | Rule::k_null
        | Rule::op_not
        | Rule::op_neg => "an expression",
        Rule::op_coalesce
        | Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_lt
        | Rule::op_le
        | Rule::op_gt
        | Rule::op_ge
        | Rule::op_in
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_mod => "an operator",
        Rule::field_access => "`.`",
        Rule::index_access => "`[`",
        Rule::string => "a string",
        Rule::str_text | Rule::str_escape | Rule::interp => "`\"`",
        Rule::ident | Rule::ident_any => "a name",
        Rule::obj_entry => "a key",
        Rule::lbrace
        | Rule::block
        | Rule::respond_block
        | Rule::request_block
        | Rule::http_block
        | Rule::run_block => "`{`",
        Rule::rbrace => "`}`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::comma => "`,`",
        Rule::colon => "`:`",
        Rule::assign => "`=`",
        _ => return None,
    })
}
