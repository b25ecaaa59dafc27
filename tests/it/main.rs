//! tether's one integration test binary: real processes, real git, real sockets.

mod fake_github;
mod git_http;
mod github;
mod harness;
mod local_run;
mod runner;
