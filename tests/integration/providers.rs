//! Real providers in: every `auth` form through the real server, with signatures computed by
//! `openssl` (never by wf's code), `method`, `allow ip` behind `--trusted-proxy`, `cors`, form,
//! multipart and text bodies, `request` fields, the order of checks and hostile signature input.

use crate::common::{basic, request, Dir, Resp, Server};
use base64::Engine as _;

/// `openssl dgst -<alg> -mac HMAC -macopt hexkey:<key> -binary`: the MAC of `data`, computed
/// outside wf.
pub fn openssl_hmac(alg: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
    let hexkey: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let (digest, hexkey) = (format!("-{alg}"), format!("hexkey:{hexkey}"));
    let out = crate::common::pipe(
        "openssl",
        &["dgst", &digest, "-mac", "HMAC", "-macopt", &hexkey, "-binary"],
        data,
    );
    assert!(out.status.success(), "openssl (Debian package openssl) is needed for the signature tests");
    out.stdout
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

fn serve(auth: &str, extra: &str) -> Server {
    let src = format!(
        "workflow p {{\n  trigger webhook {{\n    path \"/p\"\n    {auth}\n  }}\n  {extra}\n  respond 200 text \"ok\"\n}}\n"
    );
    Server::start_env(&[("p.wf", &src)], &[], &[("SECRET", "s3cret"), ("OLD", "old-secret")])
}

fn post(s: &Server, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    request(s.addr, "POST", "/p", headers, body)
}

fn refused(r: &Resp, why: &str) {
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"], why, "{}", r.body);
    assert!(!r.body.contains("s3cret"));
}

#[test]
fn github_documented_vector_and_its_failures() {
    // GitHub documents: secret "It's a Secret to Everybody", payload "Hello, World!" →
    // sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17
    let src = "workflow g { trigger webhook { path \"/p\" auth github \"It's a Secret to Everybody\" } respond 200 text \"ok\" }";
    let s = Server::start(&[("g.wf", src)], &[]);
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(post(&s, &[("X-Hub-Signature-256", good)], b"Hello, World!").status, 200);
    refused(&post(&s, &[("X-Hub-Signature-256", good)], b"Hello, World?"), "invalid signature");
    refused(&post(&s, &[], b"Hello, World!"), "missing signature");
    refused(&post(&s, &[("X-Hub-Signature-256", "sha256=0000")], b"Hello, World!"), "invalid signature");
    refused(&post(&s, &[("X-Hub-Signature-256", "")], b"Hello, World!"), "missing signature");
    refused(
        &post(&s, &[("X-Hub-Signature-256", &good[..good.len() - 2])], b"Hello, World!"),
        "invalid signature",
    );
    let huge = format!("sha256={}", "a".repeat(30_000));
    refused(&post(&s, &[("X-Hub-Signature-256", &huge)], b"Hello, World!"), "invalid signature");
    let raw = b"POST /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Hub-Signature-256: sha256=\xc3\xa9\r\nContent-Length: 1\r\n\r\nx";
    assert_eq!(crate::common::raw_request(s.addr, raw).status, 401);
}

#[test]
fn a_rotated_secret_is_accepted_and_any_other_refused() {
    let s = serve("auth github [env(\"OLD\"), env(\"SECRET\")]", "");
    let body = br#"{"zen":"hi"}"#;
    for key in ["s3cret", "old-secret"] {
        let sig = format!("sha256={}", hex(&openssl_hmac("sha256", key.as_bytes(), body)));
        assert_eq!(post(&s, &[("X-Hub-Signature-256", &sig)], body).status, 200, "{key}");
    }
    let sig = format!("sha256={}", hex(&openssl_hmac("sha256", b"other", body)));
    refused(&post(&s, &[("X-Hub-Signature-256", &sig)], body), "invalid signature");
}

#[test]
fn stripe_signatures_timestamps_and_many_v1() {
    let s = serve("auth stripe env(\"SECRET\")", "");
    let body = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
    let sign = |t: u64| {
        let content = [t.to_string().as_bytes(), b".", body].concat();
        hex(&openssl_hmac("sha256", b"s3cret", &content))
    };
    let t = now();
    let ok = format!("t={t},v1={}", sign(t));
    assert_eq!(post(&s, &[("Stripe-Signature", &ok)], body).status, 200);
    let two = format!("t={t},v1={},v1={}", "00".repeat(32), sign(t));
    assert_eq!(post(&s, &[("Stripe-Signature", &two)], body).status, 200, "any v1 matching is enough");
    let stale = t - 600;
    refused(
        &post(&s, &[("Stripe-Signature", &format!("t={stale},v1={}", sign(stale)))], body),
        "timestamp outside tolerance",
    );
    let future = t + 600;
    refused(
        &post(&s, &[("Stripe-Signature", &format!("t={future},v1={}", sign(future)))], body),
        "timestamp outside tolerance",
    );
    refused(
        &post(&s, &[("Stripe-Signature", &ok)], br#"{"id":"evt_2","type":"charge.succeeded"}"#),
        "invalid signature",
    );
    refused(&post(&s, &[("Stripe-Signature", &format!("v1={}", sign(t)))], body), "missing timestamp");
    for bad in ["abc", "-5", "99999999999999999999999", "1.5"] {
        refused(
            &post(&s, &[("Stripe-Signature", &format!("t={bad},v1={}", sign(t)))], body),
            "invalid timestamp",
        );
    }
    let many = format!("t={t},{}", vec!["v1=00"; 1000].join(","));
    refused(&post(&s, &[("Stripe-Signature", &many)], body), "invalid signature");
    refused(&post(&s, &[], body), "missing signature");
}

#[test]
fn slack_signatures_over_the_form_body() {
    let s = serve("auth slack env(\"SECRET\")", "extract { command = body \"command\" required }");
    let body = b"command=%2Fdeploy&text=checkout&user_name=ada";
    let sign = |ts: u64, b: &[u8]| {
        let content = [b"v0:", ts.to_string().as_bytes(), b":", b].concat();
        format!("v0={}", hex(&openssl_hmac("sha256", b"s3cret", &content)))
    };
    let ts = now();
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let ts_s = ts.to_string();
    let ok = sign(ts, body);
    assert_eq!(
        post(&s, &[form, ("X-Slack-Request-Timestamp", &ts_s), ("X-Slack-Signature", &ok)], body).status,
        200
    );
    let stale = (ts - 301).to_string();
    refused(
        &post(
            &s,
            &[form, ("X-Slack-Request-Timestamp", &stale), ("X-Slack-Signature", &sign(ts - 301, body))],
            body,
        ),
        "timestamp outside tolerance",
    );
    refused(&post(&s, &[form, ("X-Slack-Signature", &ok)], body), "missing timestamp");
    refused(&post(&s, &[form, ("X-Slack-Request-Timestamp", &ts_s)], body), "missing signature");
    refused(&post(&s, &[form], body), "missing signature");
    refused(
        &post(
            &s,
            &[form, ("X-Slack-Request-Timestamp", &ts_s), ("X-Slack-Signature", &ok)],
            b"command=%2Fdeploy&text=checkouT&user_name=ada",
        ),
        "invalid signature",
    );
}

#[test]
fn shopify_base64_signatures() {
    let s = serve("auth shopify env(\"SECRET\")", "");
    let body = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    let ok = b64(&openssl_hmac("sha256", b"s3cret", body));
    assert_eq!(post(&s, &[("X-Shopify-Hmac-Sha256", &ok)], body).status, 200);
    refused(&post(&s, &[("X-Shopify-Hmac-Sha256", "not base64!")], body), "invalid signature");
    refused(&post(&s, &[("X-Shopify-Hmac-Sha256", &ok)], &body[1..]), "invalid signature");
}

#[test]
fn standard_webhooks_and_svix_headers() {
    // The Standard Webhooks secret is `whsec_` + base64 of the key.
    let key = b"wf-standard-webhooks-test-key!!!";
    let secret = format!("whsec_{}", b64(key));
    let src = "workflow p { trigger webhook { path \"/p\" auth standard_webhooks env(\"SW\") } respond 200 text \"ok\" }";
    let s = Server::start_env(&[("p.wf", src)], &[], &[("SW", &secret)]);
    let body = br#"{"type":"invoice.paid"}"#;
    let ts = now().to_string();
    let sig = |id: &str, ts: &str| {
        let content = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
        format!("v1,{}", b64(&openssl_hmac("sha256", key, &content)))
    };
    let good = sig("msg_1", &ts);
    let ok =
        post(&s, &[("webhook-id", "msg_1"), ("webhook-timestamp", &ts), ("webhook-signature", &good)], body);
    assert_eq!(ok.status, 200);
    let both = format!("v1,{} {good}", b64(b"nope"));
    assert_eq!(
        post(&s, &[("webhook-id", "msg_1"), ("webhook-timestamp", &ts), ("webhook-signature", &both)], body)
            .status,
        200
    );
    let svix = post(&s, &[("svix-id", "msg_1"), ("svix-timestamp", &ts), ("svix-signature", &good)], body);
    assert_eq!(svix.status, 200, "svix- headers are accepted");
    // No signature headers at all: "missing signature", as for every scheme.
    refused(&post(&s, &[], body), "missing signature");
    refused(&post(&s, &[("webhook-id", "msg_1"), ("webhook-timestamp", &ts)], body), "missing signature");
    refused(
        &post(&s, &[("webhook-id", "msg_2"), ("webhook-timestamp", &ts), ("webhook-signature", &good)], body),
        "invalid signature",
    );
    let old = (now() - 3600).to_string();
    refused(
        &post(
            &s,
            &[
                ("webhook-id", "msg_1"),
                ("webhook-timestamp", &old),
                ("webhook-signature", &sig("msg_1", &old)),
            ],
            body,
        ),
        "timestamp outside tolerance",
    );
}

#[test]
fn twilio_signs_the_url_and_sorted_parameters() {
    let src = "workflow t {\n  trigger webhook {\n    path \"/sms\"\n    auth twilio env(\"SECRET\")\n  }\n  extract { text = body \"Body\" }\n  respond 200 text xml_escape(text)\n}\n";
    let s = Server::start_env(&[("t.wf", src)], &[], &[("SECRET", "s3cret")]);
    let body = b"To=%2B15005550001&From=%2B15005550006&Body=hi+%3Cb%3E";
    // Twilio: the full URL, then each parameter sorted by name, as name+value.
    let url = format!("http://{}/sms", s.addr);
    let content = format!("{url}Bodyhi <b>From+15005550006To+15005550001");
    let sig = b64(&openssl_hmac("sha1", b"s3cret", content.as_bytes()));
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let r = request(s.addr, "POST", "/sms", &[form, ("X-Twilio-Signature", &sig)], body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "hi &lt;b&gt;");
    let r = request(
        s.addr,
        "POST",
        "/sms",
        &[form, ("X-Twilio-Signature", &sig)],
        b"To=%2B15005550001&From=%2B15005550006&Body=hi",
    );
    refused(&r, "invalid signature");
}

#[test]
fn generic_hmac_with_a_signed_expression() {
    let auth = "auth hmac {\n header \"X-Signature\"\n prefix \"sha512=\"\n algorithm sha512\n encoding hex\n secret env(\"SECRET\")\n signed \"${ts}.${raw_body}\"\n }";
    let s = serve(auth, "extract { ts = header \"X-Timestamp\" }");
    let body = b"{\"a\":1}";
    let sig = format!("sha512={}", hex(&openssl_hmac("sha512", b"s3cret", b"1700000000.{\"a\":1}")));
    assert_eq!(post(&s, &[("X-Timestamp", "1700000000"), ("X-Signature", &sig)], body).status, 200);
    refused(&post(&s, &[("X-Timestamp", "1700000001"), ("X-Signature", &sig)], body), "invalid signature");
    refused(&post(&s, &[("X-Timestamp", "1700000000")], body), "missing signature");
}

#[test]
fn bearer_and_header_tokens() {
    let s = serve("auth bearer env(\"SECRET\")", "");
    assert_eq!(post(&s, &[("Authorization", "Bearer s3cret")], b"").status, 200);
    assert_eq!(post(&s, &[("Authorization", "bearer s3cret")], b"").status, 200);
    for bad in ["Bearer s3cre", "Bearer s3crett", "Basic czNjcmV0", ""] {
        let r = post(&s, &[("Authorization", bad)], b"");
        assert_eq!(r.status, 401, "{bad}");
        assert!(r.header("www-authenticate").is_none());
    }
    let s = serve("auth header \"X-Gitlab-Token\" env(\"SECRET\")", "");
    assert_eq!(post(&s, &[("X-Gitlab-Token", "s3cret")], b"").status, 200);
    assert_eq!(post(&s, &[("X-Gitlab-Token", "wrong")], b"").status, 401);
    assert_eq!(post(&s, &[], b"").status, 401);
    let s = serve("auth basic { user \"u\" password env(\"SECRET\") }", "");
    assert_eq!(post(&s, &[("Authorization", &basic("u", "s3cret"))], b"").status, 200);
}

#[test]
fn checks_run_in_order_so_a_caller_without_credentials_learns_nothing_of_the_body() {
    let src = "workflow p {\n  trigger webhook {\n    path \"/p\"\n    allow ip \"127.0.0.1\"\n    auth github env(\"SECRET\")\n  }\n  extract { a = body \"a\" required }\n  respond 200 text \"ok\"\n}\n";
    let s = Server::start_env(&[("p.wf", src)], &["--max-body", "64"], &[("SECRET", "s3cret")]);
    assert_eq!(request(s.addr, "GET", "/p", &[], b"").status, 405);
    assert_eq!(request(s.addr, "POST", "/nowhere", &[], b"").status, 404);
    // Unsigned: 401 whatever the body (too large, wrong type, malformed, missing fields).
    assert_eq!(post(&s, &[("Content-Type", "text/plain")], b"x").status, 401);
    assert_eq!(post(&s, &[("Content-Type", "application/json")], b"{").status, 401);
    let sign = |b: &[u8]| format!("sha256={}", hex(&openssl_hmac("sha256", b"s3cret", b)));
    let big = vec![b'x'; 100];
    assert_eq!(post(&s, &[("X-Hub-Signature-256", &sign(&big))], &big).status, 413);
    assert_eq!(
        post(&s, &[("Content-Type", "text/plain"), ("X-Hub-Signature-256", &sign(b"x"))], b"x").status,
        415
    );
    assert_eq!(
        post(&s, &[("Content-Type", "application/json"), ("X-Hub-Signature-256", &sign(b"{"))], b"{").status,
        400
    );
    assert_eq!(
        post(&s, &[("Content-Type", "application/json"), ("X-Hub-Signature-256", &sign(b"{}"))], b"{}")
            .status,
        400
    );
    assert_eq!(
        post(
            &s,
            &[("Content-Type", "application/json"), ("X-Hub-Signature-256", &sign(b"{\"a\":1}"))],
            b"{\"a\":1}"
        )
        .status,
        200
    );
}

#[test]
fn allow_ip_and_forwarded_for_only_from_trusted_proxies() {
    let src = "workflow p {\n  trigger webhook {\n    path \"/p\"\n    allow ip \"198.51.100.0/24\" \"127.0.0.1\"\n  }\n  extract { ip = request \"ip\" }\n  respond 200 text ip\n}\n";
    let inside = Server::start(&[("p.wf", src)], &[]);
    // Not behind a trusted proxy: X-Forwarded-For is ignored, the peer (127.0.0.1) is the caller.
    let r = post(&inside, &[("X-Forwarded-For", "203.0.113.5")], b"");
    assert_eq!((r.status, r.body.as_str()), (200, "127.0.0.1"));

    let only_net = src.replace(" \"127.0.0.1\"", "");
    let plain = Server::start(&[("p.wf", &only_net)], &[]);
    let r = post(&plain, &[("X-Forwarded-For", "198.51.100.7")], b"");
    assert_eq!(r.status, 403, "a forged X-Forwarded-For from an untrusted peer does not get in");
    assert_eq!(r.json()["error"], "forbidden");

    let proxied = Server::start(&[("p.wf", &only_net)], &["--trusted-proxy", "127.0.0.0/8"]);
    let r = post(&proxied, &[("X-Forwarded-For", "198.51.100.7")], b"");
    assert_eq!((r.status, r.body.as_str()), (200, "198.51.100.7"));
    assert_eq!(post(&proxied, &[("X-Forwarded-For", "203.0.113.5")], b"").status, 403);
    assert_eq!(post(&proxied, &[("X-Forwarded-For", "garbage")], b"").status, 403);
    let hops = vec!["198.51.100.7"; 1000].join(", ");
    assert_eq!(post(&proxied, &[("X-Forwarded-For", &hops)], b"").status, 403);
}

#[test]
fn methods_and_cors() {
    let src = "workflow p {\n  trigger webhook {\n    path \"/p\"\n    method \"GET\" \"POST\"\n    cors {\n      origin \"https://app.example\"\n    }\n  }\n  extract { challenge = query \"[\\\"hub.challenge\\\"]\" }\n  respond 200 text challenge ?? \"none\"\n}\n";
    let s = Server::start(&[("p.wf", src)], &[]);
    let r = request(s.addr, "GET", "/p?hub.challenge=1158201444&hub.mode=subscribe", &[], b"");
    assert_eq!((r.status, r.body.as_str()), (200, "1158201444"), "Meta's verification GET");
    let r = request(s.addr, "PUT", "/p", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    let pre = request(
        s.addr,
        "OPTIONS",
        "/p",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type,x-token"),
        ],
        b"",
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(pre.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(pre.header("access-control-allow-headers"), Some("content-type,x-token"));
    let r = request(s.addr, "POST", "/p", &[("Origin", "https://app.example")], b"");
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    let r = request(s.addr, "POST", "/p", &[("Origin", "https://evil.example")], b"");
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[test]
fn form_multipart_text_and_request_fields() {
    let src = r#"workflow p {
  trigger webhook { path "/p" }
  extract {
    all    = body
    name   = body "user.name"
    method = request "method"
    url    = request "url"
    raw    = request "raw_body"
    hdrs   = header
    q      = query
  }
  respond 200 json { all: all, name: name, method: method, url: url, raw: raw, agent: hdrs["x-agent"], q: q }
}
"#;
    let s = Server::start(&[("p.wf", src)], &[]);
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let r = request(s.addr, "POST", "/p?a[b]=c", &[form, ("X-Agent", "t")], b"user[name]=ada&tags=a&tags=b");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["all"], serde_json::json!({"user": {"name": "ada"}, "tags": ["a", "b"]}));
    assert_eq!(v["name"], "ada");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["url"], "/p?a[b]=c");
    assert_eq!(v["raw"], "user[name]=ada&tags=a&tags=b");
    assert_eq!(v["agent"], "t");
    assert_eq!(v["q"], serde_json::json!({"a": {"b": "c"}}));

    let mp = "--B\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\n1,2\r\n--B--\r\n";
    let r =
        request(s.addr, "POST", "/p", &[("Content-Type", "multipart/form-data; boundary=B")], mp.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["all"],
        serde_json::json!({"note": "hello", "file": {"filename": "r.csv", "content_type": "text/csv", "size": 7}})
    );

    // A text body is one string; a path into it cannot be read.
    let whole = "workflow w { trigger webhook { path \"/w\" } extract { t = body } respond 200 text t }";
    let w = Server::start(&[("w.wf", whole)], &[]);
    let r = request(w.addr, "POST", "/w", &[("Content-Type", "text/plain")], b"just text");
    assert_eq!((r.status, r.body.as_str()), (200, "just text"));
    assert_eq!(request(w.addr, "POST", "/w", &[("Content-Type", "text/plain")], b"\xff\xfe").status, 400);
    let r = request(s.addr, "POST", "/p", &[("Content-Type", "text/plain")], b"x");
    assert_eq!(r.status, 415);
}

#[test]
fn hostile_form_and_multipart_bodies_get_400_or_are_bounded() {
    let src =
        "workflow p { trigger webhook { path \"/p\" } extract { a = body \"a\" } respond 200 json { a: a } }";
    let s = Server::start(&[("p.wf", src)], &["--max-body", "4MiB"]);
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let many: String = (0..100_000).map(|i| format!("f{i}=1&")).collect();
    let r = request(s.addr, "POST", "/p", &[form], format!("{many}a=last").as_bytes());
    // The first 1000 fields are read, like the query string: `a` is not among them, and a form
    // with none of the fields read gets 400 saying so.
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "form body without the fields read");
    let deep = format!("a{}=1", "[x]".repeat(5000));
    assert_eq!(request(s.addr, "POST", "/p", &[form], deep.as_bytes()).status, 200);
    let mp = |ct: &str, body: &[u8]| request(s.addr, "POST", "/p", &[("Content-Type", ct)], body).status;
    let part = "--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n";
    let parts = format!("{}--B--\r\n", part.repeat(20_000));
    assert_eq!(mp("multipart/form-data; boundary=B", parts.as_bytes()), 400, "more than 1000 parts");
    assert_eq!(mp("multipart/form-data", b"--B\r\n\r\n"), 400, "no boundary");
    let long = "b".repeat(10_000);
    assert_eq!(mp(&format!("multipart/form-data; boundary={long}"), b"x"), 400);
    let bomb = format!("--B\r\n{}\r\n\r\n1\r\n--B--\r\n", "X-H: v\r\n".repeat(5000));
    assert_eq!(mp("multipart/form-data; boundary=B", bomb.as_bytes()), 400, "a part header bomb");
    let nested = "--B\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Type: multipart/mixed; boundary=C\r\n\r\n--C\r\n\r\nin\r\n--C--\r\n--B--\r\n";
    let r = request(
        s.addr,
        "POST",
        "/p",
        &[("Content-Type", "multipart/form-data; boundary=B")],
        nested.as_bytes(),
    );
    assert_eq!(r.status, 200, "a nested multipart part is read as text: {}", r.body);
}

#[test]
fn a_github_form_delivery_is_read_through_its_payload() {
    // GitHub's deliveries with content type `application/x-www-form-urlencoded`: one field,
    // `payload`, holding the JSON; the signature is over the form body as sent.
    let src = r#"workflow gh {
  trigger webhook { path "/gh" auth github secret("SECRET") }
  extract {
    action = body "action" required
    number = body "issue.number" as integer
    raw    = body "payload"
  }
  respond 200 json { action: action, number: number, raw_is_text: raw != null }
}"#;
    let s = Server::start_env(&[("gh.wf", src)], &[], &[("SECRET", "s3cret")]);
    let json = r#"{"action":"opened","issue":{"number":7}}"#;
    let body: String = form_urlencoded::Serializer::new(String::new()).append_pair("payload", json).finish();
    let sig = format!("sha256={}", hex(&openssl_hmac("sha256", b"s3cret", body.as_bytes())));
    let r = request(
        s.addr,
        "POST",
        "/gh",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("X-Hub-Signature-256", &sig)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!({"action": "opened", "number": 7, "raw_is_text": true}));
    // A form with none of the fields read and no `payload`: 400 naming them, not every value
    // `null`.
    let plain = r#"workflow push {
  trigger webhook { path "/push" }
  extract {
    repository = body "repository.full_name"
    branch     = body "ref" default "main"
  }
  respond 200 json { repository: repository, branch: branch }
}"#;
    let p = Server::start(&[("push.wf", plain)], &["--store", "memory"]);
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let r = request(p.addr, "POST", "/push", &[form], b"name=ada&note=hi");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "form body without the fields read");
    assert_eq!(r.json()["fields"], serde_json::json!(["repository.full_name", "ref"]));
    // A form that has one of them is read as ever.
    let r = request(p.addr, "POST", "/push", &[form], b"ref=dev");
    assert_eq!((r.status, r.json()["branch"].as_str()), (200, Some("dev")), "{}", r.body);
}

/// A Standard Webhooks secret that decodes to an empty key (or is not base64) would let a
/// signature made with an empty HMAC key through: `serve` refuses to start, naming it.
#[test]
fn a_standard_webhooks_secret_with_an_empty_key_stops_serve() {
    let src = "workflow p {\n  trigger webhook {\n    path \"/p\"\n    auth standard_webhooks secret(\"SWE\")\n  }\n  respond 200 text \"ok\"\n}\n";
    let d = crate::common::Dir::new(&[("p.wf", src)]);
    for bad in ["whsec_", "whsec_!!!", "whsec_===="] {
        let out = std::process::Command::new(crate::common::wf_bin())
            .args(["serve", d.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0", "--store", "memory"])
            .env("SWE", bad)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert!(err.contains("Standard Webhooks secret") && err.contains("p.wf"), "{bad}: {err}");
    }
}

/// An IPv4 caller of a `[::]` listener is seen as `::ffff:127.0.0.1`; `allow ip "127.0.0.1"` and
/// `request "ip"` see its IPv4 address.
#[test]
fn an_ipv4_caller_of_an_ipv6_listener_is_its_ipv4_address() {
    if std::net::TcpListener::bind("[::]:0").is_err() {
        eprintln!("skipped: this machine cannot listen on IPv6 ([::])");
        return;
    }
    let src = "workflow p {\n  trigger webhook {\n    path \"/p\"\n    allow ip \"127.0.0.1\"\n  }\n  extract { ip = request \"ip\" }\n  respond 200 text ip\n}\n";
    let dir = crate::common::Dir::new(&[("p.wf", src)]);
    let mut cmd = std::process::Command::new(crate::common::wf_bin());
    cmd.arg("serve").arg(dir.path()).args(["--listen", "[::]:0", "--store", "memory"]);
    let s = Server::spawn(cmd, dir);
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], s.addr.port()));
    let r = request(v4, "POST", "/p", &[], b"");
    assert_eq!((r.status, r.body.as_str()), (200, "127.0.0.1"));
}

/// `wf send` signs a payload as the provider would, and the server verifies it.
#[test]
fn wf_send_signs_a_payload_as_each_provider_would() {
    let src = r#"workflow gh {
  trigger webhook { path "/gh" auth github secret("GH") }
  extract { action = body "action" required }
  respond 200 json { action: action }
}
workflow stripe {
  trigger webhook { path "/stripe" auth stripe secret("ST") }
  respond 200 text "ok"
}
workflow sw {
  trigger webhook { path "/sw" auth standard_webhooks secret("SW") }
  respond 200 text "ok"
}"#;
    let sw = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let env = [("GH", "gh-s3cret"), ("ST", "whsec_stripe"), ("SW", sw)];
    let s = Server::start_env(&[("p.wf", src)], &["--store", "memory"], &env);
    let dir = crate::common::Dir::new(&[("issue.json", r#"{"action":"opened"}"#)]);
    let payload = dir.path().join("issue.json");
    let send = |path: &str, sign: &[&str]| {
        let mut cmd = std::process::Command::new(crate::common::wf_bin());
        cmd.arg("send").arg(&payload).arg(format!("http://{}{path}", s.addr)).args(sign);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("wf send");
        (out.status.code(), crate::common::text(&out.stdout), crate::common::text(&out.stderr))
    };
    let (code, out, err) = send("/gh", &["--sign", "github", "--secret", "GH"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("HTTP/1.1 200 OK\n") && out.contains(r#"{"action":"opened"}"#), "{out}");
    for (path, provider, secret) in [("/stripe", "stripe", "ST"), ("/sw", "standard_webhooks", "SW")] {
        let (code, out, err) = send(path, &["--sign", provider, "--secret", secret]);
        assert_eq!(code, Some(0), "{provider}: {out}{err}");
    }
    // Unsigned: the server's 401, and exit 1.
    let (code, out, _) = send("/gh", &[]);
    assert_eq!(code, Some(1));
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    // Signed with the wrong secret: 401 too.
    let (code, _, _) = send("/gh", &["--sign", "github", "--secret", "ST"]);
    assert_eq!(code, Some(1));
    let (code, _, err) = send("/gh", &["--sign", "github", "--secret", "NOT_SET_ANYWHERE"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("`NOT_SET_ANYWHERE` is not set"), "{err}");
}

#[test]
fn standard_webhooks_v1a_signatures_are_checked_with_the_public_key() {
    // A key pair made and a delivery signed by openssl, not by wf.
    let dir = Dir::new(&[]);
    let key = dir.path().join("key.pem");
    let made = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out", key.to_str().expect("utf8")])
        .output()
        .expect("openssl (Debian package openssl) is needed for the signature tests");
    assert!(made.status.success(), "{}", crate::common::text(&made.stderr));
    let der = std::process::Command::new("openssl")
        .args(["pkey", "-in", key.to_str().expect("utf8"), "-pubout", "-outform", "DER"])
        .output()
        .expect("openssl");
    let public = format!("whpk_{}", b64(&der.stdout[der.stdout.len() - 32..]));
    let sign = |content: &[u8]| {
        let file = dir.path().join("content");
        std::fs::write(&file, content).expect("write");
        let out = std::process::Command::new("openssl")
            .args([
                "pkeyutl",
                "-sign",
                "-inkey",
                key.to_str().expect("utf8"),
                "-rawin",
                "-in",
                file.to_str().expect("utf8"),
            ])
            .output()
            .expect("openssl");
        assert!(out.status.success(), "{}", crate::common::text(&out.stderr));
        b64(&out.stdout)
    };
    let src = "workflow p {\n  trigger webhook {\n    path \"/p\"\n    auth standard_webhooks { public_key secret(\"WH_PUBLIC\") }\n  }\n  respond 200 text \"ok\"\n}\n";
    let server = Server::start_env(&[("p.wf", src)], &[], &[("WH_PUBLIC", &public)]);
    let (id, ts, body) = ("msg_2Lh9", now().to_string(), r#"{"type":"invoice.paid"}"#);
    let sig = sign(format!("{id}.{ts}.{body}").as_bytes());
    let post = |sig: &str, body: &str| {
        server.post(
            "/p",
            &[
                ("webhook-id", id),
                ("webhook-timestamp", &ts),
                ("webhook-signature", sig),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    };
    // Among other signatures (a rotation), the `v1a` one that matches is enough.
    let r = post(&format!("v1,c29tZXRoaW5nIGVsc2U= v1a,{sig}"), body);
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = post(&format!("v1a,{sig}"), r#"{"type":"invoice.paid","amount":1}"#);
    assert_eq!((r.status, r.body.as_str()), (401, r#"{"error":"invalid signature"}"#), "a changed body");
    let r = post(&format!("v1,{sig}"), body);
    assert_eq!(r.status, 401, "a symmetric signature is not the key pair's");
    let r = server.post("/p", &[("Content-Type", "application/json")], body);
    assert_eq!((r.status, r.body.as_str()), (401, r#"{"error":"missing signature"}"#));
    // `wf test` signs with a `whsk_` signing key (the same key pair's seed, from openssl's
    // PKCS#8 form); another key's signature is refused.
    let private = std::process::Command::new("openssl")
        .args(["pkey", "-in", key.to_str().expect("utf8"), "-outform", "DER"])
        .output()
        .expect("openssl");
    let signing = format!("whsk_{}", b64(&private.stdout[private.stdout.len() - 32..]));
    let tests = format!(
        "{src}\ntest \"signed with the key pair\" {{\n  request POST \"/p\" {{\n    sign standard_webhooks secret(\"WH_SIGNING\")\n    json {{ type: \"invoice.paid\" }}\n  }}\n  expect status == 200\n}}\n\ntest \"signed with another key\" {{\n  request POST \"/p\" {{\n    sign standard_webhooks \"whsk_{}\"\n    json {{ type: \"invoice.paid\" }}\n  }}\n  expect status == 401\n}}\n",
        b64(&[7u8; 32])
    );
    let t = Dir::new(&[("p.wf", &tests)]);
    let out = std::process::Command::new(crate::common::wf_bin())
        .args(["test", t.path().to_str().expect("utf8")])
        .env("WH_PUBLIC", &public)
        .env("WH_SIGNING", &signing)
        .output()
        .expect("wf test");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        crate::common::text(&out.stdout),
        crate::common::text(&out.stderr)
    );
    assert!(crate::common::text(&out.stdout).contains("2 passed"), "{}", crate::common::text(&out.stdout));
    // A public key on another form is a check error.
    let bad = Dir::new(&[("g.wf", "workflow g {\n  trigger webhook {\n    path \"/g\"\n    auth github { public_key \"whpk_x\" }\n  }\n}\n")]);
    let out = crate::common::wf(&["check", bad.path().join("g.wf").to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::common::text(&out.stderr).contains("`auth github` has no public key"),
        "{}",
        crate::common::text(&out.stderr)
    );
}
