//! `wf send FILE|- URL [--sign PROVIDER --secret NAME] [--header "N: V"]... [--method M]`: sends
//! a payload signed the way that provider signs its deliveries (the same signing `wf test`'s
//! `sign` lines use) and prints the answer: a delivery by hand, to a `wf serve` or anything else.

use crate::lang::ir::Scheme;
use crate::request::signature;
use std::io::Read as _;
use std::process::ExitCode;

pub(crate) fn send(
    file: &str,
    url: &str,
    sign: Option<(&str, &str)>,
    headers: &[String],
    method: &str,
) -> ExitCode {
    match send_inner(file, url, sign, headers, method) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(why) => {
            eprintln!("error: {why}");
            ExitCode::from(2)
        }
    }
}

/// Sends and prints; whether the answer was a success (`2xx`).
fn send_inner(
    file: &str,
    url: &str,
    sign: Option<(&str, &str)>,
    headers: &[String],
    method: &str,
) -> Result<bool, String> {
    let mut body = Vec::new();
    if file == "-" {
        std::io::stdin().read_to_end(&mut body).map_err(|e| format!("cannot read standard input: {e}"))?;
    } else {
        body = std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    }
    let method =
        reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| format!("`{method}` is not a method"))?;
    let mut sent = reqwest::header::HeaderMap::new();
    for h in headers {
        let (name, value) = h.split_once(':').ok_or_else(|| format!("`{h}` is not `Name: value`"))?;
        let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("`{}` is not a header name", name.trim()))?;
        let value = reqwest::header::HeaderValue::from_str(value.trim())
            .map_err(|_| format!("the value of `{name}` is not a header value"))?;
        sent.append(name, value);
    }
    let form = sent
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !sent.contains_key(reqwest::header::CONTENT_TYPE) {
        let json = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
        let ct = if json { "application/json" } else { "text/plain; charset=utf-8" };
        sent.insert(reqwest::header::CONTENT_TYPE, reqwest::header::HeaderValue::from_static(ct));
    }
    if let Some((provider, name)) = sign {
        let scheme = Scheme::from_name(provider)
            .filter(|s| *s != Scheme::Hmac)
            .ok_or_else(|| format!("`{provider}` is not a provider wf signs as (github, stripe, slack, shopify, standard_webhooks, twilio)"))?;
        let secret = std::env::var(name)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("`{name}` is not set"))?;
        if scheme == Scheme::StandardWebhooks && signature::standard_key(&secret).is_none() {
            return Err(format!("`{name}` is not a Standard Webhooks secret (`whsec_` and base64)"));
        }
        // Twilio signs the URL and the form's fields.
        let params: Vec<(String, String)> = if form {
            form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
        } else {
            Vec::new()
        };
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        for (header, value) in signature::sign(scheme, &secret, &body, url, &params, now) {
            let value = reqwest::header::HeaderValue::from_str(&value).map_err(|e| e.to_string())?;
            sent.insert(header, value);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let answer = rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let r = client
            .request(method, url)
            .headers(sent)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, headers, text))
    })?;
    let (status, headers, text) = answer;
    let mut out = format!("HTTP/1.1 {status}\n");
    for (name, value) in &headers {
        out.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
    }
    out.push('\n');
    out.push_str(&text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
    print!("{out}");
    Ok(status.is_success())
}
