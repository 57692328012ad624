//! The dashboard: the pages `wf serve --admin ADDR` serves at `/` beside `/metrics`. Runs
//! (`runs_page.rs`: filters, search, keyset pages, live rows), a run (`run_page.rs`: request,
//! steps, logs, failure, actions), workflows (`workflow_page.rs`: trigger, extractions, the
//! graph wf lays out, source, the last hour). Server-rendered HTML (`maud`, which escapes every
//! value it writes), assets compiled in (`assets/`), usable without JavaScript: the script only
//! adds rows as runs end (`live.rs`, server-sent events). `access.rs` keeps who may look and act:
//! the admin token, the login cookie and the CSRF token every `POST` carries.
//!
//! Layering: beside `serve/`, which routes the admin listener's other paths here; reads through
//! the store's `History` and the workflows served now.

mod access;
mod layout;
pub(crate) mod live;
mod run_page;
mod runs_page;
mod workflow_page;

pub(crate) use access::Access;

/// What the dashboard reads of a request before any store is asked: the query string (first of
/// each name, a bounded number), a page key, an execution id, a form body, the login cookie and
/// a bearer header. For the fuzz target: none of it may panic, whatever the bytes; gives how many
/// of them were taken as valid.
pub fn read_request(query: &str, form: &[u8], cookie: &[u8], authorization: &[u8]) -> usize {
    let uri = match format!("/?{}", query.replace(|c: char| !c.is_ascii_graphic(), "")).parse::<http::Uri>() {
        Ok(u) => u,
        Err(_) => return 0,
    };
    let q = Query::of(&uri);
    let f = Query::parse(form);
    let mut headers = http::HeaderMap::new();
    for (name, value) in [(http::header::COOKIE, cookie), (http::header::AUTHORIZATION, authorization)] {
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            headers.insert(name, v);
        }
    }
    let access = Access::new(Some("fuzz-token".into()));
    let taken = [
        q.get("after").and_then(runs_page::cursor).is_some(),
        q.get("q").is_some_and(is_id),
        access.csrf_ok(&f),
        access.allows(&headers),
    ];
    taken.iter().filter(|t| **t).count()
}

use crate::request::served::Router;
use crate::store::Store;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt as _;
use std::convert::Infallible;
use std::sync::Arc;

/// An answer of the admin listener.
pub(crate) type Answer = hyper::Response<BoxBody<Bytes, Infallible>>;

/// Largest form a `POST` may send.
const MAX_FORM: usize = 16 * 1024;
/// Query parameters read, at most (the rest are ignored).
const MAX_PARAMS: usize = 64;

/// What the pages read: the store, the workflows served now, the live feed, who may look.
pub(crate) struct Dashboard {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) current: Arc<dyn Fn() -> Arc<Router> + Send + Sync>,
    pub(crate) live: live::Live,
    pub(crate) access: Access,
}

/// The page's query parameters: the first of each name, at most [`MAX_PARAMS`] read.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn of(uri: &http::Uri) -> Query {
        let pairs = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .take(MAX_PARAMS)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query(pairs)
    }

    fn parse(bytes: &[u8]) -> Query {
        Query(
            form_urlencoded::parse(bytes)
                .take(MAX_PARAMS)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

impl Dashboard {
    /// Answers a request to the admin listener that is not `/metrics`, `/healthz` or `/readyz`.
    pub(crate) async fn answer(&self, req: hyper::Request<hyper::body::Incoming>) -> Answer {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        let query = Query::of(&parts.uri);
        let signed_in = self.access.allows(&parts.headers);
        // Assets carry nothing stored: served to anyone, so the login page has its style.
        if let Some(asset) = path.strip_prefix("/assets/") {
            return layout::asset(asset);
        }
        if path == "/login" {
            return match parts.method {
                http::Method::POST => {
                    let form = match read_form(body).await {
                        Ok(f) => f,
                        Err(a) => return a,
                    };
                    self.access.login(&form)
                }
                _ => self.access.login_page(query.get("next"), None),
            };
        }
        if !signed_in {
            return self.access.refused(&parts.method, &parts.uri);
        }
        let post = parts.method == http::Method::POST;
        let form = if post {
            match read_form(body).await {
                Ok(f) => {
                    if !self.access.csrf_ok(&f) {
                        return layout::error(
                            403,
                            "Refused",
                            "This form's CSRF token is missing or wrong. Reload the page and try again.",
                        );
                    }
                    Some(f)
                }
                Err(a) => return a,
            }
        } else {
            None
        };
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (post, segments.as_slice()) {
            (false, [""]) => runs_page::page(self, &query).await,
            (false, ["events"]) => self.live.subscribe(&query),
            (false, ["runs", id]) => run_page::page(self, id, query.get("done")).await,
            (false, ["runs", id, "export"]) => {
                run_page::export(self, id, query.get("payload").is_some()).await
            }
            (true, ["runs", id, "retry"]) => {
                run_page::retry(self, id, form.as_ref().is_some_and(|f| f.get("from_start").is_some())).await
            }
            (true, ["runs", id, "cancel"]) => run_page::cancel(self, id).await,
            (true, ["runs", id, "replay"]) => run_page::replay(self, id).await,
            (true, ["logout"]) => self.access.logout(),
            (false, ["workflows"]) => workflow_page::index(self),
            (false, ["workflows", name]) => workflow_page::page(self, name).await,
            (false, ["workflows", name, "graph.svg"]) => workflow_page::graph(self, name),
            (true, _) => layout::error(404, "Not found", "No action here."),
            (false, _) => layout::error(404, "Not found", "No page here. The runs are at /."),
        }
    }
}

/// Reads a form body (at most [`MAX_FORM`] bytes).
async fn read_form(body: hyper::body::Incoming) -> Result<Query, Answer> {
    match http_body_util::Limited::new(body, MAX_FORM).collect().await {
        Ok(b) => Ok(Query::parse(&b.to_bytes())),
        Err(_) => Err(layout::error(413, "Too large", "A form sends at most 16 KiB.")),
    }
}

/// Whether `id` is an execution id as the pages take it: 16 hex digits.
fn is_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A body of bytes as an answer's.
pub(crate) fn full(bytes: impl Into<Bytes>) -> BoxBody<Bytes, Infallible> {
    http_body_util::Full::new(bytes.into()).boxed()
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_a_request_brings_is_taken_only_when_valid() {
        let good = super::read_request(
            "after=1-00000000000000ab&q=00000000000000AB",
            b"",
            b"",
            b"Bearer fuzz-token",
        );
        assert_eq!(good, 3);
        assert_eq!(super::read_request("after=x&q=%ff%fe", b"csrf=\xff", b"wf_admin=\xff", b"Basic x"), 0);
    }
}
