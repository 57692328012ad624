//! The command line: parses arguments with clap and runs one subcommand.

use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "wf", version, about = "Webhook workflows as code: check, test and serve .wf files")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check workflows; report every error and warning.
    Check {
        /// Files or directories (searched recursively for *.wf).
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Run the `test` blocks: each request goes through the same router and interpreter as serve.
    Test {
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// Set a variable for env() (repeatable); the process environment is the fallback.
        #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// Run only tests whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Rewrite files in the canonical style (comments kept); --check lists files that would change.
    Fmt {
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// Change nothing; exit 1 and list the files that are not formatted.
        #[arg(long)]
        check: bool,
    },
    /// List every workflow's method, URL path, mode, auth and file.
    Routes {
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Print a new workflow skeleton (with a random key unless --path is given).
    New {
        name: String,
        /// Answer at once and run in the background.
        #[arg(long = "async")]
        is_async: bool,
        /// Serve this URL path instead of /api/webhook:trigger/<random key>.
        #[arg(long)]
        path: Option<String>,
    },
    /// Print an extract block for every leaf of a sample body, query string and header list.
    Infer {
        /// A sample JSON body: a file, or - for standard input.
        #[arg(long)]
        body: Option<PathBuf>,
        /// A sample URL or query string (qs-style nesting: items[0][sku]=A1).
        #[arg(long)]
        query: Option<String>,
        /// Header names, comma-separated.
        #[arg(long, value_delimiter = ',')]
        headers: Vec<String>,
        /// Prefix for the variable names.
        #[arg(long)]
        name: Option<String>,
    },
    /// Serve every workflow over HTTP.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Files or directories (searched recursively for *.wf).
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:13000")]
    listen: String,
    /// Reload when a .wf file changes.
    #[arg(long)]
    watch: bool,
    /// Largest request body accepted (e.g. 1MiB, 65536).
    #[arg(long, default_value = "1MiB", value_parser = crate::serve::server::parse_size)]
    max_body: usize,
    #[arg(long, value_enum, default_value = "human")]
    log_format: crate::serve::logging::LogFormat,
    /// Async executions that may wait in the queue before callers get 503.
    #[arg(long, default_value_t = 1024)]
    queue_size: usize,
    /// Seconds to wait, on shutdown, for requests in flight and then for queued executions.
    #[arg(long, default_value_t = 30)]
    drain_timeout: u64,
    /// Seconds a client may take to send a request's head.
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a client may take to send a request's body (then 408).
    #[arg(long, default_value_t = 30)]
    body_timeout: u64,
    /// Connections served at once; further callers wait in the kernel's accept queue.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a connection may go without sending or receiving a byte before it is closed.
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
}

impl ServeArgs {
    fn options(self) -> crate::serve::server::Options {
        let secs = std::time::Duration::from_secs;
        crate::serve::server::Options {
            paths: self.paths,
            listen: self.listen,
            watch: self.watch,
            max_body: self.max_body,
            log_format: self.log_format,
            queue_size: self.queue_size,
            drain_timeout: secs(self.drain_timeout),
            header_timeout: secs(self.header_timeout.max(1)),
            body_timeout: secs(self.body_timeout.max(1)),
            max_connections: self.max_connections.max(1),
            idle_timeout: secs(self.idle_timeout.max(1)),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { paths, format, deny_warnings } => check(&paths, format, deny_warnings),
        Command::Test { paths, env, filter } => test(&paths, &env, filter.as_deref()),
        Command::Fmt { paths, check } => fmt(&paths, check),
        Command::Routes { paths, format } => routes(&paths, format),
        Command::New { name, is_async, path } => new(&name, is_async, path.as_deref()),
        Command::Infer { body, query, headers, name } => {
            infer(body.as_deref(), query.as_deref(), &headers, name.as_deref().unwrap_or(""))
        }
        Command::Serve(args) => crate::serve::server::serve(args.options()),
    }
}

/// Whether to colour output written to stderr.
pub fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn check(paths: &[PathBuf], format: Format, deny_warnings: bool) -> ExitCode {
    let loaded = match crate::lang::loader::load(paths) {
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

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

/// Loads and checks `paths`; prints the diagnostics. `Err` carries the exit code.
fn load_checked(paths: &[PathBuf]) -> Result<crate::lang::loader::Loaded, ExitCode> {
    let loaded = crate::lang::loader::load(paths).map_err(|e| {
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

fn test(paths: &[PathBuf], env: &[(String, String)], filter: Option<&str>) -> ExitCode {
    let loaded = match load_checked(paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let lookup = |name: &str| {
        env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()).or_else(|| std::env::var(name).ok())
    };
    let router = crate::request::served::build_partial(loaded.program, &lookup);
    let results = crate::tools::test_runner::run_all(&router, filter);
    print!("{}", crate::tools::test_runner::report(&results));
    if results.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn fmt(paths: &[PathBuf], check: bool) -> ExitCode {
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
        if let Err(e) = std::fs::write(&tmp, &formatted).and_then(|_| std::fs::rename(&tmp, &path)) {
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

fn routes(paths: &[PathBuf], format: Format) -> ExitCode {
    let loaded = match load_checked(paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let routes = crate::tools::routes::routes(&loaded.program);
    match format {
        Format::Human => print!("{}", crate::tools::routes::human(&routes)),
        Format::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::tools::routes::json(&routes)).unwrap_or_default()
            )
        }
    }
    ExitCode::SUCCESS
}

fn new(name: &str, is_async: bool, path: Option<&str>) -> ExitCode {
    if !crate::tools::scaffold::valid_name(name) {
        eprintln!("error: `{name}` is not a valid workflow name (letters, digits and `_`, not a keyword)");
        return ExitCode::from(2);
    }
    if let Some(p) = path {
        if !p.starts_with('/') || p.contains(['?', '#', '"', '\\']) || p.chars().any(char::is_whitespace) {
            eprintln!("error: `{p}` is not a URL path (it starts with `/`, e.g. /hooks/orders)");
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

fn infer(body: Option<&std::path::Path>, query: Option<&str>, headers: &[String], prefix: &str) -> ExitCode {
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
    print!("{}", crate::tools::infer::extract_block(headers, query, body_value.as_ref(), prefix));
    ExitCode::SUCCESS
}

pub fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", plural(n))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
