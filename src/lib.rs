//! wf: webhook workflows as code.

pub mod ast;
pub mod diag;
pub mod parser;
pub mod scan;
