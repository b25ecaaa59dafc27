//! The delivery worker: reads stored webhook deliveries, oldest first, and acts on each once.
//! A delivery whose processing fails for a passing reason (GitHub down) stays unprocessed and is
//! tried again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::Engine;
use super::plan::{Planned, Retry};
use crate::core::EventKind;
use crate::core::event::{
    CheckRun, CheckSuite, Event, Installation, PullRequest, Push, SuiteAction,
};
use crate::store::{Delivery, NewRun, OutboxEntry, RunRecord};

/// Deliveries read per round.
const DELIVERY_BATCH: usize = 16;
/// How long the worker waits before trying deliveries again after a passing failure.
const DELIVERY_RETRY_DELAY: Duration = Duration::from_secs(5);
/// How often the worker looks for deliveries when nothing woke it (a safety net).
const DELIVERY_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// How long a finished delivery keeps its payload: longer than GitHub lets anyone redeliver
/// (3 days), for a person looking into what happened; its row stays for good.
const DELIVERY_PAYLOAD_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often old payloads are dropped.
const DELIVERY_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

pub async fn run(engine: Engine, wake: Arc<Notify>) {
    let mut pruned_at: Option<tokio::time::Instant> = None;
    loop {
        if pruned_at.is_none_or(|at| at.elapsed() >= DELIVERY_PRUNE_INTERVAL) {
            pruned_at = Some(tokio::time::Instant::now());
            engine.drop_old_payloads().await;
        }
        let pending = match engine.inner.store.unprocessed_deliveries(DELIVERY_BATCH).await {
            Ok(pending) => pending,
            Err(e) => {
                tracing::error!(error = %e, "reading deliveries failed");
                tokio::time::sleep(DELIVERY_RETRY_DELAY).await;
                continue;
            }
        };
        let mut retry_later = false;
        for delivery in &pending {
            match engine.process(delivery).await {
                Ok(outcome) => {
                    tracing::info!(
                        delivery = delivery.id,
                        event = delivery.event,
                        outcome,
                        "delivery processed"
                    );
                    if let Err(e) = engine.inner.store.finish_delivery(&delivery.id, &outcome).await
                    {
                        tracing::error!(delivery = delivery.id, error = %e, "recording a delivery's outcome failed");
                    }
                }
                Err(Retry(why)) => {
                    tracing::warn!(delivery = delivery.id, %why, "delivery will be tried again");
                    retry_later = true;
                    break;
                }
            }
        }
        if retry_later {
            tokio::time::sleep(DELIVERY_RETRY_DELAY).await;
        } else if pending.len() < DELIVERY_BATCH {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(DELIVERY_POLL_INTERVAL) => {}
            }
        }
    }
}

impl Engine {
    /// Empties the payloads of deliveries finished more than `DELIVERY_PAYLOAD_KEEP` ago, so
    /// the database does not grow with every webhook ever received.
    async fn drop_old_payloads(&self) {
        let cutoff = std::time::SystemTime::now() - DELIVERY_PAYLOAD_KEEP;
        match self.inner.store.drop_old_payloads(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "dropped the payloads of old deliveries"),
            Err(e) => tracing::error!(error = %e, "dropping old delivery payloads failed"),
        }
    }

    /// Acts on one delivery; returns the outcome to record.
    async fn process(&self, delivery: &Delivery) -> Result<String, Retry> {
        let event = match crate::github::webhook::parse(&delivery.event, &delivery.payload) {
            Ok(event) => event,
            Err(e) => return Ok(format!("failed: {e}")),
        };
        let id = delivery.id.as_str();
        match event {
            Event::Push(push) => self.on_push(&push, id).await,
            Event::PullRequest(pr) => self.on_pull_request(&pr, id).await,
            Event::CheckRun(check_run) => self.on_check_run(&check_run, id).await,
            Event::CheckSuite(suite) => self.on_check_suite(&suite, id).await,
            Event::IssueComment(comment) => self.on_comment(&comment, id).await,
            Event::Installation(installation) => self.on_installation(&installation).await,
            Event::Ping => Ok("processed: ping".into()),
            Event::Ignored { event, action } => {
                Ok(format!("ignored: {event} {}", action.unwrap_or_default()))
            }
        }
    }

    async fn on_push(&self, push: &Push, delivery: &str) -> Result<String, Retry> {
        if push.deleted || crate::core::event::is_null_commit(&push.after) {
            return Ok("ignored: a deleted ref".into());
        }
        let Some(installation) = push.installation else {
            return Ok("failed: no installation in the payload".into());
        };
        let branch = push.branch();
        let plan = Planned {
            repo: &push.repo.full_name,
            installation,
            sha: &push.after,
            clone_url: &push.repo.clone_url,
            event: "push",
            sender: &push.sender.login,
            pr_number: None,
            delivery_id: Some(delivery),
            deploys: branch == Some(push.repo.default_branch.as_str()),
            comment_id: None,
        };
        self.plan(plan, EventKind::Push, branch).await
    }

    async fn on_pull_request(&self, pr: &PullRequest, delivery: &str) -> Result<String, Retry> {
        let Some(installation) = pr.installation else {
            return Ok("failed: no installation in the payload".into());
        };
        let plan = Planned {
            repo: &pr.repo.full_name,
            installation,
            sha: &pr.head_sha,
            clone_url: &pr.head_clone_url,
            event: "pull_request",
            sender: &pr.sender.login,
            pr_number: Some(pr.number),
            delivery_id: Some(delivery),
            deploys: false,
            comment_id: None,
        };
        self.plan(plan, EventKind::PullRequest, None).await
    }

    /// `check_run.rerequested`: a new run of the stored original, on its sender's runner.
    async fn on_check_run(&self, check_run: &CheckRun, delivery: &str) -> Result<String, Retry> {
        let Ok(original_id) = check_run.external_id.parse::<i64>() else {
            return Ok("ignored: not a tether check run".into());
        };
        let original = self.inner.store.run(original_id).await.map_err(|e| Retry(e.to_string()))?;
        match original.filter(|run| run.repo.eq_ignore_ascii_case(&check_run.repo.full_name)) {
            Some(original) => self
                .rerun(&original, delivery)
                .await
                .map(|id| format!("processed: re-run {original_id} as {id}")),
            None => Ok(format!("ignored: no run {original_id} of this repository")),
        }
    }

    /// `check_suite.rerequested`: re-runs the latest run of each check of the commit.
    async fn on_check_suite(&self, suite: &CheckSuite, delivery: &str) -> Result<String, Retry> {
        if suite.action == SuiteAction::Requested {
            return Ok("ignored: the push or pull request event starts the runs".into());
        }
        let runs = self
            .inner
            .store
            .runs_for_commit(&suite.repo.full_name, &suite.head_sha)
            .await
            .map_err(|e| Retry(e.to_string()))?;
        let mut latest: Vec<&RunRecord> = Vec::new();
        for run in &runs {
            // Newest first: the first run of each check is its latest.
            if !latest.iter().any(|r| r.check == run.check) {
                latest.push(run);
            }
        }
        for run in &latest {
            self.rerun(run, delivery).await?;
        }
        Ok(format!("processed: re-ran {} checks", latest.len()))
    }

    async fn rerun(&self, original: &RunRecord, delivery: &str) -> Result<i64, Retry> {
        let run = NewRun {
            repo: original.repo.clone(),
            installation_id: original.installation_id,
            sha: original.sha.clone(),
            check: original.check.clone(),
            event: original.event.clone(),
            sender: original.sender.clone(),
            pr_number: original.pr_number,
            thunk: original.thunk.clone(),
            thunk_id: original.thunk_id.clone(),
            delivery_id: Some(delivery.to_string()),
            rerun_of: Some(original.id),
            deployment_environment: original.deployment_environment.clone(),
            queue_deadline: std::time::SystemTime::now() + self.inner.config.queue_ttl,
        };
        let create =
            OutboxEntry { kind: super::outbox::CREATE_CHECK_RUN.into(), payload: "{}".into() };
        let id = self
            .inner
            .store
            .insert_run(run, vec![create])
            .await
            .map_err(|e| Retry(e.to_string()))?;
        self.inner.outbox.notify_one();
        self.inner.dispatch.notify_one();
        Ok(id)
    }

    async fn on_installation(&self, installation: &Installation) -> Result<String, Retry> {
        let store = &self.inner.store;
        store
            .record_installation(
                installation.installation_id,
                &installation.account,
                &installation.action,
            )
            .await
            .map_err(|e| Retry(e.to_string()))?;
        Ok(format!(
            "processed: installation {} {}",
            installation.installation_id, installation.action
        ))
    }
}
