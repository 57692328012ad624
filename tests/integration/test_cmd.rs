//! `wf test`, through the real binary.
