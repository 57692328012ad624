//! `wf lsp`: a language server on stdio (`lsp-server` + `lsp-types`). Full-document sync;
//! diagnostics are `wf check`'s (same codes, messages and ranges, in UTF-16 positions), published
//! on open and 200 ms after the last change; hover, go to definition, completion, document symbols
//! and formatting through `wf fmt`.

mod analysis;
mod position;
pub mod transport;

pub(crate) use analysis::{CompletionKind, Document, Hover};

use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types as lsp;
use position::Lines;
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Quiet time after a change before its diagnostics are published.
const DEBOUNCE: Duration = Duration::from_millis(200);

struct Open {
    version: i32,
    doc: Document,
    /// Diagnostics not yet published are due at this time.
    due: Option<Instant>,
}

/// Runs the server until the client says `exit`.
pub(crate) fn run() -> ExitCode {
    let (connection, fatal, writer) = transport::stdio();
    let capabilities = lsp::ServerCapabilities {
        text_document_sync: Some(lsp::TextDocumentSyncCapability::Kind(lsp::TextDocumentSyncKind::FULL)),
        hover_provider: Some(lsp::HoverProviderCapability::Simple(true)),
        definition_provider: Some(lsp::OneOf::Left(true)),
        completion_provider: Some(lsp::CompletionOptions::default()),
        document_symbol_provider: Some(lsp::OneOf::Left(true)),
        document_formatting_provider: Some(lsp::OneOf::Left(true)),
        ..Default::default()
    };
    let Ok(caps) = serde_json::to_value(capabilities) else { return ExitCode::from(2) };
    let code = if connection.initialize(caps).is_err() { ExitCode::from(1) } else { serve(&connection) };
    // Every answer sent is written out before the process ends.
    drop(connection);
    let _ = writer.join();
    // A stream that could not be read as frames any more ended it: say why.
    if let Some(why) = fatal.lock().ok().and_then(|mut f| f.take()) {
        eprintln!("error: wf lsp: {why}");
        return ExitCode::from(1);
    }
    code
}

fn serve(conn: &Connection) -> ExitCode {
    let mut docs: HashMap<String, Open> = HashMap::new();
    loop {
        let next_due = docs.values().filter_map(|d| d.due).min();
        let msg = match next_due {
            Some(due) => match conn.receiver.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(m) => Some(m),
                Err(crossbeam_timeout) if crossbeam_timeout.is_timeout() => None,
                Err(_) => return ExitCode::from(1),
            },
            // The client went away without `shutdown` and `exit` (or the stream broke).
            None => match conn.receiver.recv() {
                Ok(m) => Some(m),
                Err(_) => return ExitCode::from(1),
            },
        };
        match msg {
            None => {}
            Some(Message::Request(req)) => {
                if conn.handle_shutdown(&req).unwrap_or(true) {
                    return ExitCode::SUCCESS;
                }
                let response = answer(&docs, req);
                if conn.sender.send(Message::Response(response)).is_err() {
                    return ExitCode::SUCCESS;
                }
            }
            Some(Message::Notification(n)) => notified(&mut docs, n),
            Some(Message::Response(_)) => {}
        }
        let now = Instant::now();
        for (uri, open) in docs.iter_mut() {
            if open.due.is_some_and(|d| d <= now) {
                open.due = None;
                publish(conn, uri, open);
            }
        }
    }
}

fn notified(docs: &mut HashMap<String, Open>, n: Notification) {
    match n.method.as_str() {
        "textDocument/didOpen" => {
            let Ok(p) = serde_json::from_value::<lsp::DidOpenTextDocumentParams>(n.params) else { return };
            let uri = p.text_document.uri.as_str().to_string();
            let doc = Document::new(&name_of(&uri), p.text_document.text, None);
            // Published at once on open.
            docs.insert(uri, Open { version: p.text_document.version, doc, due: Some(Instant::now()) });
        }
        "textDocument/didChange" => {
            let Ok(p) = serde_json::from_value::<lsp::DidChangeTextDocumentParams>(n.params) else { return };
            let uri = p.text_document.uri.as_str().to_string();
            let Some(text) = p.content_changes.into_iter().last().map(|c| c.text) else { return };
            let previous = docs.remove(&uri);
            let doc = Document::new(&name_of(&uri), text, previous.as_ref().map(|o| &o.doc));
            docs.insert(
                uri,
                Open { version: p.text_document.version, doc, due: Some(Instant::now() + DEBOUNCE) },
            );
        }
        "textDocument/didClose" => {
            if let Ok(p) = serde_json::from_value::<lsp::DidCloseTextDocumentParams>(n.params) {
                docs.remove(p.text_document.uri.as_str());
            }
        }
        _ => {}
    }
}

/// The file name diagnostics show: the path of a `file://` URI.
fn name_of(uri: &str) -> String {
    uri.strip_prefix("file://").unwrap_or(uri).to_string()
}

fn publish(conn: &Connection, uri: &str, open: &Open) {
    let lines = Lines::new(open.doc.text());
    let diagnostics: Vec<lsp::Diagnostic> = open
        .doc
        .diagnostics
        .iter()
        .filter(|d| std::sync::Arc::ptr_eq(&d.primary.file, &open.doc.file))
        .map(|d| lsp::Diagnostic {
            range: lines.range(d.primary.span),
            severity: Some(match d.severity {
                crate::lang::diagnostic::Severity::Error => lsp::DiagnosticSeverity::ERROR,
                crate::lang::diagnostic::Severity::Warning => lsp::DiagnosticSeverity::WARNING,
            }),
            code: Some(lsp::NumberOrString::String(d.code.to_string())),
            source: Some("wf".into()),
            message: if d.primary.text.is_empty() {
                format!("{}\nhelp: {}", d.message, d.help_text())
            } else {
                format!("{}: {}\nhelp: {}", d.message, d.primary.text, d.help_text())
            },
            ..Default::default()
        })
        .collect();
    let Ok(uri) = uri.parse::<lsp::Uri>() else { return };
    let params = lsp::PublishDiagnosticsParams { uri, diagnostics, version: Some(open.version) };
    if let Ok(params) = serde_json::to_value(params) {
        let n = Notification { method: "textDocument/publishDiagnostics".into(), params };
        let _ = conn.sender.send(Message::Notification(n));
    }
}

fn answer(docs: &HashMap<String, Open>, req: Request) -> Response {
    let id = req.id.clone();
    // A request wf does not know, or parameters it cannot read, get an error answer, never a crash.
    let result = std::panic::catch_unwind(|| respond(docs, &req)).unwrap_or(Err("internal error".into()));
    match result {
        Ok(value) => Response { id, result: Some(value), error: None },
        Err(message) => Response::new_err(id, lsp_server::ErrorCode::InvalidParams as i32, message),
    }
}

fn respond(docs: &HashMap<String, Open>, req: &Request) -> Result<serde_json::Value, String> {
    let doc_at = |uri: &lsp::Uri| docs.get(uri.as_str()).map(|o| &o.doc);
    let json = |v: serde_json::Result<serde_json::Value>| v.map_err(|e| e.to_string());
    let params = req.params.clone();
    match req.method.as_str() {
        "textDocument/hover" => {
            let p: lsp::HoverParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
            let pos = p.text_document_position_params;
            let Some(doc) = doc_at(&pos.text_document.uri) else { return Ok(serde_json::Value::Null) };
            let lines = Lines::new(doc.text());
            let text = match doc.hover(lines.offset(pos.position)) {
                Some(Hover::Binding(b)) => {
                    let (line, col) = b.file.line_col(b.span.start);
                    format!("`{}`: {}\n\n{} (line {line}, column {col})", b.name, b.types, b.origin)
                }
                Some(Hover::Function(signature, doc, example)) => {
                    format!("```wf\n{signature}\n```\n{doc}\n\nFor example: `{example}`")
                }
                Some(Hover::Keyword(k, doc)) => format!("**{k}**: {doc}"),
                None => return Ok(serde_json::Value::Null),
            };
            json(serde_json::to_value(lsp::Hover {
                contents: lsp::HoverContents::Markup(lsp::MarkupContent {
                    kind: lsp::MarkupKind::Markdown,
                    value: text,
                }),
                range: None,
            }))
        }
        "textDocument/definition" => {
            let p: lsp::GotoDefinitionParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
            let pos = p.text_document_position_params;
            let Some(doc) = doc_at(&pos.text_document.uri) else { return Ok(serde_json::Value::Null) };
            let lines = Lines::new(doc.text());
            match doc.definition(lines.offset(pos.position)) {
                Some(span) => json(serde_json::to_value(lsp::Location {
                    uri: pos.text_document.uri,
                    range: lines.range(span),
                })),
                None => Ok(serde_json::Value::Null),
            }
        }
        "textDocument/completion" => {
            let p: lsp::CompletionParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
            let pos = p.text_document_position;
            let Some(doc) = doc_at(&pos.text_document.uri) else { return Ok(serde_json::Value::Null) };
            let lines = Lines::new(doc.text());
            let items: Vec<lsp::CompletionItem> = doc
                .completion(lines.offset(pos.position))
                .into_iter()
                .map(|c| lsp::CompletionItem {
                    label: c.label,
                    kind: Some(match c.kind {
                        CompletionKind::Keyword => lsp::CompletionItemKind::KEYWORD,
                        CompletionKind::Variable => lsp::CompletionItemKind::VARIABLE,
                        CompletionKind::Function => lsp::CompletionItemKind::FUNCTION,
                        CompletionKind::Value => lsp::CompletionItemKind::VALUE,
                    }),
                    detail: (!c.detail.is_empty()).then_some(c.detail),
                    ..Default::default()
                })
                .collect();
            json(serde_json::to_value(lsp::CompletionResponse::Array(items)))
        }
        "textDocument/documentSymbol" => {
            let p: lsp::DocumentSymbolParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
            let Some(doc) = doc_at(&p.text_document.uri) else { return Ok(serde_json::Value::Null) };
            let lines = Lines::new(doc.text());
            #[allow(deprecated)]
            let symbols: Vec<lsp::DocumentSymbol> = doc
                .symbols()
                .into_iter()
                .map(|(name, is_workflow, span, name_span)| lsp::DocumentSymbol {
                    name,
                    detail: None,
                    kind: if is_workflow { lsp::SymbolKind::FUNCTION } else { lsp::SymbolKind::METHOD },
                    tags: None,
                    deprecated: None,
                    range: lines.range(span),
                    selection_range: lines.range(name_span),
                    children: None,
                })
                .collect();
            json(serde_json::to_value(lsp::DocumentSymbolResponse::Nested(symbols)))
        }
        "textDocument/formatting" => {
            let p: lsp::DocumentFormattingParams =
                serde_json::from_value(params).map_err(|e| e.to_string())?;
            let Some(doc) = doc_at(&p.text_document.uri) else { return Ok(serde_json::Value::Null) };
            match doc.formatted() {
                Some(text) if text != doc.text() => {
                    let lines = Lines::new(doc.text());
                    let whole = lines.range(crate::lang::ast::Span::new(0, doc.text().len()));
                    json(serde_json::to_value(vec![lsp::TextEdit { range: whole, new_text: text }]))
                }
                _ => json(serde_json::to_value(Vec::<lsp::TextEdit>::new())),
            }
        }
        other => Err(format!("wf lsp does not answer `{other}`")),
    }
}
