//! The outbox sender: makes each stored GitHub write, in order per run, and retries a failed
//! one with backoff until GitHub accepts it, unless GitHub refused the write itself (a 404, a
//! 422): that one is logged and dropped.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::item::{CheckRunUpdate, OutboxItem};
use super::{Links, Stop, StoredThunk};
use crate::core::config::CONFIG_FILE;
use crate::core::report;
use crate::core::run::Conclusion;
use crate::github::{
    CheckConclusion, CheckOutputWrite, CheckRunWrite, CheckStatus, DeploymentState, GitHub,
    GitHubError,
};
use crate::store::{OutboxRow, RunRecord, Store};

/// Items sent per round.
const OUTBOX_BATCH: usize = 32;
/// The first retry delay; it doubles up to [`OUTBOX_MAX_RETRY_DELAY`].
const OUTBOX_FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const OUTBOX_MAX_RETRY_DELAY: Duration = Duration::from_secs(600);
/// The longest the sender sleeps without looking.
const OUTBOX_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// The outbox sender: the only part that writes to GitHub.
pub(super) struct Outbox {
    store: Store,
    github: GitHub,
    links: Links,
    /// Notified when an item is stored.
    wake: Arc<Notify>,
    /// When this sender started: items due before were possibly sent by an earlier one.
    started_at: SystemTime,
}

impl Outbox {
    pub(super) fn new(store: Store, github: GitHub, links: Links, wake: Arc<Notify>) -> Outbox {
        Outbox { store, github, links, wake, started_at: SystemTime::now() }
    }

    /// Sends what is due, then sleeps until the next item is due or one is stored, until `stop`.
    pub(super) async fn run(self, mut stop: Stop) {
        loop {
            let sleep_for = match self.send_due().await {
                Ok(sleep_for) => sleep_for,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "the outbox failed");
                    OUTBOX_FIRST_RETRY_DELAY
                }
            };
            tokio::select! {
                () = stop.stopped() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep_for) => {}
            }
        }
    }

    /// Sends what is due; returns how long to sleep before the next item is due.
    async fn send_due(&self) -> anyhow::Result<Duration> {
        let store = &self.store;
        loop {
            let due = store.due_outbox(SystemTime::now(), OUTBOX_BATCH).await?;
            if due.is_empty() {
                break;
            }
            for row in due {
                match self.send(&row).await {
                    Ok(()) => store.outbox_done(row.id).await?,
                    Err(e) => self.failed(&row, &e).await?,
                }
            }
        }
        let next = store.next_outbox_due().await?;
        Ok(next.map_or(OUTBOX_POLL_INTERVAL, |at| {
            at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO).min(OUTBOX_POLL_INTERVAL)
        }))
    }

    /// A write that failed is tried again later, or given up when trying cannot help.
    async fn failed(&self, row: &OutboxRow, error: &anyhow::Error) -> anyhow::Result<()> {
        let attempts = row.attempts + 1;
        let text = format!("{error:#}");
        match after_failure(error) {
            AfterFailure::Retry => {
                let next = SystemTime::now() + retry_delay(row.attempts);
                tracing::warn!(
                    item = row.id,
                    kind = row.kind,
                    attempts,
                    error = text,
                    "a GitHub write failed; it will be retried"
                );
                self.store.outbox_retry(row.id, &text, next).await?;
            }
            AfterFailure::GiveUp => {
                tracing::error!(
                    item = row.id,
                    kind = row.kind,
                    run = row.run_id,
                    attempts,
                    payload = row.payload,
                    error = text,
                    "GitHub refused a write; it is dropped, as trying again cannot help"
                );
                self.store.outbox_done(row.id).await?;
            }
        }
        Ok(())
    }

    async fn send(&self, row: &OutboxRow) -> anyhow::Result<()> {
        let item = OutboxItem::from_row(&row.kind, &row.payload)?;
        let github = &self.github;
        match item {
            OutboxItem::CreateCheckRun => self.create_check_run(row).await,
            OutboxItem::UpdateCheckRun(update) => self.update_check_run(row, update).await,
            OutboxItem::ConfigError { installation, repo, sha, message } => {
                self.config_error(row, installation, &repo, &sha, &message).await
            }
            OutboxItem::Reaction { installation, repo, comment_id, content } => {
                Ok(github.add_reaction(installation, &repo, comment_id, content).await?)
            }
            OutboxItem::Comment { installation, repo, issue, body } => {
                Ok(github.create_comment(installation, &repo, issue, &body).await?)
            }
            OutboxItem::DeploymentStart => self.deployment_start(row).await,
            OutboxItem::DeploymentStatus { state } => self.deployment_status(row, state).await,
        }
    }

    async fn create_check_run(&self, row: &OutboxRow) -> anyhow::Result<()> {
        let (run, installation) = self.outbox_run(row).await?;
        let held = serde_json::from_str::<StoredThunk>(&run.thunk).is_ok_and(|t| t.held);
        let queued = if held {
            report::fork_waiting(&run.sender)
        } else {
            report::queued(&run.sender, &self.links.connect_command(&run.sender))
        };
        let write = CheckRunWrite {
            status: CheckStatus::Queued,
            started_at: None,
            conclusion: None,
            completed_at: None,
            output: Some(output(queued)),
            actions: Some(vec![report::CANCEL_ACTION]),
            ..self.check_run_of(&run)
        };
        let id = self.create_once(row, installation, &run.repo, &write).await?;
        self.store.set_check_run_id(run.id, id).await?;
        Ok(())
    }

    /// What every write of the run's check run says about which it is.
    fn check_run_of(&self, run: &RunRecord) -> CheckRunWrite {
        CheckRunWrite {
            name: run.check.clone(),
            head_sha: run.sha.clone(),
            external_id: run.id.to_string(),
            details_url: self.links.run(run.id),
            status: CheckStatus::InProgress,
            started_at: None,
            conclusion: None,
            completed_at: None,
            output: None,
            actions: None,
        }
    }

    async fn update_check_run(
        &self,
        row: &OutboxRow,
        update: CheckRunUpdate,
    ) -> anyhow::Result<()> {
        let (run, installation) = self.outbox_run(row).await?;
        // A run's writes go out in order, so no id means GitHub refused its creation for good.
        let Some(check_run_id) = run.check_run_id else {
            tracing::warn!(run = run.id, "no check run to update: its creation was given up");
            return Ok(());
        };
        let write = match update {
            CheckRunUpdate::InProgress { started_at } => CheckRunWrite {
                started_at: Some(started_at),
                actions: Some(vec![report::CANCEL_ACTION]),
                ..self.check_run_of(&run)
            },
            CheckRunUpdate::Completed { conclusion, completed_at, title, summary, text } => {
                CheckRunWrite {
                    status: CheckStatus::Completed,
                    conclusion: Some(check_conclusion(conclusion)),
                    completed_at: Some(completed_at),
                    output: Some(CheckOutputWrite { title, summary, text }),
                    // A finished run has nothing to cancel: the button goes.
                    actions: Some(Vec::new()),
                    ..self.check_run_of(&run)
                }
            }
        };
        self.github.update_check_run(installation, &run.repo, check_run_id, &write).await?;
        Ok(())
    }

    async fn config_error(
        &self,
        row: &OutboxRow,
        installation: i64,
        repo: &str,
        sha: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        let now = SystemTime::now();
        let write = CheckRunWrite {
            name: CONFIG_FILE.to_string(),
            head_sha: sha.to_string(),
            // Unique, so that a create whose answer was lost is found again.
            external_id: format!("tether.toml-{}", row.id),
            details_url: self.links.external_url.clone(),
            status: CheckStatus::Completed,
            started_at: Some(now),
            conclusion: Some(CheckConclusion::Failure),
            completed_at: Some(now),
            output: Some(CheckOutputWrite {
                title: "tether.toml cannot be used".into(),
                summary: report::limit(&format!("```\n{message}\n```"), ""),
                text: None,
            }),
            actions: None,
        };
        self.create_once(row, installation, repo, &write).await?;
        Ok(())
    }

    /// Creates a check run; returns its id. A create tried before (or by a server that stopped
    /// before recording the answer) may have reached GitHub: then it is looked for first, by its
    /// external id, so that the commit does not get two.
    async fn create_once(
        &self,
        row: &OutboxRow,
        installation: i64,
        repo: &str,
        write: &CheckRunWrite,
    ) -> anyhow::Result<i64> {
        let github = &self.github;
        if row.attempts > 0 || row.next_attempt_at < self.started_at {
            let (sha, name, external_id) = (&write.head_sha, &write.name, &write.external_id);
            if let Some(id) =
                github.find_check_run(installation, repo, sha, name, external_id).await?
            {
                return Ok(id);
            }
        }
        Ok(github.create_check_run(installation, repo, write).await?)
    }

    async fn deployment_start(&self, row: &OutboxRow) -> anyhow::Result<()> {
        let (run, installation) = self.outbox_run(row).await?;
        let environment = run.deployment_environment.clone().unwrap_or_default();
        let github = &self.github;
        // A retry after the deployment was created but its status was not must not create a
        // second deployment.
        let id = match run.deployment_id {
            Some(id) => id,
            None => {
                let id = github
                    .create_deployment(installation, &run.repo, &run.sha, &environment)
                    .await?;
                self.store.set_deployment_id(run.id, id).await?;
                id
            }
        };
        let (state, url) = (DeploymentState::InProgress, self.links.run(run.id));
        Ok(github.create_deployment_status(installation, &run.repo, id, state, &url).await?)
    }

    async fn deployment_status(
        &self,
        row: &OutboxRow,
        state: DeploymentState,
    ) -> anyhow::Result<()> {
        let (run, installation) = self.outbox_run(row).await?;
        let Some(id) = run.deployment_id else {
            tracing::warn!(run = run.id, "no deployment to update: its creation was given up");
            return Ok(());
        };
        let url = self.links.run(run.id);
        Ok(self.github.create_deployment_status(installation, &run.repo, id, state, &url).await?)
    }

    /// The run a row belongs to, and its installation.
    async fn outbox_run(&self, row: &OutboxRow) -> anyhow::Result<(RunRecord, i64)> {
        let id = row.run_id.ok_or_else(|| anyhow::anyhow!("outbox item {} has no run", row.id))?;
        let run = self.store.run(id).await?.ok_or_else(|| anyhow::anyhow!("run {id} is gone"))?;
        let installation = run
            .installation_id
            .ok_or_else(|| anyhow::anyhow!("run {} has no installation", run.id))?;
        Ok((run, installation))
    }
}

fn output(output: report::CheckOutput) -> CheckOutputWrite {
    CheckOutputWrite { title: output.title, summary: output.summary, text: output.text }
}

/// GitHub's name for a conclusion, at the border of the `github` module.
fn check_conclusion(conclusion: Conclusion) -> CheckConclusion {
    match conclusion {
        Conclusion::Success => CheckConclusion::Success,
        Conclusion::Failure => CheckConclusion::Failure,
        Conclusion::TimedOut => CheckConclusion::TimedOut,
        Conclusion::Cancelled => CheckConclusion::Cancelled,
    }
}

/// 1 s, 2 s, 4 s, … up to 10 minutes.
fn retry_delay(attempts: u32) -> Duration {
    OUTBOX_FIRST_RETRY_DELAY.saturating_mul(1 << attempts.min(10)).min(OUTBOX_MAX_RETRY_DELAY)
}

/// What becomes of a write that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterFailure {
    /// Try again after a delay: the cause passes.
    Retry,
    /// Drop it: GitHub refused what was sent, and would refuse it again.
    GiveUp,
}

/// An outage (5xx, rate limits, timeouts) passes, and a refused token is renewed; a 404 or another
/// 4xx (a 422 that names what GitHub found invalid) says the write itself is wrong. A failure
/// that is not GitHub's answer (the store) is retried.
fn after_failure(error: &anyhow::Error) -> AfterFailure {
    match error.downcast_ref::<GitHubError>() {
        None | Some(GitHubError::Unavailable(_) | GitHubError::Unauthorized(_)) => {
            AfterFailure::Retry
        }
        Some(GitHubError::NotFound | GitHubError::TooLarge | GitHubError::Other(_)) => {
            AfterFailure::GiveUp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_and_tokens_are_retried_and_refusals_given_up() {
        let github = |e: GitHubError| after_failure(&anyhow::Error::from(e));
        assert_eq!(github(GitHubError::Unavailable("HTTP 502".into())), AfterFailure::Retry);
        assert_eq!(github(GitHubError::Unavailable("rate limited".into())), AfterFailure::Retry);
        assert_eq!(
            github(GitHubError::Unauthorized("Bad credentials".into())),
            AfterFailure::Retry
        );
        assert_eq!(github(GitHubError::NotFound), AfterFailure::GiveUp);
        let invalid = GitHubError::Other("HTTP 422: Validation Failed".into());
        assert_eq!(github(invalid), AfterFailure::GiveUp);
        let store = anyhow::anyhow!("database is locked");
        assert_eq!(after_failure(&store), AfterFailure::Retry);
        let wrapped = anyhow::Error::from(GitHubError::NotFound).context("updating a check run");
        assert_eq!(after_failure(&wrapped), AfterFailure::GiveUp);
    }
}
