//! `tether run [CHECK…]`: the checks of `./tether.toml`, at HEAD, on this machine, with an
//! in-process runner and no server.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::Args;

use super::summary::{CheckResult, summary, use_colour};
use crate::core::run::Finished;
use crate::core::{Check, Config, EventContext, Outcome, OutputStream, RunEvent, Thunk};
use crate::exec::container::Engine;
use crate::exec::secrets::{LOCAL_EVENT, Secrets};
use crate::exec::{ExecConfig, Executor, RunSpec};

/// Exit status for a bad `tether.toml`, an unknown check or no repository.
const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C, as shells report a SIGINT.
const EXIT_INTERRUPTED: u8 = 130;
/// Prefix colours on a terminal, one per check in turn.
const PREFIX_COLOURS: &[&str] = &["36", "35", "33", "32", "34", "96", "95", "93"];

#[derive(Args)]
pub struct RunArgs {
    /// Checks to run (default: all of them).
    checks: Vec<String>,
    /// Git caches and checkouts (default: tether under the user's cache directory).
    #[arg(long, env = "TETHER_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// A secrets file, as for `tether runner`; every secret a check names is given to it.
    #[arg(long, env = "TETHER_SECRETS", value_name = "FILE")]
    secrets: Option<PathBuf>,
    /// A variable of your environment that the checks also get, as for `tether runner`.
    #[arg(long, env = "TETHER_PASS_ENV", value_name = "NAME", value_delimiter = ',', value_parser = super::parse_pass_env)]
    pass_env: Vec<String>,
}

/// What `prepare` found to do: runs to start, and checks that fail before they start.
struct Plan {
    executor: Executor,
    specs: Vec<RunSpec>,
    /// Checks that cannot run, with the reason (a secret they name is missing).
    refused: Vec<CheckResult>,
}

pub async fn main(args: RunArgs) -> ExitCode {
    let Plan { executor, specs, refused } = match prepare(&args).await {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("tether: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let colour = use_colour(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR"));
    let width = specs.iter().map(|s| s.thunk.check.chars().count()).max().unwrap_or(0);
    let out = Arc::new(Printer::new(colour, width));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, spec) in specs.into_iter().enumerate() {
        let events = executor.start(spec.clone()).expect("one slot per check");
        tasks.spawn(follow(spec.thunk.check.clone(), index, events, out.clone()));
    }
    let mut results = refused;
    let interrupted = tokio::select! {
        () = async { while let Some(Ok(result)) = tasks.join_next().await { results.push(result) } } => false,
        () = super::shutdown_signal() => true,
    };
    if interrupted {
        // Dropping the readers cancels the runs; wait until their processes are gone.
        tasks.abort_all();
        eprintln!("tether: interrupted; stopping the checks");
        executor.wait_idle().await;
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    results.sort_by_key(|r| r.check.clone());
    print!("\n{}", summary(&results, colour));
    if results.iter().all(CheckResult::passed) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Reads the config, finds HEAD and builds one run per selected check.
async fn prepare(args: &RunArgs) -> anyhow::Result<Plan> {
    let root = git_output(Path::new("."), &["rev-parse", "--show-toplevel"])
        .await
        .context("tether run works inside a git repository")?;
    let root = PathBuf::from(root);
    let text = std::fs::read_to_string(root.join(CONFIG_FILE))
        .with_context(|| format!("reading {}", root.join(CONFIG_FILE).display()))?;
    let config = Config::parse(&text)?;
    let checks = select(&config, &args.checks)?;
    let commit = git_output(&root, &["rev-parse", "HEAD"])
        .await
        .context("finding HEAD; is there a commit?")?;
    warn_if_dirty(&root, &commit).await;
    let secrets = match &args.secrets {
        Some(path) => Secrets::load(path)?,
        None => Secrets::default(),
    };
    let (specs, refused) = plan_runs(&root, &commit, checks, &secrets, args.secrets.as_deref());
    let executor = Executor::new(ExecConfig {
        work_dir: args.work_dir.clone().unwrap_or_else(|| super::default_work_dir().join("local")),
        max_runs: specs.len().max(1),
        secrets,
        engine: Engine::find(std::env::var_os("PATH").as_ref()),
        pass_env: args.pass_env.clone(),
    })?;
    Ok(Plan { executor, specs, refused })
}

/// One run per check at `commit`, or, for a check whose secrets `secrets` lacks, its failure.
fn plan_runs(
    root: &Path,
    commit: &str,
    checks: Vec<&Check>,
    secrets: &Secrets,
    secrets_file: Option<&Path>,
) -> (Vec<RunSpec>, Vec<CheckResult>) {
    let clone_url = format!("file://{}", root.display());
    let repo = root
        .file_name()
        .map_or_else(|| "local".into(), |n| format!("local/{}", n.to_string_lossy()));
    let event = EventContext { kind: LOCAL_EVENT.into(), repo };
    let (mut specs, mut refused) = (Vec::new(), Vec::new());
    for check in checks {
        let missing = secrets.grant(&check.secrets, &event).withheld;
        if let Some(reason) = missing_secrets(&missing, secrets_file) {
            refused.push(refusal(&check.name, reason));
            continue;
        }
        specs.push(RunSpec {
            thunk: Thunk::new(check, commit, &clone_url),
            clone_token: None,
            run_id: format!("local-{}", check.name),
            event: event.clone(),
        });
    }
    (specs, refused)
}

/// The project file, at the root of the repository.
const CONFIG_FILE: &str = "tether.toml";

/// The checks named (each once, in the order first given), or all of them; an unknown name is
/// an error that lists the checks there are.
fn select<'a>(config: &'a Config, names: &[String]) -> anyhow::Result<Vec<&'a Check>> {
    if config.checks.is_empty() {
        bail!("tether.toml has no checks");
    }
    if names.is_empty() {
        return Ok(config.checks.values().collect());
    }
    let mut unique: Vec<String> = Vec::new();
    for name in names {
        if !unique.contains(name) {
            unique.push(name.clone());
        }
    }
    config.select(&unique).map_err(|unknown| {
        let known: Vec<&str> = config.checks.keys().map(String::as_str).collect();
        anyhow::anyhow!("{unknown}; its checks are: {}", known.join(", "))
    })
}

/// Says so when files other than tether.toml (which is read from the working tree) differ
/// from the commit that runs.
async fn warn_if_dirty(root: &Path, commit: &str) {
    let exclude = format!(":(exclude){CONFIG_FILE}");
    let status = ["status", "--porcelain", "--untracked-files=no", "--", ".", exclude.as_str()];
    let dirty = git_output(root, &status).await.unwrap_or_default();
    if !dirty.is_empty() {
        eprintln!(
            "tether: running the committed tree at {}; uncommitted changes are not included",
            &commit[..12]
        );
    }
}

/// Why a check cannot run for want of secrets; `None` when it has them all.
fn missing_secrets(missing: &[String], file: Option<&Path>) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let names = missing.join(", ");
    Some(match file {
        Some(file) => format!("secret {names} is not in the secrets file {}", file.display()),
        None => format!("it needs secret {names}: pass --secrets FILE with a value for it"),
    })
}

/// A check that fails before it starts, for `reason`.
fn refusal(check: &str, reason: String) -> CheckResult {
    let finished = Finished {
        outcome: Outcome::Error(reason),
        timed_out: false,
        duration: std::time::Duration::ZERO,
        output_chunks: 0,
    };
    CheckResult { check: check.to_string(), finished: Some(finished) }
}

/// Runs git in `dir`; its error, if any, on one line.
async fn git_output(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new("git").arg("-C").arg(dir).args(args).output().await?;
    if !output.status.success() {
        bail!("{}", git_error(&String::from_utf8_lossy(&output.stderr)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// git's message on one line: its `fatal:`/`error:` line if it has one, else its first line.
fn git_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let line = lines
        .iter()
        .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
        .or(lines.first())
        .copied()
        .unwrap_or("git failed");
    format!("git: {}", line.trim_start_matches("fatal: ").trim_start_matches("error: "))
}

/// Prints one check's output, line by line, with its name in front.
async fn follow(
    check: String,
    index: usize,
    mut events: tokio::sync::mpsc::Receiver<RunEvent>,
    out: Arc<Printer>,
) -> CheckResult {
    let prefix = out.prefix(&check, index);
    let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut finished = None;
    while let Some(event) = events.recv().await {
        match event {
            RunEvent::Output { stream, data, .. } => {
                let slot = &mut partial[usize::from(stream == OutputStream::Stderr)];
                slot.extend_from_slice(&data);
                out.complete_lines(&prefix, slot);
            }
            RunEvent::Finished(f) => finished = Some(f),
            RunEvent::Started { .. } => {}
        }
    }
    for slot in &mut partial {
        if !slot.is_empty() {
            slot.push(b'\n');
            out.complete_lines(&prefix, slot);
        }
    }
    CheckResult { check, finished }
}

/// Writes whole lines to stdout, one check's line at a time.
struct Printer {
    terminal: bool,
    /// The longest check name, so that every prefix is as wide.
    width: usize,
    stdout: Mutex<std::io::Stdout>,
}

impl Printer {
    /// `colour`: a terminal that takes colours.
    fn new(colour: bool, width: usize) -> Printer {
        Printer { terminal: colour, width, stdout: Mutex::new(std::io::stdout()) }
    }

    fn prefix(&self, check: &str, index: usize) -> Vec<u8> {
        let name = format!("{check:w$}", w = self.width);
        if self.terminal {
            let colour = PREFIX_COLOURS[index % PREFIX_COLOURS.len()];
            format!("\x1b[{colour}m{name} |\x1b[0m ").into_bytes()
        } else {
            format!("{name} | ").into_bytes()
        }
    }

    /// Prints every complete line in `buf` and keeps the incomplete rest.
    fn complete_lines(&self, prefix: &[u8], buf: &mut Vec<u8>) {
        let Some(last_newline) = buf.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let mut text = Vec::with_capacity(buf.len() + 64);
        for line in buf[..last_newline].split(|&b| b == b'\n') {
            text.extend_from_slice(prefix);
            text.extend_from_slice(line);
            if self.terminal {
                // A colour left open by the check must not bleed into the next prefix.
                text.extend_from_slice(b"\x1b[0m");
            }
            text.push(b'\n');
        }
        buf.drain(..=last_newline);
        let mut stdout = self.stdout.lock().expect("stdout lock poisoned");
        let _ = stdout.write_all(&text).and_then(|()| stdout.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_get_the_prefix_and_partial_lines_wait() {
        let printer = Printer::new(false, 1);
        let mut buf = b"one\ntw".to_vec();
        printer.complete_lines(b"x | ", &mut buf);
        assert_eq!(buf, b"tw");
    }

    #[test]
    fn prefixes_are_as_wide_as_the_longest_name() {
        let printer = Printer::new(false, 5);
        assert_eq!(printer.prefix("ab", 0), b"ab    | ");
        assert_eq!(printer.prefix("build", 1), b"build | ");
    }

    #[test]
    fn git_errors_come_on_one_line() {
        let stderr = "warning: something\nfatal: not a git repository (or any of the parent \
                      directories): .git\nhint: more\n";
        assert_eq!(
            git_error(stderr),
            "git: not a git repository (or any of the parent directories): .git"
        );
        assert_eq!(git_error("odd\nthings\n"), "git: odd");
    }
}
