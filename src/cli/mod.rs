//! The command line: parses flags (each also read from `TETHER_<FLAG>`) and starts the command.

mod local;
mod runner;
mod serve;
mod summary;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tether",
    version,
    about = "CI in which every check runs on the machine of the person who caused it"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// The server: SSH gateway, HTTP (webhooks, pages, API), dispatcher.
    Serve(Box<serve::ServeArgs>),
    /// Run checks on this machine for a tether server: connect to it over SSH (--connect), or
    /// listen on a socket for `ssh -R` to forward (--listen).
    Runner(Box<runner::RunnerArgs>),
    /// Run the checks of ./tether.toml on this machine, at the current commit, with no server.
    Run(local::RunArgs),
}

/// The open files limit assumed when it cannot be read: the usual default soft limit.
const FILE_LIMIT_UNKNOWN: u64 = 1024;

/// Runs the command line; the binary's `main` is only this.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // Before the runtime and anything else that could create a file or hold a socket.
    let file_limit = matches!(cli.command, Commands::Serve(_)).then(serve::prepare_process);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tether: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Commands::Serve(args) => {
                report(serve::main(*args, file_limit.unwrap_or(FILE_LIMIT_UNKNOWN)).await)
            }
            Commands::Runner(args) => report(runner::main(*args).await),
            Commands::Run(args) => local::main(args).await,
        }
    })
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TETHER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person: logs in files and tests stay greppable.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Installs the SIGTERM and Ctrl-C handlers now, and returns a future that resolves on either.
/// Installing before the caller announces that it is ready means a signal sent right after that
/// announcement is never lost.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    }
}

/// Parses `--pass-env NAME`: the name of a variable of the runner that checks also get.
fn parse_pass_env(name: &str) -> Result<String, String> {
    if crate::core::fields::is_env_name(name) {
        Ok(name.to_string())
    } else {
        Err(format!("`{name}` is not a variable name: use letters, digits and '_'"))
    }
}

/// The default work dir: `tether` under the user's cache directory.
fn default_work_dir() -> std::path::PathBuf {
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("tether")
}
