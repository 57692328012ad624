//! Diagnostics as data: every error and warning wf reports, rendered at the edge (miette or JSON).

mod kind;

pub use kind::Kind;

use crate::lang::ast::Span;
use std::fmt;
use std::sync::Arc;

/// One source file as read from disk, with its line index.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it (shown in diagnostics).
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Arc::new(SourceFile { name: name.into(), text, line_starts })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let col = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }

    /// Byte length of the line holding `offset`.
    fn line_len(&self, offset: usize) -> usize {
        let (line, _) = self.line_col(offset);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let end = self.line_starts.get(line).copied().unwrap_or(self.text.len());
        end - start
    }

    /// `name:line:col` of an offset.
    pub fn location(&self, offset: usize) -> String {
        let (line, col) = self.line_col(offset);
        format!("{}:{}:{}", self.name, line, col)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug)]
pub struct Label {
    pub file: Arc<SourceFile>,
    pub span: Span,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub kind: Kind,
    /// Stable code, e.g. `wf::unknown-variable` (the kind's).
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    /// Set where the place that raises it knows better than the kind's help.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic of `kind` (its severity is the kind's).
    pub fn new(kind: Kind, file: &Arc<SourceFile>, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            kind,
            code: kind.code(),
            severity: kind.severity(),
            message: message.into(),
            primary: Label { file: file.clone(), span, text: String::new() },
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn label(mut self, text: impl Into<String>) -> Self {
        self.primary.text = text.into();
        self
    }

    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help = Some(text.into());
        self
    }

    pub fn also(mut self, file: &Arc<SourceFile>, span: Span, text: impl Into<String>) -> Self {
        self.secondary.push(Label { file: file.clone(), span, text: text.into() });
        self
    }

    pub fn set_label(&mut self, text: impl Into<String>) -> &mut Self {
        self.primary.text = text.into();
        self
    }

    pub fn set_help(&mut self, text: impl Into<String>) -> &mut Self {
        self.help = Some(text.into());
        self
    }

    /// The help line: the one set here, else the kind's.
    pub fn help_text(&self) -> &str {
        self.help.as_deref().unwrap_or(self.kind.help())
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Sort key: file, then position.
    pub fn sort_key(&self) -> (String, usize, usize) {
        (self.primary.file.name.clone(), self.primary.span.start, self.primary.span.end)
    }

    /// The diagnostic as one JSON object (for `--format json`).
    pub fn to_json(&self) -> serde_json::Value {
        let file = &self.primary.file;
        let (line, column) = file.line_col(self.primary.span.start);
        let (end_line, end_column) = file.line_col(self.primary.span.end);
        serde_json::json!({
            "file": file.name,
            "line": line,
            "column": column,
            "end": { "line": end_line, "column": end_column },
            "code": self.code,
            "severity": match self.severity { Severity::Error => "error", Severity::Warning => "warning" },
            "message": self.message,
            "label": self.primary.text,
            "help": self.help_text(),
        })
    }
}

/// Renders diagnostics for people: miette's graphical report, without colour unless `color`.
pub fn render_human(diags: &[Diagnostic], color: bool) -> String {
    let theme =
        if color { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut out = String::new();
    for d in diags {
        let report = Report::new(d);
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!("{}: {}\n", d.primary.file.location(d.primary.span.start), d.message));
        }
    }
    out
}

/// Longest line shown as a source excerpt; longer lines are reported by location only.
const MAX_EXCERPT_LINE: usize = 400;

/// Adapts a [`Diagnostic`] to miette; labels in other files become related reports.
struct Report<'a> {
    d: &'a Diagnostic,
    source: Option<miette::NamedSource<Src>>,
    related: Vec<Related>,
}

impl<'a> Report<'a> {
    fn new(d: &'a Diagnostic) -> Self {
        let file = &d.primary.file;
        let related = d
            .secondary
            .iter()
            .filter(|l| !Arc::ptr_eq(&l.file, file))
            .map(|l| Related { label: l.clone(), source: named(&l.file) })
            .collect();
        let source = (file.line_len(d.primary.span.start) <= MAX_EXCERPT_LINE).then(|| named(file));
        Report { d, source, related }
    }
}

fn named(file: &Arc<SourceFile>) -> miette::NamedSource<Src> {
    miette::NamedSource::new(file.name.clone(), Src(file.clone()))
}

fn labeled(l: &Label, primary: bool) -> miette::LabeledSpan {
    let len = l.span.end.saturating_sub(l.span.start);
    let text = (!l.text.is_empty()).then(|| l.text.clone());
    if primary {
        miette::LabeledSpan::new_primary_with_span(text, (l.span.start, len))
    } else {
        miette::LabeledSpan::new_with_span(text, (l.span.start, len))
    }
}

struct Src(Arc<SourceFile>);

impl miette::SourceCode for Src {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        self.0.text.as_str().read_span(span, before, after)
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.d.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.source.is_none() {
            write!(f, "{}: ", self.d.primary.file.location(self.d.primary.span.start))?;
        }
        f.write_str(&self.d.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.d.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.d.help_text()))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let file = &self.d.primary.file;
        let same = self.d.secondary.iter().filter(move |l| Arc::ptr_eq(&l.file, file));
        Some(Box::new(std::iter::once(labeled(&self.d.primary, true)).chain(same.map(|l| labeled(l, false)))))
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn miette::Diagnostic> + 'b>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
    }
}

/// A label that lives in another file than its diagnostic's primary label.
struct Related {
    label: Label,
    source: miette::NamedSource<Src>,
}

impl fmt::Debug for Related {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label.text)
    }
}

impl fmt::Display for Related {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label.text)
    }
}

impl std::error::Error for Related {}

impl miette::Diagnostic for Related {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Advice)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(labeled(&self.label, true))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let f = SourceFile::new("a.wf", "ab\ncé d\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(7), (2, 4));
        assert_eq!(f.line_col(100), (3, 1));
    }
}
