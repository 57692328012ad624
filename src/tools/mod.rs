//! The commands other than `serve`: the formatter ([`fmt`]), the test runner ([`test_runner`]),
//! the route table ([`routes`]), skeletons ([`scaffold`]), extraction inference ([`infer`]) and
//! each command's body ([`commands`]).

pub mod commands;
pub mod fmt;
pub mod graph;
pub mod infer;
pub mod lsp;
pub mod mocks;
pub mod openapi;
pub mod routes;
pub mod runs;
pub mod scaffold;
pub mod test_runner;
