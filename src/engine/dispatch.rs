//! The dispatcher: gives each queued run to a fitting runner of its sender, runs it there, and
//! records how it ended. A run that waits past its queue deadline ends `timed_out`.

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::active::Active;
use super::live::LivePublisher;
use super::runlog::RunLog;
use super::tail::Tail;
use super::{Engine, StoredThunk};
use crate::core::backoff::Pause;
use crate::core::dispatch::{Candidate, pick_runner};
use crate::core::run::{Conclusion, Finished};
use crate::core::{EventContext, RunEvent};
use crate::exec::RunSpec;
use crate::github::GitHubError;
use crate::runner::RunnerError;
use crate::ssh::server::LiveRunner;
use crate::store::{OutboxEntry, RunRecord};

/// How often queued runs are looked at when nothing woke the dispatcher (queue deadlines).
const DISPATCH_TICK: Duration = Duration::from_secs(1);
/// How many times a run is offered to a runner that says it is busy.
const BUSY_RETRIES: u32 = 10;
const BUSY_RETRY_DELAY: Duration = Duration::from_millis(500);

/// Whether a queued run can check out now.
enum Checkout {
    /// With this token (none for a run without an installation).
    Ready(Option<String>),
    /// Not now: it stays queued (or was ended).
    Wait,
}

pub async fn run(engine: Engine) {
    if let Err(e) = engine.recover().await {
        tracing::error!(error = format!("{e:#}"), "ending the runs of an earlier server failed");
    }
    let runners_changed = engine.inner.gateway.runners_changed();
    loop {
        if let Err(e) = engine.dispatch_queued().await {
            tracing::error!(error = format!("{e:#}"), "dispatching failed");
        }
        tokio::select! {
            () = engine.inner.dispatch.notified() => {}
            () = runners_changed.notified() => {}
            () = tokio::time::sleep(DISPATCH_TICK) => {}
        }
    }
}

impl Engine {
    /// At start, no run is in flight on this server: a run still marked in progress was running
    /// when the server stopped, and its stream is gone with it.
    async fn recover(&self) -> anyhow::Result<()> {
        for run in self.inner.store.in_progress_runs().await? {
            let why = "runner lost: the server restarted while the run was going";
            self.finish(&run, Conclusion::Failure, Some(why), None, true).await?;
        }
        Ok(())
    }

    async fn dispatch_queued(&self) -> anyhow::Result<()> {
        for run in self.inner.store.queued_runs().await? {
            if SystemTime::now() > run.queue_deadline {
                let why = format!("no runner of @{} connected within the queue time", run.sender);
                self.finish(&run, Conclusion::TimedOut, Some(&why), None, false).await?;
                continue;
            }
            let stored: StoredThunk = serde_json::from_str(&run.thunk)?;
            let live = self.inner.gateway.runners_of(&run.sender);
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
        match self.inner.github.checkout_token(installation, &run.repo).await {
            Ok(token) => {
                self.token_pause().succeeded();
                Ok(Checkout::Ready(Some(token)))
            }
            Err(e @ (GitHubError::Unavailable(_) | GitHubError::Unauthorized(_))) => {
                let delay = self.token_pause().failed(Instant::now(), rand::random());
                tracing::warn!(run = run.id, error = %e, retry_in = ?delay, "no checkout token yet; queued runs wait");
                Ok(Checkout::Wait)
            }
            Err(e) => {
                let why = format!("no checkout token: {e}");
                self.finish(run, Conclusion::Failure, Some(&why), None, false).await?;
                Ok(Checkout::Wait)
            }
        }
    }

    fn token_pause(&self) -> std::sync::MutexGuard<'_, Pause> {
        self.inner.token_pause.lock().expect("token pause lock poisoned")
    }

    /// Marks the run started on `runner`, with its writes, and launches it.
    async fn start(
        &self,
        run: RunRecord,
        stored: StoredThunk,
        runner: LiveRunner,
        token: Option<String>,
    ) -> anyhow::Result<()> {
        let label = format!("{}/{}", runner.owner, runner.name);
        let entries = self.start_entries(&run, &stored);
        // Live before the run shows as in progress, so that its page and readers find it.
        let live = self.inner.live.start(run.id);
        if self.inner.store.start_run(run.id, &label, SystemTime::now(), entries).await? {
            self.inner.outbox.notify_one();
            // The record now describes the run as it goes.
            let now = SystemTime::now();
            let run = RunRecord {
                runner: Some(label),
                status: crate::store::RunStatus::InProgress,
                started_at: Some(now),
                ..run
            };
            self.launch(run, stored, runner, token, live);
        }
        Ok(())
    }

    /// What a run's start writes: the check run in progress, its deployment, a rocket.
    fn start_entries(&self, run: &RunRecord, stored: &StoredThunk) -> Vec<OutboxEntry> {
        let mut entries = vec![self.in_progress_entry(SystemTime::now())];
        if run.deployment_environment.is_some() {
            entries.push(OutboxEntry {
                kind: super::outbox::DEPLOYMENT_START.into(),
                payload: "{}".into(),
            });
        }
        if let Some(comment) = &stored.comment {
            let payload = serde_json::json!({ "installation": comment.installation, "repo": run.repo, "comment_id": comment.comment_id, "content": "rocket" });
            entries.push(OutboxEntry {
                kind: super::outbox::REACTION.into(),
                payload: payload.to_string(),
            });
        }
        entries
    }

    fn candidate(&self, runner: &LiveRunner) -> Candidate {
        Candidate {
            name: runner.name.clone(),
            os: runner.info.os.clone(),
            arch: runner.info.arch.clone(),
            labels: runner.info.labels.clone(),
            capacity: runner.info.capacity,
            in_flight: self.inner.active.in_flight(&runner.owner, &runner.name),
        }
    }

    fn launch(
        &self,
        run: RunRecord,
        stored: StoredThunk,
        runner: LiveRunner,
        token: Option<String>,
        live: LivePublisher,
    ) {
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let active =
            Active { runner: (runner.owner.clone(), runner.name.clone()), cancel: Some(cancel_tx) };
        self.inner.active.runs.lock().expect("active runs lock poisoned").insert(run.id, active);
        let engine = self.clone();
        tokio::spawn(async move {
            let id = run.id;
            if let Err(e) = engine.execute(&run, stored, runner, token, cancel_rx, live).await {
                tracing::error!(run = id, error = format!("{e:#}"), "a run failed to complete");
            }
            engine.inner.active.runs.lock().expect("active runs lock poisoned").remove(&id);
            engine.inner.dispatch.notify_one();
        });
    }

    /// Runs one run on its runner and records the end.
    async fn execute(
        &self,
        run: &RunRecord,
        stored: StoredThunk,
        runner: LiveRunner,
        token: Option<String>,
        cancel: oneshot::Receiver<String>,
        live: LivePublisher,
    ) -> anyhow::Result<()> {
        let spec = RunSpec {
            thunk: stored.thunk,
            clone_token: token,
            run_id: run.id.to_string(),
            event: EventContext { kind: run.event.clone(), repo: run.repo.clone() },
        };
        let mut client = runner.client.clone();
        let mut events = None;
        for _ in 0..BUSY_RETRIES {
            match client.run(&spec).await {
                Err(RunnerError::Busy(_)) => tokio::time::sleep(BUSY_RETRY_DELAY).await,
                other => {
                    events = Some(other);
                    break;
                }
            }
        }
        let events = match events {
            Some(Ok(events)) => events,
            Some(Err(e)) => {
                return self
                    .finish(
                        run,
                        Conclusion::Failure,
                        Some(&format!("runner error: {e}")),
                        None,
                        true,
                    )
                    .await;
            }
            None => {
                return self
                    .finish(run, Conclusion::Failure, Some("the runner stayed busy"), None, true)
                    .await;
            }
        };
        self.follow(run, events, cancel, live).await
    }

    /// Streams a run's events into its log until it ends, is cancelled, or its runner is lost.
    async fn follow(
        &self,
        run: &RunRecord,
        mut events: crate::runner::client::RunEvents,
        mut cancel: oneshot::Receiver<String>,
        live: LivePublisher,
    ) -> anyhow::Result<()> {
        let mut log = RunLog::open(&self.inner.logs, live, self.inner.config.log_max_bytes).await?;
        let ended = loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(RunEvent::Output { data, at, .. })) => log.push(&data, at).await?,
                    Some(Ok(RunEvent::Finished(finished))) => break Ok(finished),
                    // Steps are not stored yet; they must not end the run.
                    Some(Ok(RunEvent::Started { .. } | RunEvent::Step(_))) => {}
                    Some(Err(e)) => break Err(format!("runner lost: {e}")),
                    None => break Err("runner lost: the stream ended without a result".to_string()),
                },
                reason = &mut cancel => {
                    drop(events);
                    break Err(reason.unwrap_or_else(|_| "cancelled".into()));
                }
            }
        };
        let (tail, _live) = log.finish().await?;
        self.record_end(run, ended, &tail).await
    }

    /// Records how a followed run ended: its result, a lost runner, or a cancel.
    async fn record_end(
        &self,
        run: &RunRecord,
        ended: Result<Finished, String>,
        tail: &Tail,
    ) -> anyhow::Result<()> {
        match ended {
            Ok(finished) => {
                let (exit, tail) = (finished.outcome.describe(), tail.text());
                let conclusion = finished.conclusion(false);
                self.finish(run, conclusion, Some(&exit), Some((&finished, &tail)), true).await
            }
            // The server is stopping and cut the stream itself: the run stays in progress, and
            // the next start ends it as lost to the restart (`recover`).
            Err(reason) if reason.starts_with("runner lost") && self.inner.gateway.is_closing() => {
                Ok(())
            }
            Err(reason) if reason.starts_with("runner lost") => {
                self.finish(run, Conclusion::Failure, Some(&reason), None, true).await
            }
            Err(reason) => self.finish(run, Conclusion::Cancelled, Some(&reason), None, true).await,
        }
    }

    /// Cancels the open runs of these checks of a pull request at other commits ("superseded by
    /// SHA"): a new head makes them moot.
    pub(super) async fn supersede(
        &self,
        repo: &str,
        pr: u64,
        head_sha: &str,
        checks: &[String],
    ) -> anyhow::Result<()> {
        for check in checks {
            for run in self.inner.store.open_runs_of_pr(repo, pr, check).await? {
                if run.sha == head_sha {
                    continue;
                }
                let reason = format!("superseded by {}", &head_sha[..head_sha.len().min(12)]);
                if !self.inner.active.cancel(run.id, &reason) {
                    let started = run.status != crate::store::RunStatus::Queued;
                    self.finish(&run, Conclusion::Cancelled, Some(&reason), None, started).await?;
                }
            }
        }
        Ok(())
    }

    /// Records the end of a run and queues its check run's completion (and its deployment's, for
    /// a run that `started` and so has one).
    pub(super) async fn finish(
        &self,
        run: &RunRecord,
        conclusion: Conclusion,
        exit: Option<&str>,
        result: Option<(&Finished, &str)>,
        started: bool,
    ) -> anyhow::Result<()> {
        let now = SystemTime::now();
        let mut entries = vec![self.completed_entry(run, conclusion, exit, result, now)];
        if run.deployment_environment.is_some() && started {
            let state = match conclusion {
                Conclusion::Success => "success",
                Conclusion::Failure if result.is_some() => "failure",
                _ => "error",
            };
            let payload = serde_json::json!({ "state": state }).to_string();
            entries.push(OutboxEntry { kind: super::outbox::DEPLOYMENT_STATUS.into(), payload });
        }
        let done = self
            .inner
            .store
            .finish_run(run.id, conclusion_str(conclusion), exit, now, entries)
            .await?;
        if done {
            let conclusion = conclusion_str(conclusion);
            tracing::info!(run = run.id, check = run.check, conclusion, "run finished");
            self.inner.outbox.notify_one();
        }
        Ok(())
    }

    fn in_progress_entry(&self, at: SystemTime) -> OutboxEntry {
        let payload = serde_json::json!({ "status": "in_progress", "started_at": unix_ms(at) });
        OutboxEntry { kind: super::outbox::UPDATE_CHECK_RUN.into(), payload: payload.to_string() }
    }

    fn completed_entry(
        &self,
        run: &RunRecord,
        conclusion: Conclusion,
        exit: Option<&str>,
        result: Option<(&Finished, &str)>,
        at: SystemTime,
    ) -> OutboxEntry {
        let url = self.run_url(run.id);
        let output = match result {
            Some((finished, tail)) => {
                crate::core::report::finished(&crate::core::report::Finished {
                    conclusion,
                    duration: finished.duration,
                    runner: run.runner.as_deref().unwrap_or("-"),
                    exit: exit.unwrap_or("-"),
                    run_url: &url,
                    log_tail: tail,
                })
            }
            None => {
                crate::core::report::ended_without_result(conclusion, exit.unwrap_or("-"), &url)
            }
        };
        let payload = serde_json::json!({
            "status": "completed",
            "conclusion": conclusion_str(conclusion),
            "completed_at": unix_ms(at),
            "title": output.title,
            "summary": output.summary,
            "text": output.text,
        });
        OutboxEntry { kind: super::outbox::UPDATE_CHECK_RUN.into(), payload: payload.to_string() }
    }
}

pub fn conclusion_str(conclusion: Conclusion) -> &'static str {
    match conclusion {
        Conclusion::Success => "success",
        Conclusion::Failure => "failure",
        Conclusion::TimedOut => "timed_out",
        Conclusion::Cancelled => "cancelled",
    }
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
