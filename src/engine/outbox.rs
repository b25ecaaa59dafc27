//! The outbox sender: makes each stored GitHub write, in order per run, and retries a failed
//! one with backoff until GitHub accepts it, unless GitHub refused the write itself (a 404, a
//! 422): that one is logged and dropped.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::Engine;
use crate::core::report;
use crate::github::{
    CheckConclusion, CheckOutputWrite, CheckRunWrite, CheckStatus, DeploymentState, GitHubError,
    Reaction,
};
use crate::store::OutboxItem;

/// Create a run's check run (`queued`, with how to connect a runner).
pub const CREATE_CHECK_RUN: &str = "create_check_run";
/// Update a run's check run; the payload holds the new state.
pub const UPDATE_CHECK_RUN: &str = "update_check_run";
/// Report an unusable `tether.toml` as a failed check run.
pub const CONFIG_ERROR: &str = "config_error";
/// React to a comment.
pub const REACTION: &str = "reaction";
/// Reply to a pull request.
pub const COMMENT: &str = "comment";
/// Create a run's deployment and mark it in progress.
pub const DEPLOYMENT_START: &str = "deployment_start";
/// Set a run's deployment's final state; the payload holds it.
pub const DEPLOYMENT_STATUS: &str = "deployment_status";

/// Items sent per round.
const OUTBOX_BATCH: usize = 32;
/// The first retry delay; it doubles up to [`OUTBOX_MAX_RETRY_DELAY`].
const OUTBOX_FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const OUTBOX_MAX_RETRY_DELAY: Duration = Duration::from_secs(600);
/// The longest the sender sleeps without looking.
const OUTBOX_POLL_INTERVAL: Duration = Duration::from_secs(30);

pub async fn run(engine: Engine) {
    loop {
        let sleep_for = match engine.send_due().await {
            Ok(sleep_for) => sleep_for,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "the outbox failed");
                OUTBOX_FIRST_RETRY_DELAY
            }
        };
        tokio::select! {
            () = engine.inner.outbox.notified() => {}
            () = tokio::time::sleep(sleep_for) => {}
        }
    }
}

impl Engine {
    /// Sends what is due; returns how long to sleep before the next item is due.
    async fn send_due(&self) -> anyhow::Result<Duration> {
        let store = &self.inner.store;
        loop {
            let due = store.due_outbox(SystemTime::now(), OUTBOX_BATCH).await?;
            if due.is_empty() {
                break;
            }
            for item in due {
                match self.send(&item).await {
                    Ok(()) => store.outbox_done(item.id).await?,
                    Err(e) => self.failed(&item, &e).await?,
                }
            }
        }
        let next = store.next_outbox_due().await?;
        Ok(next.map_or(OUTBOX_POLL_INTERVAL, |at| {
            at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO).min(OUTBOX_POLL_INTERVAL)
        }))
    }

    /// A write that failed is tried again later, or given up when trying cannot help.
    async fn failed(&self, item: &OutboxItem, error: &anyhow::Error) -> anyhow::Result<()> {
        let (store, attempts) = (&self.inner.store, item.attempts + 1);
        let text = format!("{error:#}");
        match after_failure(error) {
            AfterFailure::Retry => {
                let next = SystemTime::now() + retry_delay(item.attempts);
                tracing::warn!(
                    item = item.id,
                    kind = item.kind,
                    attempts,
                    error = text,
                    "a GitHub write failed; it will be retried"
                );
                store.outbox_retry(item.id, &text, next).await?;
            }
            AfterFailure::GiveUp => {
                tracing::error!(
                    item = item.id,
                    kind = item.kind,
                    run = item.run_id,
                    attempts,
                    payload = item.payload,
                    error = text,
                    "GitHub refused a write; it is dropped, as trying again cannot help"
                );
                store.outbox_done(item.id).await?;
            }
        }
        Ok(())
    }

    async fn send(&self, item: &OutboxItem) -> anyhow::Result<()> {
        match item.kind.as_str() {
            CREATE_CHECK_RUN => self.create_check_run(item).await,
            UPDATE_CHECK_RUN => self.update_check_run(item).await,
            CONFIG_ERROR => self.config_error(item).await,
            REACTION => self.react(item).await,
            COMMENT => self.comment(item).await,
            DEPLOYMENT_START => self.deployment_start(item).await,
            DEPLOYMENT_STATUS => self.deployment_status(item).await,
            other => anyhow::bail!("unknown outbox kind {other:?}"),
        }
    }

    async fn create_check_run(&self, item: &OutboxItem) -> anyhow::Result<()> {
        let run = self.outbox_run(item).await?;
        let installation = run
            .installation_id
            .ok_or_else(|| anyhow::anyhow!("run {} has no installation", run.id))?;
        let queued = report::queued(&run.sender, &self.connect_command(&run.sender));
        let write = CheckRunWrite {
            name: run.check.clone(),
            head_sha: run.sha.clone(),
            external_id: run.id.to_string(),
            details_url: self.run_url(run.id),
            status: CheckStatus::Queued,
            started_at: None,
            conclusion: None,
            completed_at: None,
            output: Some(CheckOutputWrite {
                title: queued.title,
                summary: queued.summary,
                text: queued.text,
            }),
        };
        let id = self.create_once(item, installation, &run.repo, &write).await?;
        self.inner.store.set_check_run_id(run.id, id).await?;
        Ok(())
    }

    async fn update_check_run(&self, item: &OutboxItem) -> anyhow::Result<()> {
        let run = self.outbox_run(item).await?;
        let installation = run
            .installation_id
            .ok_or_else(|| anyhow::anyhow!("run {} has no installation", run.id))?;
        // A run's writes go out in order, so no id means GitHub refused its creation for good.
        let Some(check_run_id) = run.check_run_id else {
            tracing::warn!(run = run.id, "no check run to update: its creation was given up");
            return Ok(());
        };
        let update: Update = serde_json::from_str(&item.payload)?;
        let write = CheckRunWrite {
            name: run.check.clone(),
            head_sha: run.sha.clone(),
            external_id: run.id.to_string(),
            details_url: self.run_url(run.id),
            status: if update.status == "completed" {
                CheckStatus::Completed
            } else {
                CheckStatus::InProgress
            },
            started_at: update.started_at.map(from_ms),
            conclusion: update.conclusion.as_deref().map(parse_conclusion),
            completed_at: update.completed_at.map(from_ms),
            output: update.title.map(|title| CheckOutputWrite {
                title,
                summary: update.summary.unwrap_or_default(),
                text: update.text,
            }),
        };
        self.inner.github.update_check_run(installation, &run.repo, check_run_id, &write).await?;
        Ok(())
    }

    async fn config_error(&self, item: &OutboxItem) -> anyhow::Result<()> {
        let error: ConfigErrorPayload = serde_json::from_str(&item.payload)?;
        let now = SystemTime::now();
        let write = CheckRunWrite {
            name: super::plan::CONFIG_FILE.to_string(),
            head_sha: error.sha.clone(),
            // Unique, so that a create whose answer was lost is found again.
            external_id: format!("tether.toml-{}", item.id),
            details_url: self.inner.config.external_url.clone(),
            status: CheckStatus::Completed,
            started_at: Some(now),
            conclusion: Some(CheckConclusion::Failure),
            completed_at: Some(now),
            output: Some(CheckOutputWrite {
                title: "tether.toml cannot be used".into(),
                summary: report::limit(&format!("```\n{}\n```", error.message), ""),
                text: None,
            }),
        };
        self.create_once(item, error.installation, &error.repo, &write).await?;
        Ok(())
    }

    /// Creates a check run; returns its id. A create tried before (or by a server that stopped
    /// before recording the answer) may have reached GitHub: then it is looked for first, by its
    /// external id, so that the commit does not get two.
    async fn create_once(
        &self,
        item: &OutboxItem,
        installation: i64,
        repo: &str,
        write: &CheckRunWrite,
    ) -> anyhow::Result<i64> {
        let github = &self.inner.github;
        if item.attempts > 0 || item.next_attempt_at < self.inner.started_at {
            let (sha, name, external_id) = (&write.head_sha, &write.name, &write.external_id);
            if let Some(id) =
                github.find_check_run(installation, repo, sha, name, external_id).await?
            {
                return Ok(id);
            }
        }
        Ok(github.create_check_run(installation, repo, write).await?)
    }

    async fn react(&self, item: &OutboxItem) -> anyhow::Result<()> {
        let r: ReactionPayload = serde_json::from_str(&item.payload)?;
        let reaction = match r.content.as_str() {
            "eyes" => Reaction::Eyes,
            "rocket" => Reaction::Rocket,
            _ => Reaction::Confused,
        };
        Ok(self.inner.github.add_reaction(r.installation, &r.repo, r.comment_id, reaction).await?)
    }

    async fn comment(&self, item: &OutboxItem) -> anyhow::Result<()> {
        let c: CommentPayload = serde_json::from_str(&item.payload)?;
        Ok(self.inner.github.create_comment(c.installation, &c.repo, c.issue, &c.body).await?)
    }

    async fn deployment_start(&self, item: &OutboxItem) -> anyhow::Result<()> {
        let run = self.outbox_run(item).await?;
        let installation = run
            .installation_id
            .ok_or_else(|| anyhow::anyhow!("run {} has no installation", run.id))?;
        let environment = run.deployment_environment.clone().unwrap_or_default();
        // A retry after the deployment was created but its status was not must not create a
        // second deployment.
        let id = match run.deployment_id {
            Some(id) => id,
            None => {
                let id = self
                    .inner
                    .github
                    .create_deployment(installation, &run.repo, &run.sha, &environment)
                    .await?;
                self.inner.store.set_deployment_id(run.id, id).await?;
                id
            }
        };
        let url = self.run_url(run.id);
        Ok(self
            .inner
            .github
            .create_deployment_status(
                installation,
                &run.repo,
                id,
                DeploymentState::InProgress,
                &url,
            )
            .await?)
    }

    async fn deployment_status(&self, item: &OutboxItem) -> anyhow::Result<()> {
        let run = self.outbox_run(item).await?;
        let installation = run
            .installation_id
            .ok_or_else(|| anyhow::anyhow!("run {} has no installation", run.id))?;
        let Some(id) = run.deployment_id else {
            tracing::warn!(run = run.id, "no deployment to update: its creation was given up");
            return Ok(());
        };
        let state: DeploymentPayload = serde_json::from_str(&item.payload)?;
        let state = match state.state.as_str() {
            "success" => DeploymentState::Success,
            "failure" => DeploymentState::Failure,
            _ => DeploymentState::Error,
        };
        let url = self.run_url(run.id);
        Ok(self
            .inner
            .github
            .create_deployment_status(installation, &run.repo, id, state, &url)
            .await?)
    }

    async fn outbox_run(&self, item: &OutboxItem) -> anyhow::Result<crate::store::RunRecord> {
        let id =
            item.run_id.ok_or_else(|| anyhow::anyhow!("outbox item {} has no run", item.id))?;
        self.inner.store.run(id).await?.ok_or_else(|| anyhow::anyhow!("run {id} is gone"))
    }
}

#[derive(Deserialize)]
struct Update {
    status: String,
    started_at: Option<i64>,
    conclusion: Option<String>,
    completed_at: Option<i64>,
    title: Option<String>,
    summary: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct DeploymentPayload {
    state: String,
}

#[derive(Deserialize)]
struct ConfigErrorPayload {
    installation: i64,
    repo: String,
    sha: String,
    message: String,
}

#[derive(Deserialize)]
pub struct ReactionPayload {
    pub installation: i64,
    pub repo: String,
    pub comment_id: i64,
    pub content: String,
}

#[derive(Deserialize)]
pub struct CommentPayload {
    pub installation: i64,
    pub repo: String,
    pub issue: u64,
    pub body: String,
}

fn parse_conclusion(text: &str) -> CheckConclusion {
    match text {
        "success" => CheckConclusion::Success,
        "cancelled" => CheckConclusion::Cancelled,
        "timed_out" => CheckConclusion::TimedOut,
        _ => CheckConclusion::Failure,
    }
}

fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
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
