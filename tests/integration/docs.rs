//! The documentation: the README and the book in `docs/` have no broken internal link or
//! include, and the README's tutorial works exactly as written (every command run in order in a
//! fresh directory, with the `wf` this build made, its output compared where it shows one).

use crate::common::{have, repo, wf_bin};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The README and every page of the book.
pub fn pages() -> Vec<PathBuf> {
    let mut all = vec![repo().join("README.md")];
    let mut book: Vec<PathBuf> = std::fs::read_dir(repo().join("docs/src"))
        .expect("docs/src")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    book.sort();
    all.extend(book);
    all
}

/// The text of the README and of every page of the book, one after another.
pub fn text() -> String {
    pages().iter().map(|p| std::fs::read_to_string(p).expect("page")).collect::<Vec<_>>().join("\n")
}

/// A page's text outside its code blocks and inline code.
fn prose(page: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            code = !code;
            continue;
        }
        if !code {
            // Inline code holds no link.
            let kept: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
            out.push_str(&kept);
            out.push('\n');
        }
    }
    out
}

/// The anchor a heading gets (lower case, punctuation other than `-` and `_` dropped, spaces as
/// `-`), as mdBook and GitHub make them.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(page: &str) -> HashSet<String> {
    let mut code = false;
    let mut found = HashSet::new();
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            code = !code;
        } else if !code && line.starts_with('#') {
            found.insert(slug(line.trim_start_matches('#')));
        }
    }
    found
}

/// Every `](target)` of a page's prose.
fn links(page: &str) -> Vec<String> {
    let prose = prose(page);
    let mut found = Vec::new();
    for part in prose.split("](").skip(1) {
        if let Some(end) = part.find(')') {
            found.push(part[..end].to_string());
        }
    }
    found
}

fn resolve(from: &Path, target: &str) -> PathBuf {
    from.parent().unwrap_or(Path::new(".")).join(target)
}

#[test]
fn every_internal_link_and_include_of_the_docs_leads_somewhere() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("page");
        let name = page.strip_prefix(repo()).unwrap_or(&page).display().to_string();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = link.split_once('#').map_or((link.as_str(), None), |(p, a)| (p, Some(a)));
            let target = if path.is_empty() { page.clone() } else { resolve(&page, path) };
            let Ok(body) = std::fs::read_to_string(&target) else {
                if !target.exists() {
                    broken.push(format!("{name}: ({link}) leads nowhere"));
                }
                continue;
            };
            if let Some(anchor) = anchor {
                if !anchors(&body).contains(anchor) {
                    broken.push(format!("{name}: ({link}) names no heading of {}", target.display()));
                }
            }
        }
        // mdBook's includes: `{{#include FILE:ANCHOR}}`.
        for include in text.split("{{#include ").skip(1) {
            let spec = include.split("}}").next().unwrap_or("");
            let (path, anchor) = spec.split_once(':').map_or((spec, None), |(p, a)| (p, Some(a)));
            match std::fs::read_to_string(resolve(&page, path)) {
                Err(_) => broken.push(format!("{name}: includes {path}, which is not there")),
                Ok(body) => {
                    if let Some(a) = anchor {
                        let (start, end) = (format!("ANCHOR: {a} "), format!("ANCHOR_END: {a} "));
                        if !body.contains(&start) || !body.contains(&end) {
                            broken.push(format!("{name}: includes {path}:{a}, an anchor it lacks"));
                        }
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    // The book's table of contents names every page, and every page is in it.
    let summary = std::fs::read_to_string(repo().join("docs/src/SUMMARY.md")).expect("SUMMARY.md");
    for page in pages().iter().skip(1) {
        let file = page.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        if file != "SUMMARY.md" {
            assert!(summary.contains(&format!("({file})")), "SUMMARY.md lacks {file}");
        }
    }
}

#[test]
fn the_link_checker_finds_a_broken_link() {
    let page = "See [the language](language.md#no-such-heading) and [gone](missing.md).\n```\n[not](a-link.md)\n```\n";
    assert_eq!(links(page), ["language.md#no-such-heading", "missing.md"]);
    assert!(anchors("# The language\n## `wf check`\n").contains("wf-check"));
    assert_eq!(slug(" Providers and `auth`"), "providers-and-auth");
}

/// The tutorial's blocks, in order: a file to write (a `wf` block whose first line names it) or
/// commands with the output they show.
enum Block {
    File(String, String),
    Commands(Vec<(String, Vec<String>)>),
}

fn tutorial() -> Vec<Block> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let start = readme.find("<!-- ANCHOR: tutorial -->").expect("the tutorial");
    let end = readme.find("<!-- ANCHOR_END: tutorial -->").expect("its end");
    let mut blocks = Vec::new();
    for part in readme[start..end].split("```").skip(1).step_by(2) {
        let (kind, body) = part.split_once('\n').unwrap_or((part, ""));
        match kind {
            "wf" => {
                let name = body
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("# "))
                    .and_then(|l| l.split(':').next())
                    .expect("a wf block's first line names its file");
                blocks.push(Block::File(name.to_string(), body.to_string()));
            }
            "console" => {
                let mut commands: Vec<(String, Vec<String>)> = Vec::new();
                for line in body.lines() {
                    match (line.strip_prefix("$ "), commands.last_mut()) {
                        (Some(c), _) => commands.push((c.to_string(), Vec::new())),
                        (None, Some((_, shown))) => shown.push(line.to_string()),
                        (None, None) => {}
                    }
                }
                blocks.push(Block::Commands(commands));
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn the_readme_s_tutorial_works_as_written() {
    let tools = ["openssl", "curl"];
    if !have(tools.iter().all(|t| which(t)), "openssl and curl", "apt-get install openssl curl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = Path::new(wf_bin()).parent().expect("the binary's directory").to_path_buf();
    // One shell runs every command in order (variables and the background server carry over);
    // each command's output goes to a file of its own, compared afterwards.
    let mut script = String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    let mut expected = Vec::new();
    for block in tutorial() {
        match block {
            Block::File(name, body) => {
                // Written when the script reaches it (the commands before may write it too).
                let kept = format!(".file.{}", expected.len());
                std::fs::write(dir.path().join(&kept), body).expect("write");
                script.push_str(&format!("mkdir -p \"$(dirname {name})\" && cp {kept} {name}\n"));
            }
            Block::Commands(commands) => {
                for (command, shown) in commands {
                    let n = expected.len();
                    if let Some(background) = command.strip_suffix('&') {
                        // Started (a simple command: the job is the program itself, which
                        // `kill %1` stops), then waited for until it says it listens.
                        script.push_str(&format!(
                            "{background} > out.{n} &\nfor i in $(seq 100); do grep -q listening out.{n} 2>/dev/null && break; sleep 0.1; done\n"
                        ));
                    } else {
                        script.push_str(&format!("{{ {command} ; }} > out.{n}\n"));
                    }
                    expected.push((command, shown));
                }
            }
        }
    }
    assert!(expected.len() >= 10, "the tutorial has {} commands", expected.len());
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_WEBHOOK_SECRET")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bash");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "the tutorial did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    if !out.status.success() {
        let outputs: Vec<String> = (0..expected.len())
            .map(|n| std::fs::read_to_string(dir.path().join(format!("out.{n}"))).unwrap_or_default())
            .collect();
        panic!(
            "a command of the tutorial failed: {}\nscript:\n{script}\noutputs: {outputs:?}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (n, (command, shown)) in expected.iter().enumerate() {
        let printed = std::fs::read_to_string(dir.path().join(format!("out.{n}"))).unwrap_or_default();
        assert_eq!(
            printed.trim_end(),
            shown.join("\n").trim_end(),
            "the tutorial's `{command}` prints otherwise"
        );
    }
}

fn which(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The lines of `page` from `$ {command}` to the end of its console block.
fn console_block(page: &str, command: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(page)).expect("page");
    let start = text.find(&format!("$ {command}\n")).expect("the sample");
    let body = &text[start..];
    body[..body.find("```").expect("its end")].lines().map(str::to_string).collect()
}

/// Times, durations, ids and ports as the docs show them.
fn normalized(text: &str, id: &str) -> String {
    let text = text.replace(id, "dbd838d400000000");
    let text = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
        .expect("re")
        .replace_all(&text, "2026-12-03T17:22:46Z");
    // (Durations are right-aligned: their width goes too.)
    let text = regex::Regex::new(r" +\d+ ms\b").expect("re").replace_all(&text, " 803 ms");
    regex::Regex::new(r"localhost:\d+").expect("re").replace_all(&text, "localhost:18112").into_owned()
}

#[test]
fn the_docs_wf_runs_samples_are_what_wf_runs_prints() {
    let relay = "workflow relay {\n  trigger webhook { path \"/relay\" mode async auth bearer secret(\"RELAY_TOKEN\") }\n  extract { n = body \"n\" }\n  http POST \"http://127.0.0.1:9/events\" { json { n: n } retry 1 }\n}\n";
    let dir = crate::common::Dir::new(&[("relay.wf", relay)]);
    let root = dir.path().to_path_buf();
    let mut cmd = std::process::Command::new(wf_bin());
    cmd.args(["serve", "relay.wf", "--listen", "127.0.0.1:0", "--store", "state.db"])
        .current_dir(&root)
        .env("RELAY_TOKEN", "tok-7");
    let server = crate::common::Server::spawn(cmd, dir);
    let raw = format!(
        "POST /relay HTTP/1.1\r\nHost: localhost:{}\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Type: application/json\r\nAuthorization: Bearer tok-7\r\nContent-Length: 7\r\n\r\n{{\"n\":7}}",
        server.addr.port()
    );
    // Sent as curl sends it (the connection kept open): the answer's head is read, no more.
    let id = {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.write_all(raw.as_bytes()).expect("send");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).expect("read");
            assert!(n > 0, "no answer");
            head.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        let line = head.lines().find_map(|l| l.strip_prefix("x-wf-execution: ")).expect("the id");
        line.trim().to_string()
    };
    let runs = |args: &[&str]| {
        let out = std::process::Command::new(wf_bin())
            .args(["runs", "--store", "state.db"])
            .args(args)
            .current_dir(&root)
            .env("NO_COLOR", "1")
            .output()
            .expect("wf runs");
        crate::common::text(&out.stdout)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !runs(&["--status", "failed"]).contains(&id) {
        assert!(Instant::now() < deadline, "the run never failed: {}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    for (sample, args) in [
        ("wf runs --status failed --since 1h", vec!["--status", "failed", "--since", "1h"]),
        ("wf runs show dbd838d400000000", vec!["show", id.as_str()]),
    ] {
        let shown = console_block("docs/src/commands.md", sample);
        let block = shown.join("\n");
        let start = block.find(&format!("$ {sample}")).expect("the command");
        let rest = &block[start..];
        let expected: Vec<&str> = rest.lines().skip(1).take_while(|l| !l.starts_with("$ ")).collect();
        let printed = normalized(&runs(&args), &id);
        let expected = normalized(&expected.join("\n"), &id);
        assert_eq!(printed.trim_end(), expected.trim_end(), "the docs' `{sample}` is stale");
    }
}

#[test]
fn the_worked_example_answers_and_logs_as_the_readme_shows() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let start = readme.find("<!-- ANCHOR: example -->").expect("the example");
    let example = &readme[start..readme.find("<!-- ANCHOR_END: example -->").expect("its end")];
    // The README's serve command, on a free port, keeping nothing.
    let first = readme.lines().find(|l| l.starts_with("cargo run")).expect("a serve command");
    let args: Vec<&str> = first.split(" -- ").nth(1).expect("wf's arguments").split_whitespace().collect();
    let mut cmd = std::process::Command::new(wf_bin());
    cmd.args(&args).args(["--listen", "127.0.0.1:0", "--store", "memory"]).current_dir(repo());
    let server = crate::common::Server::spawn(cmd, crate::common::Dir::new(&[]));
    let block = example.split("```console\n").nth(1).expect("the console block");
    let block = &block[..block.find("```").expect("its end")];
    // Each `$ curl ...` (continued over `\` lines) with what it shows.
    let mut samples: Vec<(String, Vec<&str>)> = Vec::new();
    let mut continued = false;
    for line in block.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            samples.push((command.trim_end_matches('\\').to_string(), Vec::new()));
            continued = line.ends_with('\\');
        } else if let (true, Some((command, _))) = (continued, samples.last_mut()) {
            command.push_str(line.trim().trim_end_matches('\\'));
            continued = line.ends_with('\\');
        } else if let Some((_, shown)) = samples.last_mut() {
            shown.push(line);
        }
    }
    assert_eq!(samples.len(), 3, "{samples:?}");
    for (command, shown) in &samples {
        let command = command.replace("127.0.0.1:13000", &server.addr.to_string());
        let out = std::process::Command::new("bash").args(["-c", &command]).output().expect("curl");
        let printed = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        let printed_lines: Vec<&str> = printed.lines().collect();
        let shown: Vec<&str> = shown.iter().copied().filter(|l| !l.is_empty()).collect();
        assert_eq!(printed_lines.first(), shown.first(), "`{command}`: the status line");
        assert_eq!(printed_lines.last(), shown.last(), "`{command}`: the body");
        for header in &shown[1..shown.len() - 1] {
            let name = header.split(':').next().unwrap_or_default();
            let found = printed_lines.iter().any(|l| {
                if name == "x-wf-execution" {
                    l.starts_with(name)
                } else {
                    l == header
                }
            });
            assert!(found, "`{command}` does not answer `{header}`:\n{printed}");
        }
    }
    // The log lines, up to the execution id and the duration.
    let text = example.split("```text\n").nth(1).expect("the log sample");
    let text = &text[..text.find("```").expect("its end")];
    let ids = regex::Regex::new(r"[0-9a-f]{16}").expect("re");
    let durations = regex::Regex::new(r"duration_ms=[0-9.]+").expect("re");
    let norm = |l: &str| durations.replace_all(&ids.replace_all(l, "ID"), "duration_ms=D").into_owned();
    for line in text.lines() {
        let line = norm(line);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !server.log().lines().any(|l| norm(l).ends_with(&line) || norm(l).contains(&line)) {
            assert!(Instant::now() < deadline, "the log has no line like `{line}`:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_readme_s_replay_of_a_change_is_what_wf_runs_replay_prints() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let start = readme.find("<!-- ANCHOR: example -->").expect("the example");
    let example = &readme[start..readme.find("<!-- ANCHOR_END: example -->").expect("its end")];
    // The README's serve command, on a free port, with a store of its own.
    let first = readme.lines().find(|l| l.starts_with("cargo run")).expect("a serve command");
    let args: Vec<&str> = first.split(" -- ").nth(1).expect("wf's arguments").split_whitespace().collect();
    let dir = crate::common::Dir::new(&[]);
    let store = dir.path().join("state.db").to_str().expect("utf8").to_string();
    let mut cmd = std::process::Command::new(wf_bin());
    cmd.args(&args).args(["--listen", "127.0.0.1:0", "--store", &store]).current_dir(repo());
    let server = crate::common::Server::spawn(cmd, crate::common::Dir::new(&[]));
    // The worked example's three calls.
    let calls = example.split("```console\n").nth(1).expect("the console block");
    let calls = calls[..calls.find("```").expect("its end")].replace("\\\n", " ");
    for command in calls.lines().filter_map(|l| l.strip_prefix("$ ")) {
        let command = command.replace("127.0.0.1:13000", &server.addr.to_string());
        let out = std::process::Command::new("bash").args(["-c", &command]).output().expect("curl");
        assert!(out.status.success(), "{command}");
    }
    // The change, applied to the example as the diff shows it.
    let diff = example.split("```diff\n").nth(1).expect("the diff");
    let diff = &diff[..diff.find("```").expect("its end")];
    let source = std::fs::read_to_string(repo().join("examples/payment.wf")).expect("payment.wf");
    let removed: Vec<&str> = diff.lines().filter_map(|l| l.strip_prefix('-')).collect();
    let added: String = diff.lines().filter_map(|l| l.strip_prefix('+')).map(|l| format!("{l}\n")).collect();
    let [removed] = removed[..] else { panic!("one line removed: {diff}") };
    assert_eq!(source.matches(&format!("{removed}\n")).count(), 1, "`{removed}` is in the example once");
    let changed = source.replacen(&format!("{removed}\n"), &added, 1);
    std::fs::create_dir_all(dir.path().join("next")).expect("dir");
    std::fs::write(dir.path().join("next/payment.wf"), changed).expect("write");
    // The sample, run: the same lines (up to the execution's id).
    let sample = "cargo run -- runs replay --status responded --files next/payment.wf";
    let shown = console_block("README.md", sample);
    let wf_args: Vec<&str> = sample.split(" -- ").nth(1).expect("args").split_whitespace().collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let printed = loop {
        let out = std::process::Command::new(wf_bin())
            .args(["runs", "--store", &store])
            .args(&wf_args[1..])
            .current_dir(dir.path())
            .env("PSP_PASSWORD", "secret")
            .output()
            .expect("wf runs replay");
        let printed = crate::common::text(&out.stdout);
        if printed.contains("1 replayed") || Instant::now() > deadline {
            assert_eq!(out.status.code(), Some(1), "{printed}{}", crate::common::text(&out.stderr));
            break printed;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let ids = regex::Regex::new(r"[0-9a-f]{16}").expect("re");
    let expected = ids.replace_all(&shown[1..].join("\n"), "ID").into_owned();
    assert_eq!(
        ids.replace_all(printed.trim_end(), "ID"),
        expected.trim_end(),
        "the README's replay is stale"
    );
}

#[test]
fn the_readme_s_waiting_examples_are_the_examples_as_they_are() {
    let readme = std::fs::read_to_string(crate::common::repo().join("README.md")).expect("README");
    let section =
        readme.split("## Runs that wait").nth(1).and_then(|s| s.split("\n## ").next()).expect("section");
    let mut examples = String::new();
    for name in ["approval", "build", "leads", "incident"] {
        examples += &std::fs::read_to_string(crate::common::repo().join(format!("examples/{name}.wf")))
            .expect("example");
    }
    let blocks: Vec<&str> = section.split("```wf\n").skip(1).filter_map(|b| b.split("```").next()).collect();
    assert_eq!(blocks.len(), 5);
    for b in blocks {
        assert!(
            examples.contains(b),
            "not in examples/approval.wf, build.wf, leads.wf or incident.wf as written:\n{b}"
        );
    }
}
