//! `wf serve`: sockets, connections and their timeouts ([`idle_timeout`]), reloads, the async
//! queue ([`server`]) and the log writer ([`logging`]).

pub mod drain;
pub mod idle_timeout;
pub mod logging;
pub mod metrics;
pub mod protocol;
pub mod runs;
pub mod server;
