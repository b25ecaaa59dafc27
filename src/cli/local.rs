//! `tether run [CHECK…]`: the checks of `./tether.toml`, at HEAD, on this machine, with an
//! in-process runner and no server.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::Args;

use crate::core::duration;
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

/// How one check ended, for the summary.
struct Result {
    check: String,
    finished: Option<Finished>,
}

pub async fn main(args: RunArgs) -> ExitCode {
    let prepared = match prepare(&args).await {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("tether: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (executor, specs) = prepared;
    let out = Arc::new(Printer::new(std::io::stdout().is_terminal()));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, spec) in specs.into_iter().enumerate() {
        let events = executor.start(spec.clone()).expect("one slot per check");
        tasks.spawn(follow(spec.thunk.check.clone(), index, events, out.clone()));
    }
    let mut results = Vec::new();
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
    print!("\n{}", summary(&results));
    let all_passed = results
        .iter()
        .all(|r| matches!(&r.finished, Some(f) if f.outcome == Outcome::Exited(0) && !f.timed_out));
    if all_passed { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Reads the config, finds HEAD and builds one run per selected check.
async fn prepare(args: &RunArgs) -> anyhow::Result<(Executor, Vec<RunSpec>)> {
    let root = git_output(Path::new("."), &["rev-parse", "--show-toplevel"])
        .await
        .context("tether run works inside a git repository")?;
    let root = PathBuf::from(root);
    let text = std::fs::read_to_string(root.join("tether.toml"))
        .with_context(|| format!("reading {}", root.join("tether.toml").display()))?;
    let config = Config::parse(&text)?;
    let checks: Vec<&Check> = if args.checks.is_empty() {
        config.checks.values().collect()
    } else {
        config.select(&args.checks)?
    };
    if checks.is_empty() {
        bail!("tether.toml has no checks");
    }
    let commit = git_output(&root, &["rev-parse", "HEAD"])
        .await
        .context("finding HEAD; is there a commit?")?;
    let dirty = git_output(&root, &["status", "--porcelain", "--untracked-files=no"])
        .await
        .unwrap_or_default();
    if !dirty.is_empty() {
        eprintln!(
            "tether: running the committed tree at {}; uncommitted changes are not included",
            &commit[..12]
        );
    }
    let secrets = match &args.secrets {
        Some(path) => Secrets::load(path)?,
        None => Secrets::default(),
    };
    let executor = Executor::new(ExecConfig {
        work_dir: args.work_dir.clone().unwrap_or_else(|| super::default_work_dir().join("local")),
        max_runs: checks.len(),
        secrets,
        engine: Engine::find(std::env::var_os("PATH").as_ref()),
        pass_env: args.pass_env.clone(),
    })?;
    let clone_url = format!("file://{}", root.display());
    let repo = root
        .file_name()
        .map_or_else(|| "local".into(), |n| format!("local/{}", n.to_string_lossy()));
    let specs = checks
        .into_iter()
        .map(|check| RunSpec {
            thunk: Thunk::new(check, &commit, &clone_url),
            clone_token: None,
            run_id: format!("local-{}", check.name),
            event: EventContext { kind: LOCAL_EVENT.into(), repo: repo.clone() },
        })
        .collect();
    Ok((executor, specs))
}

async fn git_output(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new("git").arg("-C").arg(dir).args(args).output().await?;
    if !output.status.success() {
        bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Prints one check's output, line by line, with its name in front.
async fn follow(
    check: String,
    index: usize,
    mut events: tokio::sync::mpsc::Receiver<RunEvent>,
    out: Arc<Printer>,
) -> Result {
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
    Result { check, finished }
}

/// Writes whole lines to stdout, one check's line at a time.
struct Printer {
    terminal: bool,
    stdout: Mutex<std::io::Stdout>,
}

impl Printer {
    fn new(terminal: bool) -> Printer {
        Printer { terminal, stdout: Mutex::new(std::io::stdout()) }
    }

    fn prefix(&self, check: &str, index: usize) -> Vec<u8> {
        if self.terminal {
            let colour = PREFIX_COLOURS[index % PREFIX_COLOURS.len()];
            format!("\x1b[{colour}m{check} |\x1b[0m ").into_bytes()
        } else {
            format!("{check} | ").into_bytes()
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

/// The table printed at the end: check, result, duration.
fn summary(results: &[Result]) -> String {
    let rows: Vec<[String; 3]> = results
        .iter()
        .map(|r| {
            let (result, duration) = match &r.finished {
                Some(f) => (verdict(f), duration::format(f.duration)),
                None => ("lost".to_string(), "-".to_string()),
            };
            [r.check.clone(), result, duration]
        })
        .collect();
    let header = ["check".to_string(), "result".to_string(), "duration".to_string()];
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().chain([&header]).map(|row| row[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut table = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line =
            format!("{:w0$}  {:w1$}  {}", row[0], row[1], row[2], w0 = widths[0], w1 = widths[1]);
        table.push_str(line.trim_end());
        table.push('\n');
    }
    table
}

fn verdict(finished: &Finished) -> String {
    match (&finished.outcome, finished.timed_out) {
        (_, true) => "timed out".into(),
        (Outcome::Exited(0), false) => "passed".into(),
        (outcome, false) => format!("failed ({})", outcome.describe()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn result(check: &str, outcome: Outcome, timed_out: bool, ms: u64) -> Result {
        let duration = Duration::from_millis(ms);
        Result {
            check: check.into(),
            finished: Some(Finished { outcome, timed_out, duration, output_chunks: 0 }),
        }
    }

    #[test]
    fn the_summary_is_an_aligned_table() {
        let table = summary(&[
            result("build", Outcome::Exited(0), false, 1200),
            result("lint", Outcome::Exited(1), false, 300),
            result("slow-check", Outcome::Signalled(15), true, 1000),
        ]);
        let want = "check       result           duration\n\
                    build       passed           1.2s\n\
                    lint        failed (exit 1)  300ms\n\
                    slow-check  timed out        1.0s\n";
        assert_eq!(table, want);
    }

    #[test]
    fn lines_get_the_prefix_and_partial_lines_wait() {
        let printer = Printer::new(false);
        let mut buf = b"one\ntw".to_vec();
        printer.complete_lines(b"x | ", &mut buf);
        assert_eq!(buf, b"tw");
    }
}
