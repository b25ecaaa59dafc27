//! The gateway's shared state: who is logged in, and which runners are connected through which
//! session. SQLite keeps the runner list for pages and the API; this keeps the live connections.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::commands::CommandDeps;
use super::keyring::Keyring;
use crate::core::RunnerInfo;
use crate::core::ssh_command;
use crate::github::UserLookups;
use crate::runner::RunnerClient;
use crate::store::{NewRunner, Store};

/// A runner connected right now, and the client to reach it.
#[derive(Clone)]
pub struct LiveRunner {
    pub owner: String,
    pub name: String,
    pub info: RunnerInfo,
    pub client: RunnerClient,
    pub session: String,
}

struct SessionEntry {
    login: String,
    handle: russh::server::Handle,
    /// The session's shell channel, once `ssh` without `-N` asked for one.
    shell: Option<Shell>,
    /// The runners already announced on the shell channel.
    announced: HashSet<String>,
}

/// A shell channel that shows the session's runners as they register.
#[derive(Clone, Copy)]
pub struct Shell {
    pub channel: russh::ChannelId,
    /// The client asked for a terminal, which then needs `\r\n` to start a line.
    pub pty: bool,
}

impl Shell {
    /// `text` as one line on this channel's terminal.
    pub fn line(&self, text: &str) -> Vec<u8> {
        let end = if self.pty { "\r\n" } else { "\n" };
        format!("{text}{end}").into_bytes()
    }
}

/// Shared by every connection of the SSH server.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    keyring: Keyring,
    /// Where a user's GitHub id is learnt; the same look-ups, and credentials, as the keys.
    lookups: Option<Arc<UserLookups>>,
    /// The server's external URL, for the links runners print; `None` sends none.
    external_url: Option<String>,
    /// Distinguishes this process's session ids from those of an earlier run.
    boot: u32,
    next_session: AtomicU64,
    sessions: Mutex<HashMap<String, SessionEntry>>,
    runners: Mutex<HashMap<(String, String), LiveRunner>>,
    /// Notified whenever a runner connects, so that queued runs are dispatched at once.
    runners_changed: Arc<tokio::sync::Notify>,
    /// Set once the server has begun closing every session to stop.
    closing: AtomicBool,
    /// What people's commands read; set once by the server (not in benches).
    commands: std::sync::OnceLock<CommandDeps>,
}

impl Gateway {
    pub fn new(
        store: Store,
        keyring: Keyring,
        lookups: Option<Arc<UserLookups>>,
        external_url: Option<String>,
    ) -> Gateway {
        let inner = Inner {
            store,
            keyring,
            lookups,
            external_url,
            boot: rand::random(),
            next_session: AtomicU64::new(1),
            sessions: Mutex::default(),
            runners: Mutex::default(),
            runners_changed: Arc::default(),
            closing: AtomicBool::new(false),
            commands: std::sync::OnceLock::new(),
        };
        Gateway { inner: Arc::new(inner) }
    }

    /// Notified whenever a runner connects.
    pub fn runners_changed(&self) -> Arc<tokio::sync::Notify> {
        self.inner.runners_changed.clone()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The server's external URL, when it has one to give out.
    pub fn external_url(&self) -> Option<&str> {
        self.inner.external_url.as_deref()
    }

    /// Gives the gateway what people's commands read (`runs`, `logs`…); once.
    pub fn serve_commands(&self, deps: CommandDeps) {
        let _ = self.inner.commands.set(deps);
    }

    pub(super) fn command_deps(&self) -> Option<CommandDeps> {
        self.inner.commands.get().cloned()
    }

    /// The page of run `id`: `EXTERNAL_URL/runs/ID`, or `run ID` without an external URL.
    pub fn run_link(&self, id: i64) -> String {
        match self.external_url() {
            Some(url) => format!("{}/runs/{id}", url.trim_end_matches('/')),
            None => format!("run {id}"),
        }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    pub(super) fn new_session_id(&self) -> String {
        let n = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n}", self.inner.boot)
    }

    /// How many sessions `login` holds.
    pub(super) fn session_count(&self, login: &str) -> usize {
        let sessions = self.inner.sessions.lock().expect("sessions lock poisoned");
        sessions.values().filter(|s| s.login.eq_ignore_ascii_case(login)).count()
    }

    pub(super) fn session_started(&self, id: &str, login: &str, handle: russh::server::Handle) {
        let entry = SessionEntry {
            login: login.to_string(),
            handle,
            shell: None,
            announced: HashSet::new(),
        };
        self.inner.sessions.lock().expect("sessions lock poisoned").insert(id.to_string(), entry);
        self.learn_user_id(login);
    }

    /// Records the session's shell channel; returns the names of its runners registered
    /// already, to announce on it now (later ones are announced by their registration).
    pub(super) fn shell_opened(&self, id: &str, shell: Shell) -> Vec<String> {
        let mut sessions = self.inner.sessions.lock().expect("sessions lock poisoned");
        let Some(entry) = sessions.get_mut(id) else { return Vec::new() };
        entry.shell = Some(shell);
        let runners = self.inner.runners.lock().expect("runners lock poisoned");
        let mut names: Vec<String> =
            runners.values().filter(|r| r.session == id).map(|r| r.name.clone()).collect();
        names.retain(|name| entry.announced.insert(name.clone()));
        names.sort();
        names
    }

    /// Where to announce runner `name` of session `id`, once: its shell channel, if it has one
    /// and the runner was not announced yet.
    pub(super) fn announce_runner(
        &self,
        id: &str,
        name: &str,
    ) -> Option<(russh::server::Handle, Shell)> {
        let mut sessions = self.inner.sessions.lock().expect("sessions lock poisoned");
        let entry = sessions.get_mut(id)?;
        let shell = entry.shell?;
        entry.announced.insert(name.to_string()).then(|| (entry.handle.clone(), shell))
    }

    /// Where to tell session `id` about its runners' runs: its open shell, if it has one.
    fn shell_of(&self, id: &str) -> Option<(russh::server::Handle, Shell)> {
        let sessions = self.inner.sessions.lock().expect("sessions lock poisoned");
        let entry = sessions.get(id)?;
        Some((entry.handle.clone(), entry.shell?))
    }

    /// Says on the open shell of `runner`'s session (`ssh -R …` without `-N`) that `run` starts
    /// on it, in the background.
    pub fn run_started(&self, runner: &LiveRunner, run: &crate::store::RunRecord) {
        let Some((handle, shell)) = self.shell_of(&runner.session) else { return };
        let line = ssh_command::session_run_started(&run.check, &run.repo, &self.run_link(run.id));
        tokio::spawn(async move {
            let _ = handle.data(shell.channel, shell.line(&line)).await;
        });
    }

    /// Says on the open shell of `runner`'s session how run `id` ended, as stored.
    pub fn run_ended(&self, runner: &LiveRunner, id: i64) {
        let Some((handle, shell)) = self.shell_of(&runner.session) else { return };
        let (store, link) = (self.inner.store.clone(), self.run_link(id));
        tokio::spawn(async move {
            let Ok(Some(run)) = store.run(id).await else { return };
            let Some(conclusion) = run.conclusion else { return };
            let took = match (run.started_at, run.finished_at) {
                (Some(start), Some(end)) => end.duration_since(start).unwrap_or_default(),
                _ => std::time::Duration::ZERO,
            };
            let line =
                ssh_command::session_run_ended(&run.check, &run.repo, conclusion, took, &link);
            let _ = handle.data(shell.channel, shell.line(&line)).await;
        });
    }

    /// Removes a session's runners but keeps the session: its owner ended it at the terminal,
    /// and the runners' connections must close before the client exits.
    pub(super) async fn drop_runners_of_session(&self, id: &str) {
        self.inner.runners.lock().expect("runners lock poisoned").retain(|_, r| r.session != id);
        if let Err(e) = self.inner.store.remove_session_runners(id).await {
            tracing::error!(session = %id, error = %e, "removing the runners of a session failed");
        }
    }

    /// Forgets a session and removes its runners, at once.
    pub(super) async fn session_ended(&self, id: &str) {
        self.inner.sessions.lock().expect("sessions lock poisoned").remove(id);
        self.inner.runners.lock().expect("runners lock poisoned").retain(|_, r| r.session != id);
        match self.inner.store.remove_session_runners(id).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(session = %id, runners = n, "session closed; its runners are gone")
            }
            Err(e) => {
                tracing::error!(session = %id, error = %e, "removing the runners of a closed session failed")
            }
        }
    }

    /// Records a runner; an older runner of the same owner and name is replaced and its
    /// session closed.
    pub(super) async fn add_runner(&self, runner: LiveRunner) -> anyhow::Result<()> {
        let record = NewRunner {
            owner: runner.owner.clone(),
            name: runner.name.clone(),
            os: runner.info.os.clone(),
            arch: runner.info.arch.clone(),
            labels: runner.info.labels.clone(),
            capacity: runner.info.capacity,
            session: runner.session.clone(),
        };
        let replaced = self.inner.store.add_runner(record).await?;
        let key = (runner.owner.to_ascii_lowercase(), runner.name.clone());
        let session = runner.session.clone();
        self.inner.runners.lock().expect("runners lock poisoned").insert(key, runner);
        self.inner.runners_changed.notify_one();
        if let Some(old) = replaced.filter(|old| *old != session) {
            self.close_session(&old, "a new runner with the same name connected").await;
        }
        Ok(())
    }

    /// Removes one runner of a session (its forward was cancelled).
    pub(super) async fn remove_runner(&self, owner: &str, name: &str, session: &str) {
        let key = (owner.to_ascii_lowercase(), name.to_string());
        {
            let mut runners = self.inner.runners.lock().expect("runners lock poisoned");
            if runners.get(&key).is_some_and(|r| r.session == session) {
                runners.remove(&key);
            }
        }
        if let Err(e) = self.inner.store.remove_runner(owner, name, session).await {
            tracing::error!(%owner, %name, error = %e, "removing a runner failed");
        }
    }

    /// The runners of `owner` connected right now.
    pub fn runners_of(&self, owner: &str) -> Vec<LiveRunner> {
        let runners = self.inner.runners.lock().expect("runners lock poisoned");
        runners.values().filter(|r| r.owner.eq_ignore_ascii_case(owner)).cloned().collect()
    }

    pub(super) async fn close_session(&self, id: &str, reason: &str) {
        let handle = self
            .inner
            .sessions
            .lock()
            .expect("sessions lock poisoned")
            .get(id)
            .map(|s| s.handle.clone());
        if let Some(handle) = handle {
            tracing::info!(session = %id, %reason, "closing a session");
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, reason.to_string(), String::new())
                .await;
        }
    }

    /// Whether the server is stopping: a runner lost from now on was lost to the shutdown.
    pub fn is_closing(&self) -> bool {
        self.inner.closing.load(Ordering::SeqCst)
    }

    /// Closes every session, for good: the server is stopping.
    pub(super) async fn close_all(&self, reason: &str) {
        self.inner.closing.store(true, Ordering::SeqCst);
        let ids: Vec<String> =
            self.inner.sessions.lock().expect("sessions lock poisoned").keys().cloned().collect();
        for id in ids {
            self.close_session(&id, reason).await;
        }
    }

    /// Remembers the GitHub id of a login the first time it is seen, in the background: a
    /// failure here must not fail the login.
    fn learn_user_id(&self, login: &str) {
        let Some(lookups) = self.inner.lookups.clone() else { return };
        let store = self.inner.store.clone();
        let login = login.to_string();
        tokio::spawn(async move {
            if matches!(store.user_id(&login).await, Ok(Some(_))) {
                return;
            }
            match lookups.user(&login).await {
                Ok(user) => {
                    if let Err(e) = store.set_user_id(&login, user.id).await {
                        tracing::warn!(%login, error = %e, "storing a GitHub user id failed");
                    }
                }
                Err(e) => tracing::warn!(%login, error = %e, "looking up a GitHub user id failed"),
            }
        });
    }
}
