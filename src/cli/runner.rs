//! `tether runner --listen PATH`: serves the runner protocol on a socket.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::exec::container::Engine;
use crate::exec::secrets::Secrets;
use crate::exec::{ExecConfig, Executor};
use crate::runner::service::RunnerIdentity;
use crate::runner::{ListenAddr, RunnerService, serve};

#[derive(Args)]
pub struct RunnerArgs {
    /// Serve gRPC on this Unix socket, or on tcp:HOST:PORT; connect it with `ssh -R`.
    #[arg(long, env = "TETHER_LISTEN", value_name = "PATH")]
    listen: ListenAddr,
    /// The runner's name (default: the hostname).
    #[arg(long, env = "TETHER_NAME")]
    name: Option<String>,
    /// Labels checks can require, comma-separated.
    #[arg(long, env = "TETHER_LABELS", value_delimiter = ',')]
    labels: Vec<String>,
    /// Runs at once; more are refused.
    #[arg(long, env = "TETHER_MAX_RUNS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    max_runs: u32,
    /// Git caches and per-run checkouts (default: tether under the user's cache directory).
    #[arg(long, env = "TETHER_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// A TOML file of secrets: NAME = "value", or [NAME] with value, repos and events.
    #[arg(long, env = "TETHER_SECRETS", value_name = "FILE")]
    secrets: Option<PathBuf>,
}

pub async fn main(args: RunnerArgs) -> anyhow::Result<()> {
    let name = match args.name {
        Some(name) => name,
        None => nix::unistd::gethostname()
            .context("reading the hostname; pass --name")?
            .to_string_lossy()
            .into_owned(),
    };
    let secrets = match &args.secrets {
        Some(path) => Secrets::load(path)?,
        None => Secrets::default(),
    };
    let config = ExecConfig {
        work_dir: args.work_dir.unwrap_or_else(|| super::default_work_dir().join("runner")),
        max_runs: args.max_runs as usize,
        secrets,
        engine: Engine::find(std::env::var_os("PATH").as_ref()),
    };
    let executor = Executor::new(config)?;
    let labels: Vec<String> = args.labels.into_iter().filter(|l| !l.is_empty()).collect();
    let service = RunnerService::new(RunnerIdentity { name: name.clone(), labels }, executor);
    let shutdown = super::shutdown_signal();
    let bound = args.listen.bind().await?;
    println!(
        "tether runner {name} listening on {} (runs at once: {})",
        bound.describe(),
        args.max_runs
    );
    serve(bound, service, shutdown).await
}
