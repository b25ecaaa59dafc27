//! The engine: turns stored webhook deliveries into runs, dispatches queued runs to their
//! sender's runners, streams their logs, and sends every GitHub write through the outbox.
//!
//! It wires the store, GitHub, the gateway and the blobstore together; what to do is decided in
//! `core` (which checks, which runner, what a check run says).

mod actions;
mod active;
mod dispatch;
mod ends;
mod intake;
mod item;
pub mod live;
mod outbox;
mod plan;
pub mod runlog;
mod tail;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

pub use self::actions::{ActionError, Actions};
use self::dispatch::Dispatcher;
use self::intake::Intake;
use self::outbox::Outbox;
use self::plan::Planner;
use crate::access::Access;
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

/// The engine: its parts, and the loops they run once spawned.
///
/// The parts form a pipeline with one-way arrows: `Intake` (deliveries) calls `Planner` (runs
/// and their check runs, into the store); `Dispatcher` takes queued runs from the store and hears
/// from the planner only through a channel of cancels; every GitHub write goes through the
/// store's outbox to `Outbox`, woken by a `Notify`. No part calls back into one that called it.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    /// The parts, until [`Engine::spawn`] starts their loops.
    parts: Mutex<Option<Parts>>,
    /// The loops' handles, for [`Engine::shutdown`] to await.
    loops: Mutex<Vec<JoinHandle<()>>>,
    /// Tells the loops to stop.
    stop: watch::Sender<bool>,
    /// Cancel and re-run, for the web, SSH and check-run buttons.
    actions: Actions,
}

struct Parts {
    intake: Intake,
    dispatcher: Dispatcher,
    cancels: mpsc::Receiver<dispatch::Cancel>,
    outbox: Outbox,
}

/// The links the engine writes into check runs.
#[derive(Debug, Clone)]
struct Links {
    external_url: String,
    ssh_public_addr: String,
}

impl Links {
    fn run(&self, run_id: i64) -> String {
        format!("{}/runs/{run_id}", self.external_url.trim_end_matches('/'))
    }

    fn connect_command(&self, login: &str) -> String {
        format!("tether runner --connect {login}@{}", self.ssh_public_addr)
    }
}

/// What tells the dispatcher and the outbox that something was stored for them.
#[derive(Clone)]
struct Wakes {
    dispatch: Arc<Notify>,
    outbox: Arc<Notify>,
}

/// A loop's view of the engine's stop signal.
#[derive(Clone)]
struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Resolves once the engine is told to stop; never, if it is dropped without being told.
    async fn stopped(&mut self) {
        if self.0.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// What a run's `thunk` column holds: the thunk and what it needs of a runner.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredThunk {
    pub thunk: Thunk,
    pub needs: Requirements,
    /// The `/run` comment that asked for the run, which gets a rocket when it starts.
    #[serde(default)]
    pub comment: Option<CommentRef>,
    /// A fork's pull request that its author did not push: the run waits, queued, for a
    /// `/run`, and is never dispatched to its sender's runner.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

/// A comment to react to.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CommentRef {
    pub installation: i64,
    pub comment_id: i64,
}

impl Engine {
    /// `access` decides who may cancel and re-run.
    pub fn new(
        (store, github, access): (Store, GitHub, Access),
        gateway: Gateway,
        logs: LogStore,
        live: live::LiveLogs,
        config: EngineConfig,
    ) -> Engine {
        let links = Links {
            external_url: config.external_url.clone(),
            ssh_public_addr: config.ssh_public_addr.clone(),
        };
        let (dispatch_wake, outbox_wake) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (cancel_tx, cancels) = mpsc::channel(dispatch::CANCELS_QUEUED_MAX);
        let wakes = Wakes { dispatch: dispatch_wake.clone(), outbox: outbox_wake.clone() };
        let ttl = config.queue_ttl;
        let planner = Planner::new((store.clone(), github.clone()), ttl, cancel_tx.clone(), wakes);
        let actions = Actions::new(store.clone(), access, planner.clone(), cancel_tx);
        let intake = Intake::new(
            (store.clone(), github.clone()),
            planner,
            actions.clone(),
            outbox_wake.clone(),
        );
        let dispatcher = Dispatcher::new(dispatch::DispatcherDeps {
            store: store.clone(),
            github: github.clone(),
            gateway,
            logs,
            live,
            log_max_bytes: config.log_max_bytes,
            links: links.clone(),
            wake: dispatch_wake,
            outbox_wake: outbox_wake.clone(),
        });
        let outbox = Outbox::new(store, github, links, outbox_wake);
        let parts = Parts { intake, dispatcher, cancels, outbox };
        let inner = Inner {
            parts: Mutex::new(Some(parts)),
            loops: Mutex::default(),
            stop: watch::Sender::new(false),
            actions,
        };
        Engine { inner: Arc::new(inner) }
    }

    /// Cancel and re-run, each checked against who asks.
    pub fn actions(&self) -> Actions {
        self.inner.actions.clone()
    }

    /// Starts the engine's loops (once; a second call does nothing); they run until
    /// [`Engine::shutdown`]. `deliveries` is notified whenever the webhook endpoint stores one.
    pub fn spawn(&self, deliveries: Arc<Notify>) {
        let Some(parts) = self.inner.parts.lock().expect("engine lock poisoned").take() else {
            return;
        };
        let stop = Stop(self.inner.stop.subscribe());
        let Parts { intake, dispatcher, cancels, outbox } = parts;
        let loops = vec![
            tokio::spawn(intake.run(deliveries, stop.clone())),
            tokio::spawn(Arc::new(dispatcher).run(cancels, stop.clone())),
            tokio::spawn(outbox.run(stop)),
        ];
        self.inner.loops.lock().expect("engine lock poisoned").extend(loops);
    }

    /// Stops the loops and waits for them to end. Each stops where it waits for work, so a
    /// delivery, dispatch or GitHub write under way is finished first. Runs under way go on
    /// until their stream ends (the server closes it when it stops).
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let loops = std::mem::take(&mut *self.inner.loops.lock().expect("engine lock poisoned"));
        for handle in loops {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "an engine loop panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::UserLookups;
    use crate::ssh::server::Keyring;

    /// An engine on a real SQLite file; GitHub is never asked, as nothing is stored for it.
    async fn engine(dir: &std::path::Path) -> Engine {
        let store = Store::open(&dir.join("tether.db")).await.unwrap();
        let github = GitHub::new("http://127.0.0.1:9").unwrap();
        let keyring = Keyring::new(Arc::new(UserLookups::new(github.clone())));
        let gateway = Gateway::new(store.clone(), keyring, None, None);
        let logs = LogStore::open(None, dir).unwrap();
        let config = EngineConfig {
            external_url: "https://ci.example".into(),
            ssh_public_addr: "ci.example:6455".into(),
            queue_ttl: DEFAULT_QUEUE_TTL,
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
        };
        let access = Access::new(store.clone(), github.clone(), None, Duration::ZERO);
        Engine::new((store, github, access), gateway, logs, live::LiveLogs::default(), config)
    }

    #[tokio::test]
    async fn shutdown_stops_every_loop_and_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        engine.spawn(Arc::new(Notify::new()));
        let handles: Vec<_> =
            engine.inner.loops.lock().unwrap().iter().map(JoinHandle::abort_handle).collect();
        assert_eq!(handles.len(), 3, "intake, dispatcher and outbox");
        assert!(handles.iter().all(|h| !h.is_finished()), "a loop ended on its own");
        let stopped = tokio::time::timeout(Duration::from_secs(10), engine.shutdown()).await;
        assert!(stopped.is_ok(), "a loop did not stop");
        assert!(handles.iter().all(|h| h.is_finished()), "shutdown returned before a loop ended");
        // The parts were moved into the loops: a second spawn starts nothing.
        engine.spawn(Arc::new(Notify::new()));
        assert!(engine.inner.loops.lock().unwrap().is_empty());
    }
}
