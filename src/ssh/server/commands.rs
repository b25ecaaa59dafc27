//! The commands people run over SSH (`ssh HOST runs`, `logs RUN`, …): each answered in a task of
//! its own on the session channel, with flow control, under the web's visibility rules. What a
//! command means, its exit status and its text are `core::ssh_command`'s; this translates.

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};

use super::Gateway;
use crate::access::Access;
use crate::core::ssh_command::{
    self, Command, EXIT_FAILED, EXIT_REFUSED, HELP, RunRow, RunnerRow, for_terminal,
};
use crate::engine::ActionError;
use crate::engine::live::{LiveLogs, RawItem};
use crate::logs::LogStore;
use crate::store::{RunRecord, RunStatus};

/// Runs in the greeting and in `runs`.
const LIST_RUNS_MAX: usize = 20;
/// How long a list may take (GitHub permission calls included) before it is given up.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `logs` looks again at a run that has not started (or whose live log is not up).
const NOT_STARTED_POLL: Duration = Duration::from_millis(250);

/// What commands read, given to the gateway once the server has built it.
#[derive(Clone)]
pub struct CommandDeps {
    pub access: Access,
    pub logs: LogStore,
    pub live: LiveLogs,
    /// `HOST:PORT` for the connect hint.
    pub ssh_public_addr: String,
    /// The engine's slot, filled once an App is configured: `cancel` and `rerun` go through
    /// its `Actions`, which check who may.
    pub engine: std::sync::Arc<std::sync::Mutex<Option<crate::engine::Engine>>>,
}

/// One command's channel: the writing half, and whether the client's terminal is raw.
struct Out {
    channel: ChannelWriteHalf<Msg>,
    pty: bool,
}

impl Out {
    async fn stdout(&self, text: &[u8]) -> bool {
        self.channel.data_bytes(for_terminal(text, self.pty)).await.is_ok()
    }

    async fn stderr_line(&self, line: &str) -> bool {
        let text = for_terminal(format!("{line}\n").as_bytes(), self.pty);
        self.channel.extended_data_bytes(1, text).await.is_ok()
    }

    async fn end(&self, status: u32) {
        let _ = self.channel.exit_status(status).await;
        let _ = self.channel.eof().await;
        let _ = self.channel.close().await;
    }
}

/// Answers `command` on `channel` in a task of its own; Ctrl-C typed into the client's terminal
/// ends it with 130, as a shell would.
pub fn spawn(gateway: Gateway, login: String, command: Command, channel: Channel<Msg>, pty: bool) {
    tokio::spawn(async move {
        let (read, write) = channel.split();
        let out = Out { channel: write, pty };
        let status = tokio::select! {
            status = answer(&gateway, &login, command, &out) => status,
            () = client_gone(read) => ssh_command::EXIT_INTERRUPTED,
        };
        out.end(status).await;
    });
}

/// Answers a command line the client sent that could not be parsed: one line, exit 2.
pub fn refuse(
    line: &[u8],
    refused: &ssh_command::CommandError,
    channel: Channel<Msg>,
    pty: bool,
    login: &str,
) {
    tracing::info!(%login, command = %String::from_utf8_lossy(line).escape_debug(), "refused a command");
    let text = refused.to_string();
    let status = refused.exit_status();
    tokio::spawn(async move {
        let out = Out { channel: channel.split().1, pty };
        out.stderr_line(&text).await;
        out.end(status).await;
    });
}

/// Answers one command; its exit status.
async fn answer(gateway: &Gateway, login: &str, command: Command, out: &Out) -> u32 {
    let Some(deps) = gateway.command_deps() else {
        out.stderr_line("tether: this server answers no commands").await;
        return EXIT_FAILED;
    };
    let (gateway, login, deps) = (gateway.clone(), login, &deps);
    match command {
        Command::Help => {
            out.stdout(HELP.as_bytes()).await;
            0
        }
        Command::Logs { run } => logs(&gateway, deps, login, run, out).await,
        Command::Cancel { run } | Command::Rerun { run } => {
            act(deps, login, command, run, out).await
        }
        other => list(&gateway, deps, login, other, out).await,
    }
}

/// The commands that print a list once: greeting, `runs`, `runners`.
async fn list(
    gateway: &Gateway,
    deps: &CommandDeps,
    login: &str,
    command: Command,
    out: &Out,
) -> u32 {
    let text = tokio::time::timeout(LIST_TIMEOUT, list_text(gateway, deps, login, command)).await;
    match text {
        Ok(Ok(Ok(text))) => {
            out.stdout(text.as_bytes()).await;
            0
        }
        Ok(Ok(Err(refusal))) => {
            out.stderr_line(&refusal).await;
            EXIT_REFUSED
        }
        Ok(Err(e)) => {
            tracing::error!(login, error = format!("{e:#}"), "answering an SSH command failed");
            out.stderr_line("tether: the server could not answer; try again").await;
            EXIT_FAILED
        }
        Err(_) => {
            out.stderr_line("tether: GitHub did not answer in time; try again").await;
            EXIT_FAILED
        }
    }
}

/// A list's text, or a refusal's line.
async fn list_text(
    gateway: &Gateway,
    deps: &CommandDeps,
    login: &str,
    command: Command,
) -> anyhow::Result<Result<String, String>> {
    let store = gateway.store();
    let now = SystemTime::now();
    let lines = |runs: &[RunRecord]| -> String {
        runs.iter().map(|r| format!("{}\n", row(gateway, r).line(now))).collect()
    };
    Ok(Ok(match command {
        Command::Runners => {
            runner_rows(gateway, login).await?.iter().map(|r| format!("{}\n", r.line())).collect()
        }
        Command::Runs { repo: Some(repo) } => {
            let newest = store.recent_runs(Some(&repo), 1, None).await?;
            let installation = newest.first().and_then(|r| r.installation_id);
            if newest.is_empty() || !deps.access.login_may_read(login, &repo, installation).await? {
                return Ok(Err(format!(
                    "tether: no runs of {} that you may read",
                    ssh_command::printable(&repo)
                )));
            }
            lines(&store.recent_runs(Some(&repo), LIST_RUNS_MAX, None).await?)
        }
        Command::Runs { repo: None } => {
            let readable = deps.access.readable_private_repos_of_login(login).await?;
            lines(&store.visible_recent_runs(&readable, LIST_RUNS_MAX, None).await?)
        }
        _ => {
            let readable = deps.access.readable_private_repos_of_login(login).await?;
            let runs = store.visible_runs_sent_by(&readable, login, LIST_RUNS_MAX).await?;
            let rows: Vec<RunRow> = runs.iter().map(|r| row(gateway, r)).collect();
            let connect = format!("tether runner --connect {login}@{}", deps.ssh_public_addr);
            let runners = runner_rows(gateway, login).await?;
            ssh_command::greeting(login, &connect, &runners, &rows, now)
        }
    }))
}

/// `login`'s connected runners, with the runs each has in flight.
async fn runner_rows(gateway: &Gateway, login: &str) -> anyhow::Result<Vec<RunnerRow>> {
    let running = gateway.store().in_progress_runs().await?;
    let mut rows: Vec<RunnerRow> = gateway
        .runners_of(login)
        .into_iter()
        .map(|r| {
            let label = format!("{}/{}", r.owner, r.name);
            RunnerRow {
                running: running.iter().filter(|run| run.runner.as_deref() == Some(&label)).count(),
                name: r.name,
                os: r.info.os,
                arch: r.info.arch,
                labels: r.info.labels,
                capacity: r.info.capacity,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

fn row(gateway: &Gateway, run: &RunRecord) -> RunRow {
    RunRow {
        id: run.id,
        conclusion: run.conclusion,
        started: run.status != RunStatus::Queued,
        repo: run.repo.clone(),
        check: run.check.clone(),
        sha: run.sha.clone(),
        started_at: run.started_at,
        finished_at: run.finished_at,
        link: gateway.run_link(run.id),
    }
}

/// `logs RUN`: the raw log, from the blob once the run is done, else followed live; the exit
/// status is the run's conclusion.
async fn logs(gateway: &Gateway, deps: &CommandDeps, login: &str, id: i64, out: &Out) -> u32 {
    match follow(gateway, deps, login, id, out).await {
        Ok(status) => status,
        Err(e) => {
            tracing::error!(
                login,
                run = id,
                error = format!("{e:#}"),
                "showing a log over SSH failed"
            );
            out.stderr_line("tether: the server could not show the log; try again").await;
            EXIT_FAILED
        }
    }
}

async fn follow(
    gateway: &Gateway,
    deps: &CommandDeps,
    login: &str,
    id: i64,
    out: &Out,
) -> anyhow::Result<u32> {
    let store = gateway.store();
    let readable = match store.run(id).await? {
        Some(run) => deps.access.login_may_read(login, &run.repo, run.installation_id).await?,
        None => false,
    };
    if !readable {
        out.stderr_line(&ssh_command::no_such_run(id)).await;
        return Ok(EXIT_REFUSED);
    }
    loop {
        let run = store.run(id).await?.ok_or_else(|| anyhow::anyhow!("run {id} vanished"))?;
        if let Some(conclusion) = run.conclusion {
            if !stream_blob(deps, id, out).await? {
                return Ok(EXIT_FAILED);
            }
            return Ok(ssh_command::exit_status(conclusion));
        }
        if let Some(live) = deps.live.follow_raw(id, 0) {
            if !stream_live(live, gateway, id, out).await {
                return Ok(EXIT_FAILED);
            }
            // The live log ends once the end is stored: the conclusion is there now.
            let run = store.run(id).await?.ok_or_else(|| anyhow::anyhow!("run {id} vanished"))?;
            if let Some(conclusion) = run.conclusion {
                return Ok(ssh_command::exit_status(conclusion));
            }
        }
        tokio::time::sleep(NOT_STARTED_POLL).await;
    }
}

/// Streams a done run's raw blob; false if the reader went away.
async fn stream_blob(deps: &CommandDeps, id: i64, out: &Out) -> anyhow::Result<bool> {
    let Some(mut bytes) = deps.logs.raw_stream(id).await? else { return Ok(true) };
    while let Some(chunk) = bytes.next().await {
        if !out.stdout(&chunk?).await {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Streams a running run's raw bytes until its end; false if the reader went away.
async fn stream_live(
    live: impl futures::Stream<Item = RawItem>,
    gateway: &Gateway,
    id: i64,
    out: &Out,
) -> bool {
    let mut live = std::pin::pin!(live);
    while let Some(item) = live.next().await {
        let written = match item {
            RawItem::Bytes(bytes) => out.stdout(&bytes).await,
            RawItem::Skipped(n) => {
                let line = format!(
                    "tether: {n} bytes of this log are not shown live; the whole log is at {}/raw once the run ends",
                    gateway.run_link(id)
                );
                out.stderr_line(&line).await
            }
            RawItem::End => return true,
        };
        if !written {
            return false;
        }
    }
    true
}

/// Drains what the client sends on a command's channel, so the session never waits on it;
/// resolves when the client closes it, or types Ctrl-C into its terminal.
async fn client_gone(mut read: russh::ChannelReadHalf) {
    while let Some(message) = read.wait().await {
        match message {
            ChannelMsg::Data { data } if data.contains(&0x03) => return,
            ChannelMsg::Close => return,
            _ => {}
        }
    }
}

/// `cancel RUN` and `rerun RUN`, through the engine's `Actions`, which answer a run the login may
/// not read as one that does not exist.
async fn act(deps: &CommandDeps, login: &str, command: Command, run: i64, out: &Out) -> u32 {
    let actions = deps.engine.lock().expect("engine slot poisoned").as_ref().map(|e| e.actions());
    let Some(actions) = actions else {
        out.stderr_line("tether: no GitHub App is set up yet").await;
        return EXIT_FAILED;
    };
    let done = match command {
        Command::Cancel { .. } => {
            actions.cancel(run, login).await.map(|()| format!("cancelled run {run}\n"))
        }
        _ => actions
            .rerun(run, login)
            .await
            .map(|new| format!("run {run} runs again as run {new}\n")),
    };
    let refusal = match done {
        Ok(text) => {
            out.stdout(text.as_bytes()).await;
            return 0;
        }
        Err(ActionError::NotFound) => ssh_command::no_such_run(run),
        Err(ActionError::NotPermitted) => format!(
            "tether: you may not do this to run {run}: it takes write access to the repository{}",
            if matches!(command, Command::Cancel { .. }) {
                ", or being the run's sender"
            } else {
                ""
            }
        ),
        Err(ActionError::Finished) => format!("tether: run {run} has already finished"),
        Err(ActionError::NotFinished) => format!("tether: run {run} has not finished yet"),
        Err(ActionError::Failed(e)) => {
            tracing::error!(login, run, error = format!("{e:#}"), "an SSH action failed");
            out.stderr_line("tether: the server could not do it; try again").await;
            return EXIT_FAILED;
        }
    };
    out.stderr_line(&refusal).await;
    EXIT_REFUSED
}
