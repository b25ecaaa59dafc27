//! The dispatcher: gives each queued run to a fitting runner of its sender, runs it there, and
//! records how it ended. A run that waits past its queue deadline ends `timed_out`; a run the
//! planner supersedes is cancelled.

mod follow;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, mpsc};

use super::active::ActiveRuns;
use super::ends::{Ending, RunEnds};
use super::item::{CheckRunUpdate, OutboxItem};
use super::live::LiveLogs;
use super::{Links, Stop, StoredThunk};
use crate::core::backoff::Pause;
use crate::core::dispatch::{Candidate, pick_runner};
use crate::core::run::RunEnd;
use crate::github::{GitHub, GitHubError, Reaction};
use crate::logs::LogStore;
use crate::ssh::server::{Gateway, LiveRunner};
use crate::store::{OutboxEntry, RunRecord, RunStatus, Store};

/// How often queued runs are looked at when nothing woke the dispatcher (queue deadlines).
const DISPATCH_TICK: Duration = Duration::from_secs(1);
/// How many cancels may wait for the dispatcher; a planner that sends more waits.
pub(super) const CANCELS_QUEUED_MAX: usize = 256;

/// A run to end with `end`: cancelled if in flight, otherwise ended where it stands.
#[derive(Debug)]
pub(super) struct Cancel {
    pub run_id: i64,
    pub end: RunEnd,
}

/// Whether a queued run can check out now.
enum Checkout {
    /// With this token (none for a run without an installation).
    Ready(Option<String>),
    /// Not now: it stays queued (or was ended).
    Wait,
}

/// What the dispatcher is made with.
pub(super) struct DispatcherDeps {
    pub store: Store,
    pub github: GitHub,
    pub gateway: Gateway,
    pub logs: LogStore,
    /// The lines of running runs, for live readers.
    pub live: LiveLogs,
    pub log_max_bytes: u64,
    pub links: Links,
    /// Notified when a run is queued.
    pub wake: Arc<Notify>,
    pub outbox_wake: Arc<Notify>,
}

/// Queued runs to runners, and the runs in flight.
pub(super) struct Dispatcher {
    deps: DispatcherDeps,
    ends: RunEnds,
    active: ActiveRuns,
    /// While GitHub gives no checkout tokens: when to ask again, and the failures so far.
    token_pause: std::sync::Mutex<Pause>,
}

impl Dispatcher {
    pub(super) fn new(deps: DispatcherDeps) -> Dispatcher {
        let ends = RunEnds::new(deps.store.clone(), deps.links.clone(), deps.outbox_wake.clone());
        let (active, token_pause) = (ActiveRuns::default(), std::sync::Mutex::default());
        Dispatcher { deps, ends, active, token_pause }
    }

    /// Ends the runs an earlier server left in progress, then dispatches until `stop`.
    pub(super) async fn run(self: Arc<Self>, mut cancels: mpsc::Receiver<Cancel>, mut stop: Stop) {
        if let Err(e) = self.recover().await {
            tracing::error!(
                error = format!("{e:#}"),
                "ending the runs of an earlier server failed"
            );
        }
        let runners_changed = self.deps.gateway.runners_changed();
        loop {
            if let Err(e) = self.dispatch_queued().await {
                tracing::error!(error = format!("{e:#}"), "dispatching failed");
            }
            tokio::select! {
                () = stop.stopped() => return,
                Some(cancel) = cancels.recv() => {
                    let run = cancel.run_id;
                    if let Err(e) = self.cancel(cancel).await {
                        tracing::error!(run, error = format!("{e:#}"), "cancelling a run failed");
                    }
                }
                () = self.deps.wake.notified() => {}
                () = runners_changed.notified() => {}
                () = tokio::time::sleep(DISPATCH_TICK) => {}
            }
        }
    }

    /// At start, no run is in flight on this server: a run still marked in progress was running
    /// when the server stopped, and its stream is gone with it.
    async fn recover(&self) -> anyhow::Result<()> {
        for run in self.deps.store.in_progress_runs().await? {
            let ending = Ending { run: &run, end: RunEnd::server_restarted(), log_tail: "" };
            self.ends.finish(ending).await?;
        }
        Ok(())
    }

    /// Cancels a run in flight, or ends one that is not (queued, or left by a stopped server).
    async fn cancel(&self, cancel: Cancel) -> anyhow::Result<()> {
        let Cancel { run_id, end } = cancel;
        if self.active.cancel(run_id, end.clone()) {
            return Ok(());
        }
        match self.deps.store.run(run_id).await? {
            Some(run) if run.status != RunStatus::Completed => {
                self.ends.finish(Ending { run: &run, end, log_tail: "" }).await
            }
            _ => Ok(()),
        }
    }

    async fn dispatch_queued(self: &Arc<Self>) -> anyhow::Result<()> {
        for run in self.deps.store.queued_runs().await? {
            if SystemTime::now() > run.queue_deadline {
                let end = RunEnd::QueueTimedOut { sender: run.sender.clone() };
                self.ends.finish(Ending { run: &run, end, log_tail: "" }).await?;
                continue;
            }
            let stored: StoredThunk = serde_json::from_str(&run.thunk)?;
            // A fork's pull request its author did not push waits for a `/run`.
            if stored.held {
                continue;
            }
            let live = self.deps.gateway.runners_of(&run.sender);
            let candidates: Vec<Candidate> = live.iter().map(|r| self.candidate(r)).collect();
            let Some(index) = pick_runner(&stored.needs, &candidates) else { continue };
            // Before the run starts: one that cannot check out yet stays queued.
            let Checkout::Ready(token) = self.checkout(&run).await? else { continue };
            self.start(run, stored, live[index].clone(), token).await?;
        }
        Ok(())
    }

    /// The run's checkout token. While GitHub is unavailable (or refuses the app's token, which
    /// renewal can fix) the run waits, and every run waits with it for a backoff, so that an
    /// outage is not asked about every tick for every queued run; any other refusal ends the
    /// run, as no checkout can succeed.
    async fn checkout(&self, run: &RunRecord) -> anyhow::Result<Checkout> {
        let Some(installation) = run.installation_id else { return Ok(Checkout::Ready(None)) };
        if self.token_pause().is_paused(Instant::now()) {
            return Ok(Checkout::Wait);
        }
        match self.deps.github.checkout_token(installation, &run.repo).await {
            Ok(token) => {
                self.token_pause().succeeded();
                Ok(Checkout::Ready(Some(token)))
            }
            Err(
                e @ (GitHubError::Unavailable(_)
                | GitHubError::RateLimited { .. }
                | GitHubError::Unauthorized(_)),
            ) => {
                let delay = self.token_pause().failed(Instant::now(), rand::random());
                tracing::warn!(run = run.id, error = %e, retry_in = ?delay, "no checkout token yet; queued runs wait");
                Ok(Checkout::Wait)
            }
            Err(e) => {
                let end = RunEnd::NoCheckoutToken(format!("{:#}", anyhow::Error::new(e)));
                self.ends.finish(Ending { run, end, log_tail: "" }).await?;
                Ok(Checkout::Wait)
            }
        }
    }

    fn token_pause(&self) -> std::sync::MutexGuard<'_, Pause> {
        self.token_pause.lock().expect("token pause lock poisoned")
    }

    /// Marks the run started on `runner`, with its writes, and launches it.
    async fn start(
        self: &Arc<Self>,
        run: RunRecord,
        stored: StoredThunk,
        runner: LiveRunner,
        token: Option<String>,
    ) -> anyhow::Result<()> {
        let label = format!("{}/{}", runner.owner, runner.name);
        let now = SystemTime::now();
        let entries = start_entries(&run, &stored, now);
        // Live before the run shows as in progress, so that its page and readers find it.
        let live = self.deps.live.start(run.id);
        if self.deps.store.start_run(run.id, &label, now, entries).await? {
            self.deps.outbox_wake.notify_one();
            // The record now describes the run as it goes.
            let run = RunRecord {
                runner: Some(label),
                status: RunStatus::InProgress,
                started_at: Some(SystemTime::now()),
                ..run
            };
            self.launch(run, stored, runner, token, live);
        }
        Ok(())
    }

    fn candidate(&self, runner: &LiveRunner) -> Candidate {
        Candidate {
            name: runner.name.clone(),
            os: runner.info.os.clone(),
            arch: runner.info.arch.clone(),
            labels: runner.info.labels.clone(),
            capacity: runner.info.capacity,
            in_flight: self.active.in_flight(&runner.owner, &runner.name),
        }
    }
}

/// What a run's start writes: the check run in progress, its deployment, a rocket.
fn start_entries(run: &RunRecord, stored: &StoredThunk, at: SystemTime) -> Vec<OutboxEntry> {
    let mut items = vec![OutboxItem::UpdateCheckRun(CheckRunUpdate::InProgress { started_at: at })];
    if run.deployment_environment.is_some() {
        items.push(OutboxItem::DeploymentStart);
    }
    if let Some(comment) = &stored.comment {
        items.push(OutboxItem::Reaction {
            installation: comment.installation,
            repo: run.repo.clone(),
            comment_id: comment.comment_id,
            content: Reaction::Rocket,
        });
    }
    items.iter().map(OutboxItem::entry).collect()
}
