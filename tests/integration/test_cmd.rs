//! `wf test`, through the real binary.

use crate::common::{text, wf, Dir};

const WF: &str = r#"
workflow echo {
  trigger webhook { path "/echo" auth basic { user "u" password secret("ECHO_PW") } }
  extract { name = body "name" required }
  log "hello ${name}"
  respond 200 json { hello: name }
}
workflow later {
  trigger webhook { path "/later" mode async }
  log "ran later"
  fail "later failed"
}
"#;

fn run(tests: &str, args: &[&str]) -> (Option<i32>, String) {
    let d = Dir::new(&[("echo.wf", WF), ("echo_test.wf", tests)]);
    let path = d.path().to_str().expect("utf8").to_string();
    let mut all = vec!["test", path.as_str()];
    all.extend_from_slice(args);
    let out = wf(&all);
    (out.status.code(), text(&out.stdout) + &text(&out.stderr))
}

#[test]
fn passing_tests_exit_0() {
    let tests = r#"
test "greets" {
  request POST "/echo" { auth basic "u" "pw" json { name: "ada" } }
  expect status == 200
  expect json == { hello: "ada" }
  expect headers["content-type"] == "application/json"
}
test "async runs to completion" {
  request POST "/later"
  expect status == 200 && text == "ok"
}"#;
    let (code, out) = run(tests, &["--env", "ECHO_PW=pw"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok     greets"), "{out}");
    assert!(out.contains("log (later): ran later"), "{out}");
    assert!(out.contains("execution of `later` failed: later failed"), "{out}");
    assert!(out.trim_end().ends_with("2 passed, 0 failed"), "{out}");
}

#[test]
fn failing_tests_show_what_was_seen_and_exit_1() {
    let tests = r#"
test "wrong expectation" {
  request POST "/echo" { auth basic "u" "pw" json { name: "ada" } }
  expect json.hello == "bob"
}
test "fine" {
  request POST "/echo" { auth basic "u" "pw" json { name: "x" } }
  expect status == 200
}"#;
    let (code, out) = run(tests, &["--env", "ECHO_PW=pw"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED wrong expectation"), "{out}");
    assert!(out.contains("expect json.hello == \"bob\""), "{out}");
    assert!(out.contains("echo_test.wf:4:10"), "{out}");
    assert!(out.contains("saw status 200, body \"{\\\"hello\\\":\\\"ada\\\"}\""), "{out}");
    assert!(out.contains("log (echo): hello ada"), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 1 failed"), "{out}");
}

#[test]
fn an_unset_secret_gets_a_test_value_and_an_unset_env_fails_the_test_naming_it() {
    // `ECHO_PW` is set nowhere: the workflow and the test's `auth basic` get the same test value.
    let tests = r#"
test "signed with the test value" {
  request POST "/echo" { auth basic "u" secret("ECHO_PW") json { name: "a" } }
  expect status == 200
}
test "needs a variable" {
  request POST "/echo" { auth basic "u" secret("ECHO_PW") json { name: env("ECHO_NAME") } }
  expect status == 200
}"#;
    let (code, out) = run(tests, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ok     signed with the test value"), "{out}");
    assert!(out.contains("`ECHO_NAME` is not set"), "{out}");
    // A value that is set still wins: the workflow's password is it, the test's is too.
    let (code, out) = run(tests, &["--env", "ECHO_PW=set-one", "--env", "ECHO_NAME=b"]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn filter_selects_tests_by_name() {
    let tests = r#"
test "alpha" { request POST "/later" expect status == 200 }
test "beta" { request POST "/later" expect status == 500 }"#;
    let (code, out) = run(tests, &["--filter", "alph"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 0 failed"), "{out}");
}

#[test]
fn examples_tests_pass() {
    let mut args = vec!["test", "examples"];
    args.extend(crate::common::EXAMPLE_ENV);
    let out = wf(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).trim_end().ends_with("45 passed, 0 failed"));
}

#[test]
fn a_failed_comparison_shows_each_side_and_a_runtime_failure_its_place() {
    let tests = r#"
workflow divide {
  trigger webhook { path "/divide" }
  extract { n = body "n" as number required }
  let ratio = 10 / n
  respond 200 json { ok: n > 1, ratio: ratio }
}
test "ok is true" {
  request POST "/divide" { json { n: 1 } }
  expect json.ok == true
  expect status < 300
}
test "zero" {
  request POST "/divide" { json { n: 0 } }
  expect status == 200
}"#;
    let (code, out) = run(tests, &["--env", "ECHO_PW=pw"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("`json.ok` was `false`, expected `true`"), "{out}");
    assert!(!out.contains("expect status < 300"), "{out}");
    assert!(out.contains("`status` was `500`, expected `200`"), "{out}");
    assert!(out.contains("failed: division by zero (at "), "{out}");
    assert!(out.contains("echo_test.wf:5:3)"), "{out}");
}

#[test]
fn loops_comprehensions_and_the_functions_real_payloads_need() {
    // Shopify's line items totalled (every item, not the first two) and GitHub's commits searched.
    let tests = r#"
workflow shop {
  trigger webhook { path "/order" }
  extract {
    items   = body "line_items" as array default []
    commits = body "commits" as array default []
  }
  let totals = [item.price * item.quantity for item in items]
  let touched = any([any([starts_with(f, "deploy/") for f in c.modified ?? []]) for c in commits])
  let skus = join([i.sku for i in items if i.quantity > 1], ",")
  for n, item in items {
    log "item ${n}: ${item.sku}"
  }
  respond 200 json { total: sum(totals), most: max(totals), deploy: touched, skus: skus, none: "x" in null }
}
test "every line item is counted" {
  request POST "/order" {
    json {
      line_items: [{ sku: "A", price: 5, quantity: 2 }, { sku: "B", price: 1, quantity: 3 }, { sku: "C", price: 2, quantity: 1 }],
      commits: [{ modified: ["README.md"] }, { modified: ["deploy/app.yaml"] }],
    }
  }
  expect json == { total: 15, most: 10, deploy: true, skus: "A,B", none: false }
}"#;
    let (code, out) = run(tests, &["--env", "ECHO_PW=pw"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok     every line item is counted"), "{out}");
}

#[test]
fn effects_are_answered_by_mocks_and_an_unmatched_one_fails_naming_the_call() {
    let tests = r#"
workflow notify {
  trigger webhook { path "/notify" mode async }
  extract { who = body "who" required }
  let r = http POST "https://chat.example/api/messages" { json { text: "hello ${who}" } }
  if r.status != 200 { fail "chat said ${r.status}" }
  let s = http GET "https://status.example/health"
  log "status ${s.status}"
}
test "mocked" {
  mock http POST "https://chat.example/*" { respond 200 json { ok: true } }
  request POST "/notify" { json { who: "ada" } }
  mock http GET "https://status.example/health" { respond 204 }
  expect calls[0] == { kind: "http", method: "POST", url: "https://chat.example/api/messages", headers: { "content-type": "application/json" }, json: { text: "hello ada" }, text: "{\"text\":\"hello ada\"}", attempt: 1 }
  expect calls[1].method == "GET"
}
test "a connection error" {
  mock http POST "https://chat.example/*" { fail "connection refused" }
  request POST "/notify" { json { who: "bob" } }
  expect len(calls) == 1
}
test "nothing answers the status call" {
  mock http POST "https://chat.example/api/messages" { respond 200 }
  request POST "/notify" { json { who: "eve" } }
  expect len(calls) == 2
}"#;
    let (code, out) = run(tests, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ok     mocked"), "{out}");
    assert!(out.contains("ok     a connection error"), "{out}");
    assert!(
        out.contains("failed: `http POST https://chat.example/api/messages` failed after 1 attempt(s): connection refused"),
        "{out}"
    );
    assert!(out.contains("FAILED nothing answers the status call"), "{out}");
    assert!(
        out.contains("no mock answers `http GET https://status.example/health`: add `mock http GET \"https://status.example/health\" { respond 200 }` to the test"),
        "{out}"
    );
    assert!(out.contains("2 passed, 1 failed"), "{out}");
}

#[test]
fn a_test_of_a_path_no_workflow_serves_names_the_paths_served() {
    let tests = r#"
test "typo in the path" {
  request POST "/ecoh" { json { name: "ada" } }
  expect status == 200
}"#;
    let (code, out) = run(tests, &["--env", "ECHO_PW=pw"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the workflows loaded serve: /echo, /later"), "{out}");
}

#[test]
fn calls_lists_every_attempt_of_a_retried_call() {
    let d = Dir::new(&[(
        "notify.wf",
        r#"workflow notify {
  trigger webhook { path "/notify" }
  let r = http POST "https://chat.example/api" { retry 2 json { text: "hi" } }
  respond 200 json { status: r.status }
}

test "a failing service is tried three times" {
  mock http POST "https://chat.example/api" { respond 503 }
  request POST "/notify"
  expect json.status == 503
  expect len(calls) == 3
  expect calls[2].attempt == 3
}

test "a service that answers is called once" {
  mock http POST "https://chat.example/api" { respond 200 }
  request POST "/notify"
  expect len(calls) == 1 && calls[0].attempt == 1
}
"#,
    )]);
    let out = wf(&["test", d.path().to_str().expect("utf8")]);
    let shown = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.trim_end().ends_with("2 passed, 0 failed"), "{shown}");
}

#[test]
fn a_test_reads_a_real_payload_from_a_file_beside_it() {
    let source = r#"workflow issues {
  trigger webhook {
    path "/issues"
  }
  extract {
    action = body "action" required
    number = body "issue.number" as integer
  }
  respond 200 json { action: action, number: number }
}

test "a real delivery" {
  request POST "/issues" {
    json file "payloads/issue_opened.json"
  }
  expect json == { action: "opened", number: 1347 }
}

test "the same, as text" {
  request POST "/issues" {
    header "Content-Type" = "application/json"
    text file "payloads/issue_opened.json"
  }
  expect json.number == 1347
}

test "the same, as bytes" {
  request POST "/issues" {
    bytes file "payloads/issue_opened.json"
    content_type "application/json"
  }
  expect json.number == 1347
}
"#;
    let d = Dir::new(&[
        ("hooks/issues.wf", source),
        (
            "hooks/payloads/issue_opened.json",
            r#"{"action":"opened","issue":{"number":1347,"title":"Found a bug"}}"#,
        ),
    ]);
    let path = d.path().join("hooks").to_str().expect("utf8").to_string();
    let out = wf(&["test", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("3 passed, 0 failed"), "{}", text(&out.stdout));
    // `wf fmt` keeps the lines as written.
    let out = wf(&["fmt", "--check", &path]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    // A file that is not JSON, read with `json file`, is a check error naming it.
    std::fs::write(d.path().join("hooks/payloads/issue_opened.json"), "not json").expect("write");
    let out = wf(&["check", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not JSON"), "{}", text(&out.stderr));
    // Bytes that are not UTF-8, read with `text file`: an error pointing to `bytes file`.
    std::fs::write(d.path().join("hooks/payloads/issue_opened.json"), [0xff, 0xfe, 0x00]).expect("write");
    let out = wf(&["check", &path]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("is not UTF-8 text") && err.contains("bytes file"), "{err}");
}

#[test]
fn a_test_answers_a_wait_with_mock_callback_and_an_unanswered_wait_fails_naming_it() {
    let source = r#"workflow deploy {
  trigger webhook {
    path "/deploy"
    mode async
  }

  let cb = callback timeout 1h
  http POST "https://chat.example/ask" {
    json { approve: cb.url }
  }
  let reply = wait cb
  if reply == null {
    fail "nobody answered"
  }
  sleep 2h
  log "approved by ${reply.json.user}"
}

test "an approval goes on" {
  mock http POST "https://chat.example/ask" {
    respond 200
  }
  mock callback {
    json { user: "ada" }
  }
  request POST "/deploy"
  expect calls[0].kind == "callback"
  expect calls[1].json.approve == calls[0].url
  expect calls[2] == { kind: "sleep", seconds: 7200 }
}

test "no answer fails" {
  mock http POST "https://chat.example/ask" {
    respond 200
  }
  mock callback timeout
  request POST "/deploy"
  expect calls[0].kind == "callback"
}

test "an unanswered wait fails the test" {
  mock http POST "https://chat.example/ask" {
    respond 200
  }
  request POST "/deploy"
  expect status == 200
}
"#;
    let d = Dir::new(&[("deploy.wf", source)]);
    let path = d.path().join("deploy.wf").to_str().expect("utf8").to_string();
    let out = wf(&["test", &path]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("ok     an approval goes on") && said.contains("log (deploy): approved by ada"),
        "{said}"
    );
    assert!(said.contains("ok     no answer fails") && said.contains("failed: nobody answered"), "{said}");
    assert!(said.contains("FAILED an unanswered wait fails the test"), "{said}");
    assert!(said.contains("no `mock callback` answers the first `wait`"), "{said}");
    assert!(said.contains("add `mock callback { json { ... } }` to the test"), "{said}");
    assert!(said.contains("2 passed, 1 failed"), "{said}");
    // `wf fmt` keeps it as it is.
    let out = wf(&["fmt", "--check", &path]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
}
