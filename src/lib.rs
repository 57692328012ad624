//! wf: webhook workflows as code.
//!
//! The layers, each depending only on those below it:
//! - [`cli`]: the command line (clap definitions only);
//! - [`tools`], [`serve`] and `dashboard`: each command's body, the HTTP server with its sockets
//!   and logs, and the pages its admin listener serves;
//! - [`effect`]: `http` calls and `run` of programs performed for real (for `serve`);
//! - `exec`: the execution core: a run from accept to end (queue, workers, journal, parking,
//!   resuming, retries, dedupe);
//! - [`store`]: what `serve` keeps: accepted runs, journaled steps, dedupe keys, history;
//! - [`request`]: one request in, one answer out (served table, body, query, extraction, interpreter);
//! - [`lang`]: the `.wf` language (parser, checker, types, compiled form, diagnostics).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::string_slice
    )
)]
#![deny(unreachable_pub)]

pub mod cli;
pub mod dashboard;
pub(crate) mod effect;
pub mod exec;
pub mod lang;
pub mod request;
pub(crate) mod serve;
pub(crate) mod store;
pub mod tools;

/// Reads arbitrary bytes as the embedded store reads a history row, however damaged (the fuzz
/// target `history_row`): how many records, requests of even ids and requests came back.
#[doc(hidden)]
pub fn read_history_row(bytes: &[u8]) -> (usize, usize, usize) {
    store::sqlite::read_history_row(bytes)
}
