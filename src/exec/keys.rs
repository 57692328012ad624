//! `dedupe` keys kept in memory, for `--store memory` (a store keeps its own, in the same
//! transaction as the run they belong to).

use crate::request::handle::Seen;
use crate::store;
use serde_json::Value;
use std::collections::HashMap;

/// A claimed key in memory: the execution that claimed it, when it expires, its sync answer.
type Held = (String, i64, Option<Value>);

/// `dedupe` keys kept in memory (`--store memory`): they last as long as the process.
#[derive(Default)]
pub(crate) struct Keys(std::sync::Mutex<HashMap<(String, String), Held>>);

impl Keys {
    pub(crate) fn claim(&self, k: store::Key) -> Seen {
        let Ok(mut keys) = self.0.lock() else { return Seen::First };
        let now = store::now_ms();
        if keys.len() > 100_000 {
            keys.retain(|_, (_, expires, _)| *expires > now);
        }
        match keys.get(&(k.workflow.clone(), k.key.clone())) {
            Some((of, expires, answer)) if *expires > now => {
                Seen::Duplicate { of: of.clone(), answer: answer.clone() }
            }
            _ => {
                keys.insert((k.workflow, k.key), (k.id, k.expires_ms, None));
                Seen::First
            }
        }
    }

    pub(crate) fn release(&self, k: store::Key) {
        if let Ok(mut keys) = self.0.lock() {
            let mine = keys
                .get(&(k.workflow.clone(), k.key.clone()))
                .is_some_and(|(id, _, a)| *id == k.id && a.is_none());
            if mine {
                keys.remove(&(k.workflow, k.key));
            }
        }
    }

    pub(crate) fn answered(&self, k: store::Key, answer: Value) {
        if let Ok(mut keys) = self.0.lock() {
            if let Some(entry) = keys.get_mut(&(k.workflow, k.key)) {
                if entry.0 == k.id {
                    entry.2 = Some(answer);
                }
            }
        }
    }
}
