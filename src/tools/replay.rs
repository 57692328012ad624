//! `wf runs replay`: kept executions' requests run again through the workflows of `--files`,
//! sending and storing nothing: an effect gets the result its execution's journal recorded when
//! the same kind of effect, to the same method and URL (or program and arguments), stands at the
//! same step; any other effect gets `200` with an empty body (`run`: code 0) and is reported as
//! new; `now()` and `uuid()` give their recorded values; `auth` is not checked again. Each
//! execution is `same` or `changed`, with what changed: the status it answers (the outcome of an
//! async run), and the effects added, removed or sent elsewhere. The question it answers: what
//! would this change have done to the traffic the store kept?

use crate::request::served::Served;
use crate::request::step::{self, Pending, Step, StepError, Steps};
use crate::store::{Outcome, RunView, StepState, StepView};
use serde_json::Value;

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
    /// The workflow replayed: its secrets are redacted from what is compared, as the journal
    /// redacted them.
    served: std::sync::Arc<Served>,
    pub(crate) asked: Vec<Effect>,
}

impl Replayed {
    pub(crate) fn new(journal: Vec<StepView>, served: std::sync::Arc<Served>) -> Replayed {
        Replayed { journal, served, asked: Vec::new() }
    }

    fn recorded(&self, n: u32, kind: &str) -> Option<&StepView> {
        self.journal.iter().find(|s| s.n == n && s.kind == kind)
    }
}

impl Steps for Replayed {
    fn perform(&mut self, n: u32, s: Step) -> Pending<'_> {
        let (kind, target) = crate::exec::journal::summary(&self.served, &s);
        let recorded = self.recorded(n, kind).cloned();
        let result = match s {
            // Nothing is waited for in a replay: a sleep is over at once, a debounced run starts.
            Step::Sleep(_) | Step::Debounce { .. } | Step::Order(_) | Step::Rate { .. } => Ok(Value::Null),
            // A callback as the journal shows it (its token hidden), for `wait` to name.
            Step::Callback(_) => Ok(match recorded.and_then(|r| r.result) {
                Some(v) if v.get("url").is_some() => serde_json::json!({
                    "url": format!("http://replay{}{}", crate::exec::callbacks::PATH, "0".repeat(32)),
                    "id": v.get("id").cloned().unwrap_or(Value::Null),
                }),
                _ => serde_json::json!({
                    "url": format!("http://replay{}{}", crate::exec::callbacks::PATH, "0".repeat(32)),
                    "id": "00000000",
                }),
            }),
            // The call the run got, as journaled; none (not called yet): its timeout's `null`.
            Step::Wait(_) => Ok(recorded
                .filter(|r| r.state == StepState::Finished)
                .and_then(|r| r.result)
                .unwrap_or(Value::Null)),
            Step::Now | Step::Uuid => match recorded.and_then(|r| r.result) {
                Some(v) => Ok(v),
                None => step::local(&s),
            },
            _ => {
                self.asked.push(Effect { n, kind: kind.to_string(), target: target.clone() });
                // The same effect: the same kind, method and URL (or program and arguments) at the
                // same step; a body sent otherwise is reported, the recorded answer still given.
                let same = recorded
                    .as_ref()
                    .is_some_and(|r| r.request.as_ref().is_some_and(|t| same_target(t, &target)));
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

/// Whether two effects' targets name the same call: everything but the body.
fn same_target(a: &Value, b: &Value) -> bool {
    // A URL that was (or held) a secret is journaled without it: the value the store saw and the
    // one replay has (a test value, when the secret is not set here) are not compared.
    let secret = |url: &str| url == crate::request::served::REDACTED || url.ends_with("/[secret]");
    let strip = |v: &Value| match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "body" && *k != "body_size")
                .map(|(k, v)| match v.as_str() {
                    Some(url) if k == "url" && secret(url) => (k.clone(), Value::from("[secret]")),
                    _ => (k.clone(), v.clone()),
                })
                .collect(),
        ),
        other => other.clone(),
    };
    strip(a) == strip(b)
}

/// What changed between an execution as kept and as replayed.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Difference {
    /// The status answered (sync), or the outcome (an async run), before and now.
    pub(crate) answer: Option<(String, String)>,
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
    /// Effects made to the same place with another body.
    pub(crate) sent: Vec<String>,
    /// The answer's parts that differ: `status`, a header, or a path of its JSON body (`body`
    /// when it is not JSON), each with its value before and now.
    pub(crate) answered: Vec<String>,
}

impl Difference {
    pub(crate) fn is_same(&self) -> bool {
        self.answer.is_none()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.sent.is_empty()
            && self.answered.is_empty()
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
pub(crate) fn compare(before: &[Effect], now: &[Effect]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let alike = |a: &Effect, b: &Effect| a.kind == b.kind && same_target(&a.target, &b.target);
    let body = |e: &Effect| e.target.get("body").map_or_else(|| "(no body)".to_string(), |b| b.to_string());
    // A journal written before bodies were journaled says nothing of the body sent: not a change.
    fn told(e: &Effect) -> (Option<&Value>, Option<&Value>) {
        (e.target.get("body"), e.target.get("body_size"))
    }
    let same_body = |was: &Effect, now: &Effect| told(was) == (None, None) || told(was) == told(now);
    let mut added = Vec::new();
    let mut sent = Vec::new();
    for e in now {
        // The same step first, else the same call made at another step.
        let found =
            before.iter().find(|b| b.n == e.n && alike(b, e)).or_else(|| before.iter().find(|b| alike(b, e)));
        match found {
            Some(b) if same_body(b, e) => {}
            Some(b) => sent.push(format!("{}: body {} → {}", e.shown(), body(b), body(e))),
            None => added.push(e.shown()),
        }
    }
    let removed = before.iter().filter(|b| !now.iter().any(|e| alike(b, e))).map(Effect::shown).collect();
    (added, removed, sent)
}

/// How the answer given now differs from the one kept (`{status, headers, body}`): headers by
/// name, the body by JSON path when both are JSON (else as text). The status is compared apart.
pub(crate) fn answer_diff(before: &Value, now: &crate::request::received::Answered) -> Vec<String> {
    let mut out = Vec::new();
    let ignored = |n: &str| matches!(n, "content-length" | "date" | "x-wf-execution");
    let was: std::collections::BTreeMap<String, String> = before
        .get("headers")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default();
    let is: std::collections::BTreeMap<String, String> = now
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let names: std::collections::BTreeSet<&String> = was.keys().chain(is.keys()).collect();
    for n in names.into_iter().filter(|n| !ignored(n)) {
        let (a, b) = (was.get(n), is.get(n));
        if a != b {
            let show = |v: Option<&String>| v.map_or("(none)".to_string(), |v| format!("{v:?}"));
            out.push(format!("header {n}: {} → {}", show(a), show(b)));
        }
    }
    let Some(old) = before.get("body").and_then(Value::as_str) else { return out };
    let new = String::from_utf8_lossy(&now.body);
    match (serde_json::from_str::<Value>(old), serde_json::from_str::<Value>(&new)) {
        (Ok(a), Ok(b)) => paths("json", &a, &b, &mut out),
        _ if old != new => out.push(format!("body: {old:?} → {new:?}")),
        _ => {}
    }
    out
}

/// The paths where two JSON values differ (at most 20 of them), with both values.
fn paths(at: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if out.len() >= 20 || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                paths(&format!("{at}.{k}"), va, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                paths(&format!("{at}[{i}]"), va, vb, out);
            }
        }
        _ => out.push(format!("{at}: {a} → {b}")),
    }
}

/// What replaying an execution found.
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    Same,
    Changed,
    /// Not replayed (and why).
    Skipped,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Changed => "changed",
            Verdict::Skipped => "skipped",
        }
    }
}

/// What became of one execution replayed.
#[derive(serde::Serialize)]
pub(crate) struct Replay {
    pub(crate) id: String,
    pub(crate) workflow: String,
    pub(crate) verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) why: Option<String>,
    #[serde(flatten)]
    pub(crate) difference: Difference,
}

/// Replays one kept execution through the workflows of `router`.
pub(crate) async fn replay(router: &crate::request::served::Router, run: &RunView) -> Replay {
    let skipped = |why: String| Replay {
        id: run.id.clone(),
        workflow: run.workflow.clone(),
        verdict: Verdict::Skipped,
        why: Some(why),
        difference: Difference::default(),
    };
    let Some(served) = router.workflows().find(|s| *s.name == *run.workflow) else {
        return skipped(format!("workflow `{}` is not in the files given", run.workflow));
    };
    let request = match &run.request {
        Some(r) if crate::store::retry::kept_whole(Some(r)) => r,
        _ => return skipped("its request was not kept whole".into()),
    };
    if run.outcome == Some(Outcome::Rejected) || run.outcome == Some(Outcome::Duplicate) {
        return skipped(format!("it never ran ({})", shown_status(run)));
    }
    let key = crate::request::handle::ExecId(crate::store::key(&run.id) as u64);
    let before = journaled(run);
    let mut steps = Replayed::new(run.steps.clone(), served.clone());
    let answered = async {
        let mut frame = crate::request::handle::frame_of_kept(served, request).await?;
        let started = std::time::Instant::now();
        let budget = crate::request::eval::Budget::default();
        let (response, record) =
            crate::request::handle::execute(served, &mut frame, key, started, &mut steps, budget).await;
        Ok::<_, String>((
            response.status().as_u16(),
            record.outcome,
            crate::request::handle::answered(&response),
        ))
    }
    .await;
    let mut difference = Difference::default();
    match answered {
        Err(why) => {
            difference.answer = Some((shown_status(run).to_string(), format!("400 (turned away: {why})")))
        }
        Ok((code, outcome, answer)) => {
            // A sync execution kept its answer: its headers and body compared too.
            if let Some(kept) = request.get("answer") {
                difference.answered = crate::tools::replay::answer_diff(kept, &answer);
            }
            let (was, now) = if served.wf.mode == crate::lang::ast::Mode::Async {
                (
                    run.outcome.map(|o| o.as_str().to_string()).unwrap_or_default(),
                    outcome.as_str().to_string(),
                )
            } else {
                (run.status.map(|s| s.to_string()).unwrap_or_default(), code.to_string())
            };
            if was != now {
                difference.answer = Some((was, now));
            }
        }
    }
    (difference.added, difference.removed, difference.sent) = compare(&before, &steps.asked);
    let verdict = if difference.is_same() { Verdict::Same } else { Verdict::Changed };
    Replay { id: run.id.clone(), workflow: run.workflow.clone(), verdict, why: None, difference }
}

/// An execution's status as `wf runs` shows it: its outcome, else its state.
fn shown_status(r: &RunView) -> &'static str {
    match r.outcome {
        Some(o) => o.as_str(),
        None => r.state.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn http(n: u32, target: Value) -> Effect {
        Effect { n, kind: "http".into(), target }
    }

    #[test]
    fn a_journal_from_before_bodies_were_journaled_is_not_a_change_of_body() {
        let url = "http://127.0.0.1:9/ledger";
        let older = [http(1, json!({"method": "POST", "url": url}))];
        let now = [http(1, json!({"method": "POST", "url": url, "body": "{\"a\":1}"}))];
        assert_eq!(compare(&older, &now), (vec![], vec![], vec![]));
        // A journal that said its body (none: `""`) is compared.
        let told = [http(1, json!({"method": "POST", "url": url, "body": ""}))];
        let (added, removed, sent) = compare(&told, &now);
        assert!(added.is_empty() && removed.is_empty() && sent.len() == 1, "{sent:?}");
        // The same call at another step is the same call.
        let moved = [http(2, json!({"method": "POST", "url": url, "body": "{\"a\":1}"}))];
        assert_eq!(compare(&moved, &now), (vec![], vec![], vec![]));
    }

    #[test]
    fn json_bodies_differ_by_path() {
        let mut out = Vec::new();
        paths(
            "json",
            &json!({"ok": true, "n": [1, 2], "same": "x"}),
            &json!({"ok": false, "n": [1, 3], "same": "x", "new": 1}),
            &mut out,
        );
        assert_eq!(out, ["json.n[1]: 2 → 3", "json.new: null → 1", "json.ok: true → false"]);
    }
}
