//! Who may look and act. Bound to loopback without `--admin-token`, anyone who reaches the
//! listener may. With `--admin-token NAME` (a secret's name), the pages and `/metrics` ask for it:
//! as `Authorization: Bearer <token>`, or through the login form, which sets an `HttpOnly`,
//! `SameSite=Strict` cookie holding a value derived from the token (never the token itself).
//! Every action is a `POST` carrying the process's CSRF token, which a page of another site
//! cannot read.

use super::{layout, Answer, Query};
use hmac::{Hmac, Mac};
use maud::html;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

const COOKIE: &str = "wf_admin";

pub(crate) struct Access {
    /// The admin token, when one is required.
    token: Option<Vec<u8>>,
    /// The login cookie's value: HMAC-SHA256 of a fixed text under the token, in hex.
    session: String,
    /// The CSRF token every form carries (random, this process's).
    csrf: String,
}

impl Access {
    pub(crate) fn new(token: Option<String>) -> Access {
        let mut random = [0u8; 16];
        let _ = getrandom::fill(&mut random);
        let session = token.as_ref().map_or_else(String::new, |t| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(t.as_bytes())
                .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
            mac.update(b"wf dashboard session");
            hex::encode(mac.finalize().into_bytes())
        });
        Access { token: token.map(String::into_bytes), session, csrf: hex::encode(random) }
    }

    /// The CSRF token forms carry.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether the request may see the pages and `/metrics`.
    pub(crate) fn allows(&self, headers: &http::HeaderMap) -> bool {
        let Some(token) = &self.token else { return true };
        let bearer = headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .any(|given| bool::from(given.ct_eq(token)));
        bearer || cookie(headers).is_some_and(|c| bool::from(c.as_bytes().ct_eq(self.session.as_bytes())))
    }

    pub(crate) fn csrf_ok(&self, form: &Query) -> bool {
        form.get("csrf").is_some_and(|c| bool::from(c.as_bytes().ct_eq(self.csrf.as_bytes())))
    }

    /// The answer to a request without the token: a browser's page request goes to the login
    /// form, anything else gets `401`.
    pub(crate) fn refused(&self, method: &http::Method, uri: &http::Uri) -> Answer {
        if method == http::Method::GET && uri.path() != "/events" {
            let next = uri.path_and_query().map_or("/", |p| p.as_str());
            let target: String =
                form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
            return layout::redirect(&format!("/login?{target}"), None);
        }
        let mut a = layout::json(
            401,
            r#"{"error":"unauthorized","message":"give the admin token as `Authorization: Bearer <token>`"}"#,
        );
        a.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        a
    }

    pub(crate) fn login_page(&self, next: Option<&str>, error: Option<&str>) -> Answer {
        let next = safe_next(next);
        if self.token.is_none() {
            return layout::redirect(next, None);
        }
        let body = html! {
            section.card.login {
                h1 { "Sign in" }
                p { "This dashboard asks for its admin token (the secret " code { "--admin-token" } " names)." }
                @if let Some(e) = error { p.flash.bad role="alert" { "✗ " (e) } }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(self.csrf);
                    input type="hidden" name="next" value=(next);
                    label for="token" { "Admin token" }
                    input #token type="password" name="token" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
            }
        };
        let status = if error.is_some() { 401 } else { 200 };
        layout::page_with_status(status, "Sign in", None, body)
    }

    /// `POST /login`: the token right sets the cookie and goes on to `next`.
    pub(crate) fn login(&self, form: &Query) -> Answer {
        let next = safe_next(form.get("next"));
        if !self.csrf_ok(form) {
            return self.login_page(Some(next), Some("The form is out of date: try again."));
        }
        let Some(token) = &self.token else { return layout::redirect(next, None) };
        let given = form.get("token").unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token)) {
            return self.login_page(Some(next), Some("That is not the admin token."));
        }
        let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", self.session);
        layout::redirect(next, Some(cookie))
    }

    pub(crate) fn logout(&self) -> Answer {
        layout::redirect("/login", Some(format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")))
    }

    /// Whether signing in is asked for (the header shows a sign-out button).
    pub(crate) fn required(&self) -> bool {
        self.token.is_some()
    }
}

/// The `wf_admin` cookie's value.
fn cookie(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Where to go after signing in: a path of this dashboard only (never another site).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: http::HeaderName, value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(name, http::HeaderValue::from_str(value).expect("value"));
        h
    }

    #[test]
    fn the_token_is_asked_for_as_a_bearer_or_the_cookie_derived_from_it() {
        let a = Access::new(Some("s3cret-token".into()));
        assert!(!a.allows(&http::HeaderMap::new()));
        assert!(a.allows(&headers(http::header::AUTHORIZATION, "Bearer s3cret-token")));
        assert!(!a.allows(&headers(http::header::AUTHORIZATION, "Bearer s3cret-tokem")));
        let cookie = format!("x=1; wf_admin={}", a.session);
        assert!(a.allows(&headers(http::header::COOKIE, &cookie)));
        assert!(!a.allows(&headers(http::header::COOKIE, "wf_admin=s3cret-token")));
        assert!(Access::new(None).allows(&http::HeaderMap::new()));
    }

    #[test]
    fn after_signing_in_only_a_path_of_this_dashboard_is_followed() {
        assert_eq!(safe_next(Some("/runs/00ab")), "/runs/00ab");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
