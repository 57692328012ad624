//! What the language server knows of one open document: `wf check`'s diagnostics, the names bound
//! and where, and from those hover, definition, completion, symbols and formatting. Every function
//! here is total: half-typed text gives fewer answers, never a panic.

use crate::lang::ast::{self, Span};
use crate::lang::builtins::FUNCTIONS;
use crate::lang::diagnostic::{Diagnostic, SourceFile};
use crate::lang::ir::{Binding, Scheme};
use crate::lang::types::Type;
use std::sync::Arc;

/// One analysed document.
pub(crate) struct Document {
    pub file: Arc<SourceFile>,
    parsed: Option<ast::File>,
    pub diagnostics: Vec<Diagnostic>,
    /// The names bound; from the last version that parsed when this one does not.
    bindings: Vec<Binding>,
}

/// What a position is, for hover.
pub(crate) enum Hover {
    /// A bound name: its types and where they come from.
    Binding(Binding),
    /// A function: its signature and doc line.
    Function(&'static str, &'static str, &'static str),
    /// A keyword and what it does.
    Keyword(&'static str, &'static str),
}

/// A completion offered at a position.
#[derive(Debug, PartialEq)]
pub(crate) struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompletionKind {
    Keyword,
    Variable,
    Function,
    Value,
}

impl Document {
    /// Checks `text` as `wf check` does (the checker, then the constants `serve` computes).
    pub(crate) fn new(name: &str, text: String, previous: Option<&Document>) -> Document {
        let file = SourceFile::new(name, text);
        let mut loaded = crate::lang::loader::load_sources(vec![(file.clone(), None)]);
        if !loaded.has_errors() {
            loaded.diagnostics.extend(crate::request::served::verify(&loaded.program));
            loaded.diagnostics.sort_by_key(|d| d.sort_key());
        }
        let parsed = loaded.sources.into_iter().next().map(|(_, ast)| ast);
        let bindings = if parsed.is_some() {
            loaded.program.bindings
        } else {
            previous.map(|p| p.bindings.clone()).unwrap_or_default()
        };
        Document { file, parsed, diagnostics: loaded.diagnostics, bindings }
    }

    pub(crate) fn text(&self) -> &str {
        &self.file.text
    }

    /// The identifier around `offset`, and where it starts.
    fn word_at(&self, offset: usize) -> Option<(usize, &str)> {
        let text = self.text();
        let offset = offset.min(text.len());
        let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let start = text.get(..offset)?.rfind(|c: char| !is_word(c)).map_or(0, |i| i + 1);
        let end = text.get(offset..)?.find(|c: char| !is_word(c)).map_or(text.len(), |i| offset + i);
        let word = text.get(start..end)?;
        (!word.is_empty()).then_some((start, word))
    }

    /// The binding `name` refers to at `offset`: visible there, the innermost one.
    fn binding_for(&self, name: &str, offset: usize) -> Option<&Binding> {
        self.bindings
            .iter()
            .filter(|b| b.name == name && b.scope.start <= offset && offset <= b.scope.end)
            .max_by_key(|b| b.span.start)
    }

    pub(crate) fn hover(&self, offset: usize) -> Option<Hover> {
        let (_, word) = self.word_at(offset)?;
        if let Some(b) = self.binding_for(word, offset) {
            return Some(Hover::Binding(b.clone()));
        }
        if let Some(f) = FUNCTIONS.iter().find(|f| f.name == word) {
            return Some(Hover::Function(f.signature, f.doc, f.example));
        }
        KEYWORDS.iter().find(|(k, _)| *k == word).map(|(k, doc)| Hover::Keyword(k, doc))
    }

    /// Where the name at `offset` is bound.
    pub(crate) fn definition(&self, offset: usize) -> Option<Span> {
        let (_, word) = self.word_at(offset)?;
        self.binding_for(word, offset).map(|b| b.span)
    }

    /// What may be written at `offset`: the keywords the grammar accepts there, the names in scope
    /// and the functions where an expression may stand, `auth` forms, `as` types, providers.
    pub(crate) fn completion(&self, offset: usize) -> Vec<Completion> {
        let text = self.text();
        let offset = offset.min(text.len());
        let start = self.word_at(offset).map_or(offset, |(s, _)| s.min(offset));
        let Some(prefix) = text.get(..start) else { return Vec::new() };
        let previous =
            prefix.trim_end().rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
        let mut out = Vec::new();
        let keyword = |w: &str| Completion {
            label: w.to_string(),
            kind: CompletionKind::Keyword,
            detail: String::new(),
        };
        match previous {
            "as" => {
                for t in Type::NAMES {
                    out.push(Completion {
                        label: t.into(),
                        kind: CompletionKind::Keyword,
                        detail: "type".into(),
                    });
                }
                return out;
            }
            "auth" => {
                let forms = ["basic", "bearer", "header", "hmac"]
                    .into_iter()
                    .chain(Scheme::NAMES.iter().map(|(n, _)| *n));
                for f in forms {
                    out.push(Completion {
                        label: f.into(),
                        kind: CompletionKind::Keyword,
                        detail: "auth form".into(),
                    });
                }
                return out;
            }
            "sign" => {
                for (n, _) in Scheme::NAMES {
                    out.push(Completion {
                        label: n.into(),
                        kind: CompletionKind::Keyword,
                        detail: "provider".into(),
                    });
                }
                return out;
            }
            _ => {}
        }
        let expected = crate::lang::parser::expected_after(prefix);
        let expression = expected.contains(&"expression");
        for w in &expected {
            if !matches!(*w, "expression" | "name" | "auth_form") {
                out.push(keyword(w));
            }
        }
        if expression {
            let mut seen: Vec<&str> = Vec::new();
            for b in self
                .bindings
                .iter()
                .filter(|b| b.scope.start <= start && start <= b.scope.end && b.span.end <= start)
            {
                if !seen.contains(&b.name.as_str()) {
                    seen.push(&b.name);
                    out.push(Completion {
                        label: b.name.clone(),
                        kind: CompletionKind::Variable,
                        detail: b.types.clone(),
                    });
                }
            }
            for f in &FUNCTIONS {
                out.push(Completion {
                    label: f.name.into(),
                    kind: CompletionKind::Function,
                    detail: f.signature.into(),
                });
            }
            for v in ["true", "false", "null"] {
                out.push(Completion { label: v.into(), kind: CompletionKind::Value, detail: String::new() });
            }
        }
        out
    }

    /// Workflows and tests: name, whole span, name span.
    pub(crate) fn symbols(&self) -> Vec<(String, bool, Span, Span)> {
        let Some(parsed) = &self.parsed else { return Vec::new() };
        parsed
            .items
            .iter()
            .map(|i| match i {
                ast::Item::Workflow(w) => (w.name.name.clone(), true, w.span, w.name.span),
                ast::Item::Test(t) => {
                    (format!("test {}", t.name.literal().unwrap_or_default()), false, t.span, t.name.span)
                }
            })
            .collect()
    }

    /// The document as `wf fmt` writes it, when it parses.
    pub(crate) fn formatted(&self) -> Option<String> {
        let parsed = self.parsed.as_ref()?;
        Some(crate::tools::fmt::format(parsed, self.text()))
    }
}

/// Hover text of the keywords.
const KEYWORDS: &[(&str, &str)] = &[
    ("workflow", "`workflow NAME { ... }`: a webhook endpoint: its trigger, extractions and statements."),
    ("trigger", "`trigger webhook { ... }`: how the workflow is called: path, methods, auth, mode. First, once."),
    ("webhook", "`trigger webhook { ... }`: the only trigger kind."),
    ("path", "`path \"/hooks/x\"`: the URL path served (default `/api/webhook:trigger/<key>`)."),
    ("key", "`key \"k\"`: the key of the default URL path."),
    ("mode", "`mode sync` (the caller waits for `respond`) or `mode async` (answered at once, run after)."),
    ("method", "`method \"GET\" \"POST\"`: the methods served (default POST); others get 405."),
    ("allow", "`allow ip \"10.0.0.0/8\"`: only callers from these networks; others get 403."),
    ("cors", "`cors { origin \"https://app.example\" }`: answers preflights and adds access-control-allow-origin."),
    ("auth", "`auth basic|bearer|header|github|stripe|slack|shopify|standard_webhooks|twilio|hmac ...`: who may call."),
    ("extract", "`extract { name = header|query|body|request \"path\" [as TYPE] [required | default EXPR] }`."),
    ("let", "`let name = EXPR`: binds a name once; visible after it in its block."),
    ("if", "`if EXPR { } else if EXPR { } else { }`: false and null are falsy."),
    ("else", "`else { }` / `else if EXPR { }`."),
    ("respond", "`respond STATUS [text EXPR | json EXPR | { header \"N\" = EXPR ... }]`: answers and ends the execution."),
    ("log", "`log EXPR`: one log line for this execution."),
    ("http", "`http METHOD URL { header \"N\" = EXPR  json|text|form EXPR  timeout 10s  retry N }`: calls a service; `let r = http ...` keeps `{ status, headers, json, text }`. In a test, `mock http METHOD \"url\" { respond ... }`."),
    ("run", "`run \"program\" [ARGS] { env \"N\" = EXPR  stdin EXPR  dir \"d\"  timeout 60s }`: runs a program without a shell (needs `wf serve --allow-run`); `let r = run ...` keeps `{ code, stdout, stderr }`."),
    ("dedupe", "`dedupe EXPR [window 24h]`: a delivery whose key was seen within the window does not run again; it gets the first answer with x-wf-duplicate-of."),
    ("window", "`window 24h`: how long a `dedupe` key is remembered."),
    ("debounce", "`debounce EXPR for 30s [max 5m]`: a run starts that long after it was accepted unless a newer request with the same key came; the older run ends `superseded` (async workflows only)."),
    ("order", "`order by EXPR`: runs with the same key run one at a time, in the order they were accepted, across restarts and instances; a failed run ends and the next goes on (async workflows only)."),
    ("rate", "`rate N per 1s [by EXPR]`: at most N runs start in any window of that length (per key with `by`), across restarts and instances; sync callers over it get 429 with retry-after, async runs wait for a start."),
    ("per", "`rate N per D`: the window the count is for (1s to 365d)."),
    ("parallel", "`for x in EXPR parallel N { }`: up to N iterations (1 to 64) at once, each with its own `let`s; a resumed run redoes only the iterations that had not finished. No `respond` inside."),
    ("concurrency", "`concurrency N`: at most N executions at once; sync callers beyond it get 429, async runs wait."),
    ("timeout", "`timeout 10s`: per attempt for `http` (default 10s), for the whole program for `run` (default 60s)."),
    ("retry", "`retry N`: attempts after the first (at most 10) on connection errors, timeouts, 408, 429 and 5xx; waits 1s·2^n ±20% or `retry-after`."),
    ("mock", "`mock http METHOD \"url\" { respond ... | fail \"reason\" }` / `mock run \"program\" { code N stdout EXPR stderr EXPR }`: answers a test's effects; `url` may end in `*`."),
    ("fail", "`fail EXPR`: ends the execution as failed; the reason is logged, the caller gets 500."),
    ("sleep", "`sleep 15m` / `sleep EXPR` (seconds): the run waits, parked in the store when long (async workflows only)."),
    ("callback", "`let cb = callback [timeout 7d]`: a single-use URL for this run, `cb.url` (served at `/wf/callback/<token>`) and `cb.id`; wait for its call with `wait cb` (async workflows only)."),
    ("wait", "`let reply = wait cb`: the run waits, parked, until `cb.url` is called; `reply` is `{ method, headers, query, json, text, form }`, or `null` after the callback's timeout. In a test, `mock callback { json ... }` answers it."),
    ("public_key", "`auth standard_webhooks { public_key EXPR }`: Standard Webhooks' `v1a` (ed25519) signatures, checked with the sender's `whpk_` public key (or an array of them)."),
    ("test", "`test \"name\" { request ... expect ... }`: a request sent through the workflows by `wf test`."),
    ("request", "`request METHOD \"/path\" { ... }` in a test; `request \"method|path|url|ip|raw_body\"` in `extract`."),
    ("expect", "`expect EXPR`: must be true; `status`, `headers`, `text`, `json` and `calls` (the effects, in order) are bound."),
    ("header", "`header \"Name\"`: a request header (case-insensitive); in `respond`, an answer header."),
    ("query", "`query \"a[0].b\"`: the query string, parsed like Node's qs."),
    ("body", "`body \"a.b\"`: the body: JSON, form or multipart by content type; without a path, all of it."),
    ("as", "`as string|number|integer|boolean|object|array`: converts or answers 400."),
    ("required", "`required`: a missing value answers 400."),
    ("default", "`default EXPR`: the value when missing (a constant)."),
    ("in", "`a in b`: element of an array, key of an object, substring of a string."),
    ("sign", "`sign PROVIDER SECRET` in a test request: the headers that provider would send, signed now."),
    ("form", "`form { ... }` in a test request: the body, form-urlencoded."),
];

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "workflow w {\n  trigger webhook { path \"/w\" }\n  extract { amount = body \"a\" as number }\n  let cents = amount * 100\n  respond 200 json { c: cents }\n}\n";

    #[test]
    fn hover_definition_and_completion() {
        let d = Document::new("w.wf", SRC.to_string(), None);
        assert!(d.diagnostics.is_empty(), "{:?}", d.diagnostics);
        let use_of_amount = SRC.find("amount * 100").unwrap() + 2;
        let Some(Hover::Binding(b)) = d.hover(use_of_amount) else { panic!("hover") };
        assert_eq!((b.name.as_str(), b.types.as_str()), ("amount", "a number or null"));
        assert_eq!(d.definition(use_of_amount).map(|s| s.start), SRC.find("amount ="));
        assert!(matches!(d.hover(SRC.find("respond").unwrap()), Some(Hover::Keyword("respond", _))));
        let after_let = SRC.find("  respond").unwrap() + 2;
        let labels: Vec<String> = d.completion(after_let).into_iter().map(|c| c.label).collect();
        for want in ["respond", "let", "if", "log", "fail"] {
            assert!(labels.iter().any(|l| l == want), "{want} in {labels:?}");
        }
        let in_json = SRC.find("c: cents").unwrap() + 3;
        let labels: Vec<String> = d.completion(in_json).into_iter().map(|c| c.label).collect();
        assert!(
            labels.iter().any(|l| l == "cents")
                && labels.iter().any(|l| l == "amount")
                && labels.iter().any(|l| l == "len"),
            "{labels:?}"
        );
        assert_eq!(d.symbols().len(), 1);
    }

    #[test]
    fn rate_and_parallel_are_offered_and_explained() {
        let src = "workflow w {\n  trigger webhook {\n    path \"/w\"\n    \n  }\n  extract { xs = body \"xs\" as array }\n  for x in xs parallel 4 {\n    log x\n  }\n}\n";
        let d = Document::new("w.wf", src.to_string(), None);
        let in_trigger = src.find("    \n").unwrap() + 4;
        let labels: Vec<String> = d.completion(in_trigger).into_iter().map(|c| c.label).collect();
        assert!(labels.iter().any(|l| l == "rate"), "{labels:?}");
        let after_iter = src.find("parallel").unwrap();
        let labels: Vec<String> = d.completion(after_iter).into_iter().map(|c| c.label).collect();
        assert!(labels.iter().any(|l| l == "parallel"), "{labels:?}");
        assert!(matches!(d.hover(after_iter + 2), Some(Hover::Keyword("parallel", _))));
    }

    #[test]
    fn every_prefix_of_every_example_is_answered_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut previous: Option<Document> = None;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "wf") {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap();
            let cuts: Vec<usize> =
                (0..=text.len()).filter(|i| text.is_char_boundary(*i)).step_by(7).collect();
            for cut in cuts {
                let prefix = text[..cut].to_string();
                let d = Document::new("p.wf", prefix, previous.as_ref());
                let _ = (d.hover(cut), d.definition(cut), d.completion(cut), d.symbols(), d.formatted());
                let _ = d.hover(cut / 2);
                previous = Some(d);
            }
        }
    }
}
