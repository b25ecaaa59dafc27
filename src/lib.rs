//! tether: self-hosted CI in which every check runs on the machine of the person who caused it.
//!
//! The code map is ARCHITECTURE.md. In short: [`core`] decides and does no I/O; every other
//! module wraps one outside technology and converts its types at the border.

pub mod access;
pub mod cli;
pub mod core;
pub mod data_dir;
pub mod engine;
pub mod exec;
pub mod github;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod net;
pub mod render;
pub mod runner;
pub mod server;
pub mod setup;
pub mod ssh;
pub mod store;
