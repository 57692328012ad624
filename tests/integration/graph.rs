//! `wf graph`: golden drawings of every example (Mermaid, DOT and SVG, `tests/graph/`; `WF_BLESS=1`
//! rewrites them), and every DOT drawing renders with Graphviz's `dot -Tsvg`.

use crate::common::{have, repo, text, wf};
use std::process::{Command, Stdio};

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .expect("examples")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".wf")).map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn every_example_is_drawn_as_its_golden() {
    let mut failures = Vec::new();
    for name in examples() {
        for (format, ext) in [("mermaid", "mmd"), ("dot", "dot"), ("svg", "svg")] {
            let out = wf(&["graph", &format!("examples/{name}.wf"), "--format", format]);
            assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
            let actual = text(&out.stdout);
            let golden = repo().join(format!("tests/graph/{name}.{ext}"));
            if std::env::var_os("WF_BLESS").is_some() {
                std::fs::write(&golden, &actual).expect("bless");
                continue;
            }
            let expected = std::fs::read_to_string(&golden).unwrap_or_default();
            if expected != actual {
                failures.push(format!(
                    "{}: differs\n--- expected\n{expected}\n--- actual\n{actual}",
                    golden.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dot_drawings_render_with_graphviz() {
    let installed = Command::new("dot").arg("-V").stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !have(installed, "Graphviz's dot", "apt-get install graphviz") {
        return;
    }
    for name in examples() {
        let out = wf(&["graph", &format!("examples/{name}.wf"), "--format", "dot"]);
        let svg = crate::common::pipe("dot", &["-Tsvg"], &out.stdout);
        assert!(svg.status.success(), "{name}: dot refused it: {}", text(&svg.stderr));
        assert!(text(&svg.stdout).contains("<svg"), "{name}");
    }
}

#[test]
fn one_workflow_can_be_picked_and_a_missing_one_is_named() {
    let out = wf(&["graph", "examples/payment.wf", "--workflow", "payment_callback"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("flowchart TD\n"));
    let out = wf(&["graph", "examples/payment.wf", "--workflow", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no workflow `nope`"));
}

#[test]
fn a_folder_is_drawn_whole() {
    let one = |name: &str| {
        format!("workflow {name} {{\n  trigger webhook {{ path \"/{name}\" }}\n  log \"{name}\"\n}}\n")
    };
    let dir =
        crate::common::Dir::new(&[("a.wf", &one("alpha")), ("b.wf", &one("beta")), ("c.wf", &one("gamma"))]);
    let out = crate::common::wf(&["graph", dir.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::common::text(&out.stderr));
    let drawn = crate::common::text(&out.stdout);
    for name in ["alpha", "beta", "gamma"] {
        assert!(drawn.contains(name), "{name} is drawn:\n{drawn}");
    }
    let only = crate::common::wf(&["graph", dir.path().to_str().expect("utf8"), "--workflow", "beta"]);
    let drawn = crate::common::text(&only.stdout);
    assert!(drawn.contains("beta") && !drawn.contains("gamma"), "{drawn}");
    let none = crate::common::wf(&["graph", dir.path().to_str().expect("utf8"), "--workflow", "delta"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(crate::common::text(&none.stderr).contains("no workflow `delta`"));
}
