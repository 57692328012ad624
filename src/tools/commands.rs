//! The body of each command but `serve`: load, run the tool, print, choose the exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// How `check` prints.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
}

/// How `routes` prints.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RoutesFormat {
    Human,
    Json,
    /// An OpenAPI 3.1 document (JSON).
    Openapi,
}

/// Whether to colour output written to stderr.
pub(crate) fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub(crate) fn check(paths: &[PathBuf], format: Format, deny_warnings: bool) -> ExitCode {
    let loaded = match load(paths) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.warnings();
    match format {
        Format::Json => {
            let all: Vec<serde_json::Value> = loaded.diagnostics.iter().map(|d| d.to_json()).collect();
            println!("{}", serde_json::to_string_pretty(&all).unwrap_or_else(|_| "[]".into()));
        }
        Format::Human => {
            eprint!("{}", crate::lang::diagnostic::render_human(&loaded.diagnostics, color_stderr()));
            let files = loaded.files;
            if errors > 0 || warnings > 0 {
                eprintln!(
                    "{}, {} in {} file{}",
                    count(errors, "error"),
                    count(warnings, "warning"),
                    files,
                    plural(files)
                );
            } else {
                let p = &loaded.program;
                println!(
                    "ok: {} in {} file{}, {}",
                    count(p.workflows.len(), "workflow"),
                    files,
                    plural(files),
                    count(p.tests.len(), "test")
                );
            }
        }
    }
    if errors > 0 || (deny_warnings && warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Loads and checks `paths`; prints the diagnostics. `Err` carries the exit code.
/// Reads, parses and checks every file, then computes the constants the way `serve` does: what
/// `serve` would refuse about a file (other than unset `env()` variables) is a diagnostic here.
pub(crate) fn load(paths: &[PathBuf]) -> Result<crate::lang::loader::Loaded, String> {
    let mut loaded = crate::lang::loader::load(paths)?;
    if !loaded.has_errors() {
        loaded.diagnostics.extend(crate::request::served::verify(&loaded.program));
        loaded.diagnostics.sort_by_key(|d| d.sort_key());
    }
    Ok(loaded)
}

pub(crate) fn load_checked(paths: &[PathBuf]) -> Result<crate::lang::loader::Loaded, ExitCode> {
    let loaded = load(paths).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    if !loaded.diagnostics.is_empty() {
        eprint!("{}", crate::lang::diagnostic::render_human(&loaded.diagnostics, color_stderr()));
    }
    if loaded.has_errors() {
        return Err(ExitCode::from(1));
    }
    Ok(loaded)
}

pub(crate) fn test(
    paths: &[PathBuf],
    env: &[(String, String)],
    filter: Option<&str>,
    secrets_dir: Option<&std::path::Path>,
) -> ExitCode {
    let loaded = match load_checked(paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let lookup = |name: &str| {
        env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()).or_else(|| std::env::var(name).ok())
    };
    let dir =
        secrets_dir.map(std::path::Path::to_path_buf).or_else(crate::request::served::credentials_directory);
    let router = crate::request::served::build_for_tests(loaded.program, &lookup, dir.as_deref());
    let results = crate::tools::test_runner::run_all(&router, filter);
    print!("{}", crate::tools::test_runner::report(&results));
    if results.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub(crate) fn fmt(paths: &[PathBuf], check: bool) -> ExitCode {
    let files = match crate::lang::loader::find_files(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for path in files {
        let (file, bad) = match crate::lang::loader::read_source(&path) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let parsed = match bad {
            Some(d) => Err(vec![d]),
            None => crate::lang::parser::parse(&file),
        };
        let ast = match parsed {
            Ok(ast) => ast,
            Err(diags) => {
                eprint!("{}", crate::lang::diagnostic::render_human(&diags, color_stderr()));
                eprintln!("not formatted: {} does not parse", path.display());
                failed = true;
                continue;
            }
        };
        let formatted = crate::tools::fmt::format(&ast, &file.text);
        if formatted == file.text {
            continue;
        }
        if check {
            println!("{}", path.display());
            failed = true;
            continue;
        }
        let tmp = path.with_extension("wf.fmt-tmp");
        // The rewritten file keeps the original's permissions (a 0600 file stays 0600).
        let written = std::fs::write(&tmp, &formatted)
            .and_then(|_| std::fs::metadata(&path))
            .and_then(|m| std::fs::set_permissions(&tmp, m.permissions()))
            .and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
        println!("formatted {}", path.display());
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub(crate) fn routes(paths: &[PathBuf], format: RoutesFormat) -> ExitCode {
    let loaded = match load_checked(paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let routes = crate::tools::routes::routes(&loaded.program);
    match format {
        RoutesFormat::Human => print!("{}", crate::tools::routes::human(&routes)),
        RoutesFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::tools::routes::json(&routes)).unwrap_or_default()
            )
        }
        RoutesFormat::Openapi => {
            let doc = crate::tools::openapi::document(&loaded.program);
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
        }
    }
    ExitCode::SUCCESS
}

pub(crate) fn graph(
    file: &std::path::Path,
    workflow: Option<&str>,
    format: crate::tools::graph::GraphFormat,
) -> ExitCode {
    let loaded = match load_checked(&[file.to_path_buf()]) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if loaded.sources.is_empty() {
        eprintln!("error: {}: no .wf file", file.display());
        return ExitCode::from(2);
    }
    // Every workflow of every file the path holds, in one drawing.
    match crate::tools::graph::render(&loaded.sources, &loaded.program, workflow, format) {
        Ok(text) => {
            use std::io::Write as _;
            // A closed pipe (`wf graph f.wf | head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn new(name: &str, is_async: bool, path: Option<&str>) -> ExitCode {
    if !crate::tools::scaffold::valid_name(name) {
        eprintln!("error: `{name}` is not a valid workflow name (letters, digits and `_`, not a keyword)");
        return ExitCode::from(2);
    }
    if let Some(p) = path {
        if let Some(problem) = crate::lang::url::path_problem(p) {
            eprintln!("error: `{p}` is not a URL path ({problem}, e.g. /hooks/orders)");
            return ExitCode::from(2);
        }
    }
    match crate::tools::scaffold::skeleton(name, is_async, path) {
        Ok(s) => {
            print!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn infer(
    body: Option<&std::path::Path>,
    query: Option<&str>,
    headers: &[String],
    prefix: &str,
    path: Option<&str>,
    depth: Option<usize>,
) -> ExitCode {
    if body.is_none() && query.is_none() && headers.is_empty() {
        eprintln!("error: give a sample with --body FILE, --query URL or --headers Name,...");
        return ExitCode::from(2);
    }
    let body_value = match body {
        None => None,
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
            } else {
                std::fs::read_to_string(p)
            };
            let text = match text {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {}: {e}", p.display());
                    return ExitCode::from(2);
                }
            };
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => Some(v),
                Err(e) => {
                    eprintln!("error: {}: not JSON: {e}", p.display());
                    return ExitCode::from(1);
                }
            }
        }
    };
    let at = match path.map(crate::lang::path::parse) {
        None => Vec::new(),
        Some(Ok(segs)) => segs,
        Some(Err(e)) => {
            eprintln!("error: --path: {e}");
            return ExitCode::from(2);
        }
    };
    if let (Some(p), Some(b)) = (path, &body_value) {
        if crate::request::extract::lookup(b, &at).is_none() {
            eprintln!("error: the body has no `{p}`");
            return ExitCode::from(1);
        }
    }
    let depth = depth.map_or_else(crate::tools::infer::Depth::default, crate::tools::infer::Depth);
    print!("{}", crate::tools::infer::extract_block(headers, query, body_value.as_ref(), prefix, &at, depth));
    ExitCode::SUCCESS
}

pub(crate) fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", plural(n))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
