//! The language server's stdio: LSP frames (`Content-Length` headers, then a JSON body) read
//! from stdin with a bound, and messages written to stdout. A frame larger than [`MAX_FRAME`] is
//! refused before anything is allocated for it; a body that is not JSON (or not UTF-8) gets the
//! JSON-RPC parse error (−32700) and the server goes on; a stream that cannot be read as frames
//! any more (a header that is not one, no `Content-Length`, an end in the middle of a frame) ends
//! the server with the reason on stderr and exit code 1.

use lsp_server::{Connection, Message};
use std::io::{BufRead, Read, Write};
use std::sync::{Arc, Mutex};

/// The largest frame read: 64 MiB (a `.wf` file is a few kilobytes).
pub const MAX_FRAME: usize = 64 << 20;

/// Why reading frames stopped for good (none: the stream ended cleanly, between frames).
pub(crate) type Fatal = Arc<Mutex<Option<String>>>;

/// A connection over stdin and stdout, where the reader leaves a fatal error, and the writer
/// (joined once the connection is dropped, so that every answer is out before the process ends).
pub(crate) fn stdio() -> (Connection, Fatal, std::thread::JoinHandle<()>) {
    let (server, client) = Connection::memory();
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let fatal: Fatal = Arc::default();
    let writer_out = out.clone();
    let to_client = client.receiver;
    let writer = std::thread::spawn(move || {
        for msg in to_client {
            let Ok(mut out) = writer_out.lock() else { return };
            if msg.write(&mut *out).is_err() {
                return;
            }
        }
    });
    let from_client = client.sender;
    let reason = fatal.clone();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        loop {
            match frame(&mut input) {
                Ok(None) => return,
                Ok(Some(body)) => match serde_json::from_slice::<Message>(&body) {
                    Ok(msg) => {
                        let exit = matches!(&msg, Message::Notification(n) if n.method == "exit");
                        if from_client.send(msg).is_err() || exit {
                            return;
                        }
                    }
                    Err(e) => {
                        let Ok(mut out) = out.lock() else { return };
                        if parse_error(&mut *out, &e.to_string()).is_err() {
                            return;
                        }
                    }
                },
                Err(why) => {
                    if let Ok(mut r) = reason.lock() {
                        *r = Some(why);
                    }
                    return;
                }
            }
        }
    });
    (server, fatal, writer)
}

/// The JSON-RPC answer to a message that could not be parsed.
fn parse_error(out: &mut dyn Write, why: &str) -> std::io::Result<()> {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32700, "message": format!("Parse error: {why}") },
    })
    .to_string();
    write!(out, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    out.flush()
}

/// Reads one frame's body; `None` at the end of the stream between frames.
pub fn frame(input: &mut impl BufRead) -> Result<Option<Vec<u8>>, String> {
    let mut size: Option<usize> = None;
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        // A header line is short: one longer than 1 KiB is not a header.
        let read = input.by_ref().take(1024).read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        if read == 0 {
            return if first { Ok(None) } else { Err("the stream ended inside a frame's headers".into()) };
        }
        first = false;
        let Some(text) = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n")) else {
            return Err("a frame header longer than 1 KiB, or not ended by a line break".into());
        };
        if text.is_empty() {
            break;
        }
        let text = std::str::from_utf8(text).map_err(|_| "a frame header that is not UTF-8".to_string())?;
        let Some((name, value)) = text.split_once(':') else {
            return Err(format!("`{}` is not a frame header", text.escape_debug()));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("Content-Length `{}` is not a size", value.trim()))?;
            if n > MAX_FRAME as u64 {
                return Err(format!("a frame of {n} bytes is over the limit of {MAX_FRAME} bytes"));
            }
            size = usize::try_from(n).ok();
        }
    }
    let size = size.ok_or("a frame without Content-Length")?;
    let mut body = Vec::with_capacity(size.min(64 << 10));
    let got = input.by_ref().take(size as u64).read_to_end(&mut body).map_err(|e| e.to_string())?;
    if got < size {
        return Err(format!("the stream ended inside a frame ({got} of {size} bytes)"));
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(bytes: &[u8]) -> Vec<Result<Option<Vec<u8>>, String>> {
        let mut input = std::io::Cursor::new(bytes.to_vec());
        let mut all = Vec::new();
        loop {
            let next = frame(&mut input);
            let end = !matches!(next, Ok(Some(_)));
            all.push(next);
            if end {
                return all;
            }
        }
    }

    #[test]
    fn frames_are_read_within_the_limit_and_a_broken_stream_says_why() {
        let ok = frames(b"Content-Length: 2\r\n\r\n{}Content-Type: x\r\ncontent-length:3\n\n[1]");
        assert_eq!(ok, vec![Ok(Some(b"{}".to_vec())), Ok(Some(b"[1]".to_vec())), Ok(None)]);
        for (bytes, why) in [
            (&b"Content-Length: 1000000000000000\r\n\r\n"[..], "over the limit"),
            (b"Content-Length: 2000000000\r\n\r\n", "over the limit"),
            (b"Content-Length: 10\r\n\r\nabc", "ended inside a frame"),
            (b"Content-Type: x\r\n\r\n{}", "without Content-Length"),
            (b"Content-Length: -1\r\n\r\n", "not a size"),
            (b"hello\r\n\r\n", "not a frame header"),
            (b"Content-Length: 2\r\n", "ended inside a frame's headers"),
        ] {
            let got = frames(bytes);
            let last = got.last().cloned().unwrap_or(Ok(None));
            assert!(
                matches!(&last, Err(e) if e.contains(why)),
                "{:?}: {last:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let long = [b"X".repeat(2000), b"\r\n\r\n".to_vec()].concat();
        assert!(matches!(frames(&long).last(), Some(Err(e)) if e.contains("1 KiB")));
    }
}
