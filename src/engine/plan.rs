//! The planner: from an event to the runs it causes. It loads `tether.toml` at the commit, picks
//! the checks, and stores one run (and its check run's creation) per check; runs of a pull
//! request at an older head are handed to the dispatcher to cancel.

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::dispatch::Cancel;
use super::item::OutboxItem;
use super::{CommentRef, StoredThunk, Wakes};
use crate::core::commit::CommitInfo;
use crate::core::config::CONFIG_FILE;
use crate::core::dispatch::Requirements;
use crate::core::event::{IssueComment, PullRequest, Push};
use crate::core::run::RunEnd;
use crate::core::{Check, Config, EventKind, Thunk};
use crate::github::{GitHub, GitHubError, PullHead};
use crate::store::{NewRun, RunRecord, Store};

/// What a commit's `tether.toml` says.
pub enum Loaded {
    /// No file: no checks, nothing reported.
    Missing,
    /// A file that cannot be used; reported as one failed check run named `tether.toml`.
    Invalid(String),
    Valid(Config),
}

/// Why an event could not be acted on now; the delivery is tried again later. Its text keeps
/// the whole chain of causes.
#[derive(Debug)]
pub struct Retry(pub anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Retry {
    fn from(error: E) -> Retry {
        Retry(error.into())
    }
}

impl std::fmt::Display for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

/// What asked for runs.
pub(super) enum Trigger<'a> {
    Push(&'a Push),
    PullRequest(&'a PullRequest),
    /// A `/run` comment, at the pull request's head.
    RunComment(&'a IssueComment, &'a PullHead),
}

/// The runs one event asks for; made only by [`Planned::new`].
pub struct Planned<'a> {
    repo: &'a str,
    installation: i64,
    sha: &'a str,
    clone_url: &'a str,
    /// Which checks apply: `push` checks, or `pull_request` ones.
    kind: EventKind,
    /// The branch pushed, for checks limited to branches.
    branch: Option<&'a str>,
    /// The run's event, as the runner gets it (secrets are granted by it).
    event: &'static str,
    sender: &'a str,
    pr_number: Option<u64>,
    delivery_id: &'a str,
    /// The deployment environment applies (a push to the default branch).
    deploys: bool,
    /// The `/run` comment that asked, if one did.
    comment_id: Option<i64>,
    /// What the pages show of the commit.
    commit: CommitInfo,
    /// The runs wait for a `/run` rather than go to the sender's runner: a fork's pull request
    /// that its sender did not author.
    held: bool,
}

impl<'a> Planned<'a> {
    pub(super) fn new(trigger: Trigger<'a>, installation: i64, delivery_id: &'a str) -> Self {
        match trigger {
            Trigger::Push(push) => Planned {
                repo: &push.repo.full_name,
                installation,
                sha: &push.after,
                clone_url: &push.repo.clone_url,
                kind: EventKind::Push,
                branch: push.branch(),
                event: EventKind::Push.as_str(),
                sender: &push.sender.login,
                pr_number: None,
                delivery_id,
                deploys: push.branch() == Some(push.repo.default_branch.as_str()),
                comment_id: None,
                commit: CommitInfo::new(
                    push.branch(),
                    push.head_message.as_deref(),
                    push.repo.html_url.as_deref(),
                    &push.after,
                ),
                held: false,
            },
            Trigger::PullRequest(pr) => Planned {
                repo: &pr.repo.full_name,
                installation,
                sha: &pr.head_sha,
                clone_url: &pr.head_clone_url,
                kind: EventKind::PullRequest,
                branch: None,
                event: EventKind::PullRequest.as_str(),
                sender: &pr.sender.login,
                pr_number: Some(pr.number),
                delivery_id,
                deploys: false,
                comment_id: None,
                commit: CommitInfo::new(
                    Some(&pr.head_ref),
                    Some(&pr.title),
                    pr.repo.html_url.as_deref(),
                    &pr.head_sha,
                ),
                held: !pr.runs_on_sender(),
            },
            Trigger::RunComment(comment, head) => Planned {
                repo: &comment.repo.full_name,
                installation,
                sha: &head.sha,
                clone_url: &head.clone_url,
                kind: EventKind::PullRequest,
                branch: None,
                event: "issue_comment",
                sender: &comment.sender.login,
                pr_number: Some(comment.issue_number),
                delivery_id,
                deploys: false,
                comment_id: Some(comment.comment_id),
                commit: CommitInfo::new(
                    Some(&head.head_ref),
                    None,
                    comment.repo.html_url.as_deref(),
                    &head.sha,
                ),
                // Typing `/run` is the consent to run the code on one's own runner.
                held: false,
            },
        }
    }
}

/// Events into stored runs.
#[derive(Clone)]
pub(super) struct Planner {
    store: Store,
    github: GitHub,
    queue_ttl: Duration,
    cancels: mpsc::Sender<Cancel>,
    wakes: Wakes,
}

/// What a plan came to.
pub(super) enum PlanOutcome {
    NoConfig,
    InvalidConfig,
    Queued(usize),
}

impl Planner {
    /// `cancels` goes to the dispatcher; `wakes` tell it and the outbox that runs and writes
    /// were stored.
    pub(super) fn new(
        (store, github): (Store, GitHub),
        queue_ttl: Duration,
        cancels: mpsc::Sender<Cancel>,
        wakes: Wakes,
    ) -> Planner {
        Planner { store, github, queue_ttl, cancels, wakes }
    }

    pub(super) async fn load_config(
        &self,
        installation: i64,
        repo: &str,
        sha: &str,
    ) -> Result<Loaded, Retry> {
        match self.github.file_at(installation, repo, CONFIG_FILE, sha).await {
            Ok(None) => Ok(Loaded::Missing),
            Ok(Some(bytes)) => Ok(match std::str::from_utf8(&bytes) {
                Ok(text) => Config::parse(text)
                    .map_or_else(|e| Loaded::Invalid(e.to_string()), Loaded::Valid),
                Err(_) => Loaded::Invalid("tether.toml: the file is not UTF-8".into()),
            }),
            Err(GitHubError::TooLarge) => {
                Ok(Loaded::Invalid("tether.toml: the file is over 1 MiB".into()))
            }
            Err(e) => Err(Retry(
                anyhow::Error::new(e).context(format!("loading tether.toml of {repo} at {sha}")),
            )),
        }
    }

    /// Loads the config and queues the checks that apply to the event; a pull request's runs
    /// of those checks at other commits are superseded.
    pub(super) async fn plan(&self, plan: Planned<'_>) -> Result<PlanOutcome, Retry> {
        let config = match self.load_config(plan.installation, plan.repo, plan.sha).await? {
            Loaded::Missing => return Ok(PlanOutcome::NoConfig),
            Loaded::Invalid(message) => {
                self.report_invalid_config(&plan, message).await?;
                return Ok(PlanOutcome::InvalidConfig);
            }
            Loaded::Valid(config) => config,
        };
        let checks = crate::core::filter::checks_for(&config, plan.kind, plan.branch);
        if let Some(pr) = plan.pr_number {
            self.supersede(&plan, pr, &checks).await?;
        }
        let ids = self.queue_runs(&plan, &checks).await?;
        Ok(PlanOutcome::Queued(ids.len()))
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
            let stored = StoredThunk {
                thunk: thunk.clone(),
                needs: Requirements::of(check),
                comment,
                held: plan.held,
            };
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
                delivery_id: Some(plan.delivery_id.to_string()),
                rerun_of: None,
                deployment_environment: check.deployment.clone().filter(|_| plan.deploys),
                queue_deadline: SystemTime::now() + self.queue_ttl,
                commit: plan.commit.clone(),
            };
            ids.push(self.insert(run).await?);
        }
        Ok(ids)
    }

    /// Queues a new run of `original`, for `delivery` (none for a person's re-run), on its
    /// sender's runner.
    pub(super) async fn rerun(
        &self,
        original: &RunRecord,
        delivery: Option<&str>,
    ) -> anyhow::Result<i64> {
        let run = NewRun {
            delivery_id: delivery.map(String::from),
            rerun_of: Some(original.id),
            queue_deadline: SystemTime::now() + self.queue_ttl,
            ..original.queued.clone()
        };
        self.insert(run).await
    }

    /// Stores a run with its check run's creation, and wakes the outbox and the dispatcher.
    async fn insert(&self, run: NewRun) -> anyhow::Result<i64> {
        let id = self.store.insert_run(run, vec![OutboxItem::CreateCheckRun.entry()]).await?;
        self.wakes.outbox.notify_one();
        self.wakes.dispatch.notify_one();
        Ok(id)
    }

    /// Reports an unusable `tether.toml` as one failed check run.
    async fn report_invalid_config(
        &self,
        plan: &Planned<'_>,
        message: String,
    ) -> anyhow::Result<()> {
        let item = OutboxItem::ConfigError {
            installation: plan.installation,
            repo: plan.repo.to_string(),
            sha: plan.sha.to_string(),
            message,
        };
        self.store.enqueue(None, item.entry()).await?;
        self.wakes.outbox.notify_one();
        Ok(())
    }

    /// Hands the dispatcher the open runs of these checks of a pull request at other commits,
    /// to end as "superseded by SHA": a new head makes them moot. Runs held at this very commit
    /// (a fork's pull request its author did not push) end too when this plan may run: a
    /// `/run` gave the consent they waited for, so its runs take their place.
    pub(super) async fn supersede(
        &self,
        plan: &Planned<'_>,
        pr: u64,
        checks: &[&Check],
    ) -> anyhow::Result<()> {
        for check in checks {
            for run in self.store.open_runs_of_pr(plan.repo, pr, &check.name).await? {
                let end = if run.sha != plan.sha {
                    RunEnd::superseded_by(plan.sha)
                } else if !plan.held && is_held(&run.thunk) {
                    RunEnd::Superseded {
                        by: plan.comment_id.map_or("a run that may go", |_| "/run").into(),
                    }
                } else {
                    continue;
                };
                let cancel = Cancel { run_id: run.id, end };
                self.cancels
                    .send(cancel)
                    .await
                    .map_err(|_| anyhow::anyhow!("the dispatcher is gone"))?;
            }
        }
        Ok(())
    }
}

/// Whether a stored run waits for a `/run` (a fork's pull request its author did not push).
fn is_held(thunk: &str) -> bool {
    serde_json::from_str::<StoredThunk>(thunk).is_ok_and(|t| t.held)
}
