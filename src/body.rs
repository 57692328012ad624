//! Selective JSON body parsing. A workflow knows at compile time which body paths it reads; the
//! body is parsed into a tree holding only those paths. Everything else is still read and
//! validated (malformed JSON anywhere is a `400`) but never built.

use crate::ir::Seg;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// The body paths a workflow reads, as a trie.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Need {
    /// A path ends here: keep the whole value.
    pub whole: bool,
    pub children: Vec<(Seg, Need)>,
}

impl Need {
    pub fn add(&mut self, path: &[Seg]) {
        let Some((first, rest)) = path.split_first() else {
            self.whole = true;
            return;
        };
        let i = match self.children.iter().position(|(s, _)| s == first) {
            Some(i) => i,
            None => {
                self.children.push((first.clone(), Need::default()));
                self.children.len() - 1
            }
        };
        self.children[i].1.add(rest);
    }

    pub fn is_empty(&self) -> bool {
        !self.whole && self.children.is_empty()
    }

    fn child_for_key(&self, key: &str) -> Option<&Need> {
        self.children.iter().find_map(|(s, n)| match s {
            Seg::Key(k) | Seg::Index(_, k) if k == key => Some(n),
            _ => None,
        })
    }

    fn child_for_index(&self, i: usize) -> Option<&Need> {
        self.children.iter().find_map(|(s, n)| match s {
            Seg::Index(j, _) if *j == i => Some(n),
            _ => None,
        })
    }

    fn max_index(&self) -> Option<usize> {
        self.children.iter().filter_map(|(s, _)| if let Seg::Index(i, _) = s { Some(*i) } else { None }).max()
    }
}

/// Parses `bytes` keeping only what `need` asks for.
pub fn parse(bytes: &[u8], need: &Need) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = need.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

impl<'de> DeserializeSeed<'de> for &Need {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.whole {
            return serde::Deserialize::deserialize(d);
        }
        d.deserialize_any(Partial(self))
    }
}

struct Partial<'a>(&'a Need);

/// Matches an object key against the trie without allocating it.
struct KeySeed<'a>(&'a Need);

impl<'de, 'a> DeserializeSeed<'de> for KeySeed<'a> {
    type Value = Option<(&'a Need, String)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a> Visitor<'de> for KeySeed<'a> {
    type Value = Option<(&'a Need, String)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.child_for_key(key).map(|n| (n, key.to_string())))
    }
}

impl<'de> Visitor<'de> for Partial<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(found) = map.next_key_seed(KeySeed(self.0))? {
            match found {
                Some((need, key)) => {
                    let v = map.next_value_seed(need)?;
                    out.insert(key, v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let last = self.0.max_index();
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let wanted = last.is_some_and(|m| i <= m);
            if !wanted {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                break;
            }
            let got = match self.0.child_for_index(i) {
                Some(need) => seq.next_element_seed(need)?,
                None => seq.next_element::<IgnoredAny>()?.map(|_| Value::Null),
            };
            match got {
                Some(v) => out.push(v),
                None => break,
            }
            i += 1;
        }
        Ok(Value::Array(out))
    }

    // A scalar where the paths expect an object or array: nothing there is read.
    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::lookup;
    use crate::path;
    use serde_json::json;

    fn need(paths: &[&str]) -> Need {
        let mut n = Need::default();
        for p in paths {
            n.add(&path::parse(p).expect("path"));
        }
        n
    }

    #[test]
    fn keeps_exactly_what_the_paths_read() {
        let body = br#"{"data":{"status":"paid","amount":1250,"currency":"EUR"},"customer":{"email":"a@b.c"},"items":[{"sku":"A"},{"sku":"B","n":[1,2]}]}"#;
        let paths = ["data.status", "data.amount", "items[1].sku", "customer", "missing.x"];
        let partial = parse(body, &need(&paths)).expect("parses");
        assert_eq!(
            partial,
            json!({"data": {"status": "paid", "amount": 1250}, "customer": {"email": "a@b.c"}, "items": [null, {"sku": "B"}]})
        );
        let full: Value = serde_json::from_slice(body).expect("full");
        for p in paths.iter().chain(["data.currency", "items[0].sku", "data.status.x"].iter()) {
            let segs = path::parse(p).expect("path");
            if paths.contains(p) {
                assert_eq!(lookup(&partial, &segs), lookup(&full, &segs), "{p}");
            }
        }
    }

    #[test]
    fn malformed_json_is_still_an_error_where_it_is_not_read() {
        let n = need(&["a"]);
        let bad = br#"{"a": 1, "b": {"c": [1, 2,, 3]}}"#;
        let err = parse(bad, &n).expect_err("malformed");
        let full = serde_json::from_slice::<Value>(bad).expect_err("malformed");
        assert_eq!((err.line(), err.column()), (full.line(), full.column()));
        assert!(parse(br#"{"a": 1} trailing"#, &n).is_err());
        // Unread values are skipped without recursion, so deep nesting there is harmless...
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep.as_bytes(), &n).is_ok());
        // ...and a read value is bounded by serde_json's recursion limit, never the stack.
        let deep_read = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep_read.as_bytes(), &n).is_err());
    }

    #[test]
    fn keys_matching_index_segments_and_scalars_in_the_way() {
        let n = need(&["o[0]", "s.x"]);
        assert_eq!(
            parse(br#"{"o":{"0":"zero","1":"one"},"s":"str"}"#, &n).expect("ok"),
            json!({"o": {"0": "zero"}, "s": null})
        );
    }
}
