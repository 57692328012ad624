//! Finds `.wf` files, reads them, parses and checks them together: the one way every command
//! turns paths into a program.

use crate::lang::ast;
use crate::lang::check;
use crate::lang::diagnostic::{Diagnostic, Kind, SourceFile};
use crate::lang::ir::Program;
use crate::lang::parser;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything read from the given paths.
pub struct Loaded {
    /// How many files were read.
    pub files: usize,
    pub sources: Vec<(Arc<SourceFile>, ast::File)>,
    /// Usable only when `diagnostics` holds no error.
    pub program: Program,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.iter().filter(|d| !d.is_error()).count()
    }
}

/// Expands files and directories (recursively, sorted, skipping what `.gitignore` ignores) into
/// `.wf` files. A missing path is an I/O error (exit 2), so is a directory that cannot be read.
pub fn find_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {}", p.display(), e))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    // One file given twice (two spellings, a symlink) is read once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(out)
}

/// The `.wf` files under `dir`, in path order: what `.gitignore` (and `.ignore`) files there
/// ignore is skipped, git repository or not, as are hidden entries, `target`, `node_modules` and
/// symlinked directories (a link to `.` or `..` would walk for ever or read the same files twice).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(true)
        .git_ignore(true)
        .git_exclude(false)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_path(|a, b| a.cmp(b))
        .filter_entry(|e| !matches!(e.file_name().to_str(), Some("target" | "node_modules")))
        .build();
    for entry in walker {
        let entry = entry.map_err(|e| format!("{}: {}", dir.display(), e))?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "wf") && path.is_file() {
            out.push(path.to_path_buf());
        }
    }
    Ok(())
}

/// Reads one file; invalid UTF-8 becomes a diagnostic at the first bad byte.
pub fn read_source(path: &Path) -> Result<(Arc<SourceFile>, Option<Diagnostic>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {}", path.display(), e))?;
    Ok(source_from_bytes(path.display().to_string(), bytes))
}

/// Turns a file's bytes into source text; invalid UTF-8 becomes a diagnostic at the first bad
/// byte (the text is kept, with replacement characters, so the diagnostic can show the line).
pub fn source_from_bytes(name: String, bytes: Vec<u8>) -> (Arc<SourceFile>, Option<Diagnostic>) {
    match String::from_utf8(bytes) {
        Ok(text) => (SourceFile::new(name, text), None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            // The lossy text has U+FFFD (3 bytes) where the bad byte was: point at all of it.
            let end = text.get(at..).and_then(|t| t.chars().next()).map_or(at, |c| at + c.len_utf8());
            let file = SourceFile::new(name, text);
            let d = Diagnostic::new(
                Kind::InvalidUtf8,
                &file,
                crate::lang::ast::Span::new(at, end),
                "the file is not valid UTF-8",
            )
            .label("invalid byte here")
            .help("save the file as UTF-8 text");
            (file, Some(d))
        }
    }
}

/// Reads, parses and checks every file under `paths`.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, String> {
    let files = find_files(paths)?;
    let mut texts = Vec::new();
    for f in &files {
        texts.push(read_source(f)?);
    }
    Ok(load_sources(texts))
}

/// Parses and checks sources already in memory.
pub fn load_sources(texts: Vec<(Arc<SourceFile>, Option<Diagnostic>)>) -> Loaded {
    let mut diagnostics = Vec::new();
    let mut sources = Vec::new();
    // Names bound on lines a syntax error took out: their uses are not errors of their own.
    let mut lost: Vec<(Arc<SourceFile>, String)> = Vec::new();
    let files = texts.len();
    for (file, bad) in texts {
        if let Some(d) = bad {
            diagnostics.push(d);
            continue;
        }
        // Every syntax error, and the checker's errors in the rest of the file.
        let (ast, errors, bound) = parser::parse_recovering(&file);
        diagnostics.extend(errors);
        lost.extend(bound.into_iter().map(|name| (file.clone(), name)));
        if let Some(ast) = ast {
            sources.push((file, ast));
        }
    }
    let (program, more) = check::check(&sources);
    diagnostics.extend(more.into_iter().filter(|d| {
        d.kind != crate::lang::diagnostic::Kind::UnknownVariable
            || !lost.iter().any(|(f, name)| {
                Arc::ptr_eq(f, &d.primary.file) && d.message == format!("unknown variable `{name}`")
            })
    }));
    diagnostics.sort_by_key(|d| d.sort_key());
    Loaded { files, sources, program, diagnostics }
}

/// Checks source text given in memory (tests and tools).
pub fn load_str(name: &str, text: &str) -> Loaded {
    load_sources(vec![(SourceFile::new(name, text), None)])
}
