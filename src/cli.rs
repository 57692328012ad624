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
    /// Serve every workflow over HTTP.
    Serve {
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:13000")]
        listen: String,
        /// Reload when a .wf file changes.
        #[arg(long)]
        watch: bool,
        /// Largest request body accepted (e.g. 1MiB, 65536).
        #[arg(long, default_value = "1MiB", value_parser = crate::server::parse_size)]
        max_body: usize,
        #[arg(long, value_enum, default_value = "human")]
        log_format: crate::logging::LogFormat,
        /// Async executions that may wait in the queue before callers get 503.
        #[arg(long, default_value_t = 1024)]
        queue_size: usize,
        /// Seconds to wait, on shutdown, for requests in flight and then for queued executions.
        #[arg(long, default_value_t = 30)]
        drain_timeout: u64,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { paths, format, deny_warnings } => check(&paths, format, deny_warnings),
        Command::Test { paths, env, filter } => test(&paths, &env, filter.as_deref()),
        Command::Serve { paths, listen, watch, max_body, log_format, queue_size, drain_timeout } => {
            crate::server::serve(crate::server::Options {
                paths,
                listen,
                watch,
                max_body,
                log_format,
                queue_size,
                drain_timeout: std::time::Duration::from_secs(drain_timeout),
            })
        }
    }
}

/// Whether to colour output written to stderr.
pub fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn check(paths: &[PathBuf], format: Format, deny_warnings: bool) -> ExitCode {
    let loaded = match crate::loader::load(paths) {
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
            eprint!("{}", crate::diag::render_human(&loaded.diagnostics, color_stderr()));
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
fn load_checked(paths: &[PathBuf]) -> Result<crate::loader::Loaded, ExitCode> {
    let loaded = crate::loader::load(paths).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    if !loaded.diagnostics.is_empty() {
        eprint!("{}", crate::diag::render_human(&loaded.diagnostics, color_stderr()));
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
    let router = crate::router::build_partial(loaded.program, &lookup);
    let results = crate::test_runner::run_all(&router, filter);
    print!("{}", crate::test_runner::report(&results));
    if results.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
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
