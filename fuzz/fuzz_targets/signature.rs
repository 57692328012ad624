//! Every signature scheme's header parser and check, on arbitrary header values: nothing may
//! panic, and nothing but the right MAC is accepted (the secret is never in the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wf::lang::ir::Scheme;
use wf::request::signature::{parse_standard, parse_stripe, parse_timestamp, Signed, Verifier};

const HEADERS: [&str; 11] = [
    "x-hub-signature-256",
    "stripe-signature",
    "x-slack-request-timestamp",
    "x-slack-signature",
    "x-shopify-hmac-sha256",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-signature",
    "x-twilio-signature",
    "x-signature",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_stripe(&text);
    let _ = parse_standard(&text);
    let _ = parse_timestamp(&text);
    // Lines become header values, in order; the last line is the body.
    let mut headers = http::HeaderMap::new();
    let mut lines = data.split(|b| *b == b'\n');
    for name in HEADERS {
        let Some(line) = lines.next() else { break };
        if let Ok(v) = http::HeaderValue::from_bytes(line) {
            headers.insert(name, v);
        }
    }
    let body = lines.next().unwrap_or_default();
    let params = wf::request::form::pairs(body);
    for scheme in [Scheme::Github, Scheme::Stripe, Scheme::Slack, Scheme::Shopify, Scheme::StandardWebhooks, Scheme::Twilio] {
        let v = Verifier {
            scheme,
            secrets: vec![b"fuzz-secret-never-in-input".to_vec()],
            tolerance_secs: 300,
            hmac: None,
            public_keys: Vec::new(),
        };
        let r = Signed { headers: &headers, body, url: "http://localhost/p", params: &params, now: 1_700_000_000 };
        assert!(v.verify(&r).is_err(), "{scheme:?} accepted a request not signed with the secret");
    }
    // Standard Webhooks' `v1a`: a public key (RFC 8032's first test vector) the input cannot sign for.
    let public = wf::request::signature::standard_public_key("whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    let v = Verifier {
        scheme: Scheme::StandardWebhooks,
        secrets: Vec::new(),
        tolerance_secs: 300,
        hmac: None,
        public_keys: public.into_iter().collect(),
    };
    let r = Signed { headers: &headers, body, url: "http://localhost/p", params: &params, now: 1_700_000_000 };
    assert!(v.verify(&r).is_err(), "v1a accepted a request not signed with the key");
});
