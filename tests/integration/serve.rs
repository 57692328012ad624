//! `wf serve`, through a real socket.
