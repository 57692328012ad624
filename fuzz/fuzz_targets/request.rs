//! A whole request through routing, method and auth checks, body rules, extraction and the
//! interpreter, against the example workflows (async ones are run to their end too).
//!
//! Input format, close to HTTP so seeds are easy to write:
//! `METHOD /path?query\nName: value\n...\n\nbody`. Every `env()` reads as `secret`.
#![no_main]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};
use wf::request::handle::{Enqueue, ExecId, Job, Limits};
use wf::request::served::Router;

const EXAMPLES: [(&str, &str); 4] = [
    ("payment.wf", include_str!("../../examples/payment.wf")),
    ("github_push.wf", include_str!("../../examples/github_push.wf")),
    ("audit.wf", include_str!("../../examples/audit.wf")),
    ("form.wf", include_str!("../../examples/form.wf")),
];

struct World {
    router: Router,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let sources =
            EXAMPLES.iter().map(|(name, text)| (wf::lang::diagnostic::SourceFile::new(*name, *text), None)).collect();
        let loaded = wf::lang::loader::load_sources(sources);
        assert!(!loaded.has_errors(), "the examples must check clean");
        let router = match wf::request::served::build(loaded.program, &|_| Some("secret".to_string())) {
            Ok(r) => r,
            Err(e) => panic!("the examples must build: {e:?}"),
        };
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
            Ok(r) => r,
            Err(e) => panic!("runtime: {e}"),
        };
        World { router, runtime }
    })
}

#[derive(Default)]
struct Collected(Mutex<Vec<Job>>);

impl Enqueue for Collected {
    fn try_enqueue(&self, job: Job) -> Result<(), Job> {
        match self.0.lock() {
            Ok(mut jobs) if jobs.len() < 4 => {
                jobs.push(job);
                Ok(())
            }
            _ => Err(job),
        }
    }
}

/// Builds a request from the input, or `None` when `http` itself refuses the parts.
fn request(data: &[u8]) -> Option<http::Request<Full<Bytes>>> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (data.get(..i)?, data.get(i + 2..)?),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let first = lines.next()?;
    let space = first.iter().position(|b| *b == b' ').unwrap_or(first.len());
    let method = http::Method::from_bytes(first.get(..space)?).ok()?;
    let target = first.get(space + 1..).unwrap_or(b"/");
    let mut builder = http::Request::builder().method(method).uri(http::Uri::try_from(target).ok()?);
    for line in lines {
        let colon = line.iter().position(|b| *b == b':')?;
        let name = http::HeaderName::from_bytes(line.get(..colon)?).ok()?;
        let value = http::HeaderValue::from_bytes(line.get(colon + 1..)?.trim_ascii()).ok()?;
        builder = builder.header(name, value);
    }
    builder.body(Full::new(Bytes::copy_from_slice(body))).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(req) = request(data) else {
        return;
    };
    let w = world();
    let queue = Collected::default();
    let limits = Limits { max_body: 64 * 1024, ..Limits::default() };
    w.runtime.block_on(async {
        let handled = wf::request::handle::handle(&w.router, &limits, &queue, ExecId(1), req).await;
        let status = handled.response.status();
        let body = match handled.response.into_body().collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => match e {},
        };
        if let Some(record) = &handled.record {
            assert_eq!(record.status, status.as_u16());
            // The reason is for the log only, never for the caller.
            if let Some(reason) = record.reason.as_deref().filter(|r| r.len() > 12 && status.is_server_error()) {
                assert!(
                    !String::from_utf8_lossy(&body).contains(reason),
                    "a failure's reason leaked into its answer"
                );
            }
        }
    });
    let jobs = queue.0.into_inner().unwrap_or_default();
    for job in jobs {
        let _ = w.runtime.block_on(wf::request::handle::run_job(job));
    }
});
