//! tether's one integration test binary: real processes, real git, real sockets; only GitHub is
//! faked.

mod browser;
mod checks;
mod connect;
mod data_files;
mod fake_github;
mod flows;
mod gateway;
mod gateway_connect;
mod gateway_forwards;
mod gateway_keys;
mod git_http;
mod github;
mod github_app;
mod github_repos;
mod harness;
mod limits;
mod live;
mod local_run;
mod log_pages;
mod runner;
mod serve;
mod shutdown;
mod sshd;
mod world;
