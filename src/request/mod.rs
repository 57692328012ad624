//! One request in, one answer out, per request: the served table ([`served`]) built once per load,
//! then for each request [`handle`] reads the body ([`body`]) and query ([`qs`]) that the workflow's
//! [`plan`] names, fills its slots ([`extract`]) and runs the interpreter ([`eval`], [`value`]).

pub mod body;
pub(crate) mod body_memory;
pub(crate) mod caller;
pub(crate) mod eval;
pub mod extract;
pub mod form;
pub(crate) mod functions;
pub mod handle;
pub(crate) mod id;
pub(crate) mod outcome;
pub(crate) mod plan;
pub mod qs;
pub(crate) mod received;
pub(crate) mod rejection;
pub mod served;
pub mod signature;
pub(crate) mod step;
pub(crate) mod value;
