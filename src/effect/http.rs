//! `http`: one call with its retries. Waits double from one second (±20% jitter, at most an
//! hour) unless the answer says `retry-after`; connection errors, timeouts, `408`, `429` and `5xx`
//! are retried; every attempt carries the same `idempotency-key`; answers over 10 MiB fail.

use crate::request::step::{self, HttpRequest};
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::Value;
use std::time::Duration;

/// Largest answer an `http` call reads.
pub(crate) const MAX_ANSWER: usize = 10 << 20;
/// Longest wait between attempts.
const MAX_WAIT: Duration = Duration::from_secs(3600);

pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The client all executions share. Redirects are not followed (a `3xx` is a result like any
/// other status): a redirect could lead a call to a host the workflow never named.
pub(crate) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wf/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Why an attempt gave no answer.
enum Failure {
    /// Worth another attempt (connection error, timeout).
    Transient(String),
    /// Not (the answer is too large, the request cannot be built).
    Final(String),
}

/// A call resumed or allowed to park: the attempts made before (by a run resumed from its
/// journal), and, for a run that is kept, the wait from which the run parks instead of waiting
/// (leaving its due time in the slot and stopping with [`step::Stop::Parked`]).
#[derive(Default)]
pub(crate) struct Waits<'a> {
    pub attempts_before: u32,
    pub park: Option<(std::time::Duration, u32, &'a step::ParkedSlot)>,
}

/// Performs a call: the first attempt, then up to `retry` more; gives the result of the last
/// answer, or fails when the last attempt got none.
pub(crate) async fn call(
    client: &reqwest::Client,
    req: HttpRequest,
    key: &str,
    waits: Waits<'_>,
    made: &mut u32,
) -> Result<Value, step::StepError> {
    let what = format!("`http {} {}`", req.method, req.url);
    let url = reqwest::Url::parse(&req.url).map_err(|e| format!("{what}: not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{what}: only http and https URLs can be called").into());
    }
    let mut headers = http::HeaderMap::with_capacity(req.headers.len() + 1);
    for (name, value) in &req.headers {
        headers.append(name.clone(), value.clone());
    }
    if !headers.contains_key(&IDEMPOTENCY_KEY) {
        let key = HeaderValue::from_str(key).map_err(|_| format!("{what}: invalid idempotency key"))?;
        headers.insert(IDEMPOTENCY_KEY, key);
    }
    let mut attempt: u32 = waits.attempts_before;
    // A call resumed after its run was parked counts the attempts made before (the process that
    // parked it recorded none of them).
    *made = made.saturating_add(attempt);
    loop {
        let mut sent = headers.clone();
        // A signed call's headers are made per attempt (Standard Webhooks signs its time).
        if let Some((scheme, secret)) = &req.sign {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            for (name, value) in
                crate::request::signature::sender_headers(*scheme, secret, key, &req.body, now)
            {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    sent.insert(name, v);
                }
            }
        }
        let request = client.request(req.method.clone(), url.clone()).headers(sent).body(req.body.clone());
        let outcome = tokio::time::timeout(req.timeout, once(request)).await;
        *made += 1;
        let last = attempt >= req.retry;
        let retry_after = match outcome {
            Ok(Ok((status, answer_headers, body))) => {
                let retried = status == 408 || status == 429 || status >= 500;
                if !retried || last {
                    return step::http_result(status, &answer_headers, &body, req.room)
                        .map_err(|why| step::StepError::Failed(format!("{what}: {why}")));
                }
                retry_after(&answer_headers)
            }
            Ok(Err(Failure::Final(why))) => return Err(format!("{what}: {why}").into()),
            Ok(Err(Failure::Transient(why))) => {
                if last {
                    return Err(format!("{what} failed after {} attempt(s): {why}", attempt + 1).into());
                }
                None
            }
            Err(_) => {
                if last {
                    let t = humantime::format_duration(req.timeout);
                    return Err(format!("{what} timed out after {t} ({} attempt(s))", attempt + 1).into());
                }
                None
            }
        };
        let wait = retry_after.unwrap_or_else(|| backoff(attempt));
        if let Some((after, n, slot)) = waits.park {
            if wait >= after {
                let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                let due_ms = step::now_ms().saturating_add(wait_ms);
                if let Ok(mut parked) = slot.lock() {
                    *parked = Some(step::Parked { n, due_ms, attempts: attempt + 1 });
                }
                return Err(step::StepError::Stopped(step::Stop::Parked));
            }
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// Sends one attempt and reads its answer, at most [`MAX_ANSWER`] bytes.
async fn once(request: reqwest::RequestBuilder) -> Result<(u16, http::HeaderMap, Vec<u8>), Failure> {
    let mut response = request.send().await.map_err(|e| {
        if e.is_builder() {
            Failure::Final(reason(&e))
        } else {
            Failure::Transient(reason(&e))
        }
    })?;
    let status = response.status().as_u16();
    if response.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(Failure::Final(format!("the answer is over {} MiB", MAX_ANSWER >> 20)));
    }
    let headers = std::mem::take(response.headers_mut());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Failure::Transient(reason(&e)))? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(Failure::Final(format!("the answer is over {} MiB", MAX_ANSWER >> 20)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, headers, body))
}

/// The innermost cause of an error, which names what happened ("Connection refused").
fn reason(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if e.is_connect() && !text.to_lowercase().contains("connect") {
        format!("cannot connect: {text}")
    } else {
        text
    }
}

/// The wait before attempt `attempt + 2`: `min(1h, 1s·2^attempt)`, ±20%.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1u64.checked_shl(attempt.min(12)).unwrap_or(u64::MAX)).min(MAX_WAIT);
    let mut r = [0u8; 4];
    let unit = match getrandom::fill(&mut r) {
        Ok(()) => f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    base.mul_f64(0.8 + 0.4 * unit).min(MAX_WAIT)
}

/// `retry-after` as seconds or as an HTTP date, at most an hour.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(v).ok()?;
            at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_an_hour() {
        for attempt in 0..20 {
            let base = (1u64 << attempt.min(12)).min(3600) as f64;
            let w = backoff(attempt).as_secs_f64();
            assert!(w >= base * 0.8 - 1e-9 && w <= (base * 1.2).min(3600.0) + 1e-9, "{attempt}: {w}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = http::HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999"));
        assert_eq!(retry_after(&h), Some(MAX_WAIT));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
