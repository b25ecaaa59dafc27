//! The intake: the delivery worker. It reads stored webhook deliveries, oldest first, parses
//! each once into a typed event and acts on it once. A delivery whose processing fails for a
//! passing reason (GitHub down, a rate limit) is tried again on its own schedule (`core::retry`,
//! stored with it), without holding up the others, for up to a day; one that fails for good, or
//! still fails after a day, is recorded `failed` with its error.

mod comment;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::Stop;
use super::actions::{ActionError, Actions};
use super::plan::{PlanOutcome, Planned, Planner, Retry, Trigger};
use crate::core::event::{CheckRun, CheckRunAction, CheckSuite, Event, Installation, SuiteAction};
use crate::core::retry::{AfterFailure, Failure, FailureKind};
use crate::github::{GitHub, GitHubError};
use crate::store::{Delivery, DeliveryOutcome, RunRecord, Store, StoreError};

/// Deliveries read per round.
const DELIVERY_BATCH: usize = 16;
/// How long the worker waits after the store itself failed.
const DELIVERY_STORE_RETRY_DELAY: Duration = Duration::from_secs(5);
/// How often the worker looks for deliveries when nothing woke it (a safety net).
const DELIVERY_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// How long a finished delivery keeps its payload: longer than GitHub lets anyone redeliver
/// (3 days), for a person looking into what happened; its row stays for good.
const DELIVERY_PAYLOAD_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often old payloads are dropped.
const DELIVERY_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// What became of a delivery: a word to count it by, and the rest for a person.
struct Outcome {
    kind: DeliveryOutcome,
    detail: String,
}

impl Outcome {
    fn processed(detail: impl Into<String>) -> Outcome {
        Outcome { kind: DeliveryOutcome::Processed, detail: detail.into() }
    }

    fn ignored(detail: impl Into<String>) -> Outcome {
        Outcome { kind: DeliveryOutcome::Ignored, detail: detail.into() }
    }

    fn failed(detail: impl Into<String>) -> Outcome {
        Outcome { kind: DeliveryOutcome::Failed, detail: detail.into() }
    }

    /// A payload with no installation cannot be acted on as the app.
    fn no_installation() -> Outcome {
        Outcome::failed("no installation in the payload")
    }
}

/// Deliveries into events, and events to the planner.
pub(super) struct Intake {
    store: Store,
    github: GitHub,
    planner: Planner,
    /// For a check run's "Cancel" button.
    actions: Actions,
    /// Notified when an item is stored in the outbox (a `/run` answer).
    outbox_wake: Arc<Notify>,
}

impl Intake {
    pub(super) fn new(
        (store, github): (Store, GitHub),
        planner: Planner,
        actions: Actions,
        outbox_wake: Arc<Notify>,
    ) -> Intake {
        Intake { store, github, planner, actions, outbox_wake }
    }

    /// Acts on deliveries as `wake` says they are stored, until `stop`.
    pub(super) async fn run(self, wake: Arc<Notify>, mut stop: Stop) {
        let mut pruned_at: Option<tokio::time::Instant> = None;
        loop {
            if pruned_at.is_none_or(|at| at.elapsed() >= DELIVERY_PRUNE_INTERVAL) {
                pruned_at = Some(tokio::time::Instant::now());
                self.drop_old_payloads().await;
            }
            let wait = match self.process_due().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "reading deliveries failed");
                    DELIVERY_STORE_RETRY_DELAY
                }
            };
            tokio::select! {
                () = stop.stopped() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Processes the deliveries that are due, oldest first; returns how long until the next
    /// one is due (at most the poll interval).
    async fn process_due(&self) -> Result<Duration, StoreError> {
        loop {
            let due = self.store.due_deliveries(SystemTime::now(), DELIVERY_BATCH).await?;
            for delivery in &due {
                match self.process(delivery).await {
                    Ok(outcome) => self.finish(delivery, &outcome).await?,
                    Err(retry) => self.failed(delivery, &retry).await?,
                }
            }
            if due.len() < DELIVERY_BATCH {
                break;
            }
        }
        let next = self.store.next_delivery_due().await?;
        Ok(next.map_or(DELIVERY_POLL_INTERVAL, |at| {
            let wait = at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
            wait.min(DELIVERY_POLL_INTERVAL)
        }))
    }

    /// A delivery whose processing failed: tried again at its own next attempt, or recorded
    /// `failed` with the error's chain when trying cannot help or has gone on for a day.
    async fn failed(&self, delivery: &Delivery, retry: &Retry) -> Result<(), StoreError> {
        let now = SystemTime::now();
        let failure = Failure {
            kind: failure_kind(retry),
            earlier_failures: delivery.attempts,
            first_failure_at: delivery.first_failure_at,
            now,
        };
        let (id, attempts, error) =
            (delivery.id.as_str(), delivery.attempts + 1, retry.to_string());
        match failure.decide() {
            AfterFailure::RetryAt(next) => {
                let retry_in = next.duration_since(now).unwrap_or_default();
                tracing::warn!(
                    delivery = id,
                    attempts,
                    error,
                    ?retry_in,
                    "delivery will be tried again"
                );
                self.store.delivery_retry(id, &error, next, now).await
            }
            AfterFailure::GiveUp if attempts == 1 => {
                self.finish(delivery, &Outcome::failed(error)).await
            }
            AfterFailure::GiveUp => {
                let detail = format!("after {attempts} attempts: {error}");
                self.finish(delivery, &Outcome::failed(detail)).await
            }
        }
    }

    async fn finish(&self, delivery: &Delivery, outcome: &Outcome) -> Result<(), StoreError> {
        let (kind, detail) = (outcome.kind.as_str(), outcome.detail.as_str());
        tracing::info!(
            delivery = delivery.id,
            event = delivery.event,
            outcome = kind,
            detail,
            "delivery processed"
        );
        self.store.finish_delivery(&delivery.id, outcome.kind, detail).await
    }

    /// Empties the payloads of deliveries finished more than `DELIVERY_PAYLOAD_KEEP` ago, so
    /// the database does not grow with every webhook ever received.
    async fn drop_old_payloads(&self) {
        let cutoff = std::time::SystemTime::now() - DELIVERY_PAYLOAD_KEEP;
        match self.store.drop_old_payloads(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "dropped the payloads of old deliveries"),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "dropping old delivery payloads failed")
            }
        }
    }

    /// Acts on one delivery; returns the outcome to record.
    async fn process(&self, delivery: &Delivery) -> Result<Outcome, Retry> {
        let event = match crate::github::webhook::parse(&delivery.event, &delivery.payload) {
            Ok(event) => event,
            Err(e) => return Ok(Outcome::failed(e.to_string())),
        };
        let id = delivery.id.as_str();
        match event {
            Event::Push(push) => {
                if push.deleted || crate::core::event::is_null_commit(&push.after) {
                    return Ok(Outcome::ignored("a deleted ref"));
                }
                let Some(installation) = push.installation else {
                    return Ok(Outcome::no_installation());
                };
                self.plan(Planned::new(Trigger::Push(&push), installation, id)).await
            }
            Event::PullRequest(pr) => {
                let Some(installation) = pr.installation else {
                    return Ok(Outcome::no_installation());
                };
                self.plan(Planned::new(Trigger::PullRequest(&pr), installation, id)).await
            }
            Event::CheckRun(check_run) => self.on_check_run(&check_run, id).await,
            Event::CheckSuite(suite) => self.on_check_suite(&suite, id).await,
            Event::IssueComment(comment) => self.on_comment(&comment, id).await,
            Event::Installation(installation) => self.on_installation(&installation).await,
            Event::Ping => Ok(Outcome::processed("ping")),
            Event::Ignored { event, action } => {
                Ok(Outcome::ignored(format!("{event} {}", action.unwrap_or_default())))
            }
        }
    }

    async fn plan(&self, planned: Planned<'_>) -> Result<Outcome, Retry> {
        Ok(match self.planner.plan(planned).await? {
            PlanOutcome::NoConfig => Outcome::processed("no tether.toml"),
            PlanOutcome::InvalidConfig => Outcome::processed("invalid tether.toml"),
            PlanOutcome::Queued(runs) => Outcome::processed(format!("{runs} runs")),
        })
    }

    /// `check_run.rerequested`: a new run of the stored original, on its sender's runner.
    /// `check_run.requested_action` `cancel`: the run cancelled, if its sender may.
    async fn on_check_run(&self, check_run: &CheckRun, delivery: &str) -> Result<Outcome, Retry> {
        let Ok(original_id) = check_run.external_id.parse::<i64>() else {
            return Ok(Outcome::ignored("not a tether check run"));
        };
        let original = self.store.run(original_id).await?;
        let original =
            original.filter(|run| run.repo.eq_ignore_ascii_case(&check_run.repo.full_name));
        let Some(original) = original else {
            return Ok(Outcome::ignored(format!("no run {original_id} of this repository")));
        };
        match &check_run.action {
            CheckRunAction::Rerequested => {
                let id = self.planner.rerun(&original, Some(delivery)).await?;
                Ok(Outcome::processed(format!("re-run {original_id} as {id}")))
            }
            CheckRunAction::RequestedAction { identifier } if identifier == "cancel" => {
                self.cancel_from_button(original_id, &check_run.sender.login).await
            }
            CheckRunAction::RequestedAction { .. } => {
                Ok(Outcome::ignored("an action tether does not offer"))
            }
        }
    }

    /// The check run's "Cancel" button: from a person who may cancel, the run is cancelled;
    /// from anyone else it is logged and ignored.
    async fn cancel_from_button(&self, run_id: i64, by: &str) -> Result<Outcome, Retry> {
        match self.actions.cancel(run_id, by).await {
            Ok(()) => Ok(Outcome::processed(format!("run {run_id} cancelled by @{by}"))),
            Err(ActionError::Failed(e)) => Err(Retry(e)),
            Err(refused) => {
                tracing::warn!(run = run_id, by, why = %refused, "a check run's Cancel refused");
                Ok(Outcome::ignored(format!("cancel of run {run_id} by @{by}: {refused}")))
            }
        }
    }

    /// `check_suite.rerequested`: re-runs the latest run of each check of the commit.
    async fn on_check_suite(&self, suite: &CheckSuite, delivery: &str) -> Result<Outcome, Retry> {
        if suite.action == SuiteAction::Requested {
            return Ok(Outcome::ignored("the push or pull request event starts the runs"));
        }
        let runs = self.store.runs_for_commit(&suite.repo.full_name, &suite.head_sha).await?;
        let mut latest: Vec<&RunRecord> = Vec::new();
        for run in &runs {
            // Newest first: the first run of each check is its latest.
            if !latest.iter().any(|r| r.check == run.check) {
                latest.push(run);
            }
        }
        for run in &latest {
            self.planner.rerun(run, Some(delivery)).await?;
        }
        Ok(Outcome::processed(format!("re-ran {} checks", latest.len())))
    }

    async fn on_installation(&self, installation: &Installation) -> Result<Outcome, Retry> {
        let Installation { installation_id, account, action, .. } = installation;
        self.store.record_installation(*installation_id, account, action).await?;
        Ok(Outcome::processed(format!("installation {installation_id} {action}")))
    }
}

/// How a delivery's processing failed: GitHub's errors classify themselves (`GitHubError::kind`:
/// an outage or a rate limit passes; a refusal, a missing pull request head or a gone
/// installation stays); anything else (the store) passes.
fn failure_kind(retry: &Retry) -> FailureKind {
    retry.0.downcast_ref::<GitHubError>().map_or(FailureKind::Transient, GitHubError::kind)
}
