//! The execution core: owns a run from the moment a request is accepted to its end. A sync
//! execution runs on its request's task and leaves a history record; an async one is kept by the
//! store before its caller is answered ([`queue`]), taken by a [`worker`], its steps journaled
//! ([`journal`]) so that a run resumed after a crash, taken over from another instance, woken
//! when a parked step is due, or retried by `wf runs retry` ([`resume`]) skips what finished,
//! and ended once ([`runs`]). Dedupe keys are claimed with the run and let go when it fails.
//! Every execution goes through a [`crate::store::Store`]; `--store memory` is one too.
//!
//! Layering: `serve/` (sockets, reload, drain) uses this; this uses `store/`, `effect/` and
//! `request/` (which turns HTTP into a frame and an answer, and interprets the workflow).

pub mod callbacks;
pub(crate) mod journal;
pub(crate) mod lines;
pub(crate) mod places;
pub(crate) mod queue;
pub(crate) mod resume;
pub(crate) mod runs;
pub(crate) mod worker;
