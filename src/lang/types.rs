//! Types: the `as` conversions of extractions, and the sets of JSON types the checker infers for
//! every expression.

use serde_json::Value;

/// An `as` type of an extraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

/// Each `as` type: its name and the JSON types a value converted to it holds.
const TABLE: [(Type, &str, Types); 6] = [
    (Type::String, "string", Types::STRING),
    (Type::Number, "number", Types::NUMBER),
    (Type::Integer, "integer", Types::NUMBER),
    (Type::Boolean, "boolean", Types::BOOL),
    (Type::Object, "object", Types::OBJECT),
    (Type::Array, "array", Types::ARRAY),
];

impl Type {
    pub const NAMES: [&'static str; 6] = ["string", "number", "integer", "boolean", "object", "array"];

    pub fn from_name(s: &str) -> Option<Type> {
        TABLE.iter().find(|(_, n, _)| *n == s).map(|(t, _, _)| *t)
    }

    pub fn as_str(self) -> &'static str {
        TABLE.iter().find(|(t, _, _)| *t == self).map_or("string", |(_, n, _)| n)
    }

    /// The JSON types a value converted to this type holds.
    pub fn types(self) -> Types {
        TABLE.iter().find(|(t, _, _)| *t == self).map_or(Types::ANY, |(_, _, s)| *s)
    }
}

/// A set of JSON types: what an expression may evaluate to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Types(u8);

impl Types {
    pub const NONE: Types = Types(0);
    pub const NULL: Types = Types(1);
    pub const BOOL: Types = Types(2);
    pub const NUMBER: Types = Types(4);
    pub const STRING: Types = Types(8);
    pub const ARRAY: Types = Types(16);
    pub const OBJECT: Types = Types(32);
    pub const ANY: Types = Types(63);

    const NAMES: [(Types, &'static str); 6] = [
        (Types::NUMBER, "a number"),
        (Types::STRING, "a string"),
        (Types::BOOL, "a boolean"),
        (Types::ARRAY, "an array"),
        (Types::OBJECT, "an object"),
        (Types::NULL, "null"),
    ];

    pub fn of(v: &Value) -> Types {
        match v {
            Value::Null => Types::NULL,
            Value::Bool(_) => Types::BOOL,
            Value::Number(_) => Types::NUMBER,
            Value::String(_) => Types::STRING,
            Value::Array(_) => Types::ARRAY,
            Value::Object(_) => Types::OBJECT,
        }
    }

    pub const fn or(self, other: Types) -> Types {
        Types(self.0 | other.0)
    }

    pub const fn and(self, other: Types) -> Types {
        Types(self.0 & other.0)
    }

    pub const fn without(self, other: Types) -> Types {
        Types(self.0 & !other.0)
    }

    /// Whether the sets share a type.
    pub const fn meets(self, other: Types) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// In words, leaving out null when something else is possible: what an operation that fails
    /// on null anyway is given ("a number" for a number or null).
    pub fn describe_value(self) -> String {
        let some = self.without(Types::NULL);
        if some.is_none() || self == Types::ANY {
            self.describe()
        } else {
            some.describe()
        }
    }

    /// In words: "a number", "a string or null", "any value".
    pub fn describe(self) -> String {
        if self == Types::ANY {
            return "any value".to_string();
        }
        let names: Vec<&str> = Types::NAMES.iter().filter(|(t, _)| self.meets(*t)).map(|(_, n)| *n).collect();
        match names.as_slice() {
            [] => "nothing".to_string(),
            [one] => (*one).to_string(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_describe_themselves() {
        for n in Type::NAMES {
            assert_eq!(Type::from_name(n).map(Type::as_str), Some(n));
        }
        assert_eq!(Type::from_name("float"), None);
        assert_eq!(Types::NUMBER.or(Types::NULL).describe(), "a number or null");
        assert_eq!(
            Types::STRING.or(Types::ARRAY).or(Types::OBJECT).describe(),
            "a string, an array or an object"
        );
        assert_eq!(Types::ANY.describe(), "any value");
        assert!(!Types::NUMBER.meets(Types::STRING));
    }
}
