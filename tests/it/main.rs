//! tether's one integration test binary: real processes, real git, real sockets.

mod gateway;
mod git_http;
mod harness;
mod local_run;
mod runner;
mod serve;
