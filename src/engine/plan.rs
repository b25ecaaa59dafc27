//! From an event to the runs it causes: load `tether.toml` at the commit, pick the checks, and
//! store one run (and its check run's creation) per check.

use std::time::SystemTime;

use super::{CommentRef, Engine, StoredThunk};
use crate::core::dispatch::Requirements;
use crate::core::{Check, Config, EventKind, Thunk};
use crate::github::GitHubError;
use crate::store::{NewRun, OutboxEntry};

/// The file tether reads at the root of a repository.
pub const CONFIG_FILE: &str = "tether.toml";

/// What a commit's `tether.toml` says.
pub enum Loaded {
    /// No file: no checks, nothing reported.
    Missing,
    /// A file that cannot be used; reported as one failed check run named `tether.toml`.
    Invalid(String),
    Valid(Config),
}

/// Why an event could not be planned now; the delivery is tried again later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Retry(pub String);

/// The runs one event asks for.
pub struct Planned<'a> {
    pub repo: &'a str,
    pub installation: i64,
    pub sha: &'a str,
    pub clone_url: &'a str,
    pub event: &'a str,
    pub sender: &'a str,
    pub pr_number: Option<u64>,
    pub delivery_id: Option<&'a str>,
    /// The deployment environment applies (a push to the default branch).
    pub deploys: bool,
    /// The `/run` comment that asked, if one did.
    pub comment_id: Option<i64>,
}

impl Engine {
    pub(super) async fn load_config(
        &self,
        installation: i64,
        repo: &str,
        sha: &str,
    ) -> Result<Loaded, Retry> {
        match self.inner.github.file_at(installation, repo, CONFIG_FILE, sha).await {
            Ok(None) => Ok(Loaded::Missing),
            Ok(Some(bytes)) => Ok(match std::str::from_utf8(&bytes) {
                Ok(text) => Config::parse(text)
                    .map_or_else(|e| Loaded::Invalid(e.to_string()), Loaded::Valid),
                Err(_) => Loaded::Invalid("tether.toml: the file is not UTF-8".into()),
            }),
            Err(GitHubError::TooLarge) => {
                Ok(Loaded::Invalid("tether.toml: the file is over 1 MiB".into()))
            }
            Err(e) => Err(Retry(format!("loading tether.toml of {repo} at {sha}: {e}"))),
        }
    }

    /// Stores a run per check, each with the creation of its check run queued in the outbox.
    pub(super) async fn queue_runs(
        &self,
        plan: &Planned<'_>,
        checks: &[&Check],
    ) -> anyhow::Result<Vec<i64>> {
        let mut ids = Vec::new();
        for check in checks {
            let thunk = Thunk::new(check, plan.sha, plan.clone_url);
            let comment = plan
                .comment_id
                .map(|comment_id| CommentRef { installation: plan.installation, comment_id });
            let stored =
                StoredThunk { thunk: thunk.clone(), needs: Requirements::of(check), comment };
            let run = NewRun {
                repo: plan.repo.to_string(),
                installation_id: Some(plan.installation),
                sha: plan.sha.to_string(),
                check: check.name.clone(),
                event: plan.event.to_string(),
                sender: plan.sender.to_string(),
                pr_number: plan.pr_number,
                thunk: serde_json::to_string(&stored)?,
                thunk_id: thunk.id().to_string(),
                delivery_id: plan.delivery_id.map(String::from),
                rerun_of: None,
                deployment_environment: check.deployment.clone().filter(|_| plan.deploys),
                queue_deadline: SystemTime::now() + self.inner.config.queue_ttl,
            };
            let create =
                OutboxEntry { kind: super::outbox::CREATE_CHECK_RUN.into(), payload: "{}".into() };
            ids.push(self.inner.store.insert_run(run, vec![create]).await?);
        }
        self.inner.outbox.notify_one();
        self.inner.dispatch.notify_one();
        Ok(ids)
    }

    /// Reports an unusable `tether.toml` as one failed check run.
    pub(super) async fn report_invalid_config(
        &self,
        installation: i64,
        repo: &str,
        sha: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        let payload = serde_json::json!({ "installation": installation, "repo": repo, "sha": sha, "message": message });
        let entry =
            OutboxEntry { kind: super::outbox::CONFIG_ERROR.into(), payload: payload.to_string() };
        self.inner.store.enqueue(None, entry).await?;
        self.inner.outbox.notify_one();
        Ok(())
    }

    /// Loads the config and queues the checks `select` picks from it; returns the outcome text
    /// for the delivery.
    pub(super) async fn plan(
        &self,
        plan: Planned<'_>,
        kind: EventKind,
        branch: Option<&str>,
    ) -> Result<String, Retry> {
        let config = match self.load_config(plan.installation, plan.repo, plan.sha).await? {
            Loaded::Missing => return Ok("processed: no tether.toml".into()),
            Loaded::Invalid(message) => {
                self.report_invalid_config(plan.installation, plan.repo, plan.sha, &message)
                    .await
                    .map_err(|e| Retry(e.to_string()))?;
                return Ok("processed: invalid tether.toml".into());
            }
            Loaded::Valid(config) => config,
        };
        let checks = crate::core::filter::checks_for(&config, kind, branch);
        if let Some(pr) = plan.pr_number {
            let names: Vec<String> = checks.iter().map(|c| c.name.clone()).collect();
            self.supersede(plan.repo, pr, plan.sha, &names)
                .await
                .map_err(|e| Retry(e.to_string()))?;
        }
        let ids = self.queue_runs(&plan, &checks).await.map_err(|e| Retry(e.to_string()))?;
        Ok(format!("processed: {} runs", ids.len()))
    }
}
