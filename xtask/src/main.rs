//! `cargo xtask dist`: the release binary wf ships, `target/dist/wf`.
//!
//! It is the `dist` profile (the `release` profile's settings) compiled through `link/rustc.sh`,
//! which adds the server's profile (`link/wf.profdata`, profile-guided optimization) where this
//! compiler is the one that wrote it, and with `WF_DIST=1`, which has `build.rs` hand the linker
//! `link/functions.txt` (the functions a server runs, placed together). A plain `cargo build
//! --release` uses neither, so a changed source never meets a stale profile or list there.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask dist

  dist   builds target/dist/wf: optimized as `--release`, with the server's profile
         (link/wf.profdata) where this compiler wrote it, and the linker's function order";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["dist"] => dist(),
        ["-h"] | ["--help"] | ["help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The repository: the folder above this crate's.
fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// `rustc -vV` of the compiler cargo runs, or `None` when it does not answer.
fn compiler_version() -> Option<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dist() -> ExitCode {
    let root = root();
    let profile = root.join("link/wf.profdata");
    let written_by = std::fs::read_to_string(root.join("link/wf.profdata.rustc")).ok();
    let release = |v: &str| v.lines().find_map(|l| l.strip_prefix("release: ")).unwrap_or("?").to_string();
    match (compiler_version(), written_by, profile.exists()) {
        (Some(ours), Some(theirs), true) if ours.trim_end() == theirs.trim_end() => {
            eprintln!("xtask: with the server's profile (link/wf.profdata, rustc {})", release(&ours));
        }
        (Some(ours), Some(theirs), true) => eprintln!(
            "xtask: link/wf.profdata was written by rustc {}, this is rustc {}: building without it \
             (benches/pgo.sh writes one for this compiler)",
            release(&theirs),
            release(&ours)
        ),
        _ => {
            eprintln!("xtask: no profile for this compiler (benches/pgo.sh writes one): building without it")
        }
    }
    if let Ok(other) = std::env::var("RUSTC_WRAPPER") {
        if !other.is_empty() {
            eprintln!("xtask: RUSTC_WRAPPER={other} is replaced by link/rustc.sh for this build");
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--profile", "dist", "--bin", "wf"])
        .env("RUSTC_WRAPPER", root.join("link/rustc.sh"))
        .env("WF_DIST", "1")
        .status();
    match status {
        Ok(s) if s.success() => {
            eprintln!("xtask: built target/dist/wf");
            ExitCode::SUCCESS
        }
        Ok(s) => ExitCode::from(s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: could not run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
