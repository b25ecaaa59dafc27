//! The outbox sender: makes each stored GitHub write, in order per run, and retries a failed
//! one with backoff (`core::retry`) until GitHub accepts it, for up to a day. One GitHub refused
//! itself (a 404, a 422), or still failing after a day, is given up: kept in the outbox as
//! failed with its error, logged, and counted in `/metrics`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::item::{CheckRunUpdate, OutboxItem};
use super::{Links, Stop, StoredThunk};
use crate::core::config::CONFIG_FILE;
use crate::core::report;
use crate::core::retry::{AfterFailure, Failure, FailureKind};
use crate::core::run::Conclusion;
use crate::github::{
    CheckConclusion, CheckOutputWrite, CheckRunWrite, CheckStatus, DeploymentState, GitHub,
    GitHubError,
};
use crate::store::{OutboxRow, RunRecord, Store};

/// Items sent per round.
const OUTBOX_BATCH: usize = 32;
/// How long the sender waits after the store itself failed.
const OUTBOX_STORE_RETRY_DELAY: Duration = Duration::from_secs(1);
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
                    OUTBOX_STORE_RETRY_DELAY
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

    /// A write that failed is tried again later, or given up when trying cannot help or has
    /// gone on for a day: then it is kept, failed, with its error.
    async fn failed(&self, row: &OutboxRow, error: &anyhow::Error) -> anyhow::Result<()> {
        let attempts = row.attempts + 1;
        let text = format!("{error:#}");
        let failure = Failure {
            kind: failure_kind(error),
            earlier_failures: row.attempts,
            first_failure_at: row.first_failure_at,
            now: SystemTime::now(),
        };
        match failure.decide() {
            AfterFailure::RetryAt(next) => {
                let retry_in = next.duration_since(failure.now).unwrap_or_default();
                tracing::warn!(
                    item = row.id,
                    kind = row.kind,
                    attempts,
                    error = text,
                    ?retry_in,
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
                    error = text,
                    "a GitHub write failed for good; it is kept in the outbox as failed"
                );
                self.store.outbox_failed(row.id, &text).await?;
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
        // A run's writes go out in order, so no id means its creation failed for good.
        let Some(check_run_id) = run.check_run_id else {
            return Err(GaveUp("no check run to update: its creation failed for good").into());
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
            return Err(GaveUp("no deployment to update: its creation failed for good").into());
        };
        let url = self.links.run(run.id);
        Ok(self.github.create_deployment_status(installation, &run.repo, id, state, &url).await?)
    }

    /// The run a row belongs to, and its installation.
    async fn outbox_run(&self, row: &OutboxRow) -> anyhow::Result<(RunRecord, i64)> {
        let id = row.run_id.ok_or(GaveUp("the item has no run"))?;
        let run = self.store.run(id).await?.ok_or(GaveUp("its run is gone"))?;
        let installation = run.installation_id.ok_or(GaveUp("its run has no installation"))?;
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

/// A write that cannot be made whatever GitHub says: what it is about is missing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct GaveUp(&'static str);

/// How a failed write failed: GitHub's errors classify themselves (`GitHubError::kind`), a
/// write with nothing to write to is permanent, and anything else (the store) passes.
fn failure_kind(error: &anyhow::Error) -> FailureKind {
    if error.downcast_ref::<GaveUp>().is_some() {
        return FailureKind::Permanent;
    }
    error.downcast_ref::<GitHubError>().map_or(FailureKind::Transient, GitHubError::kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_and_limits_are_retried_and_refusals_given_up() {
        let github = |e: GitHubError| failure_kind(&anyhow::Error::from(e));
        assert_eq!(github(GitHubError::Unavailable("HTTP 502".into())), FailureKind::Transient);
        let until = SystemTime::now();
        let limited = GitHubError::RateLimited { until, message: "HTTP 429".into() };
        assert_eq!(github(limited), FailureKind::RateLimited { until });
        assert_eq!(github(GitHubError::NotFound), FailureKind::Permanent);
        let invalid = GitHubError::Other("HTTP 422: Validation Failed".into());
        assert_eq!(github(invalid), FailureKind::Permanent);
        let store = anyhow::anyhow!("database is locked");
        assert_eq!(failure_kind(&store), FailureKind::Transient);
        let wrapped = anyhow::Error::from(GitHubError::NotFound).context("updating a check run");
        assert_eq!(failure_kind(&wrapped), FailureKind::Permanent);
        let orphan = anyhow::Error::from(GaveUp("no check run to update")).context("item 3");
        assert_eq!(failure_kind(&orphan), FailureKind::Permanent);
    }
}
