//! The engine: turns stored webhook deliveries into runs, dispatches queued runs to their
//! sender's runners, streams their logs, and sends every GitHub write through the outbox.
//!
//! It wires the store, GitHub, the gateway and the blobstore together; what to do is decided in
//! `core` (which checks, which runner, what a check run says).

mod active;
mod comment;
mod dispatch;
mod intake;
pub mod live;
mod outbox;
mod plan;
pub mod runlog;
mod tail;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::core::Thunk;
use crate::core::dispatch::Requirements;
use crate::github::GitHub;
use crate::logs::LogStore;
use crate::ssh::server::Gateway;
use crate::store::Store;

/// The most bytes of one run's output stored by default: 1 GiB.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 1 << 30;

/// How long a run waits for a runner before it ends `timed_out`.
pub const DEFAULT_QUEUE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What the engine needs to know about the server's addresses.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The base of run page links (`details_url`).
    pub external_url: String,
    /// `HOST:PORT` for `tether runner --connect LOGIN@HOST:PORT`.
    pub ssh_public_addr: String,
    pub queue_ttl: Duration,
    /// The most bytes of a run's output that are stored; the run goes on past them.
    pub log_max_bytes: u64,
}

/// Shared by the engine's loops.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    github: GitHub,
    gateway: Gateway,
    logs: LogStore,
    /// The lines of running runs, for live readers.
    live: live::LiveLogs,
    config: EngineConfig,
    /// Wakes the dispatcher: a run was queued or finished.
    dispatch: Notify,
    /// Wakes the outbox sender: a write was queued.
    outbox: Notify,
    active: active::ActiveRuns,
    /// While GitHub gives no checkout tokens: when to ask again, and the failures so far.
    token_pause: std::sync::Mutex<crate::core::backoff::Pause>,
    /// When this engine started: outbox items due before were possibly sent by an earlier one.
    started_at: std::time::SystemTime,
}

/// What a run's `thunk` column holds: the thunk and what it needs of a runner.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredThunk {
    pub thunk: Thunk,
    pub needs: Requirements,
    /// The `/run` comment that asked for the run, which gets a rocket when it starts.
    #[serde(default)]
    pub comment: Option<CommentRef>,
}

/// A comment to react to.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CommentRef {
    pub installation: i64,
    pub comment_id: i64,
}

impl Engine {
    pub fn new(
        store: Store,
        github: GitHub,
        gateway: Gateway,
        logs: LogStore,
        live: live::LiveLogs,
        config: EngineConfig,
    ) -> Engine {
        let inner = Inner {
            store,
            github,
            gateway,
            logs,
            live,
            config,
            dispatch: Notify::new(),
            outbox: Notify::new(),
            active: active::ActiveRuns::default(),
            token_pause: std::sync::Mutex::default(),
            started_at: std::time::SystemTime::now(),
        };
        Engine { inner: Arc::new(inner) }
    }

    /// Starts the engine's loops; they run until the process ends. `deliveries` is notified
    /// whenever the webhook endpoint stores one.
    pub fn spawn(&self, deliveries: Arc<Notify>) {
        tokio::spawn(intake::run(self.clone(), deliveries));
        tokio::spawn(dispatch::run(self.clone()));
        tokio::spawn(outbox::run(self.clone()));
    }

    fn run_url(&self, run_id: i64) -> String {
        format!("{}/runs/{run_id}", self.inner.config.external_url.trim_end_matches('/'))
    }

    fn connect_command(&self, login: &str) -> String {
        format!("tether runner --connect {login}@{}", self.inner.config.ssh_public_addr)
    }
}
