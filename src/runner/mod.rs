//! The runner protocol (gRPC with tonic and prost): the service a runner serves, the client the
//! server and the tests use, and the conversions between protobuf and tether's own types. No
//! other module sees a generated type.

pub mod client;
mod convert;
pub mod listen;
pub mod service;

/// The protocol version this build speaks (`tether.runner.v1`).
pub const PROTOCOL_VERSION: u32 = 1;

#[allow(clippy::all, missing_docs)]
mod proto {
    tonic::include_proto!("tether.runner.v1");
}

pub use client::{RunnerClient, RunnerError};
pub use listen::{ListenAddr, serve, serve_streams};
pub use service::RunnerService;
