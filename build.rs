//! Lays out the shipped binary's code (`cargo xtask dist`, which sets `WF_DIST=1`): the
//! functions `wf serve` runs (at start and for each request, with either store; SQLite's C
//! functions too), listed in `link/functions.txt` by `benches/link-order.sh`, are placed together
//! at the start of the code, instead of wherever their crates put them among ~13,000 others. A
//! server then maps far less of the binary at start (the kernel maps 64 KiB around each page of
//! code it runs for the first time: idle RSS 9.7 → 6.0 MiB) and a request runs through fewer pages.
//!
//! Other builds (`cargo build --release` included) do nothing here: the list names the symbols of
//! one toolchain and one set of dependencies, and a changed source must not depend on it. Even in
//! `dist`, only where the linker is LLD, which reads the list: x86_64 Linux (GNU) with Rust 1.90
//! or later, whose default linker there is `rust-lld`, and no other linker configured. A name not
//! in the binary is skipped quietly, so an out-of-date list loses some of its effect, never the
//! build. `WF_NO_LINK_ORDER=1` turns it off there too.

use std::env::var;

fn main() {
    println!("cargo:rerun-if-env-changed=WF_DIST");
    if !var("WF_DIST").is_ok_and(|v| v == "1") {
        println!("cargo:rerun-if-changed=build.rs");
        return;
    }
    println!("cargo:rerun-if-changed=link/functions.txt");
    // The profile link/rustc.sh compiles dist builds with: a new one rebuilds wf (its
    // dependencies keep the one they were built with until `cargo clean`).
    println!("cargo:rerun-if-changed=link/wf.profdata");
    println!("cargo:rerun-if-env-changed=WF_NO_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let release = var("PROFILE").is_ok_and(|p| p == "release");
    let gnu_linux = var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let off = var("WF_NO_LINK_ORDER").is_ok_and(|v| v == "1");
    // Another linker, chosen by configuration or flags, may not read the list.
    let other_linker = var("RUSTC_LINKER").is_ok()
        || var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_ok()
        || var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("linker") || f.contains("fuse-ld"));
    if !release || !gnu_linux || off || other_linker || !lld_by_default() {
        return;
    }
    let list = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link/functions.txt");
    // `-Wl,` splits at commas, and the flag would split at spaces.
    let plain = !list.to_string_lossy().contains([',', ' ', '\t', '\n']);
    if list.exists() && plain {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", list.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether the compiler links with `rust-lld` by default on this target (Rust 1.90 and later).
fn lld_by_default() -> bool {
    let rustc = var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = std::process::Command::new(rustc).arg("--version").output() else { return false };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text.split_whitespace().nth(1).unwrap_or("").split('.');
    let major: u32 = version.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let minor: u32 = version.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (major, minor) >= (1, 90)
}
