//! `/`: the runs, newest first, 50 a page. Filters (workflow, status, time range) and the search
//! of an execution id or a dedupe key are a plain `GET` form; the next page is found by the last row's key
//! (`after=START-ID`), so a far page costs what the first does. On the first page, the script
//! adds each run that ends as it ends.

use super::{layout, Answer, Dashboard, Query};
use crate::store::{Filter, Outcome, RunView, State, Status};
use maud::{html, Markup};

/// Rows a page shows.
pub(crate) const PAGE: usize = 50;

/// The time ranges offered, as written in the page's address, and how far back each goes.
const RANGES: [(&str, &str, i64); 4] = [
    ("15m", "last 15 minutes", 15 * 60_000),
    ("1h", "last hour", 3_600_000),
    ("24h", "last day", 86_400_000),
    ("7d", "last week", 7 * 86_400_000),
];

/// The statuses offered in the filter.
fn statuses() -> Vec<&'static str> {
    let mut all: Vec<&str> = State::ALL.iter().filter(|s| **s != State::Ended).map(|s| s.as_str()).collect();
    all.extend(Outcome::ALL.iter().map(|o| o.as_str()));
    all
}

/// `after=START-ID`: a page's key, or `None` when it is not one.
pub(super) fn cursor(text: &str) -> Option<(i64, String)> {
    let (ms, id) = text.split_once('-')?;
    let ms: i64 = ms.parse().ok()?;
    super::is_id(id).then(|| (ms, id.to_ascii_lowercase()))
}

pub(crate) async fn page(d: &Dashboard, q: &Query) -> Answer {
    let router = (d.current)();
    let mut names: Vec<String> = router.workflows().map(|s| s.name.to_string()).collect();
    names.sort();
    names.dedup();
    // A search for an execution id, or a delivery's dedupe key, goes to its run.
    let mut note = None;
    let mut keyed = Vec::new();
    if let Some(text) = q.get("q") {
        let text = text.trim();
        let id = text.to_ascii_lowercase();
        let is_id = super::is_id(&id);
        if is_id && matches!(d.store.show(&id).await, Ok(Some(_))) {
            return layout::redirect(&format!("/runs/{id}"), None);
        }
        match d.store.keyed(text).await {
            Ok(ids) => match ids.as_slice() {
                [one] => return layout::redirect(&format!("/runs/{one}"), None),
                [] => {
                    note = Some(format!(
                        "No execution id or dedupe key {text} is kept (a dedupe key is kept for its window)."
                    ))
                }
                _ => {
                    note = Some(format!("{} runs have the dedupe key {text}:", ids.len()));
                    keyed = ids;
                }
            },
            Err(e) => note = Some(format!("The store could not be read: {e}")),
        }
    }
    let status = q.get("status").and_then(|w| Status::parse(w).ok());
    let since = q.get("since").and_then(|s| RANGES.iter().find(|r| r.0 == s));
    let after = match q.get("after") {
        None => None,
        Some(text) => match cursor(text) {
            Some(c) => Some(c),
            None => {
                return layout::error(
                    400,
                    "Not a page",
                    "This page's link is not one the dashboard made. Start again from the first page.",
                )
            }
        },
    };
    let filter = Filter {
        workflow: q.get("workflow").map(str::to_string),
        status,
        since_ms: since.map(|r| crate::store::now_ms() - r.2),
        limit: PAGE,
        after,
    };
    let runs = match d.store.list(&filter).await {
        Ok(r) => r,
        Err(e) => {
            return layout::error(503, "Store unavailable", &format!("The runs cannot be read now: {e}"))
        }
    };
    // The filters as the next page's link and the live feed's repeat them.
    let mut kept = form_urlencoded::Serializer::new(String::new());
    for name in ["workflow", "status", "since"] {
        if let Some(v) = q.get(name) {
            kept.append_pair(name, v);
        }
    }
    let kept = kept.finish();
    let next = (runs.len() == PAGE).then(|| runs.last()).flatten().map(|last| {
        let sep = if kept.is_empty() { "" } else { "&" };
        format!("/?{kept}{sep}after={}-{}", last.started_ms, last.id)
    });
    let first_page = filter.after.is_none();
    // Only outcomes end: a filter on a state gets no live rows.
    let live = first_page && !matches!(status, Some(Status::State(_))) && since.is_none();
    let selected = |name: &str, v: &str| q.get(name) == Some(v);
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/" role="search" {
            label { "Workflow "
                select name="workflow" {
                    option value="" { "any" }
                    @for n in &names { option value=(n) selected[selected("workflow", n)] { (n) } }
                }
            }
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in statuses() { option value=(s) selected[selected("status", s)] { (s) } }
                }
            }
            label { "Since "
                select name="since" {
                    option value="" { "any time" }
                    @for r in RANGES { option value=(r.0) selected[selected("since", r.0)] { (r.1) } }
                }
            }
            label { "Execution id or dedupe key "
                input type="search" name="q" value=[q.get("q")] placeholder="id or key" size="20";
            }
            button type="submit" { "Filter" }
        }
        @if let Some(n) = &note {
            p.flash role="status" { (n) @for id in &keyed { " " a.mono href={ "/runs/" (id) } { (id) } } }
        }
        @if !first_page { p { a href={ "/?" (kept) } { "← First page" } } }
        div.scroll {
            table.runs #runs data-live=[live.then(|| if kept.is_empty() { "/events".to_string() } else { format!("/events?{kept}") })] {
                thead { tr {
                    th scope="col" { "Status" } th scope="col" { "Execution" } th scope="col" { "Workflow" }
                    th scope="col" { "Started" } th.wide scope="col" { "Took" } th.wide scope="col" { "Answer" }
                    th.wide scope="col" { "Reason" }
                } }
                tbody {
                    @for r in &runs { (row(r)) }
                }
            }
        }
        @if runs.is_empty() {
            p.empty #no-runs { @if first_page { "No runs yet. Send a request to a workflow and it appears here." } @else { "No runs after this one." } }
        }
        @if let Some(href) = next { p.pager { a rel="next" href=(href) { "Older →" } } }
    };
    layout::page("Runs", d.access.required().then(|| d.access.csrf()), body)
}

/// One run as a row of the table.
fn row(r: &RunView) -> Markup {
    html! {
        tr data-id=(r.id) {
            td { (layout::badge(layout::status(r))) }
            td { a.mono href={ "/runs/" (r.id) } { (r.id) } }
            td { a href={ "/workflows/" (r.workflow) } { (r.workflow) } }
            td { time { (layout::time(r.started_ms)) } }
            td.wide { (layout::took(r.duration_ms)) }
            td.wide { @if let Some(s) = r.status { (s) } }
            td.wide.reason { @if let Some(why) = &r.reason { (why) } }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cursor_is_a_start_and_an_id_or_nothing() {
        assert_eq!(
            super::cursor("1700000000000-00000000000000aB"),
            Some((1700000000000, "00000000000000ab".into()))
        );
        for bad in [
            "",
            "x",
            "12-",
            "-00000000000000ab",
            "12-zz000000000000ab",
            "12-00ab",
            "9999999999999999999999-00000000000000ab",
        ] {
            assert_eq!(super::cursor(bad), None, "{bad}");
        }
    }
}
