//! SSH (russh): the client that carries a runner to its server; no other module sees a russh type.

pub mod client;
mod identity;
mod known_hosts;
mod session;
