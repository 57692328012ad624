//! The functions a workflow may call, once: name, what each argument may be, what it gives, and a
//! line of documentation. The checker (arity, types, "did you mean"), the interpreter's dispatch
//! and the README's list come from this table.

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
}

/// How a call is lowered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// An ordinary function.
    Call(Builtin),
    /// `matches(s, "regex")`: the regex is a literal, compiled by the checker.
    Matches,
    /// `env("NAME")`: replaced by the variable's value when the workflow is loaded.
    Env,
}

/// One function.
#[derive(Debug)]
pub struct Function {
    pub name: &'static str,
    pub form: Form,
    /// What each argument may be without the call failing.
    pub params: &'static [Types],
    pub returns: Types,
    pub signature: &'static str,
    pub doc: &'static str,
}

const S: Types = Types::STRING;
const N: Types = Types::NUMBER;
const B: Types = Types::BOOL;
const ANY: Types = Types::ANY;
const COLLECTION: Types = Types::STRING.or(Types::ARRAY).or(Types::OBJECT);

/// Every function, in the order the README lists them.
pub const FUNCTIONS: [Function; 15] = [
    Function {
        name: "len",
        form: Form::Call(Builtin::Len),
        params: &[COLLECTION],
        returns: N,
        signature: "len(value)",
        doc: "characters of a string, elements of an array, keys of an object",
    },
    Function {
        name: "lower",
        form: Form::Call(Builtin::Lower),
        params: &[S],
        returns: S,
        signature: "lower(string)",
        doc: "the string in lower case",
    },
    Function {
        name: "upper",
        form: Form::Call(Builtin::Upper),
        params: &[S],
        returns: S,
        signature: "upper(string)",
        doc: "the string in upper case",
    },
    Function {
        name: "trim",
        form: Form::Call(Builtin::Trim),
        params: &[S],
        returns: S,
        signature: "trim(string)",
        doc: "the string without leading and trailing white space",
    },
    Function {
        name: "contains",
        form: Form::Call(Builtin::Contains),
        params: &[COLLECTION, ANY],
        returns: B,
        signature: "contains(haystack, needle)",
        doc: "whether an array holds the value, an object the key, a string the substring",
    },
    Function {
        name: "starts_with",
        form: Form::Call(Builtin::StartsWith),
        params: &[S, S],
        returns: B,
        signature: "starts_with(string, prefix)",
        doc: "whether the string starts with the prefix",
    },
    Function {
        name: "ends_with",
        form: Form::Call(Builtin::EndsWith),
        params: &[S, S],
        returns: B,
        signature: "ends_with(string, suffix)",
        doc: "whether the string ends with the suffix",
    },
    Function {
        name: "matches",
        form: Form::Matches,
        params: &[S.or(Types::NULL), S],
        returns: B,
        signature: "matches(string, \"regex\")",
        doc: "whether the string matches the literal regex (Rust `regex` syntax; null: false)",
    },
    Function {
        name: "number",
        form: Form::Call(Builtin::Number),
        params: &[N.or(S)],
        returns: N,
        signature: "number(value)",
        doc: "a number, or a numeric string parsed",
    },
    Function {
        name: "string",
        form: Form::Call(Builtin::String),
        params: &[ANY],
        returns: S,
        signature: "string(value)",
        doc: "a string as itself, any other value as JSON",
    },
    Function {
        name: "exists",
        form: Form::Call(Builtin::Exists),
        params: &[ANY],
        returns: B,
        signature: "exists(value)",
        doc: "whether the value is not null",
    },
    Function {
        name: "now",
        form: Form::Call(Builtin::Now),
        params: &[],
        returns: S,
        signature: "now()",
        doc: "the current UTC time as an RFC 3339 string, e.g. \"2026-01-01T00:00:00.000Z\"",
    },
    Function {
        name: "uuid",
        form: Form::Call(Builtin::Uuid),
        params: &[],
        returns: S,
        signature: "uuid()",
        doc: "a random v4 UUID",
    },
    Function {
        name: "xml_escape",
        form: Form::Call(Builtin::XmlEscape),
        params: &[S],
        returns: S,
        signature: "xml_escape(string)",
        doc: "the string with `&`, `<`, `>`, `\"` and `'` escaped, for XML and HTML answers",
    },
    Function {
        name: "env",
        form: Form::Env,
        params: &[S],
        returns: S,
        signature: "env(\"NAME\")",
        doc: "the environment variable NAME, read when the workflow is loaded",
    },
];

/// The function called `name`.
pub fn find(name: &str) -> Option<&'static Function> {
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
        assert_eq!(calls.len(), 13);
        for (i, b) in calls.iter().enumerate() {
            assert!(!calls[..i].contains(b), "{b:?} twice");
        }
        for f in &FUNCTIONS {
            assert!(f.signature.starts_with(f.name), "{}", f.name);
            assert_eq!(f.signature.matches(',').count() + usize::from(!f.params.is_empty()), f.params.len());
        }
    }
}
