//! One request in, one answer out, per request: the served table ([`served`]) built once per load,
//! then for each request [`handle`] reads the body ([`body`]) and query ([`qs`]) that the workflow's
//! [`plan`] names, fills its slots ([`extract`]) and runs the interpreter ([`eval`], [`value`]).

pub mod body;
pub mod body_memory;
pub mod caller;
pub mod effects;
pub mod eval;
pub mod extract;
pub mod form;
pub mod functions;
pub mod handle;
pub mod outcome;
pub mod plan;
pub mod qs;
pub mod served;
pub mod signature;
pub mod step;
pub mod value;
