//! `/workflows` and `/workflows/NAME`: what each workflow served now is. Its trigger (the route
//! it answers, auth, mode, limits), its extractions, its graph (`wf graph --format svg`, served
//! as an image of its own at `graph.svg`), its source with each line linkable (`#L12`), and the
//! last hour: executions by status and the p50/p95/p99 of their durations.

use super::{layout, Answer, Dashboard};
use crate::request::served::Served;
use crate::store::Filter;
use maud::html;
use std::sync::Arc;

/// Executions the last hour's figures read, at most (the newest).
const HOUR_READ: usize = 10_000;

fn served(d: &Dashboard, name: &str) -> Option<Arc<Served>> {
    (d.current)().workflows().find(|s| *s.name == *name).cloned()
}

pub(crate) fn index(d: &Dashboard) -> Answer {
    let router = (d.current)();
    let mut all: Vec<&Arc<Served>> = router.workflows().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let body = html! {
        h1 { "Workflows" }
        div.scroll { table.workflows {
            thead { tr { th scope="col" { "Workflow" } th scope="col" { "Route" } th scope="col" { "Mode" } th.wide scope="col" { "File" } } }
            tbody {
                @for s in &all {
                    tr {
                        td { a href={ "/workflows/" (s.name) } { (s.name) } }
                        td.mono { (methods(s)) " " (s.wf.path) }
                        td { (mode(s)) }
                        td.wide.mono { (s.version.file) }
                    }
                }
            }
        } }
    };
    layout::page("Workflows", d.access.required().then(|| d.access.csrf()), body)
}

fn methods(s: &Served) -> String {
    s.wf.methods.iter().map(http::Method::as_str).collect::<Vec<_>>().join(" ")
}

fn mode(s: &Served) -> &'static str {
    if s.wf.mode == crate::lang::ast::Mode::Async {
        "async"
    } else {
        "sync"
    }
}

/// The `p`th percentile (0–100) of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p).div_ceil(100).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

pub(crate) async fn page(d: &Dashboard, name: &str) -> Answer {
    let Some(s) = served(d, name) else {
        return layout::error(404, "No such workflow", "No workflow of that name is served now.");
    };
    let w = &s.wf;
    let filter = Filter {
        workflow: Some(name.to_string()),
        since_ms: Some(crate::store::now_ms() - 3_600_000),
        limit: HOUR_READ,
        ..Filter::default()
    };
    let hour = d.store.list(&filter).await.unwrap_or_default();
    let mut counts: Vec<(crate::store::Status, usize)> = Vec::new();
    for r in &hour {
        let status = layout::status(r);
        match counts.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => counts.push((status, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let mut took: Vec<i64> = hour.iter().filter_map(|r| r.duration_ms).collect();
    took.sort_unstable();
    let lines: Vec<&str> = s.version.source.lines().collect();
    let body = html! {
        h1 { "Workflow " span.mono { (s.name) } }
        p.note.mono { (s.version.file) }
        section.card {
            h2 { "Trigger" }
            dl.facts {
                dt { "Route" } dd.mono { (methods(&s)) " " (w.path) }
                dt { "Mode" } dd { (mode(&s)) }
                dt { "Auth" } dd { (w.auth.as_ref().map_or("none", |a| a.kind.name())) }
                @if !w.allow.is_empty() { dt { "Callers from" } dd.mono { (w.allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")) } }
                @if let Some(origins) = &w.cors { dt { "CORS origins" } dd.mono { (origins.join(" ")) } }
                @if let Some(n) = w.concurrency { dt { "Concurrency" } dd { (n) } }
                @if w.dedupe.is_some() { dt { "Dedupe" } dd { "yes (a delivery seen within its window does not run)" } }
                @if w.debounce.is_some() { dt { "Debounce" } dd { "yes (the newest request of a burst runs)" } }
                @if w.order.is_some() { dt { "Order" } dd { "yes (runs of one key run one at a time, in the order accepted)" } }
                @if let Some(r) = &w.rate { dt { "Rate" } dd { (r.n) " per " (humantime::format_duration(r.per)) @if r.key.is_some() { " per key" } } }
            }
        }
        @if !w.extracts.is_empty() {
            section.card {
                h2 { "Extractions" }
                div.scroll { table.extracts {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "From" } th scope="col" { "Type" } th scope="col" { "Required" } } }
                    tbody { @for x in &w.extracts {
                        tr { td.mono { (x.name) } td.mono { (x.source.as_str()) " " (x.path_text) } td { (x.ty.map_or("any", |t| t.as_str())) } td { @if x.required { "yes" } @else { "no" } } }
                    } }
                } }
            }
        }
        section.card {
            h2 { "Last hour" }
            @if hour.is_empty() { p.note { "No executions in the last hour." } }
            @else {
                p.counts { @for (status, n) in &counts { (layout::badge(*status)) " " strong { (n) } " " } }
                dl.facts #latency {
                    dt { "p50" } dd { (layout::took(percentile(&took, 50))) }
                    dt { "p95" } dd { (layout::took(percentile(&took, 95))) }
                    dt { "p99" } dd { (layout::took(percentile(&took, 99))) }
                }
                @if hour.len() == HOUR_READ { p.note { "From the newest " (HOUR_READ) " executions." } }
            }
            p { a href={ "/?workflow=" (s.name) } { "Its runs →" } }
        }
        section.card {
            h2 { "Graph" }
            div.graph { img src={ "/workflows/" (s.name) "/graph.svg" } alt={ "The graph of workflow " (s.name) }; }
        }
        section.card {
            h2 { "Source" }
            div.scroll { table.source { tbody {
                @for (i, line) in lines.iter().enumerate() {
                    tr id={ "L" (i + 1) } { td.ln { a href={ "#L" (i + 1) } { (i + 1) } } td { code { (line) } } }
                }
            } } }
        }
    };
    layout::page(&format!("Workflow {}", s.name), d.access.required().then(|| d.access.csrf()), body)
}

/// `/workflows/NAME/graph.svg`: the workflow's graph as wf lays it out. An image of its own, so
/// its style stays in it and the pages' policy needs no inline style.
pub(crate) fn graph(d: &Dashboard, name: &str) -> Answer {
    let Some(s) = served(d, name) else {
        return layout::error(404, "No such workflow", "No workflow of that name is served now.");
    };
    let loaded = crate::lang::loader::load_str(&s.version.file, &s.version.source);
    match crate::tools::graph::render(
        &loaded.sources,
        &loaded.program,
        Some(name),
        crate::tools::graph::GraphFormat::Svg,
    ) {
        Ok(svg) => {
            let mut a = layout::text(svg, "image/svg+xml");
            // An image runs no script; its own style sheet is all it needs.
            a.headers_mut().insert(
                http::header::CONTENT_SECURITY_POLICY,
                http::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            );
            a
        }
        Err(why) => layout::error(404, "No graph", &why),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_are_of_the_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(super::percentile(&v, 50), Some(50));
        assert_eq!(super::percentile(&v, 99), Some(99));
        assert_eq!(super::percentile(&[7], 95), Some(7));
        assert_eq!(super::percentile(&[], 50), None);
    }
}
