//! The command line: clap's definitions of the commands and their flags; each command's body is
//! in [`crate::tools::commands`] (or [`crate::serve`]).

use crate::tools::commands::{self, Format, RoutesFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "wf", version, about = "Webhook workflows as code: check, test and serve .wf files")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
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
        /// Where secret("NAME") finds the file NAME when no variable NAME is given.
        #[arg(long, value_name = "DIR")]
        secrets_dir: Option<PathBuf>,
    },
    /// Rewrite files in the canonical style (comments kept); --check lists files that would change.
    Fmt {
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// Change nothing; exit 1 and list the files that are not formatted.
        #[arg(long)]
        check: bool,
    },
    /// List every workflow's method, URL path, mode, auth and file (or an OpenAPI 3.1 document).
    Routes {
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: RoutesFormat,
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
        /// Start at this part of the body (e.g. `data.object`); the paths written start with it.
        #[arg(long)]
        path: Option<String>,
        /// Look at most this many levels into objects; deeper ones are one `as object` value.
        #[arg(long)]
        depth: Option<usize>,
    },
    /// Draw a file's workflows (trigger, extractions, decisions, answers) as Mermaid or DOT.
    Graph {
        /// A .wf file, or a folder: every workflow of its files, in one drawing.
        file: PathBuf,
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long, value_enum, default_value = "mermaid")]
        format: crate::tools::graph::GraphFormat,
    },
    /// A language server on stdio (diagnostics, hover, definition, completion, formatting).
    Lsp,
    /// Send a payload the way a provider would sign it, and print the answer (exit 0 on 2xx).
    Send {
        /// The payload: a file, or `-` for standard input.
        file: String,
        /// Where to send it.
        url: String,
        /// Sign it as this provider does (github, stripe, slack, shopify, standard_webhooks, twilio).
        #[arg(long, requires = "secret")]
        sign: Option<String>,
        /// The environment variable that holds the secret to sign with.
        #[arg(long, requires = "sign")]
        secret: Option<String>,
        /// A header to send, `Name: value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        #[arg(long, default_value = "POST")]
        method: String,
    },
    /// List the executions the store keeps (newest first); `runs show ID`, `runs prune`.
    Runs(RunsArgs),
    /// Serve every workflow over HTTP.
    Serve(Box<ServeArgs>),
}

#[derive(clap::Args)]
struct RunsArgs {
    #[command(subcommand)]
    action: Option<RunsAction>,
    /// The store `wf serve` keeps (its --store: a SQLite file or a `postgres://` URL).
    #[arg(long, global = true, env = "WF_STORE", default_value = ".wf/state.db")]
    store: String,
    /// Only this workflow's executions.
    #[arg(long, global = true)]
    workflow: Option<String>,
    /// Only executions with this outcome (responded, completed, failed, rejected, duplicate,
    /// preflight, cancelled, superseded) or state (queued, running, waiting, ended).
    #[arg(long, global = true, value_parser = crate::store::Status::parse)]
    status: Option<crate::store::Status>,
    /// Only executions started within this long (`1h`, `2d`).
    #[arg(long, global = true, value_parser = humantime::parse_duration)]
    since: Option<std::time::Duration>,
    /// At most this many (listing: 50; replay and retry: all the filter selects).
    #[arg(long, global = true)]
    limit: Option<usize>,
    /// Print executions as they end, until interrupted.
    #[arg(long)]
    follow: bool,
    #[arg(long, global = true, value_enum, default_value = "human")]
    format: commands::Format,
}

#[derive(clap::Subcommand)]
enum RunsAction {
    /// One execution, whole: request (credentials masked), steps, log lines, answer, failure.
    Show {
        /// Its id (the `x-wf-execution` header).
        id: String,
    },
    /// Run a failed execution again: the steps that succeeded (`http` below 400, `run` exit 0)
    /// are kept, the first one that did not and those after it are done again as new calls
    /// (with idempotency keys of their own). Without an ID, every execution `--status failed`
    /// (and `--workflow`, `--since`) selects.
    Retry {
        id: Option<String>,
        /// Do every step again.
        #[arg(long)]
        from_start: bool,
    },
    /// Run kept executions' requests again through the workflows of --files, sending and
    /// storing nothing; say of each whether its answer and effects are the same (exit 1 when
    /// any changed).
    Replay {
        /// These executions (else those --workflow, --status, --since, --limit select).
        ids: Vec<String>,
        /// The workflows to replay against (files or folders).
        #[arg(long, num_args = 1.., default_value = ".")]
        files: Vec<PathBuf>,
    },
    /// Print a `test` block that reproduces execution ID (its request, its effects as `mock`
    /// lines, its status), for pasting beside its workflow.
    Export {
        id: String,
        /// Where its workflow is (files or folders), for its `auth` as a `sign` line or secrets.
        #[arg(long, num_args = 1.., default_value = ".")]
        files: Vec<PathBuf>,
    },
    /// End a waiting run (sleeping, waiting for a callback, or for an `http` retry) as
    /// `cancelled`; its callbacks answer 410 from then on.
    Cancel {
        /// Its id.
        id: String,
    },
    /// Delete ended executions older than --older-than.
    Prune {
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
    },
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
    /// A proxy (address or CIDR network, repeatable) whose X-Forwarded-For names the caller.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_network)]
    trusted_proxy: Vec<ipnet::IpNet>,
    /// Serve the dashboard (at /), /metrics (Prometheus), /healthz and /readyz on this second
    /// address (off by default; a loopback address unless --admin-token is given).
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
    /// The secret (its name: an environment variable or a file in --secrets-dir) the dashboard
    /// and /metrics ask for; required when --admin is not a loopback address.
    #[arg(long, value_name = "NAME")]
    admin_token: Option<String>,
    /// Where secret("NAME") finds the file NAME when no environment variable NAME is set.
    #[arg(long, value_name = "DIR")]
    secrets_dir: Option<PathBuf>,
    /// Bytes all the request bodies being read may hold together; beyond, callers get 503.
    #[arg(long, default_value = "256MiB", value_parser = crate::serve::server::parse_size)]
    max_body_memory: usize,
    /// The body a kept request keeps whole, at most (e.g. 64KiB); a larger one is kept as its
    /// size and SHA-256 (`wf runs show`).
    #[arg(long, default_value = "64KiB", value_parser = crate::serve::server::parse_size)]
    keep_body: usize,
    /// Keep each sync execution's answer too (status, headers, body up to 64 KiB), for `wf runs
    /// replay` to compare and `wf runs export` to expect; off by default (it costs the history
    /// writer about a sixth more CPU per request).
    #[arg(long)]
    keep_answers: bool,
    /// Let workflows run programs (`run`); without it, a workflow with `run` is not served.
    #[arg(long)]
    allow_run: bool,
    /// Async executions run at once.
    #[arg(long, default_value_t = 64)]
    workers: usize,
    /// Where accepted runs and the history are kept: a SQLite file, a `postgres://` URL (shared by
    /// several instances), or `memory` (nothing kept).
    #[arg(long, env = "WF_STORE", default_value = ".wf/state.db", value_parser = crate::serve::server::StoreChoice::parse)]
    store: crate::serve::server::StoreChoice,
    /// Most evaluation steps one execution may take; past it the execution fails.
    #[arg(long, default_value_t = 10_000_000)]
    max_steps: u64,
    /// Most bytes of values one execution may build (e.g. 64MiB); past it the execution fails.
    #[arg(long, default_value = "64MiB", value_parser = crate::serve::server::parse_size)]
    max_memory: usize,
    /// How long the history of executions is kept (`7d`, `12h`).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    retain: std::time::Duration,
    /// With a PostgreSQL store: how long an instance holds its runs without renewing its lease;
    /// the runs of an instance that died are taken over after it.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    lease: std::time::Duration,
    /// With a store: an async run's `http` retry that would wait this long or longer parks the
    /// run (kept with its due time, no worker held) instead of waiting.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    park_after: std::time::Duration,
    /// Where callers reach this server (e.g. https://hooks.example.com): a `callback`'s URL
    /// starts with it; by default `http://` and the address it listens on.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
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
            trusted_proxies: self.trusted_proxy,
            admin: self.admin,
            admin_token: self.admin_token,
            secrets_dir: self.secrets_dir,
            max_body_memory: self.max_body_memory,
            keep_body: self.keep_body,
            keep_answers: self.keep_answers,
            allow_run: self.allow_run,
            workers: self.workers.max(1),
            store: self.store,
            retain: self.retain,
            lease: self.lease.max(std::time::Duration::from_secs(1)),
            park_after: self.park_after,
            public_url: self.public_url.clone(),
            budget: crate::request::eval::Budget {
                steps: self.max_steps.max(1),
                bytes: u64::try_from(self.max_memory).unwrap_or(u64::MAX),
            },
        }
    }
}

/// Lets a command that prints end quietly when its reader goes away (`wf runs | head`), as
/// command-line tools do: the default action of `SIGPIPE` instead of the error every write would
/// then get (which `println!` turns into a panic). Not for `wf serve`, whose writes to a closed
/// socket are errors it handles.
fn quiet_when_the_reader_goes() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: no handler function is installed, only the default action restored, before any
    // other thread exists.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        quiet_when_the_reader_goes();
    }
    match cli.command {
        Command::Check { paths, format, deny_warnings } => commands::check(&paths, format, deny_warnings),
        Command::Test { paths, env, filter, secrets_dir } => {
            commands::test(&paths, &env, filter.as_deref(), secrets_dir.as_deref())
        }
        Command::Fmt { paths, check } => commands::fmt(&paths, check),
        Command::Routes { paths, format } => commands::routes(&paths, format),
        Command::New { name, is_async, path } => commands::new(&name, is_async, path.as_deref()),
        Command::Infer { body, query, headers, name, path, depth } => commands::infer(
            body.as_deref(),
            query.as_deref(),
            &headers,
            name.as_deref().unwrap_or(""),
            path.as_deref(),
            depth,
        ),
        Command::Graph { file, workflow, format } => commands::graph(&file, workflow.as_deref(), format),
        Command::Lsp => crate::tools::lsp::run(),
        Command::Send { file, url, sign, secret, headers, method } => {
            crate::tools::send::send(&file, &url, sign.as_deref().zip(secret.as_deref()), &headers, &method)
        }
        Command::Runs(a) => {
            let store = a.store.as_str();
            let filter = crate::store::Filter {
                workflow: a.workflow,
                status: a.status,
                since_ms: a.since.map(|d| {
                    crate::store::now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                }),
                limit: a.limit.unwrap_or(if a.action.is_some() { usize::MAX } else { 50 }),
                after: None,
            };
            match a.action {
                None if a.follow => crate::tools::runs::follow(store, &filter, a.format),
                None => crate::tools::runs::list(store, &filter, a.format),
                Some(RunsAction::Show { id }) => crate::tools::runs::show(store, &id, a.format),
                Some(RunsAction::Retry { id: Some(id), from_start }) => {
                    crate::tools::runs::retry(store, &id, from_start)
                }
                Some(RunsAction::Retry { id: None, from_start }) => {
                    crate::tools::runs::retry_all(store, filter, from_start)
                }
                Some(RunsAction::Prune { older_than }) => crate::tools::runs::prune(store, older_than),
                Some(RunsAction::Cancel { id }) => crate::tools::runs::cancel(store, &id),
                Some(RunsAction::Export { id, files }) => crate::tools::runs::export(store, &id, &files),
                Some(RunsAction::Replay { ids, files }) => {
                    crate::tools::runs::replay(store, &ids, filter, &files, a.format)
                }
            }
        }
        Command::Serve(args) => crate::serve::server::serve(args.options()),
    }
}

fn parse_network(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("`{s}` is not an address or a CIDR network"))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}
