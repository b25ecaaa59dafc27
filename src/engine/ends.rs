//! A run's end, recorded: its conclusion and exit text stored with the writes it causes (the
//! check run completed, and the deployment's final state for a run that started).

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Notify;

use super::Links;
use super::item::{CheckRunUpdate, OutboxItem};
use crate::core::report::{self, Ended};
use crate::core::run::{Conclusion, RunEnd};
use crate::github::DeploymentState;
use crate::store::{RunRecord, RunStatus, Store};

/// One run's end, to record.
pub(super) struct Ending<'a> {
    /// The run as it is now: `InProgress` with its runner once it started.
    pub run: &'a RunRecord,
    pub end: RunEnd,
    /// The log's last lines, as plain text; empty for a run with no log.
    pub log_tail: &'a str,
}

/// Records runs' ends; the dispatcher's, which owns the runs in flight.
pub(super) struct RunEnds {
    store: Store,
    links: Links,
    outbox_wake: Arc<Notify>,
}

impl RunEnds {
    pub(super) fn new(store: Store, links: Links, outbox_wake: Arc<Notify>) -> RunEnds {
        RunEnds { store, links, outbox_wake }
    }

    /// Records the end of a run, unless it already ended, and queues its check run's
    /// completion (and its deployment's final state, for a run that started and so has one).
    pub(super) async fn finish(&self, ending: Ending<'_>) -> anyhow::Result<()> {
        let Ending { run, end, log_tail } = ending;
        let (now, conclusion, exit) = (SystemTime::now(), end.conclusion(), end.exit());
        let run_url = self.links.run(run.id);
        let runner = run.runner.as_deref().unwrap_or("-");
        let steps = self.store.steps(run.id).await?;
        let at = Ended { runner, run_url: &run_url, log_tail, steps: &steps };
        let output = report::ended(&end, &at);
        let completed = CheckRunUpdate::Completed {
            conclusion,
            completed_at: now,
            title: output.title,
            summary: output.summary,
            text: output.text,
        };
        let mut items = vec![OutboxItem::UpdateCheckRun(completed)];
        if run.deployment_environment.is_some() && run.status != RunStatus::Queued {
            items.push(OutboxItem::DeploymentStatus { state: deployment_state(&end) });
        }
        let entries = items.iter().map(OutboxItem::entry).collect();
        if self.store.finish_run(run.id, conclusion, Some(&exit), now, entries).await? {
            let conclusion = conclusion.as_str();
            tracing::info!(run = run.id, check = run.check, conclusion, "run finished");
            self.outbox_wake.notify_one();
        }
        Ok(())
    }
}

/// A deployment succeeds or fails with its command; any other end is an error.
fn deployment_state(end: &RunEnd) -> DeploymentState {
    match end {
        RunEnd::Finished(finished) => match finished.conclusion(false) {
            Conclusion::Success => DeploymentState::Success,
            Conclusion::Failure => DeploymentState::Failure,
            Conclusion::TimedOut | Conclusion::Cancelled => DeploymentState::Error,
        },
        _ => DeploymentState::Error,
    }
}
