//! The dashboard of `wf serve --admin`: its answers to bad input and its guards, over real TCP;
//! and its pages in headless Chromium (`tests/browser/dashboard.py`, Selenium), which also
//! takes the screenshots (into `docs/src/screenshots/` with `WF_BLESS=1`, else `target/screenshots/`).

use crate::common::{
    have, python_module, raw_request, repo, request, wf, Dir, Reply, Resp, Server, Upstream,
};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const ORDERS: &str = r#"workflow orders {
  trigger webhook {
    path "/orders"
    mode sync
  }
  extract {
    name = body "name" default ""
    note = query "note"
  }
  log "order ${name}"
  respond 200 json { ok: true, name: name, note: note }
}
"#;

const KEYED: &str = r#"workflow keyed {
  trigger webhook {
    path "/keyed"
    mode sync
    dedupe delivery
  }
  extract {
    delivery = header "X-Delivery"
  }
  respond 200 json { ok: true }
}
"#;

fn relay(url: &str) -> String {
    format!(
        r#"workflow relay {{
  trigger webhook {{
    path "/relay"
    mode async
  }}
  extract {{
    order = body "order" default 0
  }}
  let r = http POST "{url}" {{ json {{ order: order }} }}
  if r.status >= 300 {{
    fail "the service answered ${{r.status}}"
  }}
}}
"#
    )
}

fn admin(server: &Server) -> SocketAddr {
    crate::common::admin_addr(server)
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[], b"")
}

/// Polls `path` until its page contains `needle` (at most 10 s).
fn page_with(addr: SocketAddr, path: &str, needle: &str) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(addr, path);
        if r.body.contains(needle) {
            return r;
        }
        assert!(Instant::now() < deadline, "{path} never showed {needle:?}: {} {}", r.status, r.body);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dashboard_answers_bad_input_with_its_status_and_escapes_what_was_stored() {
    let server = Server::start_with_store(
        Dir::new(&[("orders.wf", ORDERS), ("keyed.wf", KEYED)]),
        &["--admin", "127.0.0.1:0", "--keep-body", "2MiB", "--max-body", "4MiB"],
        &[],
    );
    let at = admin(&server);
    // Every page carries the policy: no inline script, nothing from elsewhere.
    let first = get(at, "/");
    assert_eq!(first.status, 200, "{}", first.body);
    let csp = first.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");

    // Stored hostile text, a body of 1 MiB, a header that is not UTF-8.
    let hostile = r#"<script>alert(1)</script>"><img src=x onerror=alert(2)>"#;
    let body = serde_json::json!({ "name": hostile }).to_string();
    let sent = server.post(
        "/orders?note=%3Cb%3E",
        &[("Content-Type", "application/json"), ("X-Note", hostile)],
        &body,
    );
    let hostile_id = sent.header("x-wf-execution").expect("id").to_string();
    let big = format!("{{\"name\":\"big\",\"pad\":\"{}\"}}", "a".repeat(1 << 20));
    let big_id = server.post("/orders", &[("Content-Type", "application/json")], &big);
    let big_id = big_id.header("x-wf-execution").expect("id").to_string();
    let mut raw = b"POST /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nX-Odd: \xff\xfe\r\nContent-Length: 2\r\n\r\n{}".to_vec();
    let odd = raw_request(server.addr, &raw);
    raw.clear();
    let odd_id = odd.header("x-wf-execution").expect("id").to_string();

    let page = page_with(at, &format!("/runs/{hostile_id}"), "responded");
    assert!(!page.body.contains("<script>alert") && !page.body.contains("<img src=x"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "shown as text");
    let list = page_with(at, "/", &hostile_id);
    assert!(!list.body.contains("<img src=x"), "{}", list.body);
    let big_page = page_with(at, &format!("/runs/{big_id}"), "responded");
    assert!(big_page.body.contains("1.0 MiB in all; the first 64.0 KiB shown"), "the size is said");
    assert!(big_page.body.len() < 200 * 1024, "a 1 MiB body is cut: {} bytes", big_page.body.len());
    let odd_page = page_with(at, &format!("/runs/{odd_id}"), "x-odd");
    assert_eq!(odd_page.status, 200);

    // 10,000 query parameters, page keys that are garbage or past the end, unknown runs.
    let many = "a=1&".repeat(10_000);
    let t = Instant::now();
    assert_eq!(get(at, &format!("/?{many}workflow=orders")).status, 200);
    assert!(t.elapsed() < Duration::from_secs(5));
    let garbage = get(at, "/?after=zzz");
    assert_eq!(garbage.status, 400);
    assert!(garbage.body.contains("first page"), "{}", garbage.body);
    let past = get(at, "/?after=1-0000000000000001");
    assert_eq!(past.status, 200);
    assert!(past.body.contains("No runs after this one."), "{}", past.body);
    assert_eq!(get(at, "/runs/0123456789abcdef").status, 404);
    assert_eq!(get(at, "/runs/%3Cscript%3E").status, 404);
    assert_eq!(get(at, "/workflows/nope").status, 404);
    // A search for an id, or for a delivery's dedupe key, goes to its run.
    let found = get(at, &format!("/?q={hostile_id}"));
    assert_eq!((found.status, found.header("location")), (303, Some(format!("/runs/{hostile_id}").as_str())));
    let delivered = server.post("/keyed", &[("X-Delivery", "dlv-7f3a")], "");
    let delivered = delivered.header("x-wf-execution").expect("id").to_string();
    let by_key = get(at, "/?q=dlv-7f3a");
    assert_eq!(
        (by_key.status, by_key.header("location")),
        (303, Some(format!("/runs/{delivered}").as_str()))
    );
    let nothing = get(at, "/?q=%3Cb%3Enothing");
    assert!(
        nothing.body.contains("No execution id or dedupe key &lt;b&gt;nothing is kept"),
        "{}",
        nothing.body
    );

    // Actions are POSTs with the CSRF token: without it, refused.
    let refused = request(at, "POST", &format!("/runs/{hostile_id}/replay"), &[], b"");
    assert_eq!(refused.status, 403, "{}", refused.body);
    let token =
        page.body.split("name=\"csrf\" value=\"").nth(1).and_then(|t| t.split('"').next()).expect("csrf");
    let replayed = request(
        at,
        "POST",
        &format!("/runs/{hostile_id}/replay"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("csrf={token}").as_bytes(),
    );
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert!(replayed.body.contains("= same"), "{}", replayed.body);
    let exported = get(at, &format!("/runs/{hostile_id}/export"));
    assert_eq!(exported.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(exported.body.starts_with("test \"execution"), "{}", exported.body);
    assert_eq!(get(at, "/healthz").status, 200);
}

#[test]
fn dashboard_off_loopback_needs_a_token_and_refuses_to_start_without_one() {
    let dir = Dir::new(&[("orders.wf", ORDERS)]);
    let out =
        wf(&["serve", dir.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::common::text(&out.stderr);
    assert!(err.contains("is not a loopback address: give --admin-token NAME"), "{err}");
    let out = wf(&[
        "serve",
        dir.path().to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "0.0.0.0:0",
        "--admin-token",
        "NO_SUCH_SECRET_HERE",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(crate::common::text(&out.stderr).contains("no secret NO_SUCH_SECRET_HERE"));

    let server = Server::start_env(
        &[("orders.wf", ORDERS)],
        &["--admin", "0.0.0.0:0", "--admin-token", "ADMIN_TOKEN"],
        &[("ADMIN_TOKEN", "tok-admin-PLANTED")],
    );
    let port = admin(&server).port();
    let at: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let page = get(at, "/runs/0123456789abcdef");
    assert_eq!((page.status, page.header("location")), (303, Some("/login?next=%2Fruns%2F0123456789abcdef")));
    assert_eq!(get(at, "/metrics").status, 401);
    assert_eq!(get(at, "/events").status, 401);
    assert_eq!((get(at, "/healthz").status, get(at, "/readyz").status), (200, 200));
    let bearer = [("Authorization", "Bearer tok-admin-PLANTED")];
    assert_eq!(request(at, "GET", "/metrics", &bearer, b"").status, 200);
    assert_eq!(request(at, "GET", "/", &bearer, b"").status, 200);
    assert_eq!(request(at, "GET", "/", &[("Authorization", "Bearer tok-admin-planted")], b"").status, 303);
    // The login form: the cookie it sets opens the pages, and is not the token.
    let login = get(at, "/login");
    let csrf =
        login.body.split("name=\"csrf\" value=\"").nth(1).and_then(|t| t.split('"').next()).expect("csrf");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let wrong = request(at, "POST", "/login", &form, format!("csrf={csrf}&token=nope&next=%2F").as_bytes());
    assert_eq!(wrong.status, 401);
    let right = request(
        at,
        "POST",
        "/login",
        &form,
        format!("csrf={csrf}&token=tok-admin-PLANTED&next=%2Fworkflows").as_bytes(),
    );
    assert_eq!((right.status, right.header("location")), (303, Some("/workflows")));
    let cookie = right.header("set-cookie").expect("a cookie").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("tok-admin-PLANTED"));
    let pair = cookie.split(';').next().expect("pair");
    assert_eq!(request(at, "GET", "/workflows", &[("Cookie", pair)], b"").status, 200);
    // Signing in never sends the browser to another site.
    let away = request(
        at,
        "POST",
        "/login",
        &form,
        format!("csrf={csrf}&token=tok-admin-PLANTED&next=%2F%2Fevil.example").as_bytes(),
    );
    assert_eq!(away.header("location"), Some("/"));
}

#[test]
fn dashboard_live_feed_holds_a_thousand_pages_and_refuses_the_next() {
    let server = Server::start(&[("orders.wf", ORDERS)], &["--admin", "127.0.0.1:0"]);
    let at = admin(&server);
    let mut open = Vec::new();
    for _ in 0..1_000 {
        let mut s = TcpStream::connect(at).expect("connect");
        s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).expect("status line");
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        open.push(s);
    }
    let refused = get(at, "/events");
    assert_eq!(refused.status, 503, "{}", refused.body);
    // The pages still answer, and a place is free again once one page goes.
    assert_eq!(get(at, "/").status, 200);
    open.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = TcpStream::connect(at).expect("connect");
        s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).expect("status line");
        if line.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no place came free: {line}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Memory stays bounded: the server's resident size, read from /proc.
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).expect("status");
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    assert!(rss_kib < 96 * 1024, "1,000 live pages hold {rss_kib} KiB");
}

/// The node labels of `wf graph --format dot`, node by node.
fn dot_labels(file: &std::path::Path) -> Vec<Vec<String>> {
    let out = wf(&["graph", file.to_str().expect("utf8"), "--format", "dot"]);
    assert_eq!(out.status.code(), Some(0));
    crate::common::text(&out.stdout)
        .lines()
        .filter(|l| !l.contains("->") && l.contains(" [label=\""))
        .filter_map(|l| {
            let label = l.split(" [label=\"").nth(1)?;
            let end = label.find("\", ")?;
            let text = label.get(..end)?;
            let lines =
                text.replace("\\l", "\n").replace("\\n", "\n").replace("\\\"", "\"").replace("\\\\", "\\");
            Some(lines.trim_end_matches('\n').split('\n').map(str::to_string).collect())
        })
        .collect()
}

#[test]
fn dashboard_in_chromium() {
    let chromium = std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists();
    if !have(chromium, "Chromium and ChromeDriver", "apt-get install chromium chromium-driver") {
        return;
    }
    if !have(python_module("selenium"), "Selenium for Python", "pip install selenium") {
        return;
    }
    // The service `relay` calls: its first call fails, the next ones succeed.
    let up = Upstream::start(|i, _| if i == 0 { Reply::new(503, "down") } else { Reply::new(200, "ok") });
    let dir = Dir::new(&[("orders.wf", ORDERS), ("relay.wf", &relay(&up.url("/hook")))]);
    let labels = dot_labels(&dir.path().join("relay.wf"));
    let server = Server::start_with_store(dir, &["--admin", "127.0.0.1:0"], &[]);
    let guarded = Server::start_env(
        &[("orders.wf", ORDERS)],
        &["--admin", "0.0.0.0:0", "--admin-token", "ADMIN_TOKEN"],
        &[("ADMIN_TOKEN", "tok-admin-PLANTED")],
    );
    // The docs' screenshots are taken again with `WF_BLESS=1` (as goldens are); otherwise in
    // target/, so a test run leaves the tree as it was.
    let shots = if std::env::var_os("WF_BLESS").is_some() {
        repo().join("docs/src/screenshots")
    } else {
        repo().join("target/screenshots")
    };
    std::fs::create_dir_all(&shots).expect("screenshots folder");
    let started = Instant::now();
    let out = std::process::Command::new("python3")
        .arg(repo().join("tests/browser/dashboard.py"))
        .env("WF_MAIN", format!("http://{}", server.addr))
        .env("WF_ADMIN", format!("http://{}", admin(&server)))
        .env("WF_GUARDED", format!("http://127.0.0.1:{}", admin(&guarded).port()))
        .env("WF_TOKEN", "tok-admin-PLANTED")
        .env("WF_LABELS", serde_json::to_string(&labels).expect("json"))
        .env("WF_SHOTS", &shots)
        .output()
        .expect("python3");
    let said = format!("{}{}", crate::common::text(&out.stdout), crate::common::text(&out.stderr));
    assert!(out.status.success(), "{said}\nserver log:\n{}", server.log());
    crate::postgres_cluster::skip_line(&format!(
        "dashboard in Chromium: {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    // The retry made the second call; nothing else was sent (replay sends nothing).
    assert_eq!(up.received().len(), 2, "{said}");
    for page in ["runs", "run", "workflow", "login"] {
        for width in [375, 1440] {
            assert!(shots.join(format!("{page}-{width}.png")).exists(), "{page}-{width}.png");
        }
    }
    assert!(shots.join("runs-dark-1440.png").exists(), "the dark mode's screenshot");
}
