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
