//! The `.wf` language, all at compile time: files are found and read ([`loader`]), pre-scanned for
//! comments ([`prescan`]), parsed ([`parser`], [`ast`]), checked and lowered ([`check`], [`types`])
//! into the compiled form ([`ir`]); every mistake is a [`diagnostic`].

pub mod ast;
pub mod builtins;
pub(crate) mod check;
pub mod diagnostic;
pub mod ir;
pub mod keywords;
pub mod loader;
pub(crate) mod moves;
pub mod parser;
pub mod path;
pub(crate) mod prescan;
pub(crate) mod quote;
pub(crate) mod types;
pub(crate) mod url;
