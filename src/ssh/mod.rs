//! SSH (russh): the gateway that developers' runners connect to, and the host key. No other
//! module sees a russh type.

pub mod host_key;
pub mod server;
