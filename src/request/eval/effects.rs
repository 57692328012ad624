//! Turns an `http` or `run` of the IR into the [`Step`] it asks for, its expressions evaluated
//! (a part of the interpreter: the step API, not this, performs it).

use super::{self as eval, Context};
use crate::lang::ir::{Effect, HttpCall, Payload, RunCall};
use crate::request::form;
use crate::request::step::{HttpRequest, RunRequest, Step};
use crate::request::value;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use serde_json::Value;

pub(crate) fn request(effect: &Effect, frame: &[Value], cx: &Context) -> Result<Step, String> {
    Ok(match effect {
        Effect::Http(h) => Step::Http(http(h, frame, cx)?),
        Effect::Run(r) => Step::Run(run(r, frame, cx)?),
        Effect::Callback { timeout } => Step::Callback(*timeout),
        Effect::Wait(e) => {
            let v = eval::ev(e, frame, cx)?;
            let token = v
                .get("url")
                .and_then(Value::as_str)
                .and_then(|url| url.rsplit_once(crate::exec::callbacks::PATH))
                .map(|(_, token)| token.to_string())
                .ok_or("`wait` waits for a value `callback` made")?;
            Step::Wait(token)
        }
    })
}

fn http(h: &HttpCall, frame: &[Value], cx: &Context) -> Result<HttpRequest, String> {
    let url = value::render_string(&*eval::ev(&h.url, frame, cx)?);
    let mut headers = Vec::with_capacity(h.headers.len() + 1);
    for (name, e) in &h.headers {
        let v = eval::ev(e, frame, cx)?;
        let text = match v.as_ref() {
            Value::Null => continue,
            other => value::render_string(other),
        };
        let hv = HeaderValue::from_str(&text)
            .map_err(|_| format!("the value of header `{name}` is not a valid header value"))?;
        headers.push((name.clone(), hv));
    }
    let (content_type, body) = match &h.body {
        Payload::Empty => (None, Bytes::new()),
        Payload::Json(e) => {
            let mut out = Vec::with_capacity(64);
            eval::write_json(e, frame, &mut out, cx)?;
            (Some("application/json"), Bytes::from(out))
        }
        Payload::Text(e) => {
            let text = value::render_string(&*eval::ev(e, frame, cx)?);
            (Some("text/plain; charset=utf-8"), Bytes::from(text))
        }
        Payload::Form(e) => {
            let v = eval::ev(e, frame, cx)?;
            if !v.is_object() {
                return Err(format!("`form` sends an object, got {}", value::type_name(&v)));
            }
            (Some("application/x-www-form-urlencoded"), Bytes::from(form::encode(&v)))
        }
    };
    if let (Some(ct), false) = (content_type, h.has_content_type) {
        headers.push((CONTENT_TYPE, HeaderValue::from_static(ct)));
    }
    Ok(HttpRequest {
        method: h.method.clone(),
        url,
        headers,
        body,
        timeout: h.timeout,
        retry: h.retry,
        room: cx.room(),
        sign: match &h.sign {
            None => None,
            Some((scheme, e)) => {
                let secret = value::render_string(&*eval::ev(e, frame, cx)?);
                let key = match scheme {
                    crate::lang::ir::Scheme::StandardWebhooks => crate::request::signature::standard_key(&secret)
                        .ok_or("a Standard Webhooks secret is `whsec_` followed by the base64 of a key that is not empty")?,
                    _ if secret.is_empty() => return Err("the secret `sign` signs with is empty".into()),
                    _ => secret.into_bytes(),
                };
                Some((*scheme, key))
            }
        },
    })
}

fn run(r: &RunCall, frame: &[Value], cx: &Context) -> Result<RunRequest, String> {
    let program = value::render_string(&*eval::ev(&r.program, frame, cx)?);
    let args = match &r.args {
        None => Vec::new(),
        Some(e) => match eval::ev(e, frame, cx)?.into_owned() {
            Value::Array(items) => items.iter().map(value::render_string).collect(),
            Value::Null => Vec::new(),
            other => {
                return Err(format!("`run` takes an array of arguments, got {}", value::type_name(&other)))
            }
        },
    };
    let mut env = Vec::with_capacity(r.env.len());
    for (name, e) in &r.env {
        let v = eval::ev(e, frame, cx)?;
        let text = value::render_string(&v);
        if text.contains('\0') {
            return Err(format!("the value of `{name}` holds a NUL byte"));
        }
        env.push((name.clone(), text));
    }
    if args.iter().any(|a| a.contains('\0')) || program.contains('\0') {
        return Err("an argument of `run` holds a NUL byte".to_string());
    }
    let stdin = match &r.stdin {
        None => None,
        Some(e) => Some(Bytes::from(value::render_string(&*eval::ev(e, frame, cx)?))),
    };
    Ok(RunRequest { program, args, env, stdin, dir: r.dir.clone(), timeout: r.timeout })
}
