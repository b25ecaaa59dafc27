//! tether's one integration test binary: real processes, real git, real sockets.

mod connect;
mod git_http;
mod harness;
mod local_run;
mod runner;
mod shutdown;
mod sshd;
