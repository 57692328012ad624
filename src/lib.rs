//! wf: webhook workflows as code.

pub mod ast;
pub mod check;
pub mod cli;
pub mod diag;
pub mod ir;
pub mod loader;
pub mod parser;
pub mod path;
pub mod scan;
