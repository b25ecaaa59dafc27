//! One run on its runner: started, its events streamed into its log, and its end recorded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::Dispatcher;
use crate::core::run::RunEnd;
use crate::core::steps::KeptSteps;
use crate::core::{EventContext, RunEvent, Step, StepStatus};
use crate::engine::StoredThunk;
use crate::engine::ends::Ending;
use crate::engine::live::LivePublisher;
use crate::engine::runlog::RunLog;
use crate::exec::RunSpec;
use crate::runner::RunnerError;
use crate::runner::client::RunEvents;
use crate::ssh::server::LiveRunner;
use crate::store::RunRecord;

/// How many times a run is offered to a runner that says it is busy.
const BUSY_RETRIES: u32 = 10;
const BUSY_RETRY_DELAY: Duration = Duration::from_millis(500);

/// How a followed run stopped.
enum Stopped {
    /// With an end to record.
    Ended(RunEnd),
    /// Its stream failed, for this reason.
    Lost(String),
}

impl Dispatcher {
    /// Runs `run` on `runner` in a task of its own, in flight until its end is recorded.
    pub(super) fn launch(
        self: &Arc<Self>,
        run: RunRecord,
        stored: StoredThunk,
        runner: LiveRunner,
        token: Option<String>,
        live: LivePublisher,
    ) {
        let cancelled = self.active.add(run.id, &runner.owner, &runner.name);
        let dispatcher = self.clone();
        tokio::spawn(async move {
            let id = run.id;
            // An open `ssh -R` session of the runner shows its runs as they start and end.
            dispatcher.deps.gateway.run_started(&runner, &run);
            let gateway = dispatcher.deps.gateway.clone();
            let shown = runner.clone();
            let ran = dispatcher.execute(&run, stored, runner, token, cancelled, live).await;
            if let Err(e) = ran {
                tracing::error!(run = id, error = format!("{e:#}"), "a run failed to complete");
            }
            gateway.run_ended(&shown, id);
            dispatcher.active.remove(id);
            dispatcher.deps.wake.notify_one();
        });
    }

    /// Runs one run on its runner and records the end.
    async fn execute(
        &self,
        run: &RunRecord,
        stored: StoredThunk,
        runner: LiveRunner,
        token: Option<String>,
        cancelled: oneshot::Receiver<RunEnd>,
        live: LivePublisher,
    ) -> anyhow::Result<()> {
        let spec = RunSpec {
            thunk: stored.thunk,
            clone_token: token,
            run_id: run.id.to_string(),
            event: EventContext { kind: run.event.clone(), repo: run.repo.clone() },
        };
        let mut client = runner.client.clone();
        let mut end = RunEnd::RunnerBusy;
        for _ in 0..BUSY_RETRIES {
            match client.run(&spec).await {
                Err(RunnerError::Busy(_)) => tokio::time::sleep(BUSY_RETRY_DELAY).await,
                Err(e) => {
                    end = RunEnd::RunnerError(format!("{:#}", anyhow::Error::new(e)));
                    break;
                }
                Ok(events) => {
                    let timeout = spec.thunk.timeout;
                    return self.follow(run, events, cancelled, live, timeout).await;
                }
            }
        }
        self.ends.finish(Ending { run, end, log_tail: "" }).await
    }

    /// Streams a run's events into its log until it ends, is cancelled, or its runner is lost,
    /// and records the end.
    async fn follow(
        &self,
        run: &RunRecord,
        mut events: RunEvents,
        cancelled: oneshot::Receiver<RunEnd>,
        live: LivePublisher,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let mut log = RunLog::open(&self.deps.logs, live, self.deps.log_max_bytes).await?;
        // A cancel's sender lives as long as the run is in flight, so it is never dropped first.
        let cancelled = async {
            match cancelled.await {
                Ok(end) => end,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::pin!(cancelled);
        let mut steps = KeptSteps::default();
        let stopped = loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(RunEvent::Output { data, at, .. })) => log.push(&data, at).await?,
                    Some(Ok(RunEvent::Finished(finished))) => {
                        break Stopped::Ended(RunEnd::Finished(finished));
                    }
                    Some(Ok(RunEvent::Step(step))) => {
                        let kept = steps.take(log.on_page(step));
                        self.save_steps(run.id, kept).await;
                    }
                    Some(Ok(RunEvent::Started { .. })) => {}
                    Some(Err(e)) => break Stopped::Lost(format!("{:#}", anyhow::Error::new(e))),
                    None => break Stopped::Lost("the stream ended without a result".into()),
                },
                end = &mut cancelled => {
                    drop(events);
                    break Stopped::Ended(end);
                }
            }
        };
        // Steps the runner did not end (it was lost, or the run cancelled) end with the run.
        let status = match &stopped {
            Stopped::Ended(RunEnd::Finished(_)) | Stopped::Lost(_) => StepStatus::Failure,
            Stopped::Ended(_) => StepStatus::Cancelled,
        };
        let last = log.page_lines();
        let unended = steps.end_running(status, std::time::SystemTime::now(), last);
        self.save_steps(run.id, unended).await;
        let word = match &stopped {
            Stopped::Ended(end) => end.last_word(timeout),
            Stopped::Lost(why) => Some(format!("runner lost: {why}")),
        };
        if let Some(word) = word {
            log.last_word(&word, std::time::SystemTime::now()).await?;
        }
        let (tail, _live) = log.finish().await?;
        let end = match stopped {
            Stopped::Ended(end) => end,
            // The server is stopping and cut the stream itself: the run stays in progress, and
            // the next start ends it as lost to the restart (`recover`).
            Stopped::Lost(_) if self.deps.gateway.is_closing() => return Ok(()),
            Stopped::Lost(why) => RunEnd::RunnerLost(why),
        };
        let log_tail = tail.text();
        self.ends.finish(Ending { run, end, log_tail: &log_tail }).await
    }

    /// Stores steps of run `id`; a failure costs the page its steps, not the run its end.
    async fn save_steps(&self, id: i64, steps: impl IntoIterator<Item = Step>) {
        for step in steps {
            if let Err(e) = self.deps.store.save_step(id, step).await {
                tracing::warn!(run = id, error = format!("{e:#}"), "storing a step");
            }
        }
    }
}
