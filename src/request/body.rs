//! Selective JSON body parsing. A workflow knows at compile time which body paths it reads; the
//! parser writes each of those values straight into its slot of the execution frame. Everything
//! else is still read and validated exactly as a full parse would validate it (malformed JSON,
//! nesting deeper than 128 or a number out of range anywhere is a `400`) but never built.

use crate::lang::ir::{Seg, Slot};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// The body paths a workflow reads, as a trie whose nodes name the slots that end there.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Need {
    pub slots: Vec<Slot>,
    pub children: Vec<(Seg, Need)>,
}

impl Need {
    pub fn add(&mut self, path: &[Seg], slot: Slot) {
        let Some((first, rest)) = path.split_first() else {
            self.slots.push(slot);
            return;
        };
        let i = match self.children.iter().position(|(s, _)| s == first) {
            Some(i) => i,
            None => {
                self.children.push((first.clone(), Need::default()));
                self.children.len() - 1
            }
        };
        if let Some((_, child)) = self.children.get_mut(i) {
            child.add(rest, slot);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.children.is_empty()
    }

    /// The children that read object member `key`, and those that read array element `i`.
    /// Usually one at most, but paths can name one member or element in several ways: `o.0` and
    /// `o["0"]` (keys, objects only) and `o[0]` (an index, which reads member `"0"` of an object
    /// too), or `o[0]` and `o[00]` (both element 0).
    fn for_key<'s, 'k>(&'s self, key: &'k str) -> impl Iterator<Item = &'s Need> + use<'s, 'k> {
        self.children.iter().filter_map(move |(s, n)| match s {
            Seg::Key(k) | Seg::Index(_, k) if k == key => Some(n),
            _ => None,
        })
    }

    fn for_index(&self, i: usize) -> impl Iterator<Item = &Need> {
        self.children.iter().filter_map(move |(s, n)| match s {
            Seg::Index(j, _) if *j == i => Some(n),
            _ => None,
        })
    }

    /// Fills `needs` (all reading the same value) from the value built once.
    fn fill_all<'n>(needs: impl Iterator<Item = &'n Need>, v: &Value, frame: &mut [Value]) {
        for need in needs {
            need.clear(frame);
            need.fill_slots(v, frame);
            need.fill_from(v, frame);
        }
    }

    fn max_index(&self) -> Option<usize> {
        self.children.iter().filter_map(|(s, _)| if let Seg::Index(i, _) = s { Some(*i) } else { None }).max()
    }

    /// Sets every slot of this subtree to `null` (a repeated key: the last one wins, as in JSON
    /// parsers that build the whole object).
    fn clear(&self, frame: &mut [Value]) {
        for s in &self.slots {
            if let Some(v) = frame.get_mut(*s as usize) {
                *v = Value::Null;
            }
        }
        for (_, c) in &self.children {
            c.clear(frame);
        }
    }

    /// Puts `v` into this node's own slots.
    fn fill_slots(&self, v: &Value, frame: &mut [Value]) {
        for s in &self.slots {
            if let Some(x) = frame.get_mut(*s as usize) {
                *x = v.clone();
            }
        }
    }

    /// Fills this subtree's slots from an already built value.
    fn fill_from(&self, v: &Value, frame: &mut [Value]) {
        for (seg, child) in &self.children {
            let next = match (v, seg) {
                (Value::Object(m), Seg::Key(k) | Seg::Index(_, k)) => m.get(k),
                (Value::Array(a), Seg::Index(i, _)) => a.get(*i),
                _ => None,
            };
            if let Some(next) = next {
                child.fill_slots(next, frame);
                child.fill_from(next, frame);
            }
        }
    }
}

/// Parses `bytes`, writing the value of every needed path into its slot of `frame`.
pub fn parse_into(bytes: &[u8], need: &Need, frame: &mut [Value]) -> Result<(), serde_json::Error> {
    // The whole body checked as UTF-8 in one pass (JSON outside strings is ASCII, so this is
    // what the parser would check string by string), then parsed as text, which checks nothing
    // twice. A body that is not UTF-8 is parsed as bytes, for the parser's own error and place.
    if let Ok(text) = std::str::from_utf8(bytes) {
        let mut de = serde_json::Deserializer::from_str(text);
        Fill { need, frame }.deserialize(&mut de)?;
        return de.end();
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Fill { need, frame }.deserialize(&mut de)?;
    de.end()
}

/// Visitor methods that take any JSON scalar (already validated by the parser) and build nothing.
macro_rules! accept_scalars {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    };
}

struct Fill<'a, 'f> {
    need: &'a Need,
    frame: &'f mut [Value],
}

impl<'de> DeserializeSeed<'de> for Fill<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if let Some((&last, others)) = self.need.slots.split_last() {
            let v: Value = serde::Deserialize::deserialize(d)?;
            self.need.fill_from(&v, self.frame);
            for s in others {
                if let Some(x) = self.frame.get_mut(*s as usize) {
                    *x = v.clone();
                }
            }
            if let Some(x) = self.frame.get_mut(last as usize) {
                *x = v;
            }
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

/// Matches an object key against the trie, allocating the key only when several children read
/// its member.
struct KeySeed<'a>(&'a Need);

enum Member<'a> {
    Unread,
    One(&'a Need),
    Many(String),
}

impl<'de, 'a> DeserializeSeed<'de> for KeySeed<'a> {
    type Value = Member<'a>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a> Visitor<'de> for KeySeed<'a> {
    type Value = Member<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let mut found = self.0.for_key(key);
        Ok(match (found.next(), found.next()) {
            (None, _) => Member::Unread,
            (Some(one), None) => Member::One(one),
            (Some(_), Some(_)) => Member::Many(key.to_string()),
        })
    }
}

impl<'de> Visitor<'de> for Fill<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(found) = map.next_key_seed(KeySeed(self.need))? {
            match found {
                Member::One(child) => {
                    child.clear(self.frame);
                    map.next_value_seed(Fill { need: child, frame: self.frame })?;
                }
                Member::Many(key) => {
                    // Several subtrees read this member: build it once and fill them all from it.
                    let v: Value = map.next_value()?;
                    Need::fill_all(self.need.for_key(&key), &v, self.frame);
                }
                Member::Unread => map.next_value_seed(Skip)?,
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let last = self.need.max_index();
        let mut i = 0;
        while last.is_some_and(|m| i <= m) {
            let mut found = self.need.for_index(i);
            let more = match (found.next(), found.next()) {
                (None, _) => seq.next_element_seed(Skip)?.is_some(),
                (Some(child), None) => {
                    seq.next_element_seed(Fill { need: child, frame: self.frame })?.is_some()
                }
                (Some(_), Some(_)) => match seq.next_element::<Value>()? {
                    Some(v) => {
                        Need::fill_all(self.need.for_index(i), &v, self.frame);
                        true
                    }
                    None => false,
                },
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    // A scalar where the paths expect an object or array: nothing there is read.
    accept_scalars!();
}

/// Reads a value nothing needs without building it. Unlike serde's `IgnoredAny` (which skips
/// without looking), it goes through `deserialize_any`, so a body is refused for exactly what
/// a full parse refuses it for: nesting over serde_json's limit of 128, or a number like `1e400`.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    accept_scalars!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::path;
    use crate::request::extract::lookup;

    /// Parses with the trie and checks every slot against a full parse and a path lookup.
    fn same_as_full(body: &[u8], paths: &[&str]) {
        let mut need = Need::default();
        for (i, p) in paths.iter().enumerate() {
            need.add(&path::parse(p).expect("path"), i as Slot);
        }
        let mut frame = vec![Value::Null; paths.len()];
        parse_into(body, &need, &mut frame).expect("parses");
        let full: Value = serde_json::from_slice(body).expect("full");
        for (i, p) in paths.iter().enumerate() {
            let expected = lookup(&full, &path::parse(p).expect("path")).cloned().unwrap_or(Value::Null);
            assert_eq!(frame[i], expected, "{p}");
        }
    }

    #[test]
    fn slots_get_exactly_what_a_full_parse_and_lookup_give() {
        let body = br#"{"data":{"status":"paid","amount":1250,"currency":"EUR"},"customer":{"email":"a@b.c"},"items":[{"sku":"A"},{"sku":"B","n":[1,2]}],"o":{"0":"zero"},"s":"str"}"#;
        same_as_full(
            body,
            &[
                "data.status",
                "data.amount",
                "items[1].sku",
                "customer",
                "customer.email",
                "missing.x",
                "o[0]",
                "s.x",
                "items[5]",
                "items",
                "items[1].n[1]",
            ],
        );
        same_as_full(br#"{"a":{"b":1},"a":{"c":2}}"#, &["a.b", "a.c"]);
        same_as_full(br#"[1,[2,3]]"#, &["[1][0]", "[0]"]);
        // One member named both as an index and as a key (found by the body fuzz target).
        let both = ["o[0]", "o.0", "o[\"0\"].x", "o[0].x", "o[1]"];
        same_as_full(br#"{"o":{"0":{"x":1}}}"#, &both);
        same_as_full(br#"{"o":[{"x":2},3]}"#, &both);
        same_as_full(br#"{"o":{"0":"zero"},"o":[{"x":3}]}"#, &both);
        // One element named by two indices (`[0]`, `[00]`).
        same_as_full(br#"[[1],[2]]"#, &["[0]", "[00]", "[1][0]", "[01][000]"]);
        same_as_full(br#"{"00":"key"}"#, &["[0]", "[00]", "00", "[\"00\"]"]);
    }

    #[test]
    fn malformed_json_is_still_an_error_where_it_is_not_read() {
        let mut need = Need::default();
        need.add(&path::parse("a").expect("path"), 0);
        let mut frame = vec![Value::Null];
        let bad = br#"{"a": 1, "b": {"c": [1, 2,, 3]}}"#;
        let err = parse_into(bad, &need, &mut frame).expect_err("malformed");
        let full = serde_json::from_slice::<Value>(bad).expect_err("malformed");
        assert_eq!((err.line(), err.column()), (full.line(), full.column()));
        assert!(parse_into(br#"{"a": 1} trailing"#, &need, &mut frame).is_err());
    }

    #[test]
    fn a_body_is_refused_for_exactly_what_a_full_parse_refuses() {
        let mut need = Need::default();
        need.add(&path::parse("a").expect("path"), 0);
        let mut frame = vec![Value::Null];
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let cases = [
            // Nesting: serde_json's limit is 128, read or not, and never the stack.
            deep(100_000),
            format!("{{\"a\":{}}}", deep(100_000)),
            format!("{{\"b\":{}}}", deep(100_000)),
            format!("{{\"b\":{}}}", deep(127)),
            format!("{{\"b\":{}}}", deep(128)),
            format!("{{\"a\":{}}}", deep(127)),
            // Numbers out of range for a double, read or not.
            r#"{"a":1e400}"#.to_string(),
            r#"{"b":1e400}"#.to_string(),
            r#"{"b":[-1e400]}"#.to_string(),
            r#"{"b":1e308,"a":2}"#.to_string(),
            // Escapes in skipped strings and keys.
            r#"{"b\u00e9":"\ud83d\ude00","a":1}"#.to_string(),
            r#"{"b":"\x"}"#.to_string(),
        ];
        for body in &cases {
            let full = serde_json::from_str::<Value>(body).is_ok();
            let ours = parse_into(body.as_bytes(), &need, &mut frame).is_ok();
            assert_eq!(ours, full, "{}", &body[..body.len().min(60)]);
        }
        // Bytes that are not UTF-8, in a string read, a string skipped, a key, and outside
        // strings: refused as a full parse of the bytes refuses them, at the same place.
        let bytes: [&[u8]; 5] = [
            b"{\"a\":\"\xff\"}",
            b"{\"b\":\"ok\xc3\x28\",\"a\":1}",
            b"{\"\xe2\x82\":1,\"a\":2}",
            b"{\"a\":1}\xff",
            "{\"b\":\"é€😀\",\"a\":\"ü\"}".as_bytes(),
        ];
        for body in bytes {
            let full = serde_json::from_slice::<Value>(body).map(|_| ()).map_err(|e| e.to_string());
            let ours = parse_into(body, &need, &mut frame).map_err(|e| e.to_string());
            assert_eq!(ours, full, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(frame[0], Value::String("ü".into()));
    }
}
