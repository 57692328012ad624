//! `wf check`: golden diagnostics for every kind (`tests/check/*`), JSON output, exit codes.
//! Set `WF_BLESS=1` to rewrite the golden files from the current output.

use crate::common::{repo, text, wf, Dir};

fn cases() -> Vec<String> {
    let dir = repo().join("tests/check");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/check")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "wf"))
        .map(|p| format!("tests/check/{}", p.file_name().and_then(|n| n.to_str()).unwrap_or("")))
        .collect();
    names.sort();
    names
}

fn golden(path: &str, ext: &str, actual: &str) -> Option<String> {
    let stem = path.trim_end_matches(".wf");
    let file = repo().join(format!("{stem}.{ext}"));
    if std::env::var_os("WF_BLESS").is_some() {
        std::fs::write(&file, actual).expect("bless");
        return None;
    }
    let expected =
        std::fs::read_to_string(&file).unwrap_or_else(|_| panic!("missing golden {}", file.display()));
    (expected != actual).then(|| {
        format!("{}: output differs\n--- expected\n{expected}\n--- actual\n{actual}", file.display())
    })
}

#[test]
fn diagnostics_match_golden_files() {
    let mut failures = Vec::new();
    for case in cases() {
        let human = wf(&["check", &case]);
        let json = wf(&["check", "--format", "json", &case]);
        let diags: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json output");
        let has_error = diags.as_array().is_some_and(|a| a.iter().any(|d| d["severity"] == "error"));
        let expected_code = if has_error { 1 } else { 0 };
        if human.status.code() != Some(expected_code) || json.status.code() != Some(expected_code) {
            failures.push(format!("{case}: exit {:?}, expected {expected_code}", human.status.code()));
        }
        failures.extend(golden(&case, "stderr", &text(&human.stderr)));
        failures.extend(golden(&case, "json", &text(&json.stdout)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_diagnostic_has_location_code_and_help() {
    for case in cases() {
        let out = wf(&["check", "--format", "json", &case]);
        let diags: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let diags = diags.as_array().expect("array");
        assert!(!diags.is_empty(), "{case} reports nothing");
        for d in diags {
            assert!(d["line"].as_u64().is_some_and(|l| l >= 1), "{case}: {d}");
            assert!(d["column"].as_u64().is_some_and(|c| c >= 1), "{case}: {d}");
            assert!(d["code"].as_str().is_some_and(|c| c.starts_with("wf::")), "{case}: {d}");
            assert!(d["help"].as_str().is_some_and(|h| !h.is_empty()), "{case}: {d}");
        }
    }
}

#[test]
fn every_error_of_a_file_is_reported_in_one_run() {
    let out = wf(&["check", "--format", "json", "tests/check/many_errors.wf"]);
    let diags: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let codes: Vec<&str> =
        diags.as_array().expect("array").iter().filter_map(|d| d["code"].as_str()).collect();
    assert_eq!(
        codes,
        [
            "wf::invalid-path",
            "wf::unknown-variable",
            "wf::invalid-status",
            "wf::unreachable",
            "wf::wrong-arity"
        ]
    );
}

#[test]
fn examples_pass_check() {
    let out = wf(&["check", "--deny-warnings", "examples"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok: 16 workflows in 16 files"), "{}", text(&out.stdout));
}

#[test]
fn warnings_fail_only_with_deny_warnings() {
    assert_eq!(wf(&["check", "tests/check/unreachable.wf"]).status.code(), Some(0));
    assert_eq!(wf(&["check", "--deny-warnings", "tests/check/unreachable.wf"]).status.code(), Some(1));
}

#[test]
fn a_missing_path_is_exit_2() {
    let out = wf(&["check", "no/such/file.wf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no/such/file.wf"));
}

#[test]
fn directories_are_searched_recursively_and_in_order() {
    let d = Dir::new(&[
        ("b.wf", "workflow b { trigger webhook { } }"),
        ("a.wf", "workflow a { trigger webhook { } }"),
    ]);
    std::fs::create_dir(d.path().join("sub")).expect("mkdir");
    std::fs::write(d.path().join("sub/c.wf"), "workflow c { trigger webhook { } respond 999 }")
        .expect("write");
    std::fs::write(d.path().join("notes.txt"), "not a workflow").expect("write");
    let out = wf(&["check", "--format", "json", d.path().to_str().expect("utf8")]);
    let diags: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(diags[0]["code"], "wf::invalid-status");
    assert!(diags[0]["file"].as_str().is_some_and(|f| f.ends_with("sub/c.wf")));
}

#[test]
fn hostile_files_get_diagnostics_not_crashes() {
    let long_line = format!("workflow w {{ trigger webhook {{ }} log \"{}\" + }}", "x".repeat(10 << 20));
    let deep = format!("workflow w {{ trigger webhook {{ }} let x = {}1 }}", "(".repeat(200_000));
    let deep_braces = format!("workflow w {{ trigger webhook {{ }} let x = {}", "{a:".repeat(200_000));
    let garbage: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut bad_utf8 = b"workflow w { trigger webhook { path \"/w\" } log \"caf".to_vec();
    bad_utf8.extend_from_slice(b"\xe9\" }\n");
    let unterminated_5mb = format!("workflow w {{ trigger webhook {{ }} log \"{}", "y".repeat(5 << 20));
    let unterminated_block =
        "workflow w {\n  trigger webhook {\n    path \"/w\"\n  }\n  if true {\n    log \"x\"\n";
    let d = Dir::new(&[
        ("long.wf", &long_line),
        ("deep.wf", &deep),
        ("deep_braces.wf", &deep_braces),
        ("unterminated_5mb.wf", &unterminated_5mb),
        ("unterminated_block.wf", unterminated_block),
    ]);
    std::fs::write(d.path().join("garbage.wf"), garbage).expect("write");
    std::fs::write(d.path().join("bad_utf8.wf"), bad_utf8).expect("write");
    for name in [
        "long.wf",
        "deep.wf",
        "deep_braces.wf",
        "garbage.wf",
        "bad_utf8.wf",
        "unterminated_5mb.wf",
        "unterminated_block.wf",
    ] {
        let path = d.path().join(name);
        let out = wf(&["check", path.to_str().expect("utf8")]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(&format!("{name}:")), "{name}: the diagnostic has no location: {err}");
        assert!(out.stderr.len() < 100_000, "{name}: the report echoes the whole input");
    }
    let err = text(&wf(&["check", d.path().join("bad_utf8.wf").to_str().expect("utf8")]).stderr);
    assert!(err.contains("bad_utf8.wf:1:52") && err.contains("not valid UTF-8"), "{err}");

    // A 5 MB string literal in a correct workflow is just a long string.
    let big = format!(
        "workflow w {{\n  trigger webhook {{\n    path \"/w\"\n  }}\n\n  respond 200 text \"{}\"\n}}\n",
        "z".repeat(5 << 20)
    );
    let d = Dir::new(&[("big.wf", &big)]);
    let started = std::time::Instant::now();
    let out = wf(&["check", d.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn every_kind_of_diagnostic_has_a_golden_case() {
    let mut human = String::new();
    let mut json = String::new();
    for case in cases() {
        let stem = case.trim_end_matches(".wf");
        human.push_str(&std::fs::read_to_string(repo().join(format!("{stem}.stderr"))).unwrap_or_default());
        json.push_str(&std::fs::read_to_string(repo().join(format!("{stem}.json"))).unwrap_or_default());
    }
    let missing: Vec<&str> = wf::lang::diagnostic::Kind::ALL
        .iter()
        .map(|k| k.code())
        .filter(|code| !human.contains(code) || !json.contains(&format!("\"code\": \"{code}\"")))
        .collect();
    assert!(missing.is_empty(), "no golden case in tests/check/ for {missing:?}");
}

/// Whether `wf serve` starts on `path` (with every `env()` variable and `secret()` it names set).
fn serve_starts(path: &std::path::Path) -> bool {
    use std::io::BufRead as _;
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let mut cmd = std::process::Command::new(crate::common::wf_bin());
    cmd.args(["serve", path.to_str().expect("utf8"), "--listen", "127.0.0.1:0", "--allow-run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let named =
        |call: &'static str| text.split(call).skip(1).filter_map(|r| r.split('"').next()).collect::<Vec<_>>();
    for name in named("env(\"").into_iter().chain(named("secret(\"")) {
        if !name.is_empty() && !name.contains(['=', '\0', '$']) {
            cmd.env(name, "value");
        }
    }
    let mut child = cmd.spawn().expect("spawn wf serve");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    let _ = std::io::BufReader::new(stdout).read_line(&mut first);
    let _ = child.kill();
    let _ = child.wait();
    first.starts_with("listening on")
}

#[test]
fn check_and_serve_agree_on_every_case_and_fuzz_seed() {
    let mut paths: Vec<std::path::PathBuf> = cases().iter().map(|c| repo().join(c)).collect();
    let seeds = std::fs::read_dir(repo().join("fuzz/seeds/check")).expect("fuzz/seeds/check");
    paths.extend(seeds.filter_map(|e| e.ok()).map(|e| e.path()));
    paths.sort();
    let mut disagree = Vec::new();
    for p in &paths {
        let checked = wf(&["check", p.to_str().expect("utf8")]).status.code() == Some(0);
        if checked != serve_starts(p) {
            disagree.push(format!("{}: check {}", p.display(), if checked { "passes" } else { "fails" }));
        }
    }
    assert!(disagree.is_empty(), "check and serve disagree:\n{}", disagree.join("\n"));
}

#[test]
fn the_readme_lists_every_code_function_and_keyword() {
    let readme = crate::docs::text();
    for k in wf::lang::diagnostic::Kind::ALL {
        assert!(
            readme.contains(&format!("| `{}` | {} |", k.code(), k.summary())),
            "the docs lack {}",
            k.code()
        );
    }
    for (signature, doc, example) in wf::lang::builtins::reference() {
        let row = format!("| `{signature}` | {doc} | `{}` |", example.replace('|', "\\|"));
        assert!(readme.contains(&row), "the docs lack {row}");
    }
    let keywords = wf::lang::keywords::RESERVED.join(" ");
    assert!(readme.replace('\n', " ").contains(&keywords), "the docs lack the keyword list `{keywords}`");
}

#[test]
fn what_gitignore_ignores_is_not_loaded() {
    let good = |name: &str| format!("workflow {name} {{\n  trigger webhook {{ path \"/{name}\" }}\n}}\n");
    let dir = crate::common::Dir::new(&[
        ("hooks.wf", &good("first")),
        (".gitignore", "scratch/\n*.draft.wf\n"),
        ("scratch/broken.wf", "workflow broken {"),
        ("idea.draft.wf", "workflow half {"),
        ("sub/more.wf", &good("second")),
    ]);
    let out = crate::common::wf(&["check", dir.path().to_str().expect("utf8")]);
    let shown = crate::common::text(&out.stdout) + &crate::common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("2 workflows in 2 files"), "{shown}");
}
