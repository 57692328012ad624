//! The frame every page shares (header, navigation, style, script), the answers' headers (the
//! content security policy among them), status badges, times, and the compiled-in assets.

use super::{full, Answer};
use crate::store::{Outcome, RunView, State, Status};
use maud::{html, Markup, DOCTYPE};

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/live.js");

/// No inline script, no other origin: a stored value that got into a page could not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML page.
pub(crate) fn page(title: &str, csrf: Option<&str>, body: Markup) -> Answer {
    page_with_status(200, title, csrf, body)
}

/// An HTML page answered with `status`; `csrf` given when signing out is offered.
pub(crate) fn page_with_status(status: u16, title: &str, csrf: Option<&str>, body: Markup) -> Answer {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · wf" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/live.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "wf" }
                    nav {
                        a href="/" { "Runs" }
                        a href="/workflows" { "Workflows" }
                    }
                    @if let Some(token) = csrf {
                        form.signout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(token);
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    let mut a = hyper::Response::new(full(markup.into_string()));
    *a.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    let h = a.headers_mut();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/html; charset=utf-8"));
    secure(h);
    a
}

/// The headers every answer of the dashboard carries.
pub(crate) fn secure(h: &mut http::HeaderMap) {
    h.insert(http::header::CONTENT_SECURITY_POLICY, http::HeaderValue::from_static(CSP));
    h.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    h.insert(http::header::REFERRER_POLICY, http::HeaderValue::from_static("no-referrer"));
    h.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
}

/// A page that says what went wrong.
pub(crate) fn error(status: u16, title: &str, message: &str) -> Answer {
    page_with_status(
        status,
        title,
        None,
        html! {
            section.card {
                h1 { (title) }
                p { (message) }
                p { a href="/" { "All runs" } }
            }
        },
    )
}

/// `303 See Other` to `location` (a path of this dashboard), setting `cookie` if given.
pub(crate) fn redirect(location: &str, cookie: Option<String>) -> Answer {
    let mut a = hyper::Response::new(full(Vec::new()));
    *a.status_mut() = hyper::StatusCode::SEE_OTHER;
    if let Ok(v) = http::HeaderValue::from_str(location) {
        a.headers_mut().insert(http::header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
        a.headers_mut().insert(http::header::SET_COOKIE, c);
    }
    secure(a.headers_mut());
    a
}

/// A JSON answer.
pub(crate) fn json(status: u16, body: &'static str) -> Answer {
    let mut a = hyper::Response::new(full(body));
    *a.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    a.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    secure(a.headers_mut());
    a
}

/// Text (an exported test, a payload) shown as it is, never as HTML.
pub(crate) fn text(body: impl Into<bytes::Bytes>, content_type: &'static str) -> Answer {
    let mut a = hyper::Response::new(full(body));
    a.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    secure(a.headers_mut());
    a
}

/// `/assets/NAME`: the style and the script, compiled into the binary.
pub(crate) fn asset(name: &str) -> Answer {
    let (body, content_type) = match name {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "live.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return error(404, "Not found", "No such asset."),
    };
    let mut a = text(body, content_type);
    a.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("max-age=300"));
    a
}

/// An execution's status: its outcome once ended, else its state.
pub(crate) fn status(r: &RunView) -> Status {
    match (r.state, r.outcome) {
        (State::Ended, Some(o)) => Status::Outcome(o),
        (s, _) => Status::State(s),
    }
}

/// How a status looks: a symbol beside its word, and a colour, so it never depends on colour
/// alone.
#[derive(Clone, Copy)]
pub(crate) enum Tone {
    Good,
    Bad,
    Warn,
    Wait,
    Quiet,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Bad => "bad",
            Tone::Warn => "warn",
            Tone::Wait => "wait",
            Tone::Quiet => "quiet",
        }
    }
}

/// A status's symbol and tone.
fn look(s: Status) -> (&'static str, Tone) {
    match s {
        Status::Outcome(Outcome::Responded | Outcome::Completed) => ("✓", Tone::Good),
        Status::Outcome(Outcome::Failed) => ("✗", Tone::Bad),
        Status::Outcome(Outcome::Rejected) => ("⊘", Tone::Warn),
        Status::Outcome(Outcome::Duplicate | Outcome::Preflight | Outcome::Superseded) => ("≡", Tone::Quiet),
        Status::Outcome(Outcome::Cancelled) => ("■", Tone::Quiet),
        Status::State(State::Waiting) => ("⏸", Tone::Wait),
        Status::State(State::Running) => ("▶", Tone::Wait),
        Status::State(State::Queued | State::Ended) => ("…", Tone::Wait),
    }
}

/// A status as a badge: symbol and word, its tone as a class.
pub(crate) fn badge(s: Status) -> Markup {
    let (symbol, tone) = look(s);
    tagged(symbol, s.as_str(), tone)
}

/// A badge of a symbol, a word and a tone.
pub(crate) fn tagged(symbol: &str, word: &str, tone: Tone) -> Markup {
    html! { span class={ "badge " (tone.class()) } { span aria-hidden="true" { (symbol) } " " (word) } }
}

/// Milliseconds since the epoch as `2026-12-07 14:03:09Z`.
pub(crate) fn time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string().replace('T', " ")
}

/// A duration in milliseconds, short.
pub(crate) fn took(ms: Option<i64>) -> String {
    match ms {
        None => "—".into(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{:.1} min", ms as f64 / 60_000.0),
    }
}

/// A size in bytes, short.
pub(crate) fn size(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
    }
}
