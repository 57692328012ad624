//! The functions a workflow may call, once: name, what each argument may be, what it gives, and a
//! line of documentation. The checker (arity, types, "did you mean"), the interpreter's dispatch
//! and the list in docs/src/language.md come from this table.

use crate::lang::types::Types;

/// A function the interpreter runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Len,
    Lower,
    Upper,
    Trim,
    Contains,
    StartsWith,
    EndsWith,
    Number,
    String,
    Exists,
    Now,
    Uuid,
    XmlEscape,
    Split,
    Join,
    Replace,
    Slice,
    Keys,
    Values,
    Sum,
    Min,
    Max,
    Any,
    All,
    JsonEncode,
    JsonDecode,
    Base64Encode,
    Base64Decode,
    UrlEncode,
    Sha256,
    HmacSha256,
    UnixTime,
    SecureEq,
}

/// How a call is lowered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// An ordinary function.
    Call(Builtin),
    /// `matches(s, "regex")`: the regex is a literal, compiled by the checker.
    Matches,
    /// `env("NAME")`: replaced by the variable's value when the workflow is loaded.
    Env,
    /// `secret("NAME")`: a secret, read when the workflow is loaded.
    Secret,
}

/// One function.
#[derive(Debug)]
pub(crate) struct Function {
    pub name: &'static str,
    pub form: Form,
    /// What each argument may be without the call failing.
    pub params: &'static [Types],
    /// How many of the last `params` may be left out (`slice(s, start)`).
    pub optional: usize,
    pub returns: Types,
    pub signature: &'static str,
    pub doc: &'static str,
    /// A use of it; for the functions of expressions, an expression that is true (a test holds
    /// each to that, and the docs show them).
    pub example: &'static str,
}

const S: Types = Types::STRING;
const N: Types = Types::NUMBER;
const B: Types = Types::BOOL;
const ANY: Types = Types::ANY;
const COLLECTION: Types = Types::STRING.or(Types::ARRAY).or(Types::OBJECT);
const A: Types = Types::ARRAY;
const O: Types = Types::OBJECT;

/// Every function's reference row (signature, what it does, an example), in the order the
/// docs list them.
pub fn reference() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    FUNCTIONS.iter().map(|f| (f.signature, f.doc, f.example))
}

/// Every function, in the order the docs list them.
pub(crate) const FUNCTIONS: [Function; 36] = [
    Function {
        name: "len",
        form: Form::Call(Builtin::Len),
        optional: 0,
        params: &[COLLECTION],
        returns: N,
        signature: "len(value)",
        doc: "characters of a string, elements of an array, keys of an object",
        example: "len(\"héllo\") == 5",
    },
    Function {
        name: "lower",
        form: Form::Call(Builtin::Lower),
        optional: 0,
        params: &[S],
        returns: S,
        signature: "lower(string)",
        doc: "the string in lower case",
        example: "lower(\"PAID\") == \"paid\"",
    },
    Function {
        name: "upper",
        form: Form::Call(Builtin::Upper),
        optional: 0,
        params: &[S],
        returns: S,
        signature: "upper(string)",
        doc: "the string in upper case",
        example: "upper(\"usd\") == \"USD\"",
    },
    Function {
        name: "trim",
        form: Form::Call(Builtin::Trim),
        optional: 0,
        params: &[S],
        returns: S,
        signature: "trim(string)",
        doc: "the string without leading and trailing white space",
        example: "trim(\"  main \\n\") == \"main\"",
    },
    Function {
        name: "contains",
        form: Form::Call(Builtin::Contains),
        optional: 0,
        params: &[COLLECTION, ANY],
        returns: B,
        signature: "contains(haystack, needle)",
        doc: "whether an array holds the value, an object the key, a string the substring",
        example: "contains([\"a\", \"b\"], \"b\")",
    },
    Function {
        name: "starts_with",
        form: Form::Call(Builtin::StartsWith),
        optional: 0,
        params: &[S, S],
        returns: B,
        signature: "starts_with(string, prefix)",
        doc: "whether the string starts with the prefix",
        example: "starts_with(\"refs/heads/main\", \"refs/heads/\")",
    },
    Function {
        name: "ends_with",
        form: Form::Call(Builtin::EndsWith),
        optional: 0,
        params: &[S, S],
        returns: B,
        signature: "ends_with(string, suffix)",
        doc: "whether the string ends with the suffix",
        example: "ends_with(\"invoice.pdf\", \".pdf\")",
    },
    Function {
        name: "matches",
        form: Form::Matches,
        optional: 0,
        params: &[S.or(Types::NULL), S],
        returns: B,
        signature: "matches(string, \"regex\")",
        doc: "whether the string matches the literal regex (Rust `regex` syntax; null: false)",
        example: "matches(\"evt_1NG8\", \"^evt_[A-Za-z0-9]+$\")",
    },
    Function {
        name: "number",
        form: Form::Call(Builtin::Number),
        optional: 0,
        params: &[N.or(S)],
        returns: N,
        signature: "number(value)",
        doc: "a number, or a numeric string parsed",
        example: "number(\"12.5\") == 12.5",
    },
    Function {
        name: "string",
        form: Form::Call(Builtin::String),
        optional: 0,
        params: &[ANY],
        returns: S,
        signature: "string(value)",
        doc: "a string as itself, any other value as JSON",
        example: "string({ ok: true }) == \"{\\\"ok\\\":true}\"",
    },
    Function {
        name: "exists",
        form: Form::Call(Builtin::Exists),
        optional: 0,
        params: &[ANY],
        returns: B,
        signature: "exists(value)",
        doc: "whether the value is not null",
        example: "!exists(null)",
    },
    Function {
        name: "now",
        form: Form::Call(Builtin::Now),
        optional: 0,
        params: &[],
        returns: S,
        signature: "now()",
        doc: "the current UTC time as an RFC 3339 string, e.g. \"2026-01-01T00:00:00.000Z\"",
        example: "ends_with(now(), \"Z\")",
    },
    Function {
        name: "uuid",
        form: Form::Call(Builtin::Uuid),
        optional: 0,
        params: &[],
        returns: S,
        signature: "uuid()",
        doc: "a random v4 UUID",
        example: "len(uuid()) == 36",
    },
    Function {
        name: "xml_escape",
        form: Form::Call(Builtin::XmlEscape),
        optional: 0,
        params: &[S],
        returns: S,
        signature: "xml_escape(string)",
        doc: "the string with `&`, `<`, `>`, `\"` and `'` escaped, for XML and HTML answers",
        example: "xml_escape(\"<b>\") == \"&lt;b&gt;\"",
    },
    Function {
        name: "split",
        form: Form::Call(Builtin::Split),
        optional: 0,
        params: &[S, S],
        returns: A,
        signature: "split(string, separator)",
        doc: "the parts of the string between separators",
        example: "split(\"a,b,c\", \",\") == [\"a\", \"b\", \"c\"]",
    },
    Function {
        name: "join",
        form: Form::Call(Builtin::Join),
        optional: 0,
        params: &[A, S],
        returns: S,
        signature: "join(array, separator)",
        doc: "the elements rendered as text, with the separator between them",
        example: "join([\"a\", 1, true], \"-\") == \"a-1-true\"",
    },
    Function {
        name: "replace",
        form: Form::Call(Builtin::Replace),
        optional: 0,
        params: &[S, S, S],
        returns: S,
        signature: "replace(string, from, to)",
        doc: "the string with every occurrence of `from` replaced",
        example: "replace(\"a-b-c\", \"-\", \"/\") == \"a/b/c\"",
    },
    Function {
        name: "slice",
        form: Form::Call(Builtin::Slice),
        optional: 1,
        params: &[S.or(A), N, N],
        returns: S.or(A),
        signature: "slice(string_or_array, start, end)",
        doc:
            "characters or elements from start to end (exclusive; end optional; negative counts from the end)",
        example: "slice(\"refs/heads/main\", 11) == \"main\" && slice([1, 2, 3], -2) == [2, 3]",
    },
    Function {
        name: "keys",
        form: Form::Call(Builtin::Keys),
        optional: 0,
        params: &[O],
        returns: A,
        signature: "keys(object)",
        doc: "the object's keys, in order",
        example: "keys({ a: 1, b: 2 }) == [\"a\", \"b\"]",
    },
    Function {
        name: "values",
        form: Form::Call(Builtin::Values),
        optional: 0,
        params: &[O],
        returns: A,
        signature: "values(object)",
        doc: "the object's values, in order",
        example: "values({ a: 1, b: 2 }) == [1, 2]",
    },
    Function {
        name: "sum",
        form: Form::Call(Builtin::Sum),
        optional: 0,
        params: &[A],
        returns: N,
        signature: "sum(array)",
        doc: "the sum of the numbers (of integers: an integer)",
        example: "sum([1, 2, 3.5]) == 6.5",
    },
    Function {
        name: "min",
        form: Form::Call(Builtin::Min),
        optional: 0,
        params: &[A],
        returns: ANY,
        signature: "min(array)",
        doc: "the smallest number or string (null for an empty array)",
        example: "min([3, 1, 2]) == 1",
    },
    Function {
        name: "max",
        form: Form::Call(Builtin::Max),
        optional: 0,
        params: &[A],
        returns: ANY,
        signature: "max(array)",
        doc: "the largest number or string (null for an empty array)",
        example: "max([\"a\", \"c\", \"b\"]) == \"c\"",
    },
    Function {
        name: "any",
        form: Form::Call(Builtin::Any),
        optional: 0,
        params: &[A],
        returns: B,
        signature: "any(array)",
        doc: "whether some element is truthy (false for an empty array)",
        example: "any([false, null, 1])",
    },
    Function {
        name: "all",
        form: Form::Call(Builtin::All),
        optional: 0,
        params: &[A],
        returns: B,
        signature: "all(array)",
        doc: "whether every element is truthy (true for an empty array)",
        example: "all([])",
    },
    Function {
        name: "json_encode",
        form: Form::Call(Builtin::JsonEncode),
        optional: 0,
        params: &[ANY],
        returns: S,
        signature: "json_encode(value)",
        doc: "the value as compact JSON text, keys in their order",
        example: "json_encode({ a: [1, \"x\"] }) == \"{\\\"a\\\":[1,\\\"x\\\"]}\"",
    },
    Function {
        name: "json_decode",
        form: Form::Call(Builtin::JsonDecode),
        optional: 0,
        params: &[S],
        returns: ANY,
        signature: "json_decode(string)",
        doc: "the value the JSON text holds",
        example: "json_decode(\"{\\\"a\\\":1}\").a == 1",
    },
    Function {
        name: "base64_encode",
        form: Form::Call(Builtin::Base64Encode),
        optional: 0,
        params: &[S],
        returns: S,
        signature: "base64_encode(string)",
        doc: "standard base64 with padding",
        example: "base64_encode(\"hi\") == \"aGk=\"",
    },
    Function {
        name: "base64_decode",
        form: Form::Call(Builtin::Base64Decode),
        optional: 0,
        params: &[S],
        returns: S,
        signature: "base64_decode(string)",
        doc: "the text standard base64 holds",
        example: "base64_decode(\"aGk=\") == \"hi\"",
    },
    Function {
        name: "url_encode",
        form: Form::Call(Builtin::UrlEncode),
        optional: 0,
        params: &[S],
        returns: S,
        signature: "url_encode(string)",
        doc: "percent-encoded, all but A-Za-z0-9-._~",
        example: "url_encode(\"a b&c\") == \"a%20b%26c\"",
    },
    Function {
        name: "sha256",
        form: Form::Call(Builtin::Sha256),
        optional: 0,
        params: &[S],
        returns: S,
        signature: "sha256(string)",
        doc: "the SHA-256 of the text, in hex",
        example: "sha256(\"\") == \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"",
    },
    Function {
        name: "hmac_sha256",
        form: Form::Call(Builtin::HmacSha256),
        optional: 0,
        params: &[S, S],
        returns: S,
        signature: "hmac_sha256(key, string)",
        doc: "the HMAC-SHA256 of the text with the key, in hex",
        example: "hmac_sha256(\"key\", \"data\") == \"5031fe3d989c6d1537a013fa6e739da23463fdaec3b70137d828e36ace221bd0\"",
    },
    Function {
        name: "unix_time",
        form: Form::Call(Builtin::UnixTime),
        optional: 0,
        params: &[],
        returns: N,
        signature: "unix_time()",
        doc: "the current time in whole seconds since 1970",
        example: "unix_time() > 1700000000",
    },
    Function {
        name: "secure_eq",
        form: Form::Call(Builtin::SecureEq),
        optional: 0,
        params: &[S, S],
        returns: B,
        signature: "secure_eq(a, b)",
        doc: "constant-time string equality",
        example: "secure_eq(\"a\", \"a\")",
    },
    Function {
        name: "secret",
        form: Form::Secret,
        optional: 0,
        params: &[S],
        returns: S,
        signature: "secret(\"NAME\")",
        doc: "the secret NAME: the environment variable, else the file NAME in $CREDENTIALS_DIRECTORY or --secrets-dir; it may reach only auth settings, `http` URLs, headers and bodies, `run` env and stdin, hmac_sha256(), sha256() and secure_eq()",
        example: "auth bearer secret(\"API_TOKEN\")",
    },
    Function {
        name: "env",
        form: Form::Env,
        optional: 0,
        params: &[S],
        returns: S,
        signature: "env(\"NAME\")",
        doc: "the environment variable NAME, read when the workflow is loaded",
        example: "x = header \"X\" default env(\"DEFAULT_X\")",
    },
];

/// The function called `name`.
pub(crate) fn find(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_has_one_entry() {
        let calls: Vec<Builtin> = FUNCTIONS
            .iter()
            .filter_map(|f| if let Form::Call(b) = f.form { Some(b) } else { None })
            .collect();
        assert_eq!(calls.len(), 33);
        for (i, b) in calls.iter().enumerate() {
            assert!(!calls[..i].contains(b), "{b:?} twice");
        }
        for f in &FUNCTIONS {
            assert!(f.signature.starts_with(f.name), "{}", f.name);
            let commas = f.signature.matches(',').count() + usize::from(!f.params.is_empty());
            assert_eq!(commas, f.params.len(), "{}", f.name);
        }
    }
}
