//! `wf routes`: one row per workflow — method, URL path, mode, auth, workflow, file:line.

use crate::lang::ast::Mode;
use crate::lang::ir::Program;
use serde_json::{json, Value};

pub(crate) struct Route {
    /// The methods served, comma-separated (`POST`, `GET,POST`).
    pub methods: String,
    pub path: String,
    pub mode: &'static str,
    pub auth: &'static str,
    pub workflow: String,
    pub file: String,
    pub line: usize,
}

pub(crate) fn routes(program: &Program) -> Vec<Route> {
    let mut out: Vec<Route> = program
        .workflows
        .iter()
        .map(|w| Route {
            methods: w.methods.iter().map(http::Method::as_str).collect::<Vec<_>>().join(","),
            path: w.path.clone(),
            mode: if w.mode == Mode::Async { "async" } else { "sync" },
            auth: w.auth.as_ref().map_or("none", |a| a.kind.name()),
            workflow: w.name.clone(),
            file: w.file.name.clone(),
            line: w.file.line_col(w.span.start).0,
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

pub(crate) fn human(routes: &[Route]) -> String {
    let header = ["METHOD", "PATH", "MODE", "AUTH", "WORKFLOW", "FILE"];
    let rows: Vec<[String; 6]> = routes
        .iter()
        .map(|r| {
            [
                r.methods.clone(),
                r.path.clone(),
                r.mode.to_string(),
                r.auth.to_string(),
                r.workflow.clone(),
                format!("{}:{}", r.file, r.line),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for row in &rows {
        line(row);
    }
    out
}

pub(crate) fn json(routes: &[Route]) -> Value {
    Value::Array(
        routes
            .iter()
            .map(|r| {
                json!({
                    "method": r.methods, "path": r.path, "mode": r.mode, "auth": r.auth,
                    "workflow": r.workflow, "file": r.file, "line": r.line,
                })
            })
            .collect(),
    )
}
