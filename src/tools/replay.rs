//! `wf runs replay`: kept executions' requests run again through the workflows of `--files`,
//! sending and storing nothing: an effect gets the result its execution's journal recorded when
//! the same kind of effect, to the same method and URL (or program and arguments), stands at the
//! same step; any other effect gets `200` with an empty body (`run`: code 0) and is reported as
//! new; `now()` and `uuid()` give their recorded values; `auth` is not checked again. Each
//! execution is `same` or `changed`, with what changed: the status it answers (the outcome of an
//! async run), and the effects added, removed or sent elsewhere. The question it answers: what
//! would this change have done to the traffic the store kept?

use crate::request::step::{self, Pending, Step, StepError, Steps};
use crate::store::{RunView, StepState, StepView};
use serde_json::{json, Value};

/// An effect as the journal names it: kind, and method and URL or program and arguments.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Effect {
    pub(crate) n: u32,
    pub(crate) kind: String,
    pub(crate) target: Value,
}

impl Effect {
    fn shown(&self) -> String {
        match self.kind.as_str() {
            "http" => format!(
                "http {} {}",
                self.target.get("method").and_then(Value::as_str).unwrap_or(""),
                self.target.get("url").and_then(Value::as_str).unwrap_or("")
            ),
            "run" => format!("run {}", self.target),
            other => other.to_string(),
        }
    }
}

/// The steps of a replayed execution: answered from its journal, or by default; every effect
/// asked for is noted.
pub(crate) struct Replayed {
    journal: Vec<StepView>,
    pub(crate) asked: Vec<Effect>,
}

impl Replayed {
    pub(crate) fn new(journal: Vec<StepView>) -> Replayed {
        Replayed { journal, asked: Vec::new() }
    }

    fn recorded(&self, n: u32, kind: &str) -> Option<&StepView> {
        self.journal.iter().find(|s| s.n == n && s.kind == kind)
    }
}

/// What the journal shows of a step's request (as `exec/journal.rs` keeps it, before redaction).
fn target(s: &Step) -> (&'static str, Value) {
    match s {
        Step::Http(h) => ("http", json!({"method": h.method.as_str(), "url": h.url})),
        Step::Run(r) => ("run", json!({"program": r.program, "args": r.args})),
        Step::Now => ("now", Value::Null),
        Step::Uuid => ("uuid", Value::Null),
    }
}

impl Steps for Replayed {
    fn perform(&mut self, n: u32, s: Step) -> Pending<'_> {
        let (kind, target) = target(&s);
        let recorded = self.recorded(n, kind).cloned();
        let result = match s {
            Step::Now | Step::Uuid => match recorded.and_then(|r| r.result) {
                Some(v) => Ok(v),
                None => step::local(&s),
            },
            _ => {
                self.asked.push(Effect { n, kind: kind.to_string(), target: target.clone() });
                let same = recorded.as_ref().is_some_and(|r| r.request.as_ref() == Some(&target));
                match recorded {
                    Some(r) if same && r.state == StepState::Finished => Ok(r.result.unwrap_or(Value::Null)),
                    Some(r) if same && r.state == StepState::Failed => {
                        Err(StepError::Failed(r.reason.unwrap_or_default()))
                    }
                    // A new effect: an empty success.
                    _ if kind == "http" => step::http_result(200, &http::HeaderMap::new(), b"", u64::MAX)
                        .map_err(StepError::Failed),
                    _ => Ok(step::run_result(0, b"", b"")),
                }
            }
        };
        Box::pin(std::future::ready(result))
    }
}

/// What changed between an execution as kept and as replayed.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Difference {
    /// The status answered (sync), or the outcome (an async run), before and now.
    pub(crate) answer: Option<(String, String)>,
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
}

impl Difference {
    pub(crate) fn is_same(&self) -> bool {
        self.answer.is_none() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// The effects an execution's journal recorded.
pub(crate) fn journaled(run: &RunView) -> Vec<Effect> {
    run.steps
        .iter()
        .filter(|s| s.kind == "http" || s.kind == "run")
        .map(|s| Effect { n: s.n, kind: s.kind.clone(), target: s.request.clone().unwrap_or(Value::Null) })
        .collect()
}

/// Compares the effects asked for with those recorded, step by step.
pub(crate) fn compare(before: &[Effect], now: &[Effect]) -> (Vec<String>, Vec<String>) {
    let added = now.iter().filter(|e| !before.contains(e)).map(Effect::shown).collect();
    let removed = before.iter().filter(|e| !now.contains(e)).map(Effect::shown).collect();
    (added, removed)
}
