//! `wf lsp` driven over stdio with JSON-RPC, as an editor would: initialize, open a file with an
//! error, see `wf check`'s diagnostic, fix it, see it cleared, hover, definition, completion,
//! symbols, formatting, shutdown.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

struct Client {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Client {
    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn read(&mut self) -> Value {
        let mut length = 0;
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).expect("read") > 0, "wf lsp closed its output");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                length = n.parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        self.stdout.read_exact(&mut body).expect("body");
        serde_json::from_slice(&body).expect("json")
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.read();
            if m["id"] == id {
                return m["result"].clone();
            }
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next diagnostics published.
    fn diagnostics(&mut self) -> Vec<Value> {
        loop {
            let m = self.read();
            if m["method"] == "textDocument/publishDiagnostics" {
                return m["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
            }
        }
    }
}

const URI: &str = "file:///tmp/pay.wf";
const BROKEN: &str = "workflow pay {\n  trigger webhook { path \"/pay\" }\n  extract { amount = body \"a\" as number }\n  respond 200 json { total: amont }\n}\n";
const FIXED: &str = "workflow pay {\n  trigger webhook { path \"/pay\" }\n  extract {   amount = body \"a\" as number }\n  let total = amount * 100\n  respond 200 json { total: total }\n}\n";

#[test]
fn an_editor_session() {
    let mut child = Command::new(crate::common::wf_bin())
        .arg("lsp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wf lsp");
    // Bounded in time: a server that hangs is killed, and the test fails on its closed output.
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        let _ = Command::new("kill").args(["-9", &pid]).status();
    });
    let mut c = Client {
        stdin: child.stdin.take().expect("stdin"),
        stdout: BufReader::new(child.stdout.take().expect("stdout")),
        next: 0,
    };
    let init = c.request("initialize", json!({"processId": null, "rootUri": null, "capabilities": {}}));
    assert_eq!(init["capabilities"]["hoverProvider"], true);
    c.notify("initialized", json!({}));

    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "wf", "version": 1, "text": BROKEN}}),
    );
    let diags = c.diagnostics();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0]["code"], "wf::unknown-variable");
    // The same range `wf check` reports (line 4, column 29 → 0-based 3:28), in UTF-16 units.
    assert_eq!(diags[0]["range"]["start"], json!({"line": 3, "character": 28}));
    assert_eq!(diags[0]["range"]["end"], json!({"line": 3, "character": 33}));
    assert!(
        diags[0]["message"].as_str().is_some_and(|m| m.contains("did you mean `amount`?")),
        "{}",
        diags[0]
    );

    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": FIXED}]}),
    );
    assert_eq!(c.diagnostics(), Vec::<Value>::new(), "the diagnostic is cleared");

    let doc = json!({"uri": URI});
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": {"line": 3, "character": 15}}),
    );
    let text = hover["contents"]["value"].as_str().unwrap_or("");
    assert!(text.contains("`amount`: a number or null") && text.contains("declared `as number`"), "{text}");
    let hover = c
        .request("textDocument/hover", json!({"textDocument": doc, "position": {"line": 4, "character": 3}}));
    assert!(hover["contents"]["value"].as_str().unwrap_or("").starts_with("**respond**"));

    let def = c.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": {"line": 4, "character": 29}}),
    );
    assert_eq!(def["range"]["start"], json!({"line": 3, "character": 6}), "{def}");

    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": doc, "position": {"line": 4, "character": 28}}),
    );
    let labels: Vec<&str> =
        items.as_array().expect("items").iter().filter_map(|i| i["label"].as_str()).collect();
    for want in ["total", "amount", "len", "upper"] {
        assert!(labels.contains(&want), "{want} in {labels:?}");
    }

    let symbols = c.request("textDocument/documentSymbol", json!({"textDocument": doc}));
    assert_eq!(symbols[0]["name"], "pay");

    let edits = c.request(
        "textDocument/formatting",
        json!({"textDocument": doc, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let formatted = edits[0]["newText"].as_str().expect("an edit");
    assert!(formatted.contains("  extract {\n    amount = body \"a\" as number\n  }"), "{formatted}");

    let shutdown = c.request("shutdown", Value::Null);
    assert_eq!(shutdown, Value::Null);
    c.notify("exit", Value::Null);
    let status = child.wait().expect("exit");
    assert!(status.success());
}

/// `wf lsp` fed `input`, its stdin then closed: its exit code, stdout and stderr (bounded: 10 s).
fn lsp_with(input: &[u8]) -> (Option<i32>, Vec<u8>, String) {
    let mut child = Command::new(crate::common::wf_bin())
        .arg("lsp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(input);
    drop(stdin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        assert!(std::time::Instant::now() < deadline, "wf lsp did not end");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    (out.status.code(), out.stdout, crate::common::text(&out.stderr))
}

#[test]
fn a_huge_or_broken_frame_ends_the_server_with_a_reason_and_bad_json_is_answered() {
    // A frame larger than the limit is refused without allocating it (no abort, exit 1).
    for header in ["Content-Length: 1000000000000000\r\n\r\n", "Content-Length: 2000000000\r\n\r\n"] {
        let (code, _, err) = lsp_with(header.as_bytes());
        assert_eq!(code, Some(1), "{header:?}: {err}");
        assert!(err.contains("over the limit"), "{err}");
    }
    let (code, _, err) = lsp_with(b"Content-Type: application/json\r\n\r\n{}");
    assert_eq!(code, Some(1));
    assert!(err.contains("without Content-Length"), "{err}");
    // Malformed JSON and a body that is not UTF-8 get the parse error; the server goes on to
    // answer the next request.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
        .to_string();
    let mut input = Vec::new();
    for body in [&b"{not json"[..], &[0xff, 0xfe, b'{', b'}'][..]] {
        input.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        input.extend_from_slice(body);
    }
    input.extend_from_slice(format!("Content-Length: {}\r\n\r\n{init}", init.len()).as_bytes());
    let (code, out, _) = lsp_with(&input);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("-32700").count(), 2, "{text}");
    assert!(text.contains("\"capabilities\""), "initialize was answered after them: {text}");
    assert_eq!(code, Some(1), "the stream ended without shutdown and exit");
}
