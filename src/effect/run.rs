//! `run`: a program started directly (never through a shell) in its own process group, with a
//! minimal environment, its outputs capped, and the whole group killed when it runs too long.

use crate::request::step::{self, RunRequest};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Most bytes of stdout (and of stderr) a `run` result keeps.
pub(crate) const MAX_OUTPUT: usize = 1 << 20;

/// Where and for whom a program runs.
pub(crate) struct Context<'a> {
    /// The execution's id (`WF_EXECUTION`).
    pub execution: String,
    /// The workflow's name (`WF_WORKFLOW`).
    pub workflow: &'a str,
    /// The directory of the workflow's file.
    pub dir: &'a Path,
}

/// Runs the program to its end; a non-zero exit is a result, a program that cannot start or
/// runs past its timeout fails the step.
pub(crate) async fn run(req: RunRequest, cx: &Context<'_>) -> Result<Value, String> {
    let what = format!("`run {}`", req.program);
    // A relative path with a slash is the workflow's file's neighbour; a bare name is found on PATH.
    let program =
        if req.program.contains('/') { resolve(cx.dir, &req.program) } else { PathBuf::from(&req.program) };
    let dir = req.dir.as_deref().map_or_else(|| cx.dir.to_path_buf(), |d| resolve(cx.dir, d));
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut command = tokio::process::Command::new(&program);
    command
        .args(&req.args)
        .env_clear()
        .env("PATH", path)
        .env("WF_EXECUTION", &cx.execution)
        .env("WF_WORKFLOW", cx.workflow)
        .envs(req.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&dir)
        .stdin(if req.stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| format!("{what}: cannot start it: {e}"))?;
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let input = req.stdin.clone();
    let work = async move {
        let feed = async move {
            if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
                // A program that exits without reading its input is not an error.
                let _ = pipe.write_all(&bytes).await;
            }
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = {
            let reading = async { tokio::join!(feed, capped(stdout, &mut out), capped(stderr, &mut err)) };
            let mut reading = std::pin::pin!(reading);
            let mut exited = std::pin::pin!(child.wait());
            let mut read = false;
            let status = loop {
                tokio::select! {
                    status = &mut exited => break status,
                    _ = &mut reading, if !read => read = true,
                }
            };
            // The step ends when the program exits: a child it left behind that keeps its
            // output open (`cmd &`) gets a short grace to finish writing, not the timeout.
            if !read {
                let _ = tokio::time::timeout(GRACE, &mut reading).await;
            }
            status
        };
        // What it left running in its group goes with it.
        kill_group(group);
        (out, err, status)
    };
    match tokio::time::timeout(req.timeout, work).await {
        Ok((out, err, Ok(status))) => {
            use std::os::unix::process::ExitStatusExt as _;
            let code = status.code().map_or_else(|| 128 + i64::from(status.signal().unwrap_or(0)), i64::from);
            Ok(step::run_result(code, &out, &err))
        }
        Ok((_, _, Err(e))) => Err(format!("{what}: {e}")),
        Err(_) => {
            // The whole group: a script's children and grandchildren go with it.
            kill_group(group);
            Err(format!("{what} timed out after {}", humantime::format_duration(req.timeout)))
        }
    }
}

/// How long the outputs are still read after the program exited.
const GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Kills a program's process group: what it started and left in it. (A descendant that left the
/// group, by `setsid` or by daemonizing, is out of reach: it is not killed.)
fn kill_group(group: Option<i32>) {
    if let Some(pgid) = group {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Reads a pipe to its end into `kept`, keeping the first [`MAX_OUTPUT`] bytes (the rest is read
/// and dropped, so the program never blocks on a full pipe).
async fn capped(pipe: Option<impl AsyncRead + Unpin>, kept: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or(&[]));
            }
        }
    }
}
