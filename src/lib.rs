//! wf: webhook workflows as code.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod ast;
pub mod body;
pub mod check;
pub mod cli;
pub mod diag;
pub mod eval;
pub mod extract;
pub mod fmt;
pub mod http;
pub mod idle;
pub mod infer;
pub mod ir;
pub mod loader;
pub mod logging;
pub mod ops;
pub mod parser;
pub mod path;
pub mod qs;
pub mod router;
pub mod routes;
pub mod scaffold;
pub mod scan;
pub mod server;
pub mod test_runner;
