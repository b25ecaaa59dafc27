//! SSH (russh): the gateway that developers' runners connect to, its host key, and the client
//! that carries a runner to its server. No other module sees a russh type.

pub mod client;
pub mod host_key;
mod identity;
mod known_hosts;
pub mod server;
mod session;
