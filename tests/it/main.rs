//! tether's one integration test binary: real processes, real git, real sockets; only GitHub is
//! faked.

mod checks;
mod fake_github;
mod flows;
mod gateway;
mod git_http;
mod github;
mod github_app;
mod github_repos;
mod harness;
mod local_run;
mod runner;
mod serve;
mod world;
