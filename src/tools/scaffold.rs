//! `wf new`: a workflow skeleton that passes `check`, with a random URL-safe key.

use crate::lang::quote::quote;
use base64::Engine as _;

/// Whether `name` can name a workflow.
pub(crate) fn valid_name(name: &str) -> bool {
    crate::lang::keywords::is_name(name)
}

/// 22 URL-safe characters from 16 bytes of the operating system's CSPRNG.
pub(crate) fn random_key() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub(crate) fn skeleton(name: &str, is_async: bool, path: Option<&str>) -> Result<String, String> {
    let (setting, url) = match path {
        Some(p) => (format!("path {}", quote(p)), p.to_string()),
        None => {
            let key = random_key()?;
            (format!("key \"{key}\""), format!("/api/webhook:trigger/{key}"))
        }
    };
    let mode = if is_async { "\n    mode async" } else { "" };
    let answer = if is_async { "" } else { "\n  respond 200 json { ok: true, event: event }" };
    let url = quote(&url);
    Ok(format!(
        r#"workflow {name} {{
  trigger webhook {{
    {setting}{mode}
  }}

  extract {{
    event = body "event" default "unknown"
  }}

  log "{name} received ${{event}}"{answer}
}}

test "{name} answers" {{
  request POST {url} {{
    json {{ event: "ping" }}
  }}
  expect status == 200
}}
"#
    ))
}
