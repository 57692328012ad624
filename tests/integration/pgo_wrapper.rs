//! `link/rustc.sh`, the compiler wrapper that gives optimized builds the server's profile: run
//! with a stand-in compiler that prints the arguments it is given.

use crate::common::{repo, Dir};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// A compiler that answers `-vV` with `version` and otherwise prints its arguments, one per line.
fn compiler(dir: &Dir, version: &str) -> String {
    let path = dir.path().join("rustc");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = -vV ]; then printf '%s\\n' '{version}'; else printf '%s\\n' \"$@\"; fi\n"
    );
    std::fs::write(&path, script).expect("write the stand-in compiler");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.to_str().expect("utf8").to_string()
}

/// The arguments the wrapper passed on, with `WF_NO_PGO` set to `no_pgo` when given.
fn wrapped(rustc: &str, args: &[&str], no_pgo: Option<&str>) -> String {
    let mut cmd = Command::new("sh");
    cmd.arg(repo().join("link/rustc.sh")).arg(rustc).args(args).env_remove("WF_NO_PGO");
    if let Some(v) = no_pgo {
        cmd.env("WF_NO_PGO", v);
    }
    let out = cmd.output().expect("run link/rustc.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_profile_goes_to_optimized_builds_of_the_compiler_that_wrote_it() {
    let profile = repo().join("link/wf.profdata");
    let version =
        std::fs::read_to_string(repo().join("link/wf.profdata.rustc")).expect("link/wf.profdata.rustc");
    assert!(profile.exists(), "link/wf.profdata is written by benches/pgo.sh");
    let dir = Dir::new(&[]);
    let same = compiler(&dir, version.trim_end());
    let use_flag = format!("-Cprofile-use={}", profile.display());

    let release = wrapped(&same, &["--crate-name", "wf", "-C", "opt-level=3"], None);
    assert!(release.lines().any(|l| l == use_flag), "{release}");
    assert!(release.contains("-no-pgo-warn-mismatch"), "{release}");
    let small = wrapped(&same, &["-C", "opt-level=s"], None);
    assert!(small.contains("-Cprofile-use="), "{small}");

    for (args, no_pgo) in [
        (&["-C", "opt-level=0"][..], None),
        (&["--crate-name", "wf"][..], None),
        (&["-C", "opt-level=3"][..], Some("1")),
        (&["-C", "opt-level=3", "-Cprofile-generate=/tmp/raw"][..], None),
        (&["-C", "opt-level=3", "-Zsanitizer=address"][..], None),
    ] {
        let out = wrapped(&same, args, no_pgo);
        assert!(!out.contains("profile-use"), "{args:?} {no_pgo:?}: {out}");
        assert_eq!(out.lines().collect::<Vec<_>>(), args, "the arguments pass unchanged");
    }

    let other = compiler(&dir, "rustc 0.0.0 (another compiler)");
    let out = wrapped(&other, &["-C", "opt-level=3"], None);
    assert!(!out.contains("profile-use"), "{out}");
}
