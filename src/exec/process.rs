//! One process group: started, its output streamed as it comes, and ended by exit, cancel or
//! timeout, with no process left behind.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bytes::Bytes;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::emit::Emitter;
use crate::core::{Outcome, OutputStream};

/// How long a cancelled or timed-out run gets between SIGTERM and SIGKILL.
pub const KILL_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// How long output is still read after the process ended, for a background process that keeps
/// the output pipes open from outside the process group.
pub const OUTPUT_DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// The most bytes one output chunk carries.
pub const OUTPUT_CHUNK_BYTES: usize = 64 * 1024;
/// Chunks read but not yet sent; beyond this the reader waits, and so does the process.
const OUTPUT_QUEUE_CHUNKS: usize = 16;
/// How often a stopping run checks whether its process group is gone.
const GROUP_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// What to run.
pub struct ProcessSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: ProcessEnv,
    /// Run under a pseudo-terminal rather than with a pipe for output.
    pub tty: bool,
    /// Under a terminal, stdin is the terminal too rather than `/dev/null`: a container
    /// engine's client takes the size of the container's terminal from its stdin.
    pub tty_stdin: bool,
}

/// The environment a process gets.
pub enum ProcessEnv {
    /// Exactly these variables and no others: a check on the host.
    Only(Vec<(OsString, OsString)>),
    /// The runner's own environment, unchanged: the container engine's, whose settings
    /// (`DOCKER_HOST`, `CONTAINERS_CONF`) are the runner owner's. The check's variables go into
    /// the container another way, and never into this.
    Runner,
}

/// Why a run was stopped before its process ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Cancelled,
    TimedOut,
}

/// The state of one running process group.
struct Group {
    pgid: Pid,
    status: Option<ExitStatus>,
    stop: Option<Stop>,
    kill_at: Option<Instant>,
    drain_until: Option<Instant>,
    streams_open: bool,
}

/// The height of a `tty = true` check's terminal, in rows.
pub const TTY_ROWS: u16 = 50;
/// The width of that terminal, in columns.
pub const TTY_COLUMNS: u16 = 160;

/// Runs the process to its end and returns how it ended and whether it was stopped.
pub async fn run(
    spec: ProcessSpec,
    emitter: &mut Emitter,
    timeout: Duration,
) -> (Outcome, Option<Stop>) {
    let (mut child, output) = match spawn(&spec) {
        Ok(spawned) => spawned,
        Err(e) => {
            let program = spec.program.to_string_lossy();
            return (Outcome::Error(format!("cannot start `{program}`: {e}")), None);
        }
    };
    let pgid = Pid::from_raw(child.id().expect("a just-spawned child has a pid") as i32);
    let (chunk_tx, mut chunks) = mpsc::channel(OUTPUT_QUEUE_CHUNKS);
    // One stream: stdout and stderr are one pipe (or one terminal), in the order written.
    spawn_reader(output, OutputStream::Stdout, chunk_tx);
    let mut stopping = emitter.stop_signal();
    let deadline = sleep_until(Instant::now() + timeout);
    tokio::pin!(deadline);
    let mut group = Group {
        pgid,
        status: None,
        stop: None,
        kill_at: None,
        drain_until: None,
        streams_open: true,
    };
    while group.status.is_none() || group.streams_open {
        tokio::select! {
            chunk = chunks.recv(), if group.streams_open => match chunk {
                Some((stream, data)) => emitter.output(stream, &data).await,
                None => group.streams_open = false,
            },
            status = child.wait(), if group.status.is_none() => group.exited(status),
            () = stopping.stopped(), if group.stop.is_none() => group.begin_stop(Stop::Cancelled),
            () = &mut deadline, if group.stop.is_none() => group.begin_stop(Stop::TimedOut),
            () = sleep_until(group.kill_at.unwrap_or_else(Instant::now)), if group.kill_at.is_some() => {
                group.kill();
            }
            () = sleep_until(group.drain_until.unwrap_or_else(Instant::now)),
                if group.drain_until.is_some() && group.streams_open => {
                group.streams_open = false;
                emitter.notice("output still open after the command ended; stopped reading it").await;
            }
        }
    }
    if group.stop.is_some() {
        group.wait_until_gone().await;
    }
    (outcome_of(group.status.expect("loop ends after exit")), group.stop)
}

impl Group {
    fn exited(&mut self, status: std::io::Result<ExitStatus>) {
        // A wait error means the child is already gone; report it as killed.
        self.status = Some(status.unwrap_or_else(|_| ExitStatus::from_raw(Signal::SIGKILL as i32)));
        if self.stop.is_none() {
            // The command is done: whatever it left running in its group goes with it.
            signal_group(self.pgid, Signal::SIGKILL);
            self.drain_until = Some(Instant::now() + OUTPUT_DRAIN_AFTER_EXIT);
        }
    }

    fn begin_stop(&mut self, stop: Stop) {
        self.stop = Some(stop);
        signal_group(self.pgid, Signal::SIGTERM);
        self.kill_at = Some(Instant::now() + KILL_GRACE_PERIOD);
    }

    fn kill(&mut self) {
        signal_group(self.pgid, Signal::SIGKILL);
        self.kill_at = None;
        self.drain_until = Some(Instant::now() + OUTPUT_DRAIN_AFTER_EXIT);
    }

    /// After a stop, waits for every process of the group to end, killing them at the grace
    /// period's end.
    async fn wait_until_gone(&mut self) {
        while group_alive(self.pgid) {
            match self.kill_at {
                Some(kill_at) if Instant::now() >= kill_at => self.kill(),
                _ => tokio::time::sleep(GROUP_POLL_INTERVAL).await,
            }
        }
    }
}

fn signal_group(pgid: Pid, signal: Signal) {
    // ESRCH (nobody left) is the normal case after an exit; nothing else can fail for our own
    // group.
    let _ = killpg(pgid, signal);
}

/// Whether any process of the group still runs. Zombies do not count: an orphan that has
/// exited waits for init to reap it, and some inits (in containers, say) take their time.
fn group_alive(pgid: Pid) -> bool {
    if killpg(pgid, None).is_err() {
        return false;
    }
    if cfg!(target_os = "linux") { live_members_in_proc(pgid.as_raw()) } else { true }
}

/// Looks through `/proc` for a process of group `pgid` that is not a zombie.
fn live_members_in_proc(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // The command name may hold spaces and parentheses: the fields start after the last ')'.
        let Some((_, fields)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = fields.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && state != "Z" && state != "X"
    })
}

fn outcome_of(status: ExitStatus) -> Outcome {
    match (status.code(), status.signal()) {
        (Some(code), _) => Outcome::Exited(code),
        (None, Some(signal)) => Outcome::Signalled(signal),
        (None, None) => {
            Outcome::Error(format!("the process ended with an unknown status: {status}"))
        }
    }
}

/// Where the process writes: one pipe for stdout and stderr, or the master side of its terminal.
type Output = Box<dyn AsyncRead + Unpin + Send>;

/// Starts the process in a process group of its own (a session of its own under a terminal),
/// stdin from `/dev/null`, stdout and stderr into one [`Output`]. The command, which holds the
/// write ends, is dropped here, so the output ends when the process group's last writer does.
fn spawn(spec: &ProcessSpec) -> std::io::Result<(tokio::process::Child, Output)> {
    if spec.tty {
        return spawn_on_terminal(spec);
    }
    let (writer, reader) = tokio::net::unix::pipe::pipe()?;
    let writer = writer.into_blocking_fd()?;
    let mut command = tokio::process::Command::new(&spec.program);
    if let ProcessEnv::Only(variables) = &spec.env {
        command.env_clear().envs(variables.iter().cloned());
    }
    command
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    let child = command.spawn()?;
    drop(command);
    Ok((child, Box::new(reader)))
}

/// Starts the process on a new pseudo-terminal of [`TTY_ROWS`]×[`TTY_COLUMNS`] as its
/// controlling terminal, in a session (and so a process group) of its own.
fn spawn_on_terminal(spec: &ProcessSpec) -> std::io::Result<(tokio::process::Child, Output)> {
    let (pty, pts) = pty_process::open().map_err(std::io::Error::other)?;
    pty.resize(pty_process::Size::new(TTY_ROWS, TTY_COLUMNS)).map_err(std::io::Error::other)?;
    let mut command = pty_process::Command::new(&spec.program);
    if let ProcessEnv::Only(variables) = &spec.env {
        command = command.env_clear().envs(variables.iter().cloned());
    }
    command = command.args(&spec.args).current_dir(&spec.cwd);
    if !spec.tty_stdin {
        command = command.stdin(Stdio::null());
    }
    // The slave side goes with the command: once the process group has closed it, reading the
    // master side ends (Linux says EIO, which the reader takes as the end).
    let child = command.spawn(pts).map_err(std::io::Error::other)?;
    Ok((child, Box::new(pty)))
}

fn spawn_reader(mut reader: Output, stream: OutputStream, tx: mpsc::Sender<(OutputStream, Bytes)>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; OUTPUT_CHUNK_BYTES];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((stream, Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
}
