//! Test harness: temporary git repositories and `tether runner` processes, started for real.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tether::core::{Command, EventContext, Outcome, OutputStream, RunEvent, Thunk};
use tether::exec::RunSpec;
use tether::runner::client::RunEvents;
use tether::runner::{ListenAddr, RunnerClient, RunnerError};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

/// The `tether` binary under test.
pub const TETHER: &str = env!("CARGO_BIN_EXE_tether");

/// Runs git in `dir` and returns its trimmed stdout; panics with git's error otherwise.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .expect("running git");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A git repository in a temporary directory.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "--quiet", "--initial-branch=main"]);
        Repo { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes files and commits them; returns the commit id.
    pub fn commit(&self, files: &[(&str, &[u8])], message: &str) -> String {
        for (name, content) in files {
            let path = self.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        git(self.path(), &["add", "--all"]);
        git(self.path(), &["commit", "--quiet", "--allow-empty", "-m", message]);
        git(self.path(), &["rev-parse", "HEAD"])
    }

    pub fn file_url(&self) -> String {
        format!("file://{}", self.path().display())
    }
}

/// A `tether runner` process: `--listen` on a Unix socket in a temporary directory, or
/// `--connect`ed to an SSH server that binds `socket` for it.
pub struct Runner {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    /// Where it says it listens: the socket path, or `tcp:IP:PORT`.
    pub listening: String,
    pub work_dir: PathBuf,
    child: tokio::process::Child,
    stdout: Lines<BufReader<ChildStdout>>,
    /// The test ends the process itself; its end is no failure.
    ended_by_test: bool,
}

impl Runner {
    /// Starts a runner with these extra flags and waits until it says it listens.
    pub async fn start(extra: &[&str]) -> Runner {
        Runner::start_with_env(extra, &[]).await
    }

    pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Runner {
        Runner::start_listening(None, extra, env).await
    }

    /// Starts a runner listening on `listen` (`tcp:HOST:PORT`), or on a socket when `None`.
    pub async fn start_listening(
        listen: Option<&str>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Runner {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("runner.sock");
        let listen = listen.map_or_else(|| socket.as_os_str(), OsStr::new);
        let mut args = vec![OsStr::new("--listen"), listen];
        args.extend(extra.iter().map(OsStr::new));
        Runner::spawn(dir, socket.clone(), &args, env, "listening on").await
    }

    /// Starts `tether runner ARGS --work-dir DIR/work` and waits for a first line of output
    /// that contains `ready`; the runner is then reached on `socket`.
    pub async fn spawn(
        dir: tempfile::TempDir,
        socket: PathBuf,
        args: &[&OsStr],
        env: &[(&str, &str)],
        ready: &str,
    ) -> Runner {
        let work_dir = dir.path().join("work");
        let mut child = tokio::process::Command::new(TETHER)
            .arg("runner")
            .args(args)
            .arg("--work-dir")
            .arg(&work_dir)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting tether runner");
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = stdout.next_line().await.unwrap().unwrap_or_default();
        assert!(first.contains(ready), "runner said {first:?}");
        let listening = first.split_once(" listening on ").map_or_else(String::new, |(_, rest)| {
            rest.split(" (").next().unwrap_or("").to_string()
        });
        Runner { dir, socket, listening, work_dir, child, stdout, ended_by_test: false }
    }

    pub async fn client(&self) -> RunnerClient {
        RunnerClient::connect(&ListenAddr::Unix(self.socket.clone())).await.unwrap()
    }

    /// The runner's next line on stdout; `None` once it closed stdout.
    pub async fn next_line(&mut self) -> Option<String> {
        self.stdout.next_line().await.unwrap()
    }

    /// The runner's next line on stdout about the runner itself, past the lines about runs
    /// and the server's first call; `None` once it closed stdout.
    pub async fn next_own_line(&mut self) -> Option<String> {
        loop {
            let line = self.next_line().await?;
            if !line.starts_with("run ") && !line.contains("the server reached this runner") {
                return Some(line);
            }
        }
    }

    /// Sends SIGTERM; the runner may then end without failing the test.
    pub fn terminate(&mut self) {
        self.ended_by_test = true;
        let pid = self.child.id().expect("the runner is running") as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGTERM).unwrap();
    }

    /// Waits for the runner to end, at most `limit`.
    pub async fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.ended_by_test = true;
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("the runner did not end in time")
            .unwrap()
    }
}

/// A runner that died before its test ended fails the test loudly, whatever the test checked.
impl Drop for Runner {
    fn drop(&mut self) {
        let status = self.child.try_wait().expect("checking the runner process");
        let unexpected = !self.ended_by_test && !std::thread::panicking();
        if let Some(status) = status.filter(|_| unexpected) {
            panic!("the runner process died during the test: {status}");
        }
    }
}

/// A run spec for a script at a commit of a repository.
pub fn spec(clone_url: &str, commit: &str, command: Command) -> RunSpec {
    RunSpec {
        thunk: Thunk {
            check: "test".into(),
            clone_url: clone_url.into(),
            commit: commit.into(),
            command,
            env: BTreeMap::new(),
            dir: ".".into(),
            image: None,
            timeout: Duration::from_secs(60),
            secrets: vec![],
        },
        clone_token: None,
        run_id: "run-1".into(),
        event: EventContext { kind: "push".into(), repo: "octo/repo".into() },
    }
}

pub fn script(text: &str) -> Command {
    Command::Script(text.into())
}

/// Everything one run sent, collected.
#[derive(Debug, Default)]
pub struct Collected {
    pub events: Vec<RunEvent>,
}

impl Collected {
    /// The bytes of one stream, joined.
    pub fn text(&self, stream: OutputStream) -> String {
        let mut bytes = Vec::new();
        for event in &self.events {
            if let RunEvent::Output { stream: s, data, .. } = event {
                if *s == stream {
                    bytes.extend_from_slice(data);
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn stdout(&self) -> String {
        self.text(OutputStream::Stdout)
    }

    pub fn finished(&self) -> &tether::core::run::Finished {
        match self.events.last() {
            Some(RunEvent::Finished(finished)) => finished,
            other => panic!("the last event is not Finished: {other:?}"),
        }
    }

    pub fn outcome(&self) -> &Outcome {
        &self.finished().outcome
    }
}

/// Reads a run to its end.
pub async fn collect(mut events: RunEvents) -> Collected {
    let mut collected = Collected::default();
    while let Some(event) = events.next().await {
        collected.events.push(event.expect("a run event"));
    }
    collected
}

/// Runs a spec on a runner to its end.
pub async fn run_to_end(runner: &Runner, spec: &RunSpec) -> Result<Collected, RunnerError> {
    let events = runner.client().await.run(spec).await?;
    Ok(collect(events).await)
}

/// Reads events until one output chunk contains `needle`; returns what was read.
pub async fn read_until_output(events: &mut RunEvents, needle: &str) -> Vec<RunEvent> {
    let mut seen = Vec::new();
    let mut text = String::new();
    while let Some(event) = events.next().await {
        let event = event.expect("a run event");
        if let RunEvent::Output { data, .. } = &event {
            text.push_str(&String::from_utf8_lossy(data));
        }
        seen.push(event);
        if text.contains(needle) {
            return seen;
        }
    }
    panic!("the run ended before printing {needle:?}; it printed {text:?}");
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// The pids of live (not zombie) processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie =
            stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(pid);
        }
    }
    found
}

/// Writes an executable shell script `name` into `dir`, to stand in for a program on a PATH.
pub fn fake_program(dir: &Path, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
