//! The commands other than `serve`: the formatter ([`fmt`]), the test runner ([`test_runner`]),
//! the route table ([`routes`]), skeletons ([`scaffold`]), extraction inference ([`infer`]) and
//! each command's body ([`commands`]).

pub(crate) mod commands;
pub(crate) mod export;
pub mod fmt;
pub(crate) mod graph;
pub(crate) mod infer;
pub mod lsp;
pub(crate) mod mocks;
pub(crate) mod openapi;
pub(crate) mod replay;
pub(crate) mod routes;
pub(crate) mod runs;
pub(crate) mod scaffold;
pub(crate) mod send;
pub(crate) mod test_runner;
