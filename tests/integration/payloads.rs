//! The providers' own payloads (`tests/payloads/`, sources in its README), signed with `openssl`
//! as each provider signs them, sent to the examples through the real server.

use crate::common::{repo, request, Server};
use crate::providers::{b64, hex, now, openssl_hmac};

fn payload(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/payloads").join(name)).expect("payload")
}

fn examples() -> Server {
    let env: Vec<(&str, &str)> =
        crate::common::EXAMPLE_ENV.iter().skip(1).step_by(2).filter_map(|kv| kv.split_once('=')).collect();
    let mut cmd = std::process::Command::new(crate::common::wf_bin());
    cmd.args([
        "serve",
        repo().join("examples").to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
        "--allow-run",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server::spawn(cmd, crate::common::Dir::new(&[]))
}

#[test]
fn github_stripe_slack_and_twilio_payloads_reach_the_examples() {
    let s = examples();
    let json = ("Content-Type", "application/json");

    let ping = payload("github_ping.json");
    let sig = format!("sha256={}", hex(&openssl_hmac("sha256", b"gh-secret", &ping)));
    let r = request(
        s.addr,
        "POST",
        "/hooks/github",
        &[json, ("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", &sig)],
        &ping,
    );
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"pong": true})),
        "GitHub's ping, which has no ref"
    );

    let push = payload("github_push_tag.json");
    let sig = format!("sha256={}", hex(&openssl_hmac("sha256", b"gh-secret", &push)));
    let r = request(
        s.addr,
        "POST",
        "/hooks/github",
        &[json, ("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &sig)],
        &push,
    );
    assert_eq!(r.json(), serde_json::json!({"kind": "tag", "repo": "Codertocat/Hello-World"}));

    let event = payload("stripe_payment_intent_succeeded.json");
    let t = now().to_string();
    let content = [t.as_bytes(), b".", &event].concat();
    let sig = format!("t={t},v1={}", hex(&openssl_hmac("sha256", b"whsec_test", &content)));
    let r = request(s.addr, "POST", "/hooks/stripe", &[json, ("Stripe-Signature", &sig)], &event);
    assert_eq!(r.json(), serde_json::json!({"received": true, "amount": 2000}));

    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let command = payload("slack_slash_command.form");
    let content = [b"v0:", t.as_bytes(), b":", &command].concat();
    let sig = format!("v0={}", hex(&openssl_hmac("sha256", b"slack-secret", &content)));
    let r = request(
        s.addr,
        "POST",
        "/hooks/slack/command",
        &[form, ("X-Slack-Request-Timestamp", &t), ("X-Slack-Signature", &sig)],
        &command,
    );
    assert_eq!(r.json()["text"], "I only know /deploy");

    // Twilio signs the public URL (the example's `url` setting) and the parameters sorted by name.
    let sms = payload("twilio_incoming_sms.form");
    let mut params: Vec<(String, String)> = form_urlencoded::parse(&sms).into_owned().collect();
    params.sort();
    let mut content = String::from("https://hooks.example.com/hooks/twilio/sms");
    for (k, v) in &params {
        content.push_str(k);
        content.push_str(v);
    }
    let sig = b64(&openssl_hmac("sha1", b"twilio-token", content.as_bytes()));
    let r = request(s.addr, "POST", "/hooks/twilio/sms", &[form, ("X-Twilio-Signature", &sig)], &sms);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("You said: Hello &lt;/Message&gt;&lt;Redirect&gt;"), "{}", r.body);
    assert!(!r.body.contains("<Redirect>"), "{}", r.body);
}
