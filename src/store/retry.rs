//! `wf runs retry`, the same for every store: which executions may be retried, and which of
//! their journaled steps a retry keeps. A retry keeps the steps that succeeded (`http` below
//! `400`, `run` exit `0`, `now()`, `uuid()`) up to the first one that did not, and does that one
//! and every later one again as new calls: once a step's result changes, the steps after it may
//! not be reached the same way. `--from-start` keeps none.

use super::{Mode, Outcome, State};
use serde_json::Value;

/// What asking for a retry found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Retried {
    /// Marked: a `wf serve` on the store takes it.
    Marked,
    /// No such execution.
    Unknown,
    /// It cannot be retried, and why.
    Refused(String),
}

/// Why execution `id` cannot be retried, if it cannot. `kept`: it kept what it needs to run
/// again (an async run its frame; a sync execution its request, whole: see [`kept_whole`]).
pub(crate) fn refusal(
    id: &str,
    mode: Mode,
    state: State,
    outcome: Option<Outcome>,
    kept: bool,
) -> Option<String> {
    match (state, outcome) {
        (State::Ended, Some(Outcome::Failed)) if !kept && mode == Mode::Sync => Some(format!(
            "{id} did not keep its request whole (its body was over --keep-body, or the store keeps no requests), and a sync execution runs again from its request"
        )),
        (State::Ended, Some(Outcome::Failed)) if !kept => {
            Some(format!("{id} did not keep what it needs to run again (it failed before it was kept)"))
        }
        (State::Ended, Some(Outcome::Failed)) => None,
        (State::Ended, Some(other)) => {
            Some(format!("{id} ended as {other}; only a failed execution can be retried"))
        }
        (State::Ended, None) => {
            Some(format!("{id} ended without an outcome; only a failed execution can be retried"))
        }
        (state, _) => {
            Some(format!("{id} is {state}; only a failed execution can be retried once it has ended"))
        }
    }
}

/// Whether a kept request is whole (its body kept, not only its size and digest): a sync
/// execution is run again from it.
pub(crate) fn kept_whole(request: Option<&Value>) -> bool {
    request.is_some_and(|r| r.is_object() && r.get("body_size").is_none())
}

/// A journaled step as a retry judges it.
pub(crate) struct Journaled<'a> {
    pub n: u32,
    pub kind: &'a str,
    pub finished: bool,
    pub result: Option<Value>,
}

/// Whether a step's result counts as a success that a retry keeps.
fn succeeded(s: &Journaled<'_>) -> bool {
    if !s.finished {
        return false;
    }
    let Some(result) = &s.result else { return false };
    match s.kind {
        "http" => result["status"].as_u64().is_some_and(|status| status < 400),
        "run" => result["code"].as_i64() == Some(0),
        _ => true,
    }
}

/// The first step a retry does again (steps from it on are forgotten); `None` when every step
/// succeeded (the run failed after them, and runs on from there).
pub(crate) fn redo_from(steps: &[Journaled<'_>], from_start: bool) -> Option<u32> {
    if from_start {
        return Some(0);
    }
    let mut ordered: Vec<&Journaled<'_>> = steps.iter().collect();
    ordered.sort_by_key(|s| s.n);
    ordered.into_iter().find(|s| !succeeded(s)).map(|s| s.n)
}

/// The idempotency key of step `n` of execution `id` in its `retries`-th retry: a service that
/// kept the answer to an earlier attempt's key must not give it again.
pub(crate) fn idempotency_key(id: &str, n: u32, retries: u32) -> String {
    if retries == 0 {
        format!("{id}-{n}")
    } else {
        format!("{id}-{n}-retry-{retries}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(n: u32, kind: &'static str, result: Value) -> Journaled<'static> {
        Journaled { n, kind, finished: true, result: Some(result) }
    }

    #[test]
    fn a_retry_keeps_the_successes_before_the_first_step_that_did_not_succeed() {
        let steps = [
            step(1, "run", json!({"code": 0})),
            step(2, "now", json!("2026-01-01T00:00:00.000Z")),
            step(3, "http", json!({"status": 503})),
            step(4, "http", json!({"status": 200})),
        ];
        assert_eq!(redo_from(&steps, false), Some(3));
        assert_eq!(redo_from(&steps, true), Some(0));
        assert_eq!(redo_from(&[step(1, "run", json!({"code": 2}))], false), Some(1));
        assert_eq!(redo_from(&[step(1, "http", json!({"status": 399}))], false), None);
        let started = Journaled { n: 1, kind: "http", finished: false, result: None };
        assert_eq!(redo_from(&[started], false), Some(1));
    }

    #[test]
    fn only_a_failed_ended_kept_execution_may_be_retried() {
        let failed = Some(Outcome::Failed);
        assert_eq!(refusal("a", Mode::Async, State::Ended, failed, true), None);
        for (state, outcome) in [
            (State::Running, None),
            (State::Queued, None),
            (State::Waiting, None),
            (State::Ended, Some(Outcome::Completed)),
            (State::Ended, Some(Outcome::Duplicate)),
        ] {
            let why = refusal("a", Mode::Async, state, outcome, true).unwrap_or_default();
            assert!(why.contains("only a failed execution"), "{state:?} {outcome:?}: {why}");
        }
        assert!(refusal("a", Mode::Sync, State::Ended, failed, false).is_some());
        assert!(refusal("a", Mode::Async, State::Ended, failed, false).is_some());
        assert_eq!(refusal("a", Mode::Sync, State::Ended, failed, true), None, "a sync one too");
        let whole = serde_json::json!({"method": "POST", "target": "/a", "headers": {}, "body": "{}"});
        let digest = serde_json::json!({"method": "POST", "target": "/a", "headers": {}, "body_size": 9});
        assert!(kept_whole(Some(&whole)));
        assert!(!kept_whole(Some(&digest)) && !kept_whole(None));
    }

    #[test]
    fn a_retry_s_calls_have_keys_of_their_own() {
        assert_eq!(idempotency_key("ab", 2, 0), "ab-2");
        assert_eq!(idempotency_key("ab", 2, 1), "ab-2-retry-1");
    }
}
