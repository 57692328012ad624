//! `wf serve`: sockets, connections and their timeouts ([`idle_timeout`]), reloads, the async
//! queue ([`server`]) and the log writer ([`logging`]).

pub(crate) mod callback;
pub(crate) mod drain;
pub(crate) mod idle_timeout;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod protocol;
pub(crate) mod server;
