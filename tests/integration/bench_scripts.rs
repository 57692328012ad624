//! The benchmark scripts measure the binary users run: `wf` built on its own. Built in one cargo
//! invocation with an example, a bench or a test, it would get the features of the
//! dev-dependencies too (tokio's test-util), code that neither the profile nor the layout list
//! was made for (benches/load.sh measured it 10% slower, with 2 MiB more idle memory).

use crate::common::repo;

/// The `cargo build` commands of a script that build the `wf` binary together with other targets.
fn mixed_builds(script: &str) -> Vec<String> {
    script
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#') && line.contains("cargo build"))
        .filter(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let builds_wf = words.windows(2).any(|w| w == ["--bin", "wf"]) || words.contains(&"--bins");
            let builds_more = words.iter().any(|w| {
                matches!(
                    *w,
                    "--example"
                        | "--examples"
                        | "--bench"
                        | "--benches"
                        | "--test"
                        | "--tests"
                        | "--all-targets"
                )
            });
            builds_wf && builds_more
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn benchmark_scripts_build_the_wf_binary_on_its_own() {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(repo().join("benches")).expect("read benches/");
    for entry in entries {
        let path = entry.expect("a benches/ entry").path();
        if path.extension().is_some_and(|e| e == "sh") {
            let script = std::fs::read_to_string(&path).expect("read a benchmark script");
            found.extend(mixed_builds(&script).into_iter().map(|l| format!("{}: {l}", path.display())));
        }
    }
    assert!(found.is_empty(), "builds wf with other targets:\n{}", found.join("\n"));
}

#[test]
fn a_build_of_wf_with_an_example_is_found() {
    let script =
        "cargo build --release --quiet --bin wf --example baseline\n# cargo build --bin wf --tests\n";
    assert_eq!(mixed_builds(script).len(), 1);
    assert!(
        mixed_builds("cargo build --release --bin wf\ncargo build --release --example baseline\n").is_empty()
    );
}
