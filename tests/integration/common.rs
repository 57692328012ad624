//! Helpers: run the `wf` binary, write workflows into temp dirs, start `wf serve`, speak HTTP/1.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The secrets the examples read, as `--env` arguments (the values of `examples/secrets`, which
/// the README's serve command reads).
pub const EXAMPLE_ENV: [&str; 16] = [
    "--env",
    "PSP_PASSWORD=secret",
    "--env",
    "GITHUB_WEBHOOK_SECRET=gh-secret",
    "--env",
    "STRIPE_WEBHOOK_SECRET=whsec_test",
    "--env",
    "SLACK_SIGNING_SECRET=slack-secret",
    "--env",
    "TWILIO_AUTH_TOKEN=twilio-token",
    "--env",
    "STANDARD_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "--env",
    "DEPLOY_ANNOUNCE_SECRET=whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "--env",
    "SHOPIFY_WEBHOOK_SECRET=shopify-secret",
];

/// The `wf` binary. Every `wf serve` the tests start keeps nothing (`WF_STORE=memory`) unless
/// the test gives `--store`: servers run side by side and must not share the default store.
pub fn wf_bin() -> &'static str {
    static MEMORY_STORE: std::sync::Once = std::sync::Once::new();
    MEMORY_STORE.call_once(|| std::env::set_var("WF_STORE", "memory"));
    env!("CARGO_BIN_EXE_wf")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `wf ARGS` in the repository root.
pub fn wf(args: &[&str]) -> Output {
    Command::new(wf_bin()).args(args).current_dir(repo()).env("NO_COLOR", "1").output().expect("wf runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A temporary directory holding `.wf` files.
pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new(files: &[(&str, &str)]) -> Dir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in files {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(path, body).expect("write");
        }
        Dir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, body: &str) {
        // Write then rename, so a watcher never sees a half-written file.
        let tmp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body).expect("write");
        std::fs::rename(&tmp, self.dir.path().join(name)).expect("rename");
    }
}

/// A running `wf serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
    pub dir: Dir,
}

impl Server {
    pub fn start(files: &[(&str, &str)], args: &[&str]) -> Server {
        Server::start_env(files, args, &[])
    }

    pub fn start_env(files: &[(&str, &str)], args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = Dir::new(files);
        let mut cmd = Command::new(wf_bin());
        cmd.arg("serve").arg(dir.path()).args(["--listen", "127.0.0.1:0"]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::spawn(cmd, dir)
    }

    /// `wf serve DIR --store DIR/state.db ARGS`, run in DIR with `env` set: a server whose
    /// store the test reads (`wf runs --store DIR/state.db`).
    pub fn start_with_store(dir: Dir, args: &[&str], env: &[(&str, &str)]) -> Server {
        let root = dir.path().to_path_buf();
        let store = root.join("state.db");
        let mut cmd = Command::new(wf_bin());
        cmd.arg("serve")
            .arg(&root)
            .args(["--listen", "127.0.0.1:0", "--store", store.to_str().expect("utf8")])
            .args(args)
            .current_dir(&root);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::spawn(cmd, dir)
    }

    /// Starts a prepared `wf serve` command and waits for its address.
    pub fn spawn(mut cmd: Command, dir: Dir) -> Server {
        cmd.env("NO_COLOR", "1").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn wf serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let mut first = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut first).expect("first line");
        let addr = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {first:?}; log: {}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                )
            })
            .parse()
            .expect("address");
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
        });
        Server { child, addr, log, dir }
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (at most 10 s).
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "log never showed {needle:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        request(self.addr, "POST", path, headers, body.as_bytes())
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// Waits for the process to exit (at most 20 s) and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "server did not exit; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the whole answer.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let mut has_length = false;
    for (k, v) in headers {
        has_length |= k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    raw_request(addr, &raw)
}

/// `POST`s a JSON body.
pub fn post_json(addr: SocketAddr, path: &str, body: &[u8]) -> Resp {
    request(addr, "POST", path, &[("Content-Type", "application/json")], body)
}

/// Sends raw bytes and parses the answer.
pub fn raw_request(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out)
}

pub fn parse_response(out: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    Resp { status, headers, body: body.to_string() }
}

pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// Whether a checker the tests need is installed. When it is not, the test is skipped with one
/// line saying how to install it — unless `WF_REQUIRE_ALL` is set (as `.ci/run` does), which turns
/// the skip into a failure.
pub fn have(available: bool, what: &str, install: &str) -> bool {
    if available {
        return true;
    }
    if std::env::var_os("WF_REQUIRE_ALL").is_some() {
        panic!("{what} is required (WF_REQUIRE_ALL is set): {install}");
    }
    crate::postgres_cluster::skip_line(&format!("skipped: {what} is not installed ({install})"));
    false
}

/// Whether `python3 -c "import MODULE"` works.
pub fn python_module(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs an independent checker with `input` on its standard input; its output and status.
pub fn pipe(program: &str, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// A request an [`Upstream`] received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What an [`Upstream`] answers: after `delay`, this status, headers and body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply { status, headers: Vec::new(), body: body.as_bytes().to_vec(), delay: Duration::ZERO }
    }

    /// The same reply, sent after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

type Script = dyn Fn(usize, &Received) -> Reply + Send + Sync;

/// A real HTTP/1.1 server on loopback that records every request and answers each as `script`
/// says (given the request's number, from 0). One request per connection.
pub struct Upstream {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Upstream {
    pub fn start(script: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static) -> Upstream {
        Upstream::start_at("127.0.0.1:0", script)
    }

    /// The same on a chosen address (to come up where a workflow already calls).
    pub fn start_at(
        addr: &str,
        script: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static,
    ) -> Upstream {
        let listener = std::net::TcpListener::bind(addr).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let script: Arc<Script> = Arc::new(script);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (log, script) = (log.clone(), script.clone());
                std::thread::spawn(move || serve_one(stream, &log, &*script));
            }
        });
        Upstream { addr, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve_one(mut stream: TcpStream, log: &Mutex<Vec<Received>>, script: &Script) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = reader.read_exact(&mut body);
    let req = Received { method, path, headers, body };
    let n = {
        let mut l = log.lock().expect("log");
        l.push(req.clone());
        l.len() - 1
    };
    let reply = script(n, &req);
    std::thread::sleep(reply.delay);
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply.body);
    let _ = stream.flush();
}

/// `wf runs --store STORE --follow --format json`, its lines read on a thread of their own, so
/// that a missing line fails a test instead of hanging it. Kill the child when done.
pub fn follow(store: &str) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(wf_bin())
        .args(["runs", "--store", store, "--follow", "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("wf runs --follow");
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

/// `n` POSTs of a JSON `body` to `path` at once, spread over `addrs` in turn: their statuses.
pub fn post_at_once(addrs: &[SocketAddr], path: &str, n: usize, body: &'static [u8]) -> Vec<u16> {
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let (addr, path) = (addrs[i % addrs.len()], path.to_string());
            std::thread::spawn(move || {
                request(addr, "POST", &path, &[("Content-Type", "application/json")], body).status
            })
        })
        .collect();
    calls.into_iter().map(|c| c.join().expect("call")).collect()
}

/// The address of a server's admin listener (`--admin 127.0.0.1:0`), from its log.
pub fn admin_addr(s: &Server) -> SocketAddr {
    let log = s.wait_log("admin listening on http://");
    let line = log.lines().find(|l| l.contains("admin listening on http://")).expect("line");
    line.rsplit("http://").next().expect("addr").trim().parse().expect("address")
}

/// The calls an [`Upstream`] noted: each one's tag and when it came.
pub type Noted = Arc<Mutex<Vec<(String, Instant)>>>;

/// An upstream that notes when each call came, tagged by `tag` of its JSON body, and answers
/// `200` after `delay`: enough to tell the order of calls and whether two overlapped.
pub fn noting_upstream(tag: fn(&serde_json::Value) -> String, delay: Duration) -> (Upstream, Noted) {
    let seen: Noted = Arc::new(Mutex::new(Vec::new()));
    let noted = seen.clone();
    let up = Upstream::start(move |_, r| {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        if let Ok(mut n) = noted.lock() {
            n.push((tag(&body), Instant::now()));
        }
        Reply::new(200, "ok").after(delay)
    });
    (up, seen)
}

/// Asserts that the calls of each tag prefix in `keys` came in order (`K0`, `K1`, ...; a call made
/// again after a crash may repeat one) and one at a time: each at least `apart` after the one
/// before it.
pub fn one_at_a_time_in_order(calls: &[(String, Instant)], keys: &[&str], runs: usize, apart: Duration) {
    for key in keys {
        let mine: Vec<&(String, Instant)> = calls.iter().filter(|(t, _)| t.starts_with(key)).collect();
        let tags: Vec<&str> = mine.iter().map(|(t, _)| t.as_str()).collect();
        let mut firsts = tags.clone();
        firsts.dedup();
        let expected: Vec<String> = (0..runs).map(|n| format!("{key}{n}")).collect();
        assert_eq!(firsts, expected, "in the order accepted: {tags:?}");
        for w in mine.windows(2) {
            if w[0].0 != w[1].0 {
                let gap = w[1].1.duration_since(w[0].1);
                assert!(gap >= apart, "{} came {gap:?} after {}: {tags:?}", w[1].0, w[0].0);
            }
        }
    }
}
