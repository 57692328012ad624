//! `dedupe` keys kept in memory, for `--store memory`. Keys expire without a scan: a min-heap orders them by
//! expiry, and each claim takes out the keys that expired since the last one (amortised
//! O(log n)); memory holds the keys within their window, no more.

use crate::store::{self, Claim};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// A claimed key in memory: the execution that claimed it, when it expires, its sync answer.
type Held = (String, i64, Option<Value>);

/// A delivery's key within its workflow.
type Name = (String, String);

#[derive(Default)]
struct Claimed {
    keys: HashMap<Name, Held>,
    /// Every claim's expiry, soonest first (a key claimed again or let go leaves an entry that
    /// no longer matches its key's expiry: skipped when it comes up).
    expiries: BinaryHeap<Reverse<(i64, Name)>>,
}

impl Claimed {
    /// Takes out the keys that expired by `now`.
    fn expire(&mut self, now: i64) {
        while let Some(Reverse((at, _))) = self.expiries.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, name))) = self.expiries.pop() else { break };
            if self.keys.get(&name).is_some_and(|(_, expires, _)| *expires == at) {
                self.keys.remove(&name);
            }
        }
    }
}

/// `dedupe` keys kept in memory: they last as long as the process (the store's lock guards them).
#[derive(Default)]
pub(super) struct Keys(Claimed);

impl Keys {
    /// The executions that claimed `key` (in any workflow), newest claim first.
    pub(super) fn keyed(&self, key: &str) -> Vec<String> {
        let mut found: Vec<(i64, String)> = self
            .0
            .keys
            .iter()
            .filter(|((_, k), _)| k == key)
            .map(|(_, (id, expires, _))| (*expires, id.clone()))
            .collect();
        found.sort_by(|a, b| b.cmp(a));
        found.into_iter().take(50).map(|(_, id)| id).collect()
    }

    pub(super) fn claim(&mut self, k: store::Key) -> Claim {
        let claimed = &mut self.0;
        let now = store::now_ms();
        claimed.expire(now);
        let name = (k.workflow, k.key);
        match claimed.keys.get(&name) {
            Some((of, expires, answer)) if *expires > now => {
                Claim::Duplicate { of: of.clone(), answer: answer.clone() }
            }
            _ => {
                claimed.expiries.push(Reverse((k.expires_ms, name.clone())));
                claimed.keys.insert(name, (k.id, k.expires_ms, None));
                Claim::First
            }
        }
    }

    pub(super) fn release(&mut self, k: store::Key) {
        let name = (k.workflow, k.key);
        let mine = self.0.keys.get(&name).is_some_and(|(id, _, a)| *id == k.id && a.is_none());
        if mine {
            self.0.keys.remove(&name);
        }
    }

    pub(super) fn answered(&mut self, k: store::Key, answer: Value) {
        if let Some(entry) = self.0.keys.get_mut(&(k.workflow, k.key)) {
            if entry.0 == k.id {
                entry.2 = Some(answer);
            }
        }
    }

    /// Keys held now (tests).
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        (self.0.keys.len(), self.0.expiries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str, id: &str, expires_ms: i64) -> store::Key {
        store::Key { workflow: "w".into(), key: k.into(), id: id.into(), expires_ms }
    }

    #[test]
    fn a_key_is_claimed_once_within_its_window_and_expired_keys_go() {
        let mut keys = Keys::default();
        let later = store::now_ms() + 60_000;
        assert_eq!(keys.claim(key("a", "1", later)), Claim::First);
        assert!(matches!(keys.claim(key("a", "2", later)), Claim::Duplicate { .. }));
        keys.release(key("a", "1", later));
        assert_eq!(keys.claim(key("a", "3", later)), Claim::First, "let go: claimed anew");
        // 100,000 keys that have expired are taken out by the next claims, not scanned by each.
        for i in 0..100_000 {
            keys.claim(key(&format!("old{i}"), "x", 1));
        }
        assert_eq!(keys.claim(key("b", "4", later)), Claim::First);
        let (held, expiries) = keys.held();
        assert_eq!(held, 2, "only the keys within their window are held");
        assert!(expiries <= 3, "{expiries}");
    }
}
