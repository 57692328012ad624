//! Integration tests: run the real `wf` binary (and its server on a loopback port).

mod answers;
mod bench_scripts;
mod check;
mod common;
mod dashboard;
mod docs;
mod effects;
mod faults;
mod graph;
mod hostile;
mod looking_back;
mod lsp;
mod operability;
mod payloads;
mod pgo_wrapper;
#[path = "../support/postgres.rs"]
mod postgres_cluster;
mod providers;
mod rate;
mod recovery;
mod secrets;
mod serve;
mod shared_store;
mod store;
mod test_cmd;
mod tools;
mod waiting;
