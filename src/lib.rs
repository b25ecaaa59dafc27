//! tether: self-hosted CI in which every check runs on the machine of the person who caused it.
//!
//! The code map is ARCHITECTURE.md. In short: [`core`] decides and does no I/O; every other
//! module wraps one outside technology and converts its types at the border.

pub mod cli;
pub mod core;
pub mod exec;
pub mod runner;
pub mod ssh;
