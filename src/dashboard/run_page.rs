//! `/runs/ID`: one execution. Its request (credentials masked as the store kept it), the
//! timeline of its journaled steps, its log lines, the answer kept, the failure with its
//! `file:line:col` linked to the workflow's source, what it waits for; and its actions, each a
//! `POST` with the CSRF token: retry (failed), cancel (waiting), replay against the workflows
//! served now (the difference shown), and export as a test (`GET`, plain text).

use super::layout::{self, Tone};
use super::{Answer, Dashboard};
use crate::store::{RunView, State, StepState};
use crate::tools::replay::Verdict;
use maud::{html, Markup};
use serde_json::Value;

/// Bytes of a body (or a step's request or result) shown; a longer one is cut, its size said.
const SHOWN: usize = 64 * 1024;

async fn find(d: &Dashboard, id: &str) -> Result<RunView, Answer> {
    if !super::is_id(id) {
        return Err(layout::error(404, "No such run", "An execution id is 16 hex digits."));
    }
    match d.store.show(&id.to_ascii_lowercase()).await {
        Ok(Some(run)) => Ok(run),
        Ok(None) => Err(layout::error(
            404,
            "No such run",
            &format!("No execution {id} is kept (it may have been pruned)."),
        )),
        Err(e) => Err(layout::error(503, "Store unavailable", &format!("The run cannot be read now: {e}"))),
    }
}

pub(crate) async fn page(d: &Dashboard, id: &str, done: Option<&str>) -> Answer {
    let run = match find(d, id).await {
        Ok(r) => r,
        Err(a) => return a,
    };
    let flash = match done {
        Some("retry") => Some("Marked to run again: the server takes it within a second or two."),
        Some("cancel") => Some("Cancelled: it will not run on, and its callbacks answer 410."),
        _ => None,
    };
    let body = html! {
        (head(&run))
        @if let Some(f) = flash { p.flash.good role="status" { "✓ " (f) } }
        (actions(d, &run))
        (request(run.request.as_ref()))
        (steps(&run))
        @if !run.logs.is_empty() {
            section.card { h2 { "Log" } pre.logs { @for line in &run.logs { (line) "\n" } } }
        }
        @if let Some(answer) = run.request.as_ref().and_then(|r| r.get("answer")) { (answered(answer)) }
    };
    layout::page(&format!("Run {}", run.id), d.access.required().then(|| d.access.csrf()), body)
}

/// The run's heading and facts.
fn head(run: &RunView) -> Markup {
    let at_link = run.at.as_deref().and_then(|at| {
        let line = at.rsplit(':').nth(1)?;
        line.parse::<u32>().ok().map(|l| format!("/workflows/{}#L{l}", run.workflow))
    });
    html! {
        h1 { "Run " span.mono { (run.id) } " " (layout::badge(layout::status(run))) }
        @if let Some(why) = &run.reason {
            section.card.failure role="alert" {
                h2 { "Why" }
                p.reason { (why) }
                @if let Some(at) = &run.at {
                    p { "at " @match &at_link { Some(href) => a.mono href=(href) { (at) }, None => span.mono { (at) } } }
                }
            }
        }
        dl.facts {
            dt { "Workflow" } dd { a href={ "/workflows/" (run.workflow) } { (run.workflow) } }
            dt { "Mode" } dd { (run.mode.as_str()) }
            dt { "State" } dd { (run.state.as_str()) }
            @if let Some(s) = run.status { dt { "Answer" } dd { (s) } }
            dt { "Started" } dd { time { (layout::time(run.started_ms)) } }
            dt { "Took" } dd { (layout::took(run.duration_ms)) }
            dt { "Attempts" } dd { (run.attempts) }
            @if let Some(w) = crate::tools::runs::waits_for(run) { dt { "Waits for" } dd.waits { (w) } }
        }
    }
}

/// The buttons that apply to this run.
fn actions(d: &Dashboard, run: &RunView) -> Markup {
    let csrf = d.access.csrf();
    let failed = run.outcome == Some(crate::store::Outcome::Failed);
    let waiting = run.state == State::Waiting;
    let kept = crate::store::retry::kept_whole(run.request.as_ref());
    html! {
        section.actions {
            @if failed {
                form method="post" action={ "/runs/" (run.id) "/retry" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button #retry type="submit" { "Retry" }
                    label.check { input type="checkbox" name="from_start" value="1"; " every step again" }
                }
            }
            @if waiting {
                form method="post" action={ "/runs/" (run.id) "/cancel" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button #cancel.danger type="submit" { "Cancel" }
                }
            }
            @if kept {
                form method="post" action={ "/runs/" (run.id) "/replay" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button #replay type="submit" { "Replay against the workflows served now" }
                }
                a.button #export href={ "/runs/" (run.id) "/export" } { "Export as a test" }
            }
        }
    }
}

/// A text cut to [`SHOWN`] bytes (at a character's edge), with a note of its size when cut.
fn cut(text: &str) -> (String, Option<String>) {
    if text.len() <= SHOWN {
        return (text.to_string(), None);
    }
    let mut end = SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let shown = text.get(..end).unwrap_or("").to_string();
    (shown, Some(format!("{} in all; the first {} shown", layout::size(text.len()), layout::size(end))))
}

fn headers(h: Option<&Value>) -> Markup {
    html! {
        @if let Some(map) = h.and_then(Value::as_object) {
            @if !map.is_empty() {
                table.headers { tbody {
                    @for (name, value) in map {
                        tr { th scope="row" { (name) } td { (value.as_str().map_or_else(|| value.to_string(), str::to_string)) } }
                    }
                } }
            }
        }
    }
}

fn body(r: &Value) -> Markup {
    let shown = r.get("body").and_then(Value::as_str).map(cut);
    let binary = r.get("body_base64").and_then(Value::as_str).map(|b| b.len() / 4 * 3);
    let digest = r.get("body_size").and_then(Value::as_u64);
    html! {
        @if let Some((text, note)) = shown {
            @if let Some(n) = note { p.note { (n) } }
            @if !text.is_empty() { pre.body { (text) } }
        }
        @if let Some(n) = binary { p.note { "About " (layout::size(n)) ", not text (exported whole as a file)." } }
        @if let Some(n) = digest {
            p.note { (layout::size(n as usize)) " body, kept only as its size and digest (over --keep-body)." }
        }
    }
}

fn request(r: Option<&Value>) -> Markup {
    html! {
        section.card {
            h2 { "Request" }
            @match r {
                Some(r) => {
                    p.mono { (r["method"].as_str().unwrap_or("")) " " (r["target"].as_str().unwrap_or("")) }
                    (headers(r.get("headers")))
                    (body(r))
                },
                None => p.note { "Not kept (a sync execution's request is kept with its record by a SQLite or PostgreSQL store)." },
            }
        }
    }
}

fn answered(a: &Value) -> Markup {
    html! {
        section.card {
            h2 { "Answer" }
            p.mono { (a["status"].as_u64().unwrap_or(0)) }
            (headers(a.get("headers")))
            (body(a))
        }
    }
}

/// A step's request or result, pretty, cut to [`SHOWN`].
fn value(v: &Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let (text, note) = cut(&text);
    html! { pre { (text) } @if let Some(n) = note { p.note { (n) } } }
}

fn steps(run: &RunView) -> Markup {
    html! {
        section.card {
            h2 { "Steps" }
            @if run.steps.is_empty() { p.note { "No journaled steps." } }
            ol.timeline {
                @for s in &run.steps {
                    @let (symbol, tone) = match s.state { StepState::Finished => ("✓", Tone::Good), StepState::Failed => ("✗", Tone::Bad), _ => ("⏸", Tone::Wait) };
                    li.step data-n=(s.n) {
                        div.step-head {
                            span.n { "#" (s.n) } " " strong { (s.kind) } " "
                            (layout::tagged(symbol, s.state.as_str(), tone))
                            @if let Some(t) = target(s.request.as_ref()) { " " span.mono.target { (t) } }
                            @if let Some(a) = s.request.as_ref().and_then(|r| r.get("attempts")) { " " span.note { (a) " attempts" } }
                            @if s.took_ms.is_some() { " " span.note { (layout::took(s.took_ms)) } }
                        }
                        @if let Some(r) = &s.request { details { summary { "request" } (value(r)) } }
                        @if let Some(r) = &s.result { details open[s.kind == "http" || s.kind == "run"] { summary { "result" } (value(r)) } }
                        @if let Some(why) = &s.reason { p.reason { (why) } }
                    }
                }
            }
        }
    }
}

/// Where a step went: an `http` call's method and URL, a `run`'s program and arguments.
fn target(request: Option<&Value>) -> Option<String> {
    let r = request?;
    if let (Some(m), Some(u)) =
        (r.get("method").and_then(Value::as_str), r.get("url").and_then(Value::as_str))
    {
        return Some(format!("{m} {u}"));
    }
    let program = r.get("program").and_then(Value::as_str)?;
    let args = r.get("args").map(Value::to_string).unwrap_or_default();
    Some(format!("{program} {args}").trim_end().to_string())
}

pub(crate) async fn retry(d: &Dashboard, id: &str, from_start: bool) -> Answer {
    if let Err(a) = find(d, id).await {
        return a;
    }
    match d.store.retry(&id.to_ascii_lowercase(), from_start).await {
        Ok(crate::store::retry::Retried::Marked) => layout::redirect(&format!("/runs/{id}?done=retry"), None),
        Ok(crate::store::retry::Retried::Unknown) => {
            layout::error(404, "No such run", "It is no longer kept.")
        }
        Ok(crate::store::retry::Retried::Refused(why)) => layout::error(409, "Not retried", &why),
        Err(e) => layout::error(503, "Store unavailable", &e),
    }
}

pub(crate) async fn cancel(d: &Dashboard, id: &str) -> Answer {
    if let Err(a) = find(d, id).await {
        return a;
    }
    match d.store.cancel(&id.to_ascii_lowercase()).await {
        Ok(crate::store::Cancel::Cancelled) => layout::redirect(&format!("/runs/{id}?done=cancel"), None),
        Ok(crate::store::Cancel::NotWaiting(state)) => layout::error(
            409,
            "Not cancelled",
            &format!("It is {}, not waiting: only a waiting run is cancelled.", state.as_str()),
        ),
        Ok(crate::store::Cancel::Unknown) => layout::error(404, "No such run", "It is no longer kept."),
        Err(e) => layout::error(503, "Store unavailable", &e),
    }
}

/// Replays the run through the workflows served now, sending and keeping nothing.
pub(crate) async fn replay(d: &Dashboard, id: &str) -> Answer {
    let run = match find(d, id).await {
        Ok(r) => r,
        Err(a) => return a,
    };
    let router = (d.current)();
    let r = crate::tools::replay::replay(&router, &run).await;
    let diff = &r.difference;
    let body = html! {
        h1 { "Replay of " a.mono href={ "/runs/" (r.id) } { (r.id) } }
        p #verdict { span class={ "badge " (match r.verdict { Verdict::Same => "good", Verdict::Changed => "warn", Verdict::Skipped => "quiet" }) } {
            (match r.verdict { Verdict::Same => "= same", Verdict::Changed => "≠ changed", Verdict::Skipped => "– skipped" })
        } @if let Some(why) = &r.why { " " (why) } }
        p.note { "Its request ran through workflow " (r.workflow) " as served now; nothing was sent and nothing kept." }
        @if !diff.is_same() {
            section.card {
                h2 { "Difference" }
                ul.diff {
                    @if let Some((was, now)) = &diff.answer { li { "answer " (was) " → " (now) } }
                    @for e in &diff.added { li.added { "+ " (e) } }
                    @for e in &diff.removed { li.removed { "− " (e) } }
                    @for e in &diff.sent { li { "~ " (e) } }
                    @for a in &diff.answered { li { "answer " (a) } }
                }
            }
        }
    };
    layout::page("Replay", d.access.required().then(|| d.access.csrf()), body)
}

/// `GET /runs/ID/export`: the run as a `test` block (or, with `payload`, the body it reads
/// from a file beside it).
pub(crate) async fn export(d: &Dashboard, id: &str, payload: bool) -> Answer {
    let run = match find(d, id).await {
        Ok(r) => r,
        Err(a) => return a,
    };
    let router = (d.current)();
    let wf = router.workflows().find(|s| *s.name == *run.workflow);
    match crate::tools::export::test_block(&run, wf.map(|s| &s.wf)) {
        Ok((_, Some((_, bytes)))) if payload => layout::text(bytes, "application/octet-stream"),
        Ok((block, file)) => {
            let mut text = block;
            if let Some((path, _)) = file {
                text = format!(
                    "# The body is in {path}: download it from /runs/{}/export?payload=1\n{text}",
                    run.id
                );
            }
            layout::text(text, "text/plain; charset=utf-8")
        }
        Err(why) => layout::error(409, "Not exported", &why),
    }
}
