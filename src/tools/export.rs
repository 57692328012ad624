//! `wf runs export ID`: a kept execution as a `test` block that reproduces it under `wf test`:
//! its request as received (headers that carried credentials or signatures left out, and the
//! workflow's own `auth` written back as `secret(...)` references or a `sign` line), a `mock`
//! for each effect its journal recorded, with the recorded result, and `expect` lines for the
//! status it answered and, for a sync execution, the body. A body over [`INLINE`] bytes goes to a file beside the test, read with
//! `text file`. A real delivery becomes a regression test in one command.

use crate::lang::ir::{AuthKind, Expr, Workflow};
use crate::lang::quote::quote;
use crate::store::{RunView, StepState};
use serde_json::Value;
use std::fmt::Write as _;

/// Bodies longer than this are written to a file.
const INLINE: usize = 2_048;

/// Headers a test does not send again: the connection's own, and those the store masked.
fn dropped(name: &str, value: &str) -> bool {
    matches!(
        name,
        "host"
            | "content-length"
            | "connection"
            | "transfer-encoding"
            | "expect"
            | "accept-encoding"
            | "content-type"
    ) || value == "[masked]"
}

/// An expression of the workflow as its source would write it: the secrets and variables the
/// test refers to, never their values.
fn source(e: &Expr) -> Option<String> {
    match e {
        Expr::Secret(name) => Some(format!("secret({})", quote(name))),
        Expr::Env(name) => Some(format!("env({})", quote(name))),
        Expr::Const(Value::String(s)) => Some(quote(s)),
        _ => None,
    }
}

/// A file to write beside a test: its path and contents.
pub(crate) type Payload = (String, Vec<u8>);

/// The test block, and the file to write beside it when the body is large or not text.
pub(crate) fn test_block(run: &RunView, wf: Option<&Workflow>) -> Result<(String, Option<Payload>), String> {
    let request = run.request.as_ref().ok_or_else(|| format!("{} kept no request", run.id))?;
    if request.get("body_size").is_some() {
        return Err(format!("{} kept its body only as its size and digest (over --keep-body)", run.id));
    }
    let method = request["method"].as_str().unwrap_or("POST");
    let target = request["target"].as_str().unwrap_or("/");
    let mut out = String::new();
    let _ = writeln!(out, "test {} {{", quote(&format!("execution {} of {}", run.id, run.workflow)));
    // The journal's effects, answered as they were.
    let nothing = Value::Null;
    for s in run.steps.iter().filter(|s| s.state != StepState::Waiting) {
        let req = s.request.as_ref().unwrap_or(&nothing);
        match s.kind.as_str() {
            "http" => {
                let (m, url) = (req["method"].as_str().unwrap_or("POST"), req["url"].as_str().unwrap_or(""));
                let answer = match (&s.result, &s.reason) {
                    (Some(r), _) => {
                        let status = r["status"].as_u64().unwrap_or(200);
                        format!("respond {status} text {}", quote(r["text"].as_str().unwrap_or("")))
                    }
                    (None, Some(why)) => format!("fail {}", quote(why)),
                    (None, None) => continue,
                };
                let _ = writeln!(out, "  mock http {m} {} {{ {answer} }}", quote(url));
            }
            "run" => {
                let program = req["program"].as_str().unwrap_or("");
                let Some(r) = &s.result else { continue };
                let _ = writeln!(
                    out,
                    "  mock run {} {{ code {} stdout {} stderr {} }}",
                    quote(program),
                    r["code"].as_i64().unwrap_or(0),
                    quote(r["stdout"].as_str().unwrap_or("")),
                    quote(r["stderr"].as_str().unwrap_or(""))
                );
            }
            _ => {}
        }
    }
    let _ = writeln!(out, "  request {method} {} {{", quote(target));
    // The workflow's own credentials, by reference.
    if let Some(auth) = wf.and_then(|w| w.auth.as_ref()) {
        match &auth.kind {
            AuthKind::Basic { user, password } => {
                if let (Some(u), Some(p)) = (source(user), source(password)) {
                    let _ = writeln!(out, "    auth basic {u} {p}");
                }
            }
            AuthKind::Bearer(e) => {
                if let Some(s) = source(e) {
                    let _ = writeln!(out, "    header \"Authorization\" = \"Bearer ${{{s}}}\"");
                }
            }
            AuthKind::Header { name, secret } => {
                if let Some(s) = source(secret) {
                    let _ = writeln!(out, "    header {} = {s}", quote(name.as_str()));
                }
            }
            AuthKind::Signature(sig) => {
                if let Some(s) = source(&sig.secret) {
                    let _ = writeln!(out, "    sign {} {s}", sig.scheme.name());
                }
            }
        }
    }
    if let Some(headers) = request["headers"].as_object() {
        for (name, value) in headers {
            let value = value.as_str().unwrap_or("");
            if !dropped(name, value) {
                let _ = writeln!(out, "    header {} = {}", quote(name), quote(value));
            }
        }
    }
    let mut file = None;
    match request["body"].as_str() {
        Some(body) if body.len() > INLINE => {
            let path = format!("payloads/{}.txt", run.id);
            let _ = writeln!(out, "    text file {}", quote(&path));
            file = Some((path, body.as_bytes().to_vec()));
        }
        Some(body) if !body.is_empty() => {
            let _ = writeln!(out, "    text {}", quote(body));
        }
        // Not text: its bytes go to a file, sent as they are.
        None if request.get("body_base64").is_some() => {
            let bytes = crate::request::received::kept_body(request)
                .ok_or_else(|| format!("{}'s kept body is damaged", run.id))?;
            let path = format!("payloads/{}.bin", run.id);
            let _ = writeln!(out, "    bytes file {}", quote(&path));
            file = Some((path, bytes));
        }
        _ => {}
    }
    // The content type as received (after the body line, whose own it replaces).
    if let Some(ct) = request["headers"].get("content-type").and_then(Value::as_str) {
        let _ = writeln!(out, "    content_type {}", quote(ct));
    }
    out.push_str("  }\n");
    if let Some(status) = run.status {
        let _ = writeln!(out, "  expect status == {status}");
    }
    // A sync execution kept its answer's body: the test expects it too.
    if let Some(text) = request.get("answer").and_then(|a| a.get("body")).and_then(Value::as_str) {
        let _ = writeln!(out, "  expect text == {}", quote(text));
    }
    out.push_str("}\n");
    Ok((out, file))
}
