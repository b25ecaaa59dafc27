//! The decisions of tether, with no I/O: what `tether.toml` means, which checks an event runs,
//! what a thunk is and how it is named, how a run ends, whether to trust a host key and when to
//! reconnect.
//!
//! Everything here is plain data and pure functions, so it is tested without sockets, processes
//! or files.

pub mod auth;
pub mod backoff;
pub mod command;
pub mod config;
pub mod dispatch;
pub mod duration;
pub mod event;
pub mod fields;
pub mod filter;
pub mod host_key;
pub mod limits;
pub mod notice;
pub mod report;
pub mod retry;
pub mod run;
pub mod runner_info;
pub mod signature;
pub mod size;
pub mod steps;
pub mod thunk;

pub use config::{Check, Command, Config, ConfigError, EventKind};
pub use run::{Outcome, OutputStream, RunEvent, RunnerInfo};
pub use steps::{Step, StepKind, StepStatus};
pub use thunk::{EventContext, Thunk, ThunkId};
