//! `test` blocks: the request (constants only) and the `expect` lines.

use super::Lower;
use crate::lang::ast::{self, Ident};
use crate::lang::diagnostic::Kind;
use crate::lang::ir;

impl Lower<'_> {
    // ---- tests ----------------------------------------------------------------------------

    pub(super) fn test(mut self, t: &ast::Test) -> ir::TestCase {
        let name = self.literal(&t.name, "a test name").unwrap_or_default();
        let method = match http::Method::from_bytes(t.request.method.name.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                // The grammar only lets upper-case letters through, and those always make a method.
                self.err(Kind::Syntax, t.request.method.span, "invalid HTTP method")
                    .set_label("not a method");
                http::Method::POST
            }
        };
        self.const_only = Some("a test request");
        let url = self.template(&t.request.url);
        if let Some(u) = t.request.url.literal() {
            if !u.starts_with('/') {
                self.err(Kind::InvalidPath, t.request.url.span, format!("`{u}` is not a request path"))
                    .set_label("not a path")
                    .set_help("write the path and query, e.g. \"/hooks/payment?order=42\"");
            }
        }
        let mut lines = Vec::new();
        for l in &t.request.lines {
            match l {
                ast::RequestLine::Auth { user, password, .. } => {
                    lines.push(ir::RequestLine::Auth(self.expr(user), self.expr(password)))
                }
                ast::RequestLine::Header { name, value: value_ast, .. } => {
                    let value = self.expr(value_ast);
                    self.header_value(&value, value_ast.span);
                    if let Some(h) = self.header_name(name) {
                        lines.push(ir::RequestLine::Header(h, value));
                    }
                }
                ast::RequestLine::Json(e, _) => lines.push(ir::RequestLine::Json(self.expr(e))),
                ast::RequestLine::Text(e, _) => lines.push(ir::RequestLine::Text(self.expr(e))),
                ast::RequestLine::File { kind, path, .. } => {
                    if let Some(line) = self.body_file(*kind, path) {
                        lines.push(line);
                    }
                }
                ast::RequestLine::Form(e, _) => {
                    let (x, t) = self.typed(e);
                    if !t.meets(crate::lang::types::Types::OBJECT) {
                        self.err(
                            Kind::TypeMismatch,
                            e.span,
                            format!("`form` sends an object, not {}", t.describe_value()),
                        )
                        .set_label("not an object")
                        .set_help("write form { text: \"hello\", user_id: \"U1\" }");
                    }
                    lines.push(ir::RequestLine::Form(x));
                }
                ast::RequestLine::Sign { provider, secret, .. } => {
                    let secret = self.expr(secret);
                    match ir::Scheme::from_name(&provider.name) {
                        Some(scheme) => lines.push(ir::RequestLine::Sign(scheme, secret)),
                        None => {
                            let names: Vec<&str> = ir::Scheme::NAMES.iter().map(|(n, _)| *n).collect();
                            self.err(
                                Kind::UnknownAuth,
                                provider.span,
                                format!("`sign` knows no provider `{}`", provider.name),
                            )
                            .set_label("not a provider")
                            .set_help(format!("the providers are {}", names.join(", ")));
                        }
                    }
                }
                ast::RequestLine::ContentType(s, _) => {
                    if let Some(ct) = self.literal(s, "a content type") {
                        lines.push(ir::RequestLine::ContentType(ct));
                    }
                }
            }
        }
        let mocks = t.mocks.iter().filter_map(|m| self.mock(m)).collect();
        self.const_only = None;
        let what = [
            "the answer's status",
            "the answer's headers",
            "the answer's body",
            "the answer's JSON",
            "the effects the execution called, in order",
        ];
        for ((n, types), what) in ir::TEST_NAMES.into_iter().zip(what) {
            self.declare(
                &Ident { name: n.to_string(), span: t.span },
                false,
                types,
                (t.span, format!("{n} is {what}")),
            );
        }
        let expects = t
            .expects
            .iter()
            .map(|e| ir::Expectation {
                comparison: match &e.kind {
                    ast::ExprKind::Binary(op, l, r) if op.is_comparison() => {
                        let text = |x: &ast::Expr| {
                            self.file.text.get(x.span.start..x.span.end).unwrap_or("").to_string()
                        };
                        Some((*op, text(l), text(r)))
                    }
                    _ => None,
                },
                expr: self.expr(e),
                span: e.span,
                source: self.file.text.get(e.span.start..e.span.end).unwrap_or("").to_string(),
            })
            .collect();
        ir::TestCase { name, file: self.file.clone(), span: t.span, method, url, lines, expects, mocks }
    }
}

impl Lower<'_> {
    /// `json file "PATH"` / `text file "PATH"` / `bytes file "PATH"`: the file read now
    /// (relative to the `.wf` file's folder), its body a constant of the test; a file that
    /// cannot be read, is not UTF-8 for `text` or not JSON for `json`, is an error here rather
    /// than a test that fails later.
    fn body_file(&mut self, kind: ast::FileBody, path: &ast::Str) -> Option<ir::RequestLine> {
        let written = self.literal(path, "a file's path")?;
        let dir = std::path::Path::new(&self.file.name)
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let full = dir.join(&written);
        let bytes = match std::fs::read(&full) {
            Ok(b) => b,
            Err(e) => {
                self.err(Kind::UnreadableFile, path.span, format!("cannot read `{}`: {e}", full.display()))
                    .set_label("this file");
                return None;
            }
        };
        if kind == ast::FileBody::Bytes {
            return Some(ir::RequestLine::Bytes(bytes));
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                self.err(Kind::UnreadableFile, path.span, format!("`{}` is not UTF-8 text", full.display()))
                    .set_label("this file")
                    .set_help("read it with `bytes file` to send it as it is");
                return None;
            }
        };
        if kind == ast::FileBody::Text {
            return Some(ir::RequestLine::Text(ir::Expr::Const(serde_json::Value::String(text))));
        }
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => Some(ir::RequestLine::Json(ir::Expr::Const(v))),
            Err(e) => {
                self.err(Kind::UnreadableFile, path.span, format!("`{}` is not JSON: {e}", full.display()))
                    .set_label("this file")
                    .set_help("read it with `text file` to send it as it is");
                None
            }
        }
    }
}
