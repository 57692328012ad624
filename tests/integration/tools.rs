//! `wf fmt`, `wf routes`, `wf new`, `wf infer`, through the real binary.

use crate::common::{repo, text, wf, Dir};

#[test]
fn fmt_golden_files() {
    let dir = repo().join("tests/fmt");
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fmt").filter_map(|e| e.ok()) {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        if !name.ends_with(".wf") || name.ends_with(".expected.wf") {
            continue;
        }
        cases += 1;
        let input = std::fs::read_to_string(&path).expect("input");
        let expected_path = dir.join(name.replace(".wf", ".expected.wf"));
        let d = Dir::new(&[("case.wf", &input)]);
        let file = d.path().join("case.wf");
        let out = wf(&["fmt", file.to_str().expect("utf8")]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let actual = std::fs::read_to_string(&file).expect("formatted");
        if std::env::var_os("WF_BLESS").is_some() {
            std::fs::write(&expected_path, &actual).expect("bless");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).expect("expected file");
        assert_eq!(actual, expected, "{name}");
        let again = wf(&["fmt", "--check", file.to_str().expect("utf8")]);
        assert_eq!(again.status.code(), Some(0), "formatting {name} twice changes it");
    }
    assert!(cases > 0);
}

#[test]
fn fmt_check_lists_and_changes_nothing() {
    let messy = "workflow w{trigger webhook{}}";
    let d = Dir::new(&[("a.wf", messy), ("b.wf", "workflow b {\n  trigger webhook {}\n}\n")]);
    let out = wf(&["fmt", "--check", d.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    let listed = text(&out.stdout);
    assert!(listed.contains("a.wf") && !listed.contains("b.wf"), "{listed}");
    assert_eq!(std::fs::read_to_string(d.path().join("a.wf")).expect("read"), messy);
}

#[test]
fn fmt_never_rewrites_a_file_that_does_not_parse() {
    let broken = "workflow w { trigger webhook {} let = }";
    let d = Dir::new(&[("bad.wf", broken)]);
    let out = wf(&["fmt", d.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("wf::syntax"));
    assert_eq!(std::fs::read_to_string(d.path().join("bad.wf")).expect("read"), broken);
}

#[test]
fn examples_are_formatted() {
    let out = wf(&["fmt", "--check", "examples"]);
    assert_eq!(out.status.code(), Some(0), "not formatted: {}", text(&out.stdout));
}

#[test]
fn routes_lists_every_workflow() {
    let out = wf(&["routes", "examples"]);
    assert_eq!(out.status.code(), Some(0));
    let expected = "\
METHOD    PATH                                         MODE   AUTH               WORKFLOW          FILE
POST      /api/webhook:trigger/audit-7f3c9d2e41b8a6f0  async  none               audit_ingest      examples/audit.wf:2
POST      /hooks/approval                              async  github             approval          examples/approval.wf:5
POST      /hooks/build                                 async  github             build             examples/build.wf:4
POST      /hooks/deploy                                async  github             deploy            examples/deploy.wf:4
POST      /hooks/form                                  sync   none               order_form        examples/form.wf:2
POST      /hooks/github                                sync   github             github_push       examples/github_push.wf:3
POST      /hooks/incident                              async  standard_webhooks  incident          examples/incident.wf:4
POST      /hooks/invoices                              async  standard_webhooks  invoice_events    examples/standard_webhooks.wf:3
POST      /hooks/leads                                 async  standard_webhooks  leads             examples/leads.wf:4
POST      /hooks/payment                               sync   basic              payment_callback  examples/payment.wf:2
POST      /hooks/shopify/orders                        async  shopify            shopify_orders    examples/shopify_orders.wf:5
POST      /hooks/slack/command                         sync   slack              slack_command     examples/slack_command.wf:3
POST      /hooks/slack/deploy                          async  slack              slack_deploy      examples/slack_deploy.wf:5
POST      /hooks/stripe                                sync   stripe             stripe_events     examples/stripe.wf:2
POST      /hooks/stripe/forward                        async  stripe             forward_stripe    examples/forward.wf:4
POST,GET  /hooks/twilio/sms                            sync   twilio             twilio_sms        examples/twilio_sms.wf:3
";
    assert_eq!(text(&out.stdout), expected);
    let out = wf(&["routes", "--format", "json", "examples"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[9]["path"], "/hooks/payment");
    assert_eq!(v[9]["auth"], "basic");
    assert_eq!(v[15]["method"], "POST,GET");
    assert_eq!(v[0]["mode"], "async");
    assert_eq!(v[0]["line"], 2);
}

#[test]
fn new_skeletons_pass_check_and_their_tests() {
    for args in [
        vec!["new", "orders"],
        vec!["new", "orders", "--async"],
        vec!["new", "orders", "--path", "/hooks/orders"],
    ] {
        let out = wf(&args);
        assert_eq!(out.status.code(), Some(0));
        let src = text(&out.stdout);
        let d = Dir::new(&[("new.wf", &src)]);
        let p = d.path().to_str().expect("utf8");
        let check = wf(&["check", "--deny-warnings", p]);
        assert_eq!(check.status.code(), Some(0), "{src}\n{}", text(&check.stderr));
        let test = wf(&["test", p]);
        assert_eq!(test.status.code(), Some(0), "{}", text(&test.stdout));
        assert_eq!(wf(&["fmt", "--check", p]).status.code(), Some(0), "skeleton is not formatted:\n{src}");
    }
    let key_of = |src: String| {
        src.lines().find_map(|l| l.trim().strip_prefix("key \"").map(|k| k.trim_end_matches('"').to_string()))
    };
    let a = key_of(text(&wf(&["new", "a"]).stdout)).expect("key");
    let b = key_of(text(&wf(&["new", "a"]).stdout)).expect("key");
    assert!(
        a.len() >= 16 && a != b && a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
    assert_eq!(wf(&["new", "if"]).status.code(), Some(2));
}

#[test]
fn infer_output_pastes_into_a_workflow_that_checks() {
    let body = r#"{"data":{"status":"paid","amount":1250,"items":[{"sku":"A1","qty":2}],"meta":{}},"customer":{"email":"a@b.c","vip":true},"key with.dots":"x","default":null}"#;
    let d = Dir::new(&[("body.json", body)]);
    let out = wf(&[
        "infer",
        "--body",
        d.path().join("body.json").to_str().expect("utf8"),
        "--query",
        "https://x.test/hook?order=42&items[0][sku]=B2&flag=true",
        "--headers",
        "X-Request-Id,User-Agent",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let block = text(&out.stdout);
    let squeezed: String = block.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
    for line in [
        "order = query \"order\" as integer",
        "query \"items\" as array",
        "amount",
        "= body \"data.amount\" as integer",
        "= body \"data.items\" as array",
        "= body \"customer.vip\" as boolean",
        "= body \"data.meta\" as object",
        "= body \"[\\\"key with.dots\\\"]\"",
        "default_ = body \"default\"",
        "= header \"User-Agent\"",
    ] {
        assert!(squeezed.contains(line), "missing {line:?} in\n{block}");
    }
    let wf_src = format!("workflow pasted {{\n  trigger webhook {{}}\n{block}}}\n");
    let d2 = Dir::new(&[("pasted.wf", &wf_src)]);
    let check = wf(&["check", "--deny-warnings", d2.path().to_str().expect("utf8")]);
    assert_eq!(check.status.code(), Some(0), "{wf_src}\n{}", text(&check.stderr));
}

#[test]
fn infer_needs_a_sample() {
    assert_eq!(wf(&["infer"]).status.code(), Some(2));
}

#[test]
fn a_command_whose_reader_goes_away_ends_quietly() {
    // The reader is gone before wf writes a byte: every write would fail.
    let mut child = std::process::Command::new(crate::common::wf_bin())
        .args(["routes", "--format", "openapi", "examples"])
        .current_dir(crate::common::repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = crate::common::text(&out.stderr);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    assert_ne!(out.status.code(), Some(101), "no panic");
}

#[test]
fn the_docs_show_what_infer_prints() {
    let d = Dir::new(&[(
        "body.json",
        r#"{"data":{"status":"paid","amount":1250},"customer":{"email":"a@b.c"}}"#,
    )]);
    let out = wf(&[
        "infer",
        "--body",
        d.path().join("body.json").to_str().expect("utf8"),
        "--query",
        "/hooks/payment?order=42&items[0][sku]=A1",
        "--headers",
        "X-Request-Id",
    ]);
    let readme = crate::docs::text();
    assert!(
        readme.contains(&text(&out.stdout)),
        "the docs' `wf infer` sample is stale; it prints:\n{}",
        text(&out.stdout)
    );
}

/// The docs' console samples of commands that read only the repository: each is what the
/// command prints today (run from the repository, without colour).
#[test]
fn the_docs_console_samples_are_what_wf_prints() {
    let readme = crate::docs::text();
    let deterministic = [
        "wf check examples",
        "wf check tests/check/unknown_variable.wf",
        "wf check tests/check/type_mismatch.wf",
        "wf test examples/",
        "wf routes ",
    ];
    // An abridged sample (its file has four errors, the docs show part of one; ` ...` stands for
    // lines left out): its lines are printed, in order.
    let abridged = ["wf check tests/check/type_mismatch.wf"];
    let mut checked = 0;
    for block in readme.split("```console\n").skip(1) {
        let block = block.split("```").next().unwrap_or("");
        let mut lines = block.lines().peekable();
        while let Some(line) = lines.next() {
            let Some(command) = line.strip_prefix("$ ") else { continue };
            let mut shown = Vec::new();
            while let Some(next) = lines.peek() {
                if next.starts_with("$ ") {
                    break;
                }
                shown.push(lines.next().unwrap_or_default());
            }
            if !deterministic.iter().any(|d| command.starts_with(d)) {
                continue;
            }
            let args: Vec<&str> = command.split_whitespace().skip(1).collect();
            let out = std::process::Command::new(crate::common::wf_bin())
                .args(&args)
                .current_dir(crate::common::repo())
                .env("NO_COLOR", "1")
                .output()
                .expect("wf");
            let printed = text(&out.stdout) + &text(&out.stderr);
            if abridged.iter().any(|a| command.starts_with(a)) {
                let mut rest = printed.lines();
                for line in shown.iter().filter(|l| l.trim() != "...") {
                    assert!(
                        rest.any(|p| p == *line),
                        "the docs' `{command}` is stale at `{line}`:\n{printed}"
                    );
                }
                checked += 1;
                continue;
            }
            assert_eq!(printed.trim_end(), shown.join("\n").trim_end(), "the docs' `{command}` is stale");
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} samples found");
}
