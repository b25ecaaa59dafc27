//! `tether runner`: serves the runner protocol on a socket (`--listen`) or through an SSH
//! connection to the server (`--connect`), and shuts down without cutting runs short.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgGroup, Args};
use tokio::sync::oneshot;

use crate::core::duration;
use crate::core::host_key::parse_fingerprint;
use crate::core::runner_info::{check_labels, check_runner_name};
use crate::exec::container::Engine;
use crate::exec::secrets::Secrets;
use crate::exec::{ExecConfig, Executor};
use crate::runner::service::{Feedback, Notice, RunnerIdentity};
use crate::runner::{ListenAddr, RunnerService, serve, serve_streams};
use crate::ssh::client::{Client, ClientConfig, ConnectTarget};

/// After SIGTERM or Ctrl-C, how long runs in flight may go on before they are cancelled.
const RUNNER_SHUTDOWN_GRACE: Duration = Duration::from_secs(10 * 60);
/// After the last run, how long the server gets to read its final events and hang up.
const SERVER_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Args)]
#[command(group(ArgGroup::new("serve").required(true).args(["listen", "connect"])))]
pub struct RunnerArgs {
    /// Serve gRPC on this Unix socket, or on tcp:HOST:PORT; connect it with `ssh -R`.
    #[arg(long, env = "TETHER_LISTEN", value_name = "PATH")]
    listen: Option<ListenAddr>,
    /// Connect to a tether server as this GitHub login (default port 6455) and serve through it.
    #[arg(long, env = "TETHER_CONNECT", value_name = "LOGIN@HOST[:PORT]")]
    connect: Option<ConnectTarget>,
    /// The one SSH key to log in with (default: ssh-agent's, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa).
    #[arg(long, env = "TETHER_IDENTITY", value_name = "FILE", conflicts_with = "listen")]
    identity: Option<PathBuf>,
    /// Trust the server's host key the first time, and record it in the known hosts file.
    #[arg(long, env = "TETHER_ACCEPT_NEW_HOST_KEY")]
    accept_new_host_key: bool,
    /// Trust the server's host key if it has this fingerprint (as `ssh-keygen -l` prints it).
    #[arg(long, env = "TETHER_HOST_KEY_FINGERPRINT", value_name = "SHA256:…", value_parser = parse_fingerprint, conflicts_with = "listen")]
    host_key_fingerprint: Option<String>,
    /// The known hosts file (default: ~/.ssh/known_hosts).
    #[arg(long, env = "TETHER_KNOWN_HOSTS", value_name = "FILE", conflicts_with = "listen")]
    known_hosts: Option<PathBuf>,
    /// On SIGTERM or Ctrl-C, how long runs in flight may go on before they are cancelled.
    #[arg(long, env = "TETHER_SHUTDOWN_GRACE", value_name = "DURATION", value_parser = duration::parse)]
    shutdown_grace: Option<Duration>,
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
    /// A variable of this runner's environment that checks also get (repeat, or comma-separate);
    /// by default only PATH, HOME, USER, LOGNAME, SHELL, LANG, LC_*, TZ and TMPDIR.
    #[arg(long, env = "TETHER_PASS_ENV", value_name = "NAME", value_delimiter = ',', value_parser = super::parse_pass_env)]
    pass_env: Vec<String>,
}

pub async fn main(args: RunnerArgs) -> anyhow::Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => nix::unistd::gethostname()
            .context("reading the hostname; pass --name")?
            .to_string_lossy()
            .into_owned(),
    };
    let which = if args.name.is_none() { "the hostname; pass --name" } else { "--name" };
    check_runner_name(&name).map_err(anyhow::Error::msg).context(which)?;
    let labels: Vec<String> = args.labels.iter().filter(|l| !l.is_empty()).cloned().collect();
    check_labels(&labels).map_err(anyhow::Error::msg).context("--labels")?;
    let executor = executor(&args)?;
    let identity = RunnerIdentity { name: name.clone(), labels };
    let service = RunnerService::new(identity, executor.clone()).with_feedback(feedback(&name));
    let grace = args.shutdown_grace.unwrap_or(RUNNER_SHUTDOWN_GRACE);
    match (&args.listen, &args.connect) {
        (Some(addr), _) => listen(addr, &name, args.max_runs, service, &executor, grace).await,
        (None, Some(target)) => {
            let config = client_config(&args, target.clone(), name)?;
            connect(config, service, &executor, grace).await
        }
        (None, None) => bail!("pass --listen PATH or --connect LOGIN@HOST"),
    }
}

/// Serves on a socket until a signal.
async fn listen(
    addr: &ListenAddr,
    name: &str,
    max_runs: u32,
    service: RunnerService,
    executor: &Executor,
    grace: Duration,
) -> anyhow::Result<()> {
    // Installed before the announcement, so that a signal right after it is not lost.
    let signal = super::shutdown_signal();
    let bound = addr.bind().await?;
    println!("tether runner {name} listening on {} (runs at once: {max_runs})", bound.describe());
    let (stop_serving, stopped) = oneshot::channel();
    let mut server = tokio::spawn(serve(bound, service, async {
        let _ = stopped.await;
    }));
    tokio::select! {
        () = signal => {}
        result = &mut server => return result?,
    }
    drain(executor, grace, stop_serving).await;
    let result = finish_serving(server).await;
    say("tether runner stopped");
    result
}

fn executor(args: &RunnerArgs) -> anyhow::Result<Executor> {
    let secrets = match &args.secrets {
        Some(path) => Secrets::load(path)?,
        None => Secrets::default(),
    };
    Executor::new(ExecConfig {
        work_dir: args.work_dir.clone().unwrap_or_else(|| super::default_work_dir().join("runner")),
        max_runs: args.max_runs as usize,
        secrets,
        engine: Engine::find(std::env::var_os("PATH").as_ref()),
        pass_env: args.pass_env.clone(),
    })
}

fn client_config(
    args: &RunnerArgs,
    target: ConnectTarget,
    runner_name: String,
) -> anyhow::Result<ClientConfig> {
    let known_hosts = match &args.known_hosts {
        Some(path) => path.clone(),
        None => dirs::home_dir()
            .context("no home directory for ~/.ssh/known_hosts; pass --known-hosts")?
            .join(".ssh")
            .join("known_hosts"),
    };
    Ok(ClientConfig {
        target,
        runner_name,
        identity: args.identity.clone(),
        known_hosts,
        accept_new_host_key: args.accept_new_host_key,
        host_key_fingerprint: args.host_key_fingerprint.clone(),
    })
}

/// Serves through the SSH client until a signal, or until the client gives up for good.
async fn connect(
    config: ClientConfig,
    service: RunnerService,
    executor: &Executor,
    grace: Duration,
) -> anyhow::Result<()> {
    let signal = super::shutdown_signal();
    let (mut client, channels) = Client::start(config).await?;
    let (stop_serving, stopped) = oneshot::channel();
    let mut server = tokio::spawn(serve_streams(service, channels, async {
        let _ = stopped.await;
    }));
    tokio::select! {
        error = client.failed() => return Err(error.into()),
        () = signal => {}
        result = &mut server => {
            // The channels end only when the client gave up: its reason is the one to tell.
            result??;
            return Err(client.failed().await.into());
        }
    }
    client.stop_forwarding();
    drain(executor, grace, stop_serving).await;
    let result = finish_serving(server).await;
    client.disconnect().await;
    say("tether runner stopped");
    result
}

/// Takes no new runs, lets the runs in flight finish for `grace` (or until a second signal),
/// then cancels what is left and waits until its processes are gone. Says so on stdout, next
/// to the line that said it started.
async fn drain(executor: &Executor, grace: Duration, stop_serving: oneshot::Sender<()>) {
    executor.close();
    let _ = stop_serving.send(());
    let grace_text = duration::format(grace);
    say(&match executor.in_flight() {
        0 => "tether runner stopping".to_string(),
        n => format!("tether runner stopping: waiting up to {grace_text} for {n} run(s) to finish"),
    });
    let second_signal = tokio::select! {
        idle = executor.wait_idle_for(grace) => {
            if idle {
                return;
            }
            false
        }
        () = super::shutdown_signal() => true,
    };
    let why = if second_signal {
        "at a second signal".to_string()
    } else {
        format!("still going after {grace_text}")
    };
    say(&format!("tether runner cancelling {} run(s) {why}", executor.in_flight()));
    executor.cancel_all();
    executor.wait_idle().await;
}

/// Prints what the service notices: the server's first call, each run's start and end.
fn feedback(name: &str) -> Feedback {
    let name = name.to_string();
    Arc::new(move |notice| match notice {
        Notice::FirstCall => say(&format!(
            "tether runner {name}: the server reached this runner; its runs show here"
        )),
        Notice::RunStarted(title) => say(&title.started_line()),
        Notice::RunEnded(title, ending) => say(&title.ended_line(&ending)),
    })
}

/// One line on stdout; a closed stdout is no reason to fail.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Gives the server a moment to read the last events and hang up; then stops serving anyway.
async fn finish_serving(server: tokio::task::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    match tokio::time::timeout(SERVER_CLOSE_TIMEOUT, server).await {
        Ok(result) => result?,
        Err(_) => Ok(()),
    }
}
