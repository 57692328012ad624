//! `wf serve`: hyper 1.x on tokio. Accepts connections, answers through [`crate::request::handle::answer`],
//! runs async executions on a bounded queue, reloads on file change or SIGHUP, and drains on
//! SIGTERM/SIGINT.

use crate::effect::Effects;
use crate::exec::queue::Queue;
use crate::exec::{resume, runs, worker};
use crate::request::handle::{self, Job, Limits};
use crate::request::served::{BuildError, Router};
use crate::serve::drain::Drain;
use crate::serve::logging::{self, LogFormat};
use crate::serve::metrics::Metrics;
use crate::serve::protocol::Protocol;
use crate::store::standby::Standby;
use crate::store::Store;
use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

pub(crate) struct Options {
    pub paths: Vec<PathBuf>,
    pub listen: String,
    pub watch: bool,
    pub max_body: usize,
    pub log_format: LogFormat,
    pub queue_size: usize,
    pub drain_timeout: Duration,
    /// Longest wait for a request's head.
    pub header_timeout: Duration,
    /// Longest wait for a request's body.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// A connection with no reads or writes for this long is closed.
    pub idle_timeout: Duration,
    /// Peers whose `X-Forwarded-For` (and `X-Forwarded-Proto`) are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `--admin ADDR`: the listener for the dashboard, `/metrics`, `/healthz` and `/readyz`.
    pub admin: Option<String>,
    /// `--admin-token NAME`: the secret the dashboard and `/metrics` ask for (required when
    /// `--admin` is not a loopback address).
    pub admin_token: Option<String>,
    /// `--secrets-dir DIR`: where `secret("NAME")` finds the file NAME (else `$CREDENTIALS_DIRECTORY`).
    pub secrets_dir: Option<PathBuf>,
    /// `--max-body-memory SIZE`: bytes all the bodies being read may hold together.
    pub max_body_memory: usize,
    /// `--keep-body`.
    pub keep_body: usize,
    /// `--keep-answers`.
    pub keep_answers: bool,
    /// `--allow-run`: workflows may run programs.
    pub allow_run: bool,
    /// `--workers N`: async executions run at once.
    pub workers: usize,
    /// `--store`: where accepted runs and history are kept.
    pub store: StoreChoice,
    /// `--retain`: how long history is kept.
    pub retain: Duration,
    /// `--lease`: how long a PostgreSQL store's instance holds its runs unrenewed.
    pub lease: Duration,
    /// `--park-after`: a kept run's `http` retry that would wait this long parks the run.
    pub park_after: Duration,
    /// `--public-url`: where callers reach this server (callback URLs start with it).
    pub public_url: Option<String>,
    /// `--max-steps`, `--max-memory`: the bounds of each execution.
    pub budget: crate::request::eval::Budget,
}

/// `--store PATH|postgres://...|memory`.
#[derive(Clone, Debug)]
pub(crate) enum StoreChoice {
    /// Nothing is kept: an accepted run lives in memory until it has run.
    Memory,
    Sqlite(PathBuf),
    /// A PostgreSQL database several instances share (its URL).
    Postgres(String),
}

impl StoreChoice {
    pub(crate) fn parse(s: &str) -> Result<StoreChoice, String> {
        match s {
            "memory" => Ok(StoreChoice::Memory),
            "" => Err("give a path, or `memory`".into()),
            _ if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                Ok(StoreChoice::Postgres(s.to_string()))
            }
            path => Ok(StoreChoice::Sqlite(PathBuf::from(path))),
        }
    }
}

/// Largest request head, in bytes (more: `431`).
const MAX_HEAD: usize = 64 * 1024;
/// Quiet time after a file change before reloading.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Why a set of workflows cannot be served.
pub(crate) enum LoadError {
    /// A path could not be read (exit 2).
    Io(String),
    /// Check errors, rendered (exit 1), and as JSON (one object per diagnostic).
    Invalid(String, Vec<serde_json::Value>),
    /// Unset `env()` variables (one line each naming the variable and the file), or nothing to
    /// serve (exit 1).
    Unset(String),
}

/// Loads, checks and prepares every workflow under `paths`; a workflow that runs programs is
/// refused unless `allow_run` (`--allow-run`).
pub(crate) fn load_router(
    paths: &[PathBuf],
    secrets_dir: Option<&Path>,
    allow_run: bool,
) -> Result<Router, LoadError> {
    let router = prepare_router(paths, secrets_dir)?;
    if !allow_run {
        let running: Vec<String> = router
            .workflows()
            .filter(|s| s.plan.runs)
            .map(|s| format!("error: not serving: workflow `{}` ({}) runs programs; serve it with `wf serve --allow-run`", s.name, s.wf.file.location(s.wf.span.start)))
            .collect();
        if !running.is_empty() {
            return Err(LoadError::Unset(running.join("\n")));
        }
    }
    Ok(router)
}

fn prepare_router(paths: &[PathBuf], secrets_dir: Option<&Path>) -> Result<Router, LoadError> {
    let loaded = crate::lang::loader::load(paths).map_err(LoadError::Io)?;
    if loaded.has_errors() {
        return Err(invalid_set(&loaded.diagnostics));
    }
    if loaded.program.workflows.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(LoadError::Unset(format!("error: not serving: no workflow in {}", shown.join(", "))));
    }
    let dir = secrets_dir.map(Path::to_path_buf).or_else(crate::request::served::credentials_directory);
    let env = |name: &str| std::env::var(name).ok();
    crate::request::served::build_in(loaded.program, &env, dir.as_deref()).map_err(|errors| {
        let (unset, invalid): (Vec<_>, Vec<_>) =
            errors.into_iter().partition(|e| matches!(e, BuildError::MissingEnv { .. }));
        if invalid.is_empty() {
            let lines: Vec<String> = unset.iter().map(|e| format!("error: not serving: {e}")).collect();
            return LoadError::Unset(lines.join("\n"));
        }
        let diags: Vec<_> = invalid
            .into_iter()
            .filter_map(|e| if let BuildError::Invalid(d) = e { Some(*d) } else { None })
            .collect();
        invalid_set(&diags)
    })
}

/// Gives the memory freed so far back to the system. Loading and checking the workflows uses
/// far more than serving them keeps (each file's source, syntax tree and checks: about 17 KiB a
/// workflow), and the allocator would otherwise hold on to those pages for good: with 10,000
/// workflows, 199 MiB of a server's memory at rest.
pub(crate) fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free pages of the allocator's heaps to the system; it
    // takes the allocator's own locks and touches no memory in use.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Check errors as a load's error: rendered for people, and as JSON.
fn invalid_set(diags: &[crate::lang::diagnostic::Diagnostic]) -> LoadError {
    let json = diags.iter().map(crate::lang::diagnostic::Diagnostic::to_json).collect();
    LoadError::Invalid(crate::lang::diagnostic::render_human(diags, false), json)
}

pub(crate) fn serve(opts: Options) -> ExitCode {
    let (_log_guard, dropped_lines) = logging::init(opts.log_format);
    let router = match load_router(&opts.paths, opts.secrets_dir.as_deref(), opts.allow_run) {
        Ok(r) => r,
        Err(LoadError::Io(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        Err(LoadError::Invalid(e, _)) => {
            eprintln!("{}", e.trim_end());
            eprintln!("error: not serving: the workflows above must be fixed first");
            return ExitCode::from(1);
        }
        Err(LoadError::Unset(e)) => {
            eprintln!("{}", e.trim_end());
            return ExitCode::from(1);
        }
    };
    give_back_memory();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(8 << 20).build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.spawn(logging::report_dropped(dropped_lines));
    runtime.block_on(run(opts, router))
}

/// What the requests of one connection share: one reference counted per request.
struct Conn {
    ctx: Arc<Ctx>,
    activity: Arc<crate::serve::idle_timeout::Activity>,
    peer: std::net::IpAddr,
}

struct Ctx {
    router: ArcSwap<Router>,
    limits: Limits,
    queue: Queue,
    ids: handle::ExecIds,
    /// Some workflow reads the caller's address: requests carry the peer's (see `Router::needs_peer`).
    needs_peer: std::sync::atomic::AtomicBool,
    /// With `--admin`: what `/metrics` reports.
    metrics: Option<Arc<Metrics>>,
    /// With `--admin`: the dashboard's live rows.
    live: Option<crate::dashboard::live::Live>,
}

impl Ctx {
    /// Answers one request of connection `conn` (which counts it). An `async` block,
    /// not an `async fn`: an `async fn` would keep the request twice in its future (its argument
    /// and its local), which hyper moves into place for every request.
    #[allow(clippy::manual_async_fn)]
    fn serve(
        conn: Arc<Conn>,
        mut req: hyper::Request<Incoming>,
    ) -> impl std::future::Future<Output = Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, Infallible>>
    {
        async move {
            let this = &*conn.ctx;
            // wf's own paths: a callback's call (boxed: it is rare, and this future stays small).
            if req.uri().path().starts_with(crate::exec::callbacks::PATH) {
                let callbacks = this.queue.effects.callbacks();
                let answering =
                    crate::serve::callback::answer(&this.queue.store, &callbacks, &this.limits, &mut req);
                let response = Box::pin(answering).await;
                if let Some(m) = &this.metrics {
                    m.callback_call(response.status().as_u16());
                }
                conn.activity.end();
                return Ok(response);
            }
            let router = this.router.load();
            let started = this.metrics.as_ref().map(|_| std::time::Instant::now());
            let mut cors = None;
            let mut handled =
                handle::answer(&router, &this.limits, &this.queue, this.ids.next(), &mut req, &mut cors)
                    .await;
            handle::with_cors(&mut handled, cors);
            if let Some(r) = &handled.record {
                logging::record(r);
            }
            if let (Some(m), Some(t), Some(workflow)) = (&this.metrics, started, handled.workflow()) {
                m.request(workflow, handled.response.status().as_u16(), t.elapsed(), handled.record.as_ref());
            }
            if let Some(r) = handled.record {
                if &*r.workflow != "-" {
                    let ended = runs::ended(r);
                    if let Some(live) = &this.live {
                        live.ended(&ended);
                    }
                    this.queue.store.ended(ended);
                }
            }
            conn.activity.end();
            Ok(handled.response)
        }
    }
}

/// The admin listener and who may use it.
type AdminListener = (tokio::net::TcpListener, crate::dashboard::Access);

/// The listeners `wf serve` answers on: the main one, its bound address, and `--admin`'s (with
/// its token: required off loopback).
async fn bind(
    opts: &Options,
) -> Result<(tokio::net::TcpListener, SocketAddr, Option<AdminListener>), String> {
    let addr: SocketAddr = match opts.listen.parse() {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(&opts.listen)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("cannot resolve listen address `{}`", opts.listen))?,
    };
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_or(addr, |a| a);
    let admin = match &opts.admin {
        Some(a) => {
            let listener = tokio::net::TcpListener::bind(a.as_str())
                .await
                .map_err(|e| format!("cannot listen on {a} (--admin): {e}"))?;
            let loopback = listener.local_addr().is_ok_and(|l| l.ip().is_loopback());
            let token = match &opts.admin_token {
                Some(name) => {
                    let dir = opts.secrets_dir.clone().or_else(crate::request::served::credentials_directory);
                    let env = |n: &str| std::env::var(n).ok();
                    match crate::request::served::read_secret(name, &env, dir.as_deref()) {
                        Some(t) if !t.is_empty() => Some(t),
                        _ => return Err(format!("--admin-token {name}: no secret {name} (set the variable {name}, or put a file {name} in --secrets-dir)")),
                    }
                }
                None if !loopback => {
                    return Err(format!("--admin {a} is not a loopback address: give --admin-token NAME, the name of a secret the dashboard and /metrics then ask for"))
                }
                None => None,
            };
            Some((listener, crate::dashboard::Access::new(token)))
        }
        None => None,
    };
    Ok((listener, bound, admin))
}

/// The store `--store` names, opened (a SQLite file that cannot be opened yet is stood in for
/// until it can), or kept in the process for `--store memory`.
async fn open_store(opts: &Options) -> Result<(Option<Arc<Standby>>, Arc<dyn Store>), String> {
    Ok(match &opts.store {
        StoreChoice::Memory => (None, Arc::new(crate::store::memory::Memory::default())),
        StoreChoice::Sqlite(path) => {
            let s = Arc::new(Standby::open(path)?);
            (Some(s.clone()), s)
        }
        StoreChoice::Postgres(url) => {
            (None, Arc::new(crate::store::postgres::Postgres::connect(url, opts.lease).await?))
        }
    })
}

async fn run(opts: Options, router: Router) -> ExitCode {
    // A file-size limit reached (`ulimit -f`) makes a write fail with EFBIG, as a full disk fails
    // with ENOSPC; its signal must not kill the process (and every run it holds in memory).
    let _file_too_big = signal(SignalKind::from_raw(nix::sys::signal::Signal::SIGXFSZ as i32)).ok();
    let (listener, bound, admin) = match bind(&opts).await {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (standby, store) = match open_store(&opts).await {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Signal handlers go in before the address is announced: a SIGHUP or SIGTERM sent the moment
    // wf says it listens must reload or drain, not meet the default action and kill the process.
    let stop = [signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok()];
    let hangup = signal(SignalKind::hangup()).ok();
    println!("listening on http://{bound}");
    let _ = std::io::stdout().flush();
    tracing::info!(target: "wf::server", workflows = router.len(), "listening on http://{bound}");
    if opts.max_body > opts.max_body_memory {
        tracing::warn!(target: "wf::server", "--max-body ({} bytes) is larger than --max-body-memory ({} bytes): such bodies always get 503", opts.max_body, opts.max_body_memory);
    }

    let metrics = admin.as_ref().map(|_| Arc::new(Metrics::new()));
    if let Some(m) = &metrics {
        m.set_workflows(router.len());
    }
    let live = admin.as_ref().map(|_| crate::dashboard::live::Live::default());
    let shown: worker::Watch = live.clone().map(|l| Arc::new(move |e: &crate::store::Ended| l.ended(e)) as _);
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    let needs_peer = std::sync::atomic::AtomicBool::new(router.needs_peer());
    let has_effects = router.workflows().any(|s| s.plan.effects);
    let effects = match Effects::new(
        opts.allow_run,
        opts.park_after,
        has_effects,
        metrics.clone().map(|m| m as Arc<dyn crate::effect::Observer>),
        opts.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_string(),
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let callbacks = effects.callbacks();
    let wake: worker::Wake = Arc::new(move || callbacks.called.notify_one());
    let (tx, rx, workers) = start_workers(&opts, metrics.clone(), shown, wake, store.clone());
    let ctx = Arc::new(Ctx {
        needs_peer,
        metrics: metrics.clone(),
        live: live.clone(),
        router: ArcSwap::from_pointee(router),
        limits: Limits {
            max_body: opts.max_body,
            body_timeout: opts.body_timeout,
            trusted_proxies: Arc::from(opts.trusted_proxies.as_slice()),
            body_memory: Arc::new(crate::request::body_memory::BodyMemory::new(opts.max_body_memory)),
            budget: opts.budget,
            keep_body: opts.keep_body,
            keep_answers: opts.keep_answers,
            waiting_bodies: Arc::new(crate::request::body_memory::BodyMemory::new(
                crate::request::received::WAITING_BODIES,
            )),
        },
        queue: Queue {
            tx: tx.clone(),
            effects: effects.clone(),
            store: store.clone(),
            keep_body: opts.keep_body,
        },
        ids: handle::ExecIds::new(u64::from_le_bytes(seed) & 0xffff_ffff_0000_0000),
    });

    let served_now = ctx.clone();
    let taker = resume::Taker {
        store: store.clone(),
        effects: effects.clone(),
        tx: tx.clone(),
        secrets_dir: opts.secrets_dir.clone(),
        budget: opts.budget,
        current: Arc::new(move || served_now.router.load_full()),
    };
    let why = standby.as_ref().map(|s| s.why()).unwrap_or_default();
    if !why.is_empty() {
        tracing::error!(target: "wf::store", "{why}; async callers get 503 until it opens (tried again every 2 s)");
    } else {
        resume::resume(&taker).await;
    }
    tokio::spawn(resume::prune_every_minute(store.clone(), opts.retain));
    let retries = tokio::spawn(resume::take_retries(taker, standby.clone()));
    // The queue's only sender is now the context's: once it is dropped, the workers drain and stop.
    drop(tx);

    let (reload_tx, reload_rx) = mpsc::channel::<()>(1);
    let _watcher = if opts.watch { watch(&opts.paths, reload_tx.clone()) } else { None };
    let hup = tokio::spawn(forward_sighup(hangup, reload_tx));
    let reloader = tokio::spawn(reloader(
        ctx.clone(),
        opts.paths.clone(),
        opts.secrets_dir.clone(),
        opts.allow_run,
        reload_rx,
    ));

    // Each connection is served by hyper's HTTP/1 or HTTP/2 connection, chosen from its first
    // bytes (`protocol`), so HTTP/1 requests pay nothing for HTTP/2 being offered.
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        // The head's deadline is kept by the connection's own watchdog (`Idle`), not by a timer
        // hyper would make for every request.
        .header_read_timeout(None)
        // At most 100 header lines (more: `431`) is hyper's own default; setting it, even to 100,
        // would make hyper fill a header table on every request instead of using its inline one.
        .max_buf_size(MAX_HEAD);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new()).max_header_list_size(MAX_HEAD as u32);
    let builders = Arc::new((http1, http2));
    let drain = Arc::new(Drain::default());
    let shutdown = shutdown_signal(stop);
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.max_connections));
    let admin_task = match (admin, &metrics, live) {
        (Some((listener, access)), Some(m), Some(live)) => {
            let gauges = Gauges {
                queue: ctx.queue.tx.clone(),
                slots: slots.clone(),
                max_connections: opts.max_connections,
                store: ctx.queue.store.clone(),
            };
            let served_now = ctx.clone();
            let dashboard = crate::dashboard::Dashboard {
                store: ctx.queue.store.clone(),
                current: Arc::new(move || served_now.router.load_full()),
                live,
                access,
            };
            Some(tokio::spawn(serve_admin(listener, m.clone(), gauges, Arc::new(dashboard))))
        }
        _ => None,
    };
    let serve = |stream: tokio::net::TcpStream, slot: tokio::sync::OwnedSemaphorePermit| {
        let _ = stream.set_nodelay(true);
        // An IPv4 caller of a `[::]` listener is seen as `::ffff:a.b.c.d`: `allow ip` and
        // `--trusted-proxy` are written with its IPv4 address.
        let peer = stream.peer_addr().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip().to_canonical());
        let activity = Arc::new(crate::serve::idle_timeout::Activity::default());
        let conn = Arc::new(Conn { ctx: ctx.clone(), activity: activity.clone(), peer });
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            if conn.ctx.needs_peer.load(Ordering::Relaxed) {
                req.extensions_mut().insert(crate::request::caller::Peer(conn.peer));
            }
            conn.activity.start();
            Ctx::serve(conn.clone(), req)
        });
        let (idle, header) = (opts.idle_timeout, opts.header_timeout);
        let builders = builders.clone();
        let entry = drain.enter();
        tokio::spawn(async move {
            let protocol = crate::serve::protocol::detect(&stream, idle, header).await;
            let io = crate::serve::idle_timeout::Idle::with_activity(stream, idle, activity);
            let _ = match protocol {
                Some(Protocol::Http1) => {
                    let io = TokioIo::new(io.with_header_timeout(header));
                    entry.watch(builders.0.serve_connection(io, service)).await
                }
                Some(Protocol::Http2) => {
                    entry.watch(builders.1.serve_connection(TokioIo::new(io), service)).await
                }
                None => Ok(()),
            };
            drop(slot);
        });
    };
    let mut warned: Option<std::time::Instant> = None;
    loop {
        // At the cap, say so, at most every 10 s (a flood must not become a flood of log lines).
        if slots.available_permits() == 0 && warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(target: "wf::server", "{} connections open: new ones wait until one closes", opts.max_connections);
            warned = Some(std::time::Instant::now());
        }
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => serve(stream, slot),
                Err(e) => {
                    tracing::warn!(target: "wf::server", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }

    tracing::info!(target: "wf::server", "shutting down: finishing requests in flight and queued async executions");
    if let Some(m) = &metrics {
        m.not_ready();
    }
    // Connections the kernel has already completed are callers too: take them before closing
    // (a zero timeout still polls `accept` once), so they get answers rather than resets.
    while let Ok(slot) = slots.clone().try_acquire_owned() {
        match tokio::time::timeout(Duration::ZERO, listener.accept()).await {
            Ok(Ok((stream, _))) => serve(stream, slot),
            _ => break,
        }
    }
    drop(listener);
    if let Some(t) = admin_task {
        t.abort();
    }
    hup.abort();
    reloader.abort();
    let _ = reloader.await;
    drain.start();
    if tokio::time::timeout(opts.drain_timeout, drain.done()).await.is_err() {
        tracing::warn!(target: "wf::server", "some connections were still open after {:?}", opts.drain_timeout);
    }
    // The retry poller holds a sender of the queue: stop it so the workers can drain.
    retries.abort();
    let _ = retries.await;
    drop(ctx);
    stop_workers(workers, rx, store, opts.drain_timeout).await
}

/// What `/metrics` reads at scrape time: the async queue and the connection slots.
struct Gauges {
    queue: mpsc::Sender<Job>,
    slots: Arc<tokio::sync::Semaphore>,
    max_connections: usize,
    store: Arc<dyn Store>,
}

/// Connections the admin listener serves at once (the dashboard's live pages hold theirs).
const ADMIN_CONNECTIONS: usize = crate::dashboard::live::WATCHERS + 64;

/// The admin listener over HTTP/1: `/metrics`, `/healthz`, `/readyz` and the dashboard.
async fn serve_admin(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    gauges: Gauges,
    dashboard: Arc<crate::dashboard::Dashboard>,
) {
    use http_body_util::BodyExt as _;
    let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(target: "wf::server", "admin listening on http://{bound}");
    tracing::info!(target: "wf::server", "the dashboard is at http://{bound}/");
    let gauges = Arc::new(gauges);
    let slots = Arc::new(tokio::sync::Semaphore::new(ADMIN_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (metrics, gauges, dashboard) = (metrics.clone(), gauges.clone(), dashboard.clone());
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let (metrics, gauges, dashboard) = (metrics.clone(), gauges.clone(), dashboard.clone());
            async move {
                let path = req.uri().path();
                let open = path == "/healthz" || path == "/readyz";
                if !(open || path == "/metrics") {
                    return Ok::<_, Infallible>(dashboard.answer(req).await);
                }
                if path == "/metrics" && !dashboard.access.allows(req.headers()) {
                    return Ok(dashboard.access.refused(&http::Method::POST, req.uri()));
                }
                // The runs waiting are counted in the store, for `/metrics` only.
                let waiting = if path == "/metrics" {
                    gauges.store.waiting().await.unwrap_or_default()
                } else {
                    Vec::new()
                };
                let now = crate::serve::metrics::Readings {
                    queue_depth: gauges.queue.max_capacity().saturating_sub(gauges.queue.capacity()),
                    open_connections: gauges.max_connections.saturating_sub(gauges.slots.available_permits()),
                    dropped_writes: gauges.store.dropped(),
                    store_trouble: gauges.store.trouble(),
                    waiting,
                };
                let (status, content_type, body) = metrics.answer(path, now);
                let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)).boxed());
                *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
                r.headers_mut()
                    .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
                Ok(r)
            }
        });
        tokio::spawn(async move {
            // A request's head within 10 s; a live page's stream lasts as long as the page.
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            drop(slot);
        });
    }
}

/// The async queue and `--workers` workers taking runs from it; every run that ended is logged
/// and counted.
#[allow(clippy::type_complexity)]
fn start_workers(
    opts: &Options,
    metrics: Option<Arc<Metrics>>,
    watch: worker::Watch,
    wake: worker::Wake,
    store: Arc<dyn Store>,
) -> (mpsc::Sender<Job>, Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>, tokio::task::JoinSet<()>) {
    let (tx, rx) = mpsc::channel::<Job>(opts.queue_size.max(1));
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let report: worker::Report = Arc::new(move |record: &handle::Record| {
        logging::record(record);
        if let Some(m) = &metrics {
            m.execution(record);
        }
    });
    let mut workers = tokio::task::JoinSet::new();
    let waiting = Arc::new(crate::exec::places::Waiting::default());
    let lines = Arc::new(crate::exec::lines::Lines::default());
    for _ in 0..opts.workers.max(1) {
        workers.spawn(worker::worker(
            rx.clone(),
            report.clone(),
            watch.clone(),
            store.clone(),
            waiting.clone(),
            lines.clone(),
            wake.clone(),
        ));
    }
    (tx, rx, workers)
}

/// Lets the workers finish the queue (at most `drain_timeout`), keeps the store's last writes and
/// lets go of its runs not ended; the exit code says whether accepted runs were lost.
async fn stop_workers(
    mut workers: tokio::task::JoinSet<()>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    store: Arc<dyn Store>,
    drain_timeout: Duration,
) -> ExitCode {
    let all_done = async { while workers.join_next().await.is_some() {} };
    let drained = tokio::time::timeout(drain_timeout, all_done).await;
    // History written off the request path is committed before the process ends.
    if let Err(why) = store.flush().await {
        tracing::error!(target: "wf::store", "the last writes were not kept: {why}");
    }
    // Runs not ended are let go for another instance sharing the store to take at once.
    if let Err(why) = store.leave().await {
        tracing::warn!(target: "wf::store", "cannot let go of the runs not ended: {why}");
    }
    match drained {
        Ok(_) => {
            tracing::info!(target: "wf::server", "stopped");
            ExitCode::SUCCESS
        }
        Err(_) if store.durable() => {
            // Kept runs are not lost: the next `wf serve` on this store resumes them.
            workers.abort_all();
            let left = rx.lock().await.len();
            tracing::warn!(
                target: "wf::server",
                left,
                "stopped with accepted runs not ended after --drain-timeout {:?}; they are kept and resume at the next start",
                drain_timeout
            );
            ExitCode::SUCCESS
        }
        Err(_) => {
            // Accepted runs that will not run: say how many and which, and exit non-zero.
            workers.abort_all();
            let mut queued = rx.lock().await;
            let mut ids = Vec::new();
            while let Ok(job) = queued.try_recv() {
                ids.push(job.id.to_string());
            }
            let shown = ids.iter().take(100).cloned().collect::<Vec<_>>().join(" ");
            let more = if ids.len() > 100 { format!(" and {} more", ids.len() - 100) } else { String::new() };
            tracing::error!(
                target: "wf::server",
                dropped = ids.len(),
                "{} accepted async executions were not run within --drain-timeout {:?}: {shown}{more}",
                ids.len(),
                drain_timeout
            );
            ExitCode::from(1)
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal([term, int]: [Option<Signal>; 2]) {
    async fn on(s: Option<Signal>) {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    tokio::select! {
        _ = on(term) => {}
        _ = on(int) => {}
    }
}

async fn forward_sighup(hangup: Option<Signal>, tx: mpsc::Sender<()>) {
    let Some(mut hup) = hangup else {
        return;
    };
    while hup.recv().await.is_some() {
        let _ = tx.try_send(());
    }
}

async fn reloader(
    ctx: Arc<Ctx>,
    paths: Vec<PathBuf>,
    secrets_dir: Option<PathBuf>,
    allow_run: bool,
    mut rx: mpsc::Receiver<()>,
) {
    while rx.recv().await.is_some() {
        tokio::time::sleep(DEBOUNCE).await;
        while rx.try_recv().is_ok() {}
        let p = paths.clone();
        let dir = secrets_dir.clone();
        let loaded = move || {
            let router = load_router(&p, dir.as_deref(), allow_run);
            give_back_memory();
            router
        };
        match tokio::task::spawn_blocking(loaded).await {
            Ok(Ok(router)) => {
                let n = router.len();
                ctx.needs_peer.store(router.needs_peer(), Ordering::Relaxed);
                if let Some(m) = &ctx.metrics {
                    m.reload(true);
                    m.set_workflows(router.len());
                }
                ctx.router.store(Arc::new(router));
                tracing::info!(target: "wf::server", workflows = n, "reloaded");
            }
            Ok(Err(failed)) => {
                if let Some(m) = &ctx.metrics {
                    m.reload(false);
                }
                const FAILED: &str = "reload failed; still serving the previous workflows";
                let why = match failed {
                    LoadError::Invalid(why, json) => {
                        // In the JSON log format, one object holds the diagnostics as an array.
                        if logging::json_object("ERROR", "wf::server", FAILED, "diagnostics", json.into()) {
                            continue;
                        }
                        why
                    }
                    LoadError::Io(why) | LoadError::Unset(why) => why,
                };
                // One log line per line of the diagnostics: readable as they are in `wf check`,
                // and no line of them can pass for a log line of its own.
                tracing::error!(target: "wf::server", "{FAILED}:");
                for line in why.trim_end().lines() {
                    tracing::error!(target: "wf::server", "| {line}");
                }
            }
            Err(e) => tracing::error!(target: "wf::server", "reload failed: {e}"),
        }
    }
}

/// Watches the served paths; any change to a `.wf` file (or a directory) asks for a reload.
fn watch(paths: &[PathBuf], tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| p.extension().is_some_and(|e| e == "wf") || p.is_dir()) {
            let _ = tx.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(target: "wf::server", "cannot watch files: {e}");
            return None;
        }
    };
    for p in paths {
        // Editors save by writing a new file and renaming it over the old one, which ends a watch
        // on the file itself: watch a file's directory instead.
        let (target, mode) = match p.parent() {
            Some(dir) if p.is_file() => {
                (if dir.as_os_str().is_empty() { Path::new(".") } else { dir }, RecursiveMode::NonRecursive)
            }
            _ => (p.as_path(), RecursiveMode::Recursive),
        };
        if let Err(e) = watcher.watch(target, mode) {
            tracing::error!(target: "wf::server", "cannot watch {}: {e}", target.display());
        }
    }
    Some(watcher)
}

/// Parses a size such as `1048576`, `512KiB`, `1MiB`, `10kb` or `2M` (binary multiples).
pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("`{s}` is not a size (try 1MiB or 65536)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("`{s}` has an unknown unit (use B, KiB, MiB or GiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_parse() {
        assert_eq!(super::parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(super::parse_size("512kb"), Ok(512 << 10));
        assert_eq!(super::parse_size("100"), Ok(100));
        assert!(super::parse_size("ten").is_err());
        assert!(super::parse_size("1XB").is_err());
    }
}
